//! A failure's fingerprint: what was found, not where or when, so one bug groups the same
//! across seeds and nights. Each anomaly gives a signature `checker:kind[:shape]`; the shape
//! is the `f`s of the ops the witness could not place (linearizability) or nothing, since
//! keys, values, indexes and timings differ from run to run. A run's fingerprint is its
//! distinct signatures, sorted; its primary signature is the most telling one.

use std::collections::BTreeSet;

use crate::checker::witness::Witness;
use crate::checker::{Anomaly, Validity, Verdict};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Distinct signatures, most telling first (see `rank`), then by name.
    pub signatures: Vec<String>,
}

/// How much a signature says about the bug: diverged committed logs first, then two
/// leaders, then client-visible anomalies; lost writes last (they follow from the others).
fn rank(sig: &str) -> u8 {
    match sig {
        s if s.starts_with("split-brain/logs") => 0,
        s if s.starts_with("split-brain/probes") => 1,
        s if s.starts_with("linearizable") => 2,
        s if s.starts_with("elle") => 3,
        s if s.starts_with("split-brain/lost-writes") => 5,
        _ => 4,
    }
}

/// The shape of one anomaly's witness: the functions of the ops that cannot be placed.
fn shape(a: &Anomaly) -> Option<String> {
    let Some(Witness::Linearizability(l)) = Witness::of(a) else {
        return None;
    };
    let fs: BTreeSet<&str> = l.unplaceable.iter().map(|op| op.f.as_str()).collect();
    (!fs.is_empty()).then(|| fs.into_iter().collect::<Vec<_>>().join("+"))
}

impl Fingerprint {
    /// The fingerprint of a run's verdicts; empty when nothing was invalid.
    pub fn of(verdicts: &[Verdict]) -> Fingerprint {
        let mut set = BTreeSet::new();
        for v in verdicts.iter().filter(|v| v.valid == Validity::Invalid) {
            if v.anomalies.is_empty() {
                set.insert(v.checker.clone());
            }
            for a in &v.anomalies {
                let mut s = format!("{}:{}", v.checker, a.kind);
                if let Some(sh) = shape(a) {
                    s.push(':');
                    s.push_str(&sh);
                }
                set.insert(s);
            }
        }
        let mut signatures: Vec<String> = set.into_iter().collect();
        signatures.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        Fingerprint { signatures }
    }

    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }

    pub fn primary(&self) -> Option<&str> {
        self.signatures.first().map(String::as_str)
    }

    /// Eight hex digits (FNV-1a of the signatures), to group by at a glance.
    pub fn id(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut h: u32 = 0x811c_9dc5;
        for b in self.signatures.join("\n").bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{h:08x}")
    }

    /// How `other` (a replay, a rerun, a shrink candidate) compares with this one.
    pub fn compare(&self, other: &Fingerprint) -> Match {
        if self.is_empty() || other.is_empty() {
            return if self == other {
                Match::Same
            } else {
                Match::Different
            };
        }
        if self == other {
            Match::Same
        } else if self
            .primary()
            .is_some_and(|p| other.signatures.iter().any(|s| s == p))
        {
            Match::Primary
        } else {
            Match::Different
        }
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return write!(f, "(none)");
        }
        write!(f, "{} [{}]", self.id(), self.signatures.join(", "))
    }
}

/// `Fingerprint::compare`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    /// The same signatures.
    Same,
    /// Not the same set, but the original's primary signature is among them.
    Primary,
    Different,
}

impl Match {
    /// Counts as the same failure (what replay, rerun and shrink require).
    pub fn reproduces(self) -> bool {
        matches!(self, Match::Same | Match::Primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use serde_json::json;

    fn verdict(checker: &str, valid: Validity, anomalies: Vec<Anomaly>) -> Verdict {
        Verdict {
            checker: checker.into(),
            valid,
            anomalies,
            explanation: String::new(),
            stats: Value::Null,
        }
    }

    fn anomaly(kind: &str, key: &str, data: Value) -> Anomaly {
        Anomaly {
            kind: kind.into(),
            key: Some(key.into()),
            description: format!("something on {key}"),
            events: vec![1, 2],
            data,
        }
    }

    #[test]
    fn keys_values_and_order_do_not_matter() {
        let stale = |key: &str, v: i64| {
            anomaly(
                "nonlinearizable",
                key,
                json!({"witness": "linearizability", "model": "cas-register", "prefix": [],
                       "state": null, "unplaceable": [{"process": 0, "f": "read", "value": v, "call": 1}]}),
            )
        };
        let a = Fingerprint::of(&[
            verdict(
                "linearizable/cas-register",
                Validity::Invalid,
                vec![stale("1", 4), stale("7", 2)],
            ),
            verdict("split-brain/logs", Validity::Valid, vec![]),
        ]);
        let b = Fingerprint::of(&[verdict(
            "linearizable/cas-register",
            Validity::Invalid,
            vec![stale("3", 9)],
        )]);
        assert_eq!(a, b);
        assert_eq!(
            a.signatures,
            ["linearizable/cas-register:nonlinearizable:read"]
        );
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 8);
        assert!(Fingerprint::of(&[verdict("x", Validity::Valid, vec![])]).is_empty());
    }

    #[test]
    fn most_telling_signature_comes_first() {
        let f = Fingerprint::of(&[
            verdict(
                "split-brain/lost-writes",
                Validity::Invalid,
                vec![anomaly("lost-write", "1", Value::Null)],
            ),
            verdict(
                "split-brain/logs",
                Validity::Invalid,
                vec![anomaly("divergent-commit", "-", Value::Null)],
            ),
        ]);
        assert_eq!(f.primary(), Some("split-brain/logs:divergent-commit"));
        let logs_only = Fingerprint {
            signatures: vec!["split-brain/logs:divergent-commit".into()],
        };
        assert_eq!(f.compare(&logs_only), Match::Primary);
        assert_eq!(logs_only.compare(&f), Match::Primary);
        assert_eq!(f.compare(&f.clone()), Match::Same);
        assert_eq!(f.compare(&Fingerprint::default()), Match::Different);
        assert!(!Match::Different.reproduces());
    }
}
