//! The checkers a workload names, run on a finished history.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::checker::{Validity, Verdict};
use crate::history::History;
use crate::workload::{CheckerName, WorkloadSpec};

/// Runs every checker `spec` names. `logs` holds each node's final `/log` (native systems).
pub fn check_run(
    history: &History,
    spec: &WorkloadSpec,
    logs: &BTreeMap<String, Value>,
    time_limit: Duration,
) -> Vec<Verdict> {
    let _ = (history, logs, time_limit);
    spec.checkers
        .iter()
        .map(|c| Verdict {
            checker: format!("{c:?}"),
            valid: Validity::Unknown,
            anomalies: vec![],
            explanation: "checker not merged yet".into(),
            stats: json!({}),
        })
        .collect::<Vec<_>>()
        .into_iter()
        .filter(|_| !matches!(CheckerName::Set, CheckerName::Elle))
        .collect()
}
