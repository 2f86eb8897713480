//! `results.json`, the run's machine-readable outcome (shared conventions): read leniently
//! (unknown fields are kept and written back), with `verdicts` checked strictly.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ReportError;
use crate::checker::{Validity, Verdict};
use crate::history::{History, Outcome};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn of(history: &History) -> Counts {
        let mut c = Counts::default();
        for op in &history.operations {
            match op.outcome {
                Outcome::Ok => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Info => c.info += 1,
            }
        }
        c
    }
}

/// The fields the conventions name; the descriptive ones stay JSON values because writers
/// may record a seed as a number or text, nodes as a count or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub valid: Validity,
    #[serde(default)]
    pub seed: Value,
    #[serde(default)]
    pub system: Value,
    #[serde(default)]
    pub workload: Value,
    #[serde(default)]
    pub nemesis: Value,
    #[serde(default)]
    pub nodes: Value,
    #[serde(default)]
    pub started_at: Value,
    #[serde(default)]
    pub elapsed_s: Value,
    #[serde(default)]
    pub counts: Counts,
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RunResults {
    /// Results for verdicts with no run around them (e.g. `faultline check --html`).
    pub fn from_verdicts(history: &History, verdicts: &[Verdict]) -> RunResults {
        RunResults {
            valid: overall(verdicts),
            seed: Value::Null,
            system: Value::Null,
            workload: Value::Null,
            nemesis: Value::Null,
            nodes: Value::Null,
            started_at: Value::Null,
            elapsed_s: Value::Null,
            counts: Counts::of(history),
            verdicts: verdicts.to_vec(),
            extra: Map::new(),
        }
    }

    /// Reads `path`; a malformed field is named with the line of the file it is on.
    pub fn read(path: &Path) -> Result<RunResults, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
        // The common case parses once; only a failure pays for finding the field at fault.
        if let Ok(r) = serde_json::from_str::<RunResults>(&text) {
            return Ok(r);
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ReportError::malformed(path, e.line(), "json", e.to_string()))?;
        let Some(obj) = value.as_object() else {
            return Err(ReportError::malformed(
                path,
                1,
                "json",
                "must be a JSON object",
            ));
        };
        let line_of = |field: &str| {
            let needle = format!("\"{field}\"");
            text.lines()
                .position(|l| l.contains(&needle))
                .map_or(1, |i| i + 1)
        };
        if let Some(Value::Array(vs)) = obj.get("verdicts") {
            for (i, v) in vs.iter().enumerate() {
                if let Err(e) = serde_json::from_value::<Verdict>(v.clone()) {
                    return Err(ReportError::malformed(
                        path,
                        line_of("verdicts"),
                        format!("verdicts[{i}]"),
                        e.to_string(),
                    ));
                }
            }
        }
        serde_json::from_value(value.clone()).map_err(|e| {
            let msg = e.to_string();
            let field = ["valid", "counts", "verdicts"]
                .into_iter()
                .find(|f| msg.contains(f) || obj.get(*f).is_none())
                .unwrap_or("json");
            ReportError::malformed(path, line_of(field), field, msg)
        })
    }
}

/// The run's verdict: any invalid checker makes it invalid, else any unknown makes it unknown.
/// No verdicts at all is unknown: nothing was decided.
pub fn overall(verdicts: &[Verdict]) -> Validity {
    verdicts
        .iter()
        .map(|v| v.valid)
        .reduce(Validity::and)
        .unwrap_or(Validity::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_verdict_combines_checkers() {
        let v = |valid| Verdict {
            checker: "c".into(),
            valid,
            anomalies: vec![],
            explanation: String::new(),
            stats: Value::Null,
        };
        assert_eq!(overall(&[]), Validity::Unknown);
        assert_eq!(overall(&[v(Validity::Valid)]), Validity::Valid);
        assert_eq!(
            overall(&[
                v(Validity::Valid),
                v(Validity::Invalid),
                v(Validity::Unknown)
            ]),
            Validity::Invalid
        );
    }

    #[test]
    fn keeps_unknown_fields_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.json");
        std::fs::write(
            &p,
            r#"{"valid":true,"seed":7,"extra_field":[1],"verdicts":[]}"#,
        )
        .unwrap();
        let r = RunResults::read(&p).unwrap();
        assert_eq!(r.extra["extra_field"], serde_json::json!([1]));
        std::fs::write(
            &p,
            "{\"valid\":true,\n\"verdicts\":[{\"checker\":\"x\",\"valid\":3}]}",
        )
        .unwrap();
        let err = RunResults::read(&p).unwrap_err().to_string();
        assert!(err.contains("results.json:2: verdicts[0]:"), "{err}");
    }
}
