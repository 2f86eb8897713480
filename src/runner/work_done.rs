//! Whether a run did any work. A history with no acknowledged write, a key no op ever
//! succeeded on, or no leader in any status probe fits every model trivially; such a run is
//! `unknown`, with the reason and the tail of each node's stderr, never "N ops fit".

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::checker::{Validity, Verdict};
use crate::history::{History, Operation, Outcome, Process};

/// A key counts as idle only after this many ops, none of which succeeded.
pub const MIN_OPS_PER_KEY: usize = 10;

/// The checker name this verdict carries.
pub const CHECKER: &str = "work-done";

/// Why the run did no useful work; empty when it did.
pub fn reasons(history: &History) -> Vec<String> {
    let mut reasons = Vec::new();
    let ops = &history.operations;
    let ok = |o: &&Operation| o.outcome == Outcome::Ok;
    let writes_ok = ops
        .iter()
        .filter(ok)
        .filter(|o| writes(&o.f, &o.value))
        .count();
    // key -> (ops, successful ops)
    let mut keys: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for o in ops {
        if let Some(k) = &o.key {
            let n = keys.entry(k.as_str()).or_default();
            n.0 += 1;
            n.1 += usize::from(o.outcome == Outcome::Ok);
        }
    }
    if ops.is_empty() {
        reasons.push("no client op was invoked".to_string());
    } else if writes_ok == 0 {
        reasons.push(format!(
            "no write was acknowledged ({} ops invoked)",
            ops.len()
        ));
    }
    // A key handed out in the run's last moments may see one op; judge keys that saw some.
    let idle: Vec<&str> = keys
        .iter()
        .filter(|(_, (n, ok))| *n >= MIN_OPS_PER_KEY && *ok == 0)
        .map(|(k, _)| *k)
        .collect();
    if !idle.is_empty() && writes_ok > 0 {
        let shown: Vec<&str> = idle.iter().take(5).copied().collect();
        reasons.push(format!(
            "{} key(s) saw no successful op: {}{}",
            idle.len(),
            shown.join(", "),
            if idle.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    let probes: Vec<&Value> = history
        .annotations
        .iter()
        .map(|&i| &history.events[i])
        .filter(|e| e.process == Process::probe())
        .map(|e| &e.value)
        .collect();
    let leader = probes
        .iter()
        .any(|v| v.get("role").and_then(Value::as_str) == Some("leader"));
    if !probes.is_empty() && !leader {
        reasons.push(format!(
            "no node ever reported itself leader ({} status probes)",
            probes.len()
        ));
    }
    reasons
}

/// Whether a successful op of `f` with `value` changed state.
fn writes(f: &str, value: &Value) -> bool {
    match f {
        "write" | "cas" | "add" | "append" => true,
        "txn" => value.as_array().is_some_and(|ops| {
            ops.iter()
                .any(|m| m.get(0).and_then(Value::as_str) != Some("r"))
        }),
        _ => false,
    }
}

/// An `unknown` verdict naming the reasons and each node's last stderr lines (from
/// `nodes/<id>/stderr.log` under `run_dir`); None when the run did work.
pub fn verdict(history: &History, run_dir: &Path, nodes: &[String]) -> Option<Verdict> {
    let reasons = reasons(history);
    if reasons.is_empty() {
        return None;
    }
    let tails: BTreeMap<&str, String> = nodes
        .iter()
        .map(|id| {
            let dir = run_dir.join(super::store::NODES).join(id);
            (id.as_str(), crate::cluster::node::stderr_tail(&dir, 5))
        })
        .collect();
    let mut explanation = format!(
        "the run did no work, so no checker result means anything: {}.",
        reasons.join("; ")
    );
    for (id, tail) in &tails {
        if !tail.is_empty() {
            explanation.push_str(&format!("\n{id} stderr (last lines):\n{tail}"));
        }
    }
    Some(Verdict {
        checker: CHECKER.to_string(),
        valid: Validity::Unknown,
        anomalies: Vec::new(),
        explanation,
        stats: json!({"reasons": reasons, "stderr_tails": tails}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType};

    fn ev(
        index: u64,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
    ) -> Event {
        Event {
            request_id: None,
            index,
            time: index,
            process,
            kind,
            f: f.into(),
            key: key.map(str::to_string),
            value,
            node: None,
            error: None,
        }
    }

    fn history(events: Vec<Event>) -> History {
        History::from_events(events, Path::new("t.jsonl"), None).unwrap()
    }

    #[test]
    fn a_run_with_acknowledged_writes_and_a_leader_did_work() {
        let h = history(vec![
            ev(
                0,
                Process::probe(),
                EventType::Info,
                "status",
                None,
                json!({"role":"leader"}),
            ),
            ev(
                1,
                Process::Client(0),
                EventType::Invoke,
                "write",
                Some("k"),
                json!(1),
            ),
            ev(
                2,
                Process::Client(0),
                EventType::Ok,
                "write",
                Some("k"),
                json!(1),
            ),
        ]);
        assert_eq!(reasons(&h), Vec::<String>::new());
    }

    #[test]
    fn no_ack_no_leader_and_idle_keys_are_each_named() {
        let h = history(vec![
            ev(
                0,
                Process::probe(),
                EventType::Info,
                "status",
                None,
                json!({"role":"candidate"}),
            ),
            ev(
                1,
                Process::Client(0),
                EventType::Invoke,
                "write",
                Some("k"),
                json!(1),
            ),
            ev(
                2,
                Process::Client(0),
                EventType::Info,
                "write",
                Some("k"),
                json!(1),
            ),
        ]);
        assert_eq!(
            reasons(&h),
            [
                "no write was acknowledged (1 ops invoked)",
                "no node ever reported itself leader (1 status probes)"
            ]
        );
        let h = history(vec![
            ev(
                0,
                Process::Client(0),
                EventType::Invoke,
                "write",
                Some("a"),
                json!(1),
            ),
            ev(
                1,
                Process::Client(0),
                EventType::Ok,
                "write",
                Some("a"),
                json!(1),
            ),
        ]);
        let mut events = h.events.clone();
        for i in 0..MIN_OPS_PER_KEY as u64 {
            let (a, b) = (2 + 2 * i, 3 + 2 * i);
            events.push(ev(
                a,
                Process::Client(0),
                EventType::Invoke,
                "read",
                Some("b"),
                Value::Null,
            ));
            events.push(ev(
                b,
                Process::Client(0),
                EventType::Fail,
                "read",
                Some("b"),
                Value::Null,
            ));
        }
        let few = history(events[..4].to_vec());
        assert_eq!(
            reasons(&few),
            Vec::<String>::new(),
            "one failed op is not idleness"
        );
        let h = history(events);
        assert_eq!(reasons(&h), ["1 key(s) saw no successful op: b"]);
        let txn = json!([["r", "x", null]]);
        assert!(!writes("txn", &txn));
        assert!(writes("txn", &json!([["append", "x", 1]])));
    }
}
