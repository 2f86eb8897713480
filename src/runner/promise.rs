//! The promise envelope (DESIGN.md): a descriptor's `[guarantees]` names, per checker, the
//! fault classes under which that checker must hold. A verdict outside the envelope is kept
//! and shown ("outside what this system promises") but does not decide the run's validity
//! or exit code; a system without `[guarantees]` promises everything its checkers check. A run
//! in which nothing is promised (every verdict outside) is valid: the promise was empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checker::{Validity, Verdict};
use crate::report::results::overall;

/// Checker name (a `Verdict.checker`, or its family before `/`: `linearizable` covers
/// `linearizable/register`) -> fault classes (`FaultKind::as_str`) it holds under.
pub type Guarantees = BTreeMap<String, Vec<String>>;

/// What one run was promised: the descriptor's guarantees and the fault classes its schedule
/// plans. Recorded in results.json (`promise`) so `analyze` judges a stored run the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Promise {
    pub guarantees: Guarantees,
    pub fault_classes: Vec<String>,
    /// Which envelope of the descriptor applies, when its params chose one
    /// (`[[guarantees_when]]`), e.g. "r + w <= n (n=3, r=1, w=1)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_by: Option<String>,
}

/// A verdict the system does not promise, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outside {
    pub checker: String,
    pub valid: Validity,
    pub reason: String,
}

impl Promise {
    /// `Ok` if `checker` must hold in this run, else the reason it is outside the promise.
    pub fn covers(&self, checker: &str) -> Result<(), String> {
        let family = checker.split('/').next().unwrap_or(checker);
        let Some(classes) = self
            .guarantees
            .get(checker)
            .or_else(|| self.guarantees.get(family))
        else {
            return Err(match &self.chosen_by {
                Some(by) => format!("the system promises nothing about {family} when {by}"),
                None => format!("the system promises nothing about {family}"),
            });
        };
        let missing: Vec<&str> = self
            .fault_classes
            .iter()
            .filter(|c| !classes.contains(c))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{family} is promised only under [{}]; this run had {}",
                classes.join(", "),
                missing.join(", ")
            ))
        }
    }

    /// The run's validity from the verdicts inside the promise, and those outside it.
    pub fn judge(&self, verdicts: &[Verdict]) -> (Validity, Vec<Outside>) {
        let mut inside = Vec::new();
        let mut outside = Vec::new();
        for v in verdicts {
            match self.covers(&v.checker) {
                Ok(()) => inside.push(v.clone()),
                Err(reason) => outside.push(Outside {
                    checker: v.checker.clone(),
                    valid: v.valid,
                    reason,
                }),
            }
        }
        // Nothing promised under these faults: the system kept the (empty) promise, so the
        // run is valid (exit 0) and every verdict is shown as outside it. The alternative,
        // unknown (exit 2), would make "bully splits under partitions, as it says" a harness
        // failure; the summary and report say plainly that nothing was promised.
        let valid = if inside.is_empty() {
            Validity::Valid
        } else {
            overall(&inside)
        };
        (valid, outside)
    }
}

/// The run's validity under an optional promise (none: every verdict counts), and the
/// `results.json` fields that record it.
pub fn judge(promise: Option<&Promise>, verdicts: &[Verdict]) -> (Validity, Vec<(String, Value)>) {
    match promise {
        None => (overall(verdicts), Vec::new()),
        Some(p) => {
            let (valid, outside) = p.judge(verdicts);
            (
                valid,
                vec![
                    ("promise".into(), json!(p)),
                    ("outside_promise".into(), json!(outside)),
                ],
            )
        }
    }
}

/// The promise a stored run recorded, if any.
pub fn recorded(extra: &serde_json::Map<String, Value>) -> Option<Promise> {
    extra
        .get("promise")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The checker names of the verdicts a stored run recorded as outside its promise.
pub fn outside_names(extra: &serde_json::Map<String, Value>) -> Vec<String> {
    extra
        .get("outside_promise")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("checker").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(checker: &str, valid: Validity) -> Verdict {
        Verdict {
            checker: checker.into(),
            valid,
            anomalies: vec![],
            explanation: String::new(),
            stats: json!({}),
        }
    }

    fn promise(g: &[(&str, &[&str])], run: &[&str]) -> Promise {
        Promise {
            guarantees: g
                .iter()
                .map(|(c, k)| (c.to_string(), k.iter().map(|s| s.to_string()).collect()))
                .collect(),
            fault_classes: run.iter().map(|s| s.to_string()).collect(),
            chosen_by: None,
        }
    }

    #[test]
    fn a_violation_outside_the_promise_does_not_decide_the_run() {
        // bully without the gate: linearizable only without partitions
        let p = promise(&[("linearizable", &["pause", "kill"])], &["partition"]);
        let vs = [
            verdict("linearizable/register", Validity::Invalid),
            verdict("split-brain", Validity::Invalid),
        ];
        let (valid, outside) = p.judge(&vs);
        assert_eq!(valid, Validity::Valid, "nothing promised here: kept");
        assert_eq!(outside.len(), 2);
        assert!(outside[0].reason.contains("only under [pause, kill]"));
        assert!(outside[0].reason.contains("partition"));
        assert!(outside[1].reason.contains("nothing about split-brain"));
    }

    #[test]
    fn a_violation_inside_the_promise_is_an_anomaly() {
        let p = promise(
            &[("linearizable", &["partition", "pause"]), ("fencing", &[])],
            &["partition"],
        );
        let vs = [
            verdict("linearizable/register", Validity::Invalid),
            verdict("fencing", Validity::Invalid),
        ];
        let (valid, outside) = p.judge(&vs);
        assert_eq!(valid, Validity::Invalid);
        assert_eq!(
            outside
                .iter()
                .map(|o| o.checker.as_str())
                .collect::<Vec<_>>(),
            ["fencing"]
        );
        let (valid, _) = p.judge(&[verdict("linearizable/register", Validity::Valid)]);
        assert_eq!(valid, Validity::Valid);
    }

    #[test]
    fn no_guarantees_table_means_every_verdict_counts() {
        let vs = [verdict("linearizable/register", Validity::Invalid)];
        let (valid, fields) = judge(None, &vs);
        assert_eq!(valid, Validity::Invalid);
        assert!(fields.is_empty());
        let p = promise(&[("linearizable", &[])], &[]);
        let (valid, fields) = judge(Some(&p), &vs);
        assert_eq!(valid, Validity::Invalid, "fault-free run: promised");
        let extra: serde_json::Map<String, Value> = fields.into_iter().collect();
        assert_eq!(recorded(&extra), Some(p));
        assert!(outside_names(&extra).is_empty());
    }
}
