//! The checkers a workload names, run on a finished history.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::checker::elle::{self, ElleModel, ElleOptions};
use crate::checker::linearizable::{self, Model};
use crate::checker::{Budget, Validity, Verdict};
use crate::history::History;
use crate::workload::{CheckerName, WorkloadSpec};

/// Runs every checker `spec` names, each within `time_limit`. `logs` holds each node's
/// final `/log` (systems that have one).
pub fn check_run(
    history: &History,
    spec: &WorkloadSpec,
    logs: &BTreeMap<String, Value>,
    time_limit: Duration,
) -> Vec<Verdict> {
    let budget = Budget {
        time_limit: Some(time_limit),
        memory_limit_bytes: None,
    };
    spec.checkers
        .iter()
        .map(|c| match c {
            CheckerName::Linearizable => {
                let model: Model = match spec.model.parse() {
                    Ok(m) => m,
                    Err(e) => return unavailable(c, &e),
                };
                let mut o = linearizable::Options::new(model);
                o.budget = budget.clone();
                o.all_keys = true;
                linearizable::check(history, &o)
            }
            CheckerName::Elle => {
                let mut o = ElleOptions::new(ElleModel::ListAppend);
                o.budget = budget.clone();
                elle::check(history, &o)
            }
            other => {
                let _ = logs;
                unavailable(other, "this checker is not in this build")
            }
        })
        .collect()
}

fn unavailable(c: &CheckerName, why: &str) -> Verdict {
    Verdict {
        checker: format!("{c:?}").to_lowercase(),
        valid: Validity::Unknown,
        anomalies: vec![],
        explanation: why.to_string(),
        stats: json!({}),
    }
}
