//! The checkers a workload names, run on a finished history.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::checker::pin::{self, Evidence, Pinning};
use crate::checker::registry;
use crate::checker::split_brain::{self, LogEntry, LogSamples};
use crate::checker::weak;
use crate::checker::{Budget, Validity, Verdict};
use crate::history::{History, Outcome};
use crate::workload::{CheckerName, WorkloadSpec};

/// Runs every checker `spec` names, each within `time_limit`. `logs` holds each node's
/// final `/log` (systems that have one), `samples` the entries sampled during the run;
/// `probes` says how the system's leadership is judged.
pub fn check_run(
    history: &History,
    spec: &WorkloadSpec,
    logs: &BTreeMap<String, Value>,
    samples: &LogSamples,
    time_limit: Duration,
    probes: &split_brain::ProbeOptions,
) -> Vec<Verdict> {
    let budget = Budget {
        time_limit: Some(time_limit),
        memory_limit_bytes: None,
    };
    let settings = registry::Settings {
        budget,
        // A run's verdict covers every key: the report shows each one that failed.
        all_keys: true,
        ..Default::default()
    };
    spec.checkers
        .iter()
        .flat_map(|c| match c {
            CheckerName::SplitBrain => {
                let mut v = vec![split_brain::check_probes_with(history, probes)];
                // Only systems whose status reports leases are judged for overlapping ones.
                let leases = split_brain::lease_overlap::check(history);
                if leases.valid != Validity::Unknown {
                    v.push(leases);
                }
                if !logs.is_empty() || !samples.sightings.is_empty() {
                    match parse_logs(logs) {
                        Ok(l) => {
                            v.push(split_brain::check_logs_and_samples(&l, samples));
                            // The fencing token, judged on the same logs: a node's storage
                            // never accepts a generation below one it accepted before.
                            if !l.is_empty() {
                                v.push(crate::checker::fencing::check(&l));
                            }
                        }
                        Err(e) => v.push(unavailable(c, &e)),
                    }
                }
                v
            }
            CheckerName::Convergence => vec![match parse_dumps(logs) {
                Ok(d) => weak::convergence::check(&d),
                Err(e) => unavailable(c, &e),
            }],
            CheckerName::Linearizable
                if !registry::find(&spec.model).is_some_and(registry::Entry::is_linearizable) =>
            {
                vec![unavailable(
                    c,
                    &format!("{:?} is not a linearizability model", spec.model),
                )]
            }
            // The rest judge the history alone: the registry's.
            _ => vec![
                registry::check(history, registry_name(c, spec), &settings)
                    .unwrap_or_else(|e| unavailable(c, &e.to_string())),
            ],
        })
        // Every run is judged for liveness: an election that never converges is a finding.
        // A run with nothing to judge (all of it under faults, or no op ever succeeded, which
        // `work-done` reports) leaves it out rather than making the whole run unknown.
        .chain(
            (spec.liveness_within_s > 0.0)
                .then(|| {
                    crate::checker::liveness::check_within(
                        history,
                        (spec.liveness_within_s * 1000.0) as u64,
                    )
                })
                .filter(|v| v.valid != Validity::Unknown),
        )
        .collect()
}

/// The registry checker a workload's checker name stands for.
fn registry_name<'a>(c: &CheckerName, spec: &'a WorkloadSpec) -> &'a str {
    match c {
        CheckerName::Linearizable => &spec.model,
        CheckerName::Elle => "list-append",
        CheckerName::Set => "set-elements",
        CheckerName::LostWrites => "lost-writes",
        CheckerName::ReadAfterWrite => "read-after-write",
        CheckerName::MonotonicReads => "monotonic-reads",
        CheckerName::SiblingLostWrites => "sibling-lost-writes",
        CheckerName::Staleness => "staleness",
        CheckerName::SplitBrain | CheckerName::Convergence => {
            unreachable!("judged on the nodes' logs, not by the registry")
        }
    }
}

/// results.json's field saying what pinning info ops by the logs did (`enabled`, the counts
/// of `checker::pin::Pinning`, `summary`).
pub const PINNING: &str = "pinning";

/// `history` with the info ops the nodes' logs resolve (`checker::pin`), and what was done;
/// or why nothing could be judged (etcd serves no `/log`; Dynamo's is a replica dump).
/// `nodes` are the cluster's node ids; `healed`: faults were healed before the final logs
/// were fetched.
pub fn pin_info(
    history: &History,
    logs: &BTreeMap<String, Value>,
    samples: &LogSamples,
    nodes: &[String],
    healed: bool,
) -> Result<(History, Pinning), String> {
    if logs.is_empty() {
        return Err("no node served a committed log".into());
    }
    if !history
        .operations
        .iter()
        .any(|o| o.outcome == Outcome::Info)
    {
        // Nothing to resolve: spare reading the logs.
        return Ok((history.clone(), Pinning::default()));
    }
    let logs = parse_logs(logs).map_err(|e| format!("the logs are not slot logs ({e})"))?;
    Ok(pin::pin(
        history,
        &Evidence {
            logs: &logs,
            samples,
            nodes,
            healed,
        },
    ))
}

/// Why pinning was not even tried: the user said so.
pub const PIN_OFF: &str = "off (--no-pin-info)";

/// The results.json `pinning` value: what was done, or why nothing was.
pub fn pinning_field(p: Result<&Pinning, &str>) -> Value {
    match p {
        Err(why) => json!({"enabled": false, "reason": why,
                           "summary": format!("no info op resolved by the logs: {why}")}),
        Ok(p) => {
            let mut v = json!(p);
            v["enabled"] = json!(true);
            v["summary"] = json!(p.summary());
            v
        }
    }
}

/// The pinning a stored run directory allows, given its final `logs` and `samples`: its
/// nodes from results.json, healed when the run finished and recorded no healing trouble.
pub fn pin_run_dir(
    history: &History,
    dir: &std::path::Path,
    logs: &BTreeMap<String, Value>,
    samples: &LogSamples,
) -> Result<(History, Pinning), String> {
    let results: Value = std::fs::read_to_string(dir.join(super::store::RESULTS))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let nodes: Vec<String> = match results["nodes"].as_array() {
        Some(n) => n
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        None => logs.keys().cloned().collect(),
    };
    let healed = results.is_object()
        && results.get("unfinished").is_none()
        && !results["teardown_errors"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e.as_str().is_some_and(|e| e.starts_with("heal")))
        });
    pin_info(history, logs, samples, &nodes, healed)
}

/// Each node's final `/log` in the Dynamo shape (its `/replica/dump` answers: one object per
/// key it holds); a malformed one is named.
fn parse_dumps(
    logs: &BTreeMap<String, Value>,
) -> Result<Vec<weak::convergence::ReplicaDump>, String> {
    let mut out = Vec::new();
    for (node, v) in logs {
        let d: Vec<weak::convergence::ReplicaDump> = serde_json::from_value(v.clone())
            .map_err(|e| format!("nodes/{node}/log.json is not a replica dump: {e}"))?;
        out.extend(d);
    }
    Ok(out)
}

/// Each node's `/log` body as entries; a malformed one is named.
fn parse_logs(logs: &BTreeMap<String, Value>) -> Result<BTreeMap<String, Vec<LogEntry>>, String> {
    logs.iter()
        .map(|(node, v)| {
            // From the borrowed value: a run's logs are large, a clone of them is not free.
            <Vec<LogEntry> as serde::Deserialize>::deserialize(v)
                .map(|l| (node.clone(), l))
                .map_err(|e| format!("nodes/{node}/log.json: {e}"))
        })
        .collect()
}

/// A checker that could not run on this input: unknown, with the reason.
fn unavailable(c: &CheckerName, why: &str) -> Verdict {
    Verdict {
        checker: format!("{c:?}").to_lowercase(),
        valid: Validity::Unknown,
        anomalies: vec![],
        explanation: why.to_string(),
        stats: json!({}),
    }
}
