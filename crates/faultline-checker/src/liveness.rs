//! `liveness`: while the system should be available, every op attempted on a key is followed
//! within T by some op on that key succeeding. "Should be available" means no fault is in
//! force (before the first fault, between faults, after the final heal) or the only faults in
//! force kill or pause a minority of the nodes, which a majority-based or primary-backup
//! system must ride out. Any other fault (partitions, loss, clocks, message faults, a majority
//! down) excuses every op whose T-window touches it. So an election that never converges is a
//! finding, not a silent pass, and a system that is merely slow for less than T is not.
//!
//! Keys rotate in most workloads, so a key's last ops may see no later success only because
//! the key was retired (ops that fail fast burn through a key's share in a moment): a stall on
//! a key counts when the key was still attempted in the second half of the window, or when no
//! op on any key succeeded in it.
//!
//! Faults are read from the history's nemesis events (`start-KIND` / `stop-KIND` with
//! `targets`; Jepsen's plain `start` / `stop` are unclassified, so excused); the node count
//! from every node the history names.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome, Process};

/// The default T: generous against elections and lease expiry on a loaded machine, short
/// against a run's length.
pub const DEFAULT_WITHIN_MS: u64 = 10_000;

/// At most this many stalls are listed.
const MAX_ANOMALIES: usize = 20;

/// A fault as the history records it, while in force.
#[derive(Clone, Debug)]
struct InForce {
    kind: String,
    targets: Vec<String>,
    start: u64,
}

/// When ops are excused.
struct Excused {
    /// Every op: faults other than a minority down, merged and sorted (ns).
    all: Vec<(u64, u64)>,
    /// Ops sent to a node: while that node is killed or paused (a client bound to a dead
    /// node cannot be served by anyone).
    down: BTreeMap<String, Vec<(u64, u64)>>,
    /// Minority kill/pause faults, judged.
    judged_faults: usize,
}

fn merge(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn excused_intervals(h: &History, nodes: usize, end: u64) -> Excused {
    let minority = nodes.saturating_sub(1) / 2;
    let excused = |f: &InForce| {
        !(matches!(f.kind.as_str(), "kill" | "pause")
            && nodes >= 3
            && !f.targets.is_empty()
            && f.targets.len() <= minority)
    };
    let mut open: Vec<InForce> = Vec::new();
    let mut spans = Vec::new();
    let mut down: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut judged = 0;
    let mut close = |f: InForce, at: u64, spans: &mut Vec<(u64, u64)>| {
        if matches!(f.kind.as_str(), "kill" | "pause") {
            for t in &f.targets {
                down.entry(t.clone()).or_default().push((f.start, at));
            }
        }
        if excused(&f) {
            spans.push((f.start, at));
        } else {
            judged += 1;
        }
    };
    for &i in &h.annotations {
        let e = &h.events[i];
        if e.process != Process::nemesis() {
            continue;
        }
        let (start, kind) = if let Some(k) = e.f.strip_prefix("start") {
            (true, k.trim_start_matches('-'))
        } else if let Some(k) = e.f.strip_prefix("stop") {
            (false, k.trim_start_matches('-'))
        } else {
            continue;
        };
        let targets = targets_of(&e.value);
        if start {
            open.push(InForce {
                kind: kind.to_string(),
                targets,
                start: e.time,
            });
        } else {
            let pos = open
                .iter()
                .position(|f| f.kind == kind && f.targets == targets)
                .or_else(|| open.iter().position(|f| f.kind == kind));
            if let Some(p) = pos {
                close(open.remove(p), e.time, &mut spans);
            }
        }
    }
    for f in open {
        close(f, end, &mut spans);
    }
    Excused {
        all: merge(spans),
        down: down.into_iter().map(|(n, v)| (n, merge(v))).collect(),
        judged_faults: judged,
    }
}

fn targets_of(v: &Value) -> Vec<String> {
    let mut t: Vec<String> = v
        .get("targets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

/// Every node the history names: ops' nodes, probes' ids, fault targets.
fn node_count(h: &History) -> usize {
    let mut nodes: BTreeSet<String> = h.operations.iter().filter_map(|o| o.node.clone()).collect();
    for &i in &h.annotations {
        let e = &h.events[i];
        if let Some(n) = &e.node {
            nodes.insert(n.clone());
        }
        if e.process == Process::nemesis() {
            nodes.extend(targets_of(&e.value));
        }
    }
    nodes.len()
}

fn touches(spans: &[(u64, u64)], from: u64, to: u64) -> bool {
    // First span ending at or after `from`: it touches if it starts by `to`.
    let i = spans.partition_point(|&(_, e)| e < from);
    spans.get(i).is_some_and(|&(s, _)| s <= to)
}

/// One key's stall: the ops attempted from `first` on, none followed by a success within T.
struct Stall<'a> {
    key: Option<&'a str>,
    first: &'a Operation,
    ops: usize,
    /// When the next op on the key succeeded, if one did.
    next_ok: Option<u64>,
}

/// Checks the history with T = `within_ms`.
pub fn check_within(h: &History, within_ms: u64) -> Verdict {
    let within = within_ms * 1_000_000;
    let end = h.events.iter().map(|e| e.time).max().unwrap_or(0);
    let nodes = node_count(h);
    let Excused {
        all: excused,
        down,
        judged_faults,
    } = excused_intervals(h, nodes, end);
    let mut by_key: BTreeMap<Option<&str>, (Vec<&Operation>, Vec<u64>)> = BTreeMap::new();
    let mut all_oks = Vec::new();
    for o in &h.operations {
        let k = by_key.entry(o.key.as_deref()).or_default();
        k.0.push(o);
        if o.outcome == Outcome::Ok
            && let Some(t) = o.ret_time
        {
            k.1.push(t);
            all_oks.push(t);
        }
    }
    all_oks.sort_unstable();
    let success_in = |oks: &[u64], from: u64, to: u64| {
        oks.get(oks.partition_point(|&t| t < from))
            .is_some_and(|&t| t <= to)
    };
    let (mut judged, mut stalls) = (0usize, Vec::new());
    for (key, (ops, mut oks)) in by_key {
        oks.sort_unstable();
        let calls: Vec<u64> = ops.iter().map(|o| o.call_time).collect();
        let mut current: Option<Stall> = None;
        for o in ops {
            let (from, to) = (o.call_time, o.call_time + within);
            let i = oks.partition_point(|&t| t < from);
            let next_ok = oks.get(i).copied();
            if next_ok.is_some_and(|t| t <= to) {
                judged += 1;
                continue;
            }
            // No success in time: a stall, unless a fault excuses it or the history ended. A
            // key the workload stopped using (keys rotate) proves nothing by itself: then only
            // a cluster where no key at all succeeded in the window has stalled.
            let node_down = o
                .node
                .as_ref()
                .and_then(|n| down.get(n))
                .is_some_and(|d| touches(d, from, to));
            if to > end || node_down || touches(&excused, from, to) {
                continue;
            }
            judged += 1;
            // Still in use: attempted again in the window's second half.
            let still_used = calls
                .get(calls.partition_point(|&t| t <= from + within / 2))
                .is_some_and(|&t| t <= to);
            if !still_used && success_in(&all_oks, from, to) {
                continue;
            }
            match &mut current {
                Some(s) if s.next_ok == next_ok => s.ops += 1,
                _ => {
                    if let Some(s) = current.take() {
                        stalls.push(s);
                    }
                    current = Some(Stall {
                        key,
                        first: o,
                        ops: 1,
                        next_ok,
                    });
                }
            }
        }
        stalls.extend(current);
    }
    let secs = |ns: u64| ns as f64 / 1e9;
    let anomalies: Vec<Anomaly> = stalls
        .iter()
        .take(MAX_ANOMALIES)
        .map(|s| {
            let from = s.first.call_time;
            let (until, how) = match s.next_ok {
                Some(t) => (
                    t,
                    format!("the next success came {:.1} s later", secs(t - from)),
                ),
                None => (
                    end,
                    "no op on it succeeded again before the history ended".into(),
                ),
            };
            Anomaly {
                kind: "stalled".into(),
                key: s.key.map(String::from),
                description: format!(
                    "{}: {} op(s) attempted from {:.3} s on, none followed by a success \
                     within {:.1} s while the cluster should have been available; {how}",
                    s.key
                        .map_or("the history".to_string(), |k| format!("key {k}")),
                    s.ops,
                    secs(from),
                    secs(within)
                ),
                events: vec![s.first.call],
                data: json!({"from_ns": from, "until_ns": until, "ops": s.ops,
                             "next_ok_ns": s.next_ok, "within_ms": within_ms}),
            }
        })
        .collect();
    // A cluster that never answered at all is a run that did no work (the harness's
    // `work-done` says why), not a finding about recovery.
    let valid = if all_oks.is_empty() {
        Validity::Unknown
    } else if !stalls.is_empty() {
        Validity::Invalid
    } else if judged == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let excused_ns: u64 = excused.iter().map(|(s, e)| e - s).sum();
    let explanation = match valid {
        Validity::Valid => format!(
            "{judged} ops attempted while the cluster should have been available: each was \
             followed within {:.1} s by a success on its key",
            secs(within)
        ),
        Validity::Unknown if all_oks.is_empty() => {
            "no op ever succeeded, so recovery cannot be judged".to_string()
        }
        Validity::Unknown => format!(
            "no op could be judged: every op's {:.1} s window touched a fault that excuses \
             unavailability, or the history ended first",
            secs(within)
        ),
        Validity::Invalid => format!("{} stall(s): {}", stalls.len(), anomalies[0].description),
    };
    Verdict {
        checker: "liveness".into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"within_ms": within_ms, "judged_ops": judged, "stalls": stalls.len(),
                      "nodes": nodes, "excused_s": secs(excused_ns),
                      "minority_faults_judged": judged_faults}),
    }
}

/// [`check_within`] with the default T.
pub fn check(h: &History) -> Verdict {
    check_within(h, DEFAULT_WITHIN_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::{Event, EventType};

    /// Client ops every 100 ms on key "k" from 0 to `until_s`; those invoked inside a
    /// `dead` span fail, others succeed 10 ms later. Plus the given nemesis events.
    fn history(until_s: f64, dead: &[(f64, f64)], faults: &[(f64, &str, &[&str])]) -> History {
        let mut evs: Vec<(u64, Event)> = Vec::new();
        for step in 0..=(until_s * 10.0).round() as u64 {
            let (t, p) = (step as f64 / 10.0, step);
            let failed = dead.iter().any(|&(a, b)| t >= a && t < b);
            let at = step * 100_000_000;
            let node = format!("n{}", p % 5 + 1);
            let mk = |time: u64, kind: EventType| Event {
                index: 0,
                time,
                process: Process::Client(p),
                kind,
                f: "read".into(),
                key: Some("k".into()),
                value: Value::Null,
                node: (kind != EventType::Invoke).then(|| node.clone()),
                error: None,
                request_id: None,
            };
            evs.push((at, mk(at, EventType::Invoke)));
            let done = if failed {
                EventType::Fail
            } else {
                EventType::Ok
            };
            evs.push((at + 10_000_000, mk(at + 10_000_000, done)));
        }
        for &(at, f, targets) in faults {
            let e = nemesis(0, at, f, targets);
            evs.push((e.time, e));
        }
        evs.sort_by_key(|(t, _)| *t);
        let events: Vec<Event> = evs
            .into_iter()
            .enumerate()
            .map(|(i, (_, mut e))| {
                e.index = i as u64;
                e
            })
            .collect();
        History::from_events(events, std::path::Path::new("t.jsonl"), None).unwrap()
    }

    fn nemesis(index: u64, time_s: f64, f: &str, targets: &[&str]) -> faultline_history::Event {
        faultline_history::Event {
            index,
            time: (time_s * 1e9) as u64,
            process: Process::nemesis(),
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value: json!({ "targets": targets }),
            node: None,
            error: None,
            request_id: None,
        }
    }

    /// Ops of `h` invoked in [from_s, to_s] whose completion names one of `nodes`.
    fn h_ops_on(h: &History, from_s: f64, to_s: f64, nodes: &BTreeSet<&str>) -> usize {
        h.operations
            .iter()
            .filter(|o| {
                let t = o.call_time as f64 / 1e9;
                t >= from_s - 1e-9 && t <= to_s + 1e-9
            })
            .filter(|o| o.node.as_deref().is_some_and(|n| nodes.contains(n)))
            .count()
    }

    const ALL: &[&str] = &["n1", "n2", "n3", "n4", "n5"];

    #[test]
    fn a_cluster_that_never_answered_is_unknown_not_a_stall() {
        let h = history(30.0, &[(0.0, 31.0)], &[]);
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Unknown, "{}", v.explanation);
    }

    #[test]
    fn a_cluster_that_keeps_answering_is_live() {
        let h = history(30.0, &[(5.0, 8.0)], &[]);
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        assert!(v.stats["judged_ops"].as_u64().unwrap() > 200);
    }

    #[test]
    fn no_success_for_longer_than_t_with_no_fault_is_a_stall() {
        let h = history(30.0, &[(5.0, 17.0)], &[]);
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1, "one stall episode");
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "stalled");
        assert_eq!(a.key.as_deref(), Some("k"));
        // The first op whose 5 s window holds no success is the one at 5.0 s; the next
        // success is the op invoked at 17.0 s.
        assert_eq!(a.data["from_ns"], 5_000_000_000u64);
        assert_eq!(a.data["next_ok_ns"], 17_010_000_000u64);
    }

    #[test]
    fn a_partition_excuses_unavailability_but_a_minority_kill_does_not() {
        let dead = [(5.0, 17.0)];
        let part = history(
            30.0,
            &dead,
            &[(4.0, "start-partition", ALL), (16.0, "stop-partition", ALL)],
        );
        assert_eq!(check_within(&part, 5_000).valid, Validity::Valid);
        let kill = |targets: &'static [&'static str]| {
            history(
                30.0,
                &dead,
                &[(4.0, "start-kill", targets), (16.0, "stop-kill", targets)],
            )
        };
        let v = check_within(&kill(&["n1", "n2"]), 5_000);
        assert_eq!(
            v.valid,
            Validity::Invalid,
            "two of five down: a majority is up"
        );
        assert_eq!(v.stats["minority_faults_judged"], 1);
        let v = check_within(&kill(&["n1", "n2", "n3"]), 5_000);
        assert_eq!(v.valid, Validity::Valid, "a majority down excuses it");
        // Ops sent to the killed nodes themselves are excused: only n3-n5's ops stall.
        let v = check_within(&kill(&["n1", "n2"]), 5_000);
        let ops = v.anomalies[0].data["ops"].as_u64().unwrap();
        let judged_nodes: BTreeSet<&str> = ["n3", "n4", "n5"].into();
        let stalled = h_ops_on(&kill(&["n1", "n2"]), 5.0, 12.0, &judged_nodes);
        assert_eq!(ops, stalled as u64);
    }

    #[test]
    fn recovery_after_the_final_heal_is_judged() {
        // Healed at 10 s, never available again: a stall.
        let h = history(
            30.0,
            &[(5.0, 31.0)],
            &[(4.0, "start-partition", ALL), (10.0, "stop-partition", ALL)],
        );
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Invalid);
        assert!(v.anomalies[0].data["next_ok_ns"].is_null());
        assert!(
            v.anomalies[0].description.contains("never")
                || v.anomalies[0].description.contains("no op")
        );
        // Healed 3 s before the end: no 5 s window fits, so nothing is judged there.
        let h = history(
            30.0,
            &[(5.0, 31.0)],
            &[(4.0, "start-partition", ALL), (27.0, "stop-partition", ALL)],
        );
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn a_retired_key_whose_last_op_failed_is_not_a_stall() {
        // Key "k" ends at 10 s with a failed op; "j" keeps succeeding until 30 s.
        let mut h = history(10.0, &[(10.0, 11.0)], &[]);
        let other = history(30.0, &[], &[]);
        let base = h.events.len() as u64;
        let mut events = h.events.clone();
        for e in &other.events {
            let mut e = e.clone();
            e.index += base;
            e.key = Some("j".into());
            if let Process::Client(p) = e.process {
                e.process = Process::Client(p + 1000);
            }
            events.push(e);
        }
        events.sort_by_key(|e| (e.time, e.index));
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        h = History::from_events(events, std::path::Path::new("t.jsonl"), None).unwrap();
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn an_unmatched_jepsen_start_excuses_the_rest() {
        let h = history(20.0, &[(5.0, 21.0)], &[(4.0, "start", &[])]);
        let v = check_within(&h, 5_000);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }
}
