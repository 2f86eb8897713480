//! Info ops pinned by the nodes' logs: an op whose client never heard (`info`) is resolved
//! from every node's committed `/log`, where the entry carries the client's request id and
//! whether applying it took effect (protocol v2). Fewer open ops: a faster, sharper check.
//!
//! - `ok`: some node logged the op's request id in an entry that took effect (the first such
//!   entry: a request retried under the same id is applied once, later copies took none).
//! - `fail`: the final logs are complete (every node's fetched after the cluster healed, dense
//!   from index 1, all equal, and no entry sampled during the run disagrees with them) and no
//!   entry with the id took effect: absent from all of them, or present only as entries that
//!   took no effect (a cas whose precondition failed at apply time, an aborted txn).
//! - otherwise the op stays `info`. Without `took_effect` (a v1 node) nothing is pinned `ok`.
//!
//! Only ops that go through the log are judged (write, cas, append, add, txn); a read never
//! is. An op pinned `ok` keeps the invoke value as its value, so only ops whose completion
//! the invoke fully determines are pinned `ok`: not a txn with reads (what it read is not
//! logged), which stays `info` unless it can be pinned `fail`.

use std::collections::{BTreeMap, HashMap, HashSet};

use faultline_history::{History, Outcome};
use serde::Serialize;

use crate::split_brain::{LogEntry, LogSamples};

/// What the pass is given: the nodes' final logs, what was sampled during the run, which
/// nodes the cluster has, and whether it was healed before the logs were fetched.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    pub logs: &'a BTreeMap<String, Vec<LogEntry>>,
    pub samples: &'a LogSamples,
    pub nodes: &'a [String],
    pub healed: bool,
}

/// What the pass did; `results.json`'s `pinning`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pinning {
    /// Ops of unknown outcome in the history (completed `info`, or never completed).
    pub indeterminate_total: usize,
    pub resolved_ok: usize,
    pub resolved_fail: usize,
    /// Why no op could be pinned `fail`, when the logs were not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

impl Pinning {
    pub fn resolved(&self) -> usize {
        self.resolved_ok + self.resolved_fail
    }

    /// "N of M indeterminate ops resolved by the logs (k ok, j fail)".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} of {} indeterminate ops resolved by the logs ({} ok, {} fail)",
            self.resolved(),
            self.indeterminate_total,
            self.resolved_ok,
            self.resolved_fail
        );
        if let Some(why) = &self.incomplete {
            s.push_str(&format!("; none pinned fail: {why}"));
        }
        s
    }
}

/// Ops whose effect reaches the log (in the native protocol every one of these is proposed).
fn logged(f: &str) -> bool {
    matches!(f, "write" | "cas" | "append" | "add" | "txn")
}

/// True when the completion value of `f` with `value` is the invoke's: no reads inside.
fn determined_by_invoke(f: &str, value: &serde_json::Value) -> bool {
    match f {
        "txn" => value.as_array().is_some_and(|ops| {
            ops.iter()
                .all(|m| m.get(0).and_then(serde_json::Value::as_str) != Some("r"))
        }),
        _ => true,
    }
}

/// `Ok(())` when the final logs are complete: every node's, dense from 1, all equal, and
/// no sampled entry disagreeing with them (which would mean a split brain overwrote it).
pub fn complete(ev: &Evidence) -> Result<(), String> {
    if !ev.healed {
        return Err("the cluster was not healed before the logs were fetched".into());
    }
    let Some(first) = ev.nodes.first() else {
        return Err("no nodes".into());
    };
    let Some(reference) = ev.logs.get(first) else {
        return Err(format!("no final log from {first}"));
    };
    if let Some(at) = reference
        .iter()
        .enumerate()
        .position(|(i, e)| e.index != i as u64 + 1)
    {
        return Err(format!(
            "{first}'s log is not dense from index 1 (position {at} holds index {})",
            reference[at].index
        ));
    }
    for n in &ev.nodes[1..] {
        let Some(log) = ev.logs.get(n) else {
            return Err(format!("no final log from {n}"));
        };
        if log.len() != reference.len() {
            return Err(format!(
                "{first} and {n} ended at different commit indexes ({} and {})",
                reference.len(),
                log.len()
            ));
        }
        if let Some(i) = log.iter().zip(reference).position(|(a, b)| a != b) {
            return Err(format!(
                "{first} and {n} differ at index {}",
                reference[i].index
            ));
        }
    }
    for s in &ev.samples.sightings {
        let same = s
            .entry
            .index
            .checked_sub(1)
            .and_then(|i| reference.get(i as usize))
            .is_some_and(|e| e.id == s.entry.id && e.term == s.entry.term);
        if !same {
            return Err(format!(
                "{} committed entry {} at index {} during the run, which the final logs do not hold",
                s.node, s.entry.id, s.entry.index
            ));
        }
    }
    Ok(())
}

/// Per request id: whether an entry with it took effect (`Some(true)`), only entries that
/// did not (`Some(false)`), or some entry does not say (`None`).
fn effects<'a>(ev: &Evidence<'a>) -> HashMap<&'a str, Option<bool>> {
    let mut out: HashMap<&str, Option<bool>> = HashMap::new();
    let entries = ev
        .logs
        .values()
        .flatten()
        .chain(ev.samples.sightings.iter().map(|s| &s.entry));
    for e in entries {
        let Some(rid) = e.request_id.as_deref() else {
            continue;
        };
        let slot = out.entry(rid).or_insert(Some(false));
        *slot = match (*slot, e.took_effect) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (None, _) | (_, None) => None,
            (Some(false), Some(false)) => Some(false),
        };
    }
    out
}

/// Resolves what the logs tell of `history`'s info ops; returns the resolved history and
/// what was done. The events stay as recorded: only the operations change.
///
/// An op pinned `ok` gets no completion (`ret`/`ret_time` None): it took effect at some
/// time after its invoke, with no upper bound. Its place in the log would bound it (a
/// later entry acknowledged to its client was applied after it), but only if the system
/// applies in log order and answers after applying, which is what is being tested; so the
/// window stays open, which is sound whatever the system did.
pub fn pin(history: &History, ev: &Evidence) -> (History, Pinning) {
    let mut pinning = Pinning {
        indeterminate_total: history
            .operations
            .iter()
            .filter(|o| o.outcome == Outcome::Info)
            .count(),
        incomplete: complete(ev).err(),
        ..Pinning::default()
    };
    let effects = effects(ev);
    // An id on two ops cannot say which one the log means: neither is pinned.
    let mut seen = HashSet::new();
    let shared: HashSet<&str> = history
        .operations
        .iter()
        .filter_map(|o| o.request_id.as_deref())
        .filter(|r| !seen.insert(*r))
        .collect();
    let mut out = history.clone();
    for op in &mut out.operations {
        if op.outcome != Outcome::Info || !logged(&op.f) {
            continue;
        }
        let Some(rid) = op.request_id.as_deref() else {
            continue;
        };
        if shared.contains(rid) {
            continue;
        }
        let resolved = match effects.get(rid) {
            Some(Some(true)) if determined_by_invoke(&op.f, &op.invoke_value) => Outcome::Ok,
            Some(Some(true)) | Some(None) => continue,
            Some(Some(false)) | None if pinning.incomplete.is_none() => Outcome::Fail,
            Some(Some(false)) | None => continue,
        };
        op.outcome = resolved;
        op.value = op.invoke_value.clone();
        if resolved == Outcome::Ok {
            op.ret = None;
            op.ret_time = None;
            pinning.resolved_ok += 1;
        } else {
            pinning.resolved_fail += 1;
        }
    }
    (out, pinning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use crate::linearizable::{self, Model};
    use crate::split_brain::Sighting;
    use faultline_history::testkit::{history_of, push_client};
    use faultline_history::{Event, EventType};
    use serde_json::{Value, json};

    /// Ops `(process, f, value, completion)`, invoked and completed in turn; each completion
    /// carries the request id `r<process>`.
    fn hist(ops: &[(u64, &str, Value, EventType)]) -> History {
        let mut events: Vec<Event> = Vec::new();
        for (p, f, v, kind) in ops {
            push_client(&mut events, *p, EventType::Invoke, f, Some("k"), v.clone());
            let i = push_client(&mut events, *p, *kind, f, Some("k"), v.clone());
            events[i as usize].request_id = Some(format!("r{p}"));
        }
        history_of(events)
    }

    fn entry(index: u64, rid: Option<&str>, took: Option<bool>) -> LogEntry {
        LogEntry {
            index,
            term: 1,
            id: format!("e{index}"),
            request_id: rid.map(String::from),
            took_effect: took,
        }
    }

    /// The same log on n1..n3.
    fn same_logs(log: Vec<LogEntry>) -> BTreeMap<String, Vec<LogEntry>> {
        ["n1", "n2", "n3"]
            .iter()
            .map(|n| (n.to_string(), log.clone()))
            .collect()
    }

    fn nodes() -> Vec<String> {
        vec!["n1".into(), "n2".into(), "n3".into()]
    }

    fn run(
        h: &History,
        logs: &BTreeMap<String, Vec<LogEntry>>,
        samples: &LogSamples,
    ) -> (History, Pinning) {
        let nodes = nodes();
        pin(
            h,
            &Evidence {
                logs,
                samples,
                nodes: &nodes,
                healed: true,
            },
        )
    }

    fn outcomes(h: &History) -> Vec<Outcome> {
        h.operations.iter().map(|o| o.outcome).collect()
    }

    #[test]
    fn committed_ops_become_ok_absent_ones_fail_reads_stay() {
        use EventType::*;
        let h = hist(&[
            (1, "write", json!(1), Info),
            (2, "write", json!(2), Info),
            (3, "cas", json!([1, 3]), Info),
            (4, "read", Value::Null, Info),
            (5, "write", json!(5), Ok),
        ]);
        let logs = same_logs(vec![
            entry(1, None, None),
            entry(2, Some("r1"), Some(true)),
            entry(3, Some("r5"), Some(true)),
        ]);
        let (p, s) = run(&h, &logs, &LogSamples::default());
        assert_eq!(
            outcomes(&p),
            [
                Outcome::Ok,
                Outcome::Fail,
                Outcome::Fail,
                Outcome::Info,
                Outcome::Ok
            ]
        );
        assert_eq!(
            s,
            Pinning {
                indeterminate_total: 4,
                resolved_ok: 1,
                resolved_fail: 2,
                incomplete: None
            }
        );
        assert_eq!(
            s.summary(),
            "3 of 4 indeterminate ops resolved by the logs (1 ok, 2 fail)"
        );
        // ok with no upper bound: the window stays [invoke, end of history)
        assert_eq!(
            (p.operations[0].ret, p.operations[0].ret_time),
            (None, None)
        );
        assert_eq!(p.operations[0].value, json!(1));
        assert_eq!(p.events, h.events, "the record is untouched");
    }

    #[test]
    fn a_retried_request_took_effect_at_its_first_copy_and_a_failed_cas_did_not() {
        use EventType::*;
        let h = hist(&[
            (1, "write", json!(1), Info),
            (2, "cas", json!([0, 2]), Info),
            (3, "cas", json!([1, 3]), Info),
        ]);
        let logs = same_logs(vec![
            entry(1, Some("r1"), Some(true)),
            entry(2, Some("r1"), Some(false)),
            // committed, but its precondition failed when applied; and its retry too
            entry(3, Some("r2"), Some(false)),
            entry(4, Some("r2"), Some(false)),
            entry(5, Some("r3"), Some(true)),
        ]);
        let (p, s) = run(&h, &logs, &LogSamples::default());
        assert_eq!(outcomes(&p), [Outcome::Ok, Outcome::Fail, Outcome::Ok]);
        assert_eq!((s.resolved_ok, s.resolved_fail), (2, 1));
    }

    #[test]
    fn incomplete_or_split_logs_pin_nothing_fail() {
        use EventType::*;
        let h = hist(&[(1, "write", json!(1), Info), (2, "write", json!(2), Info)]);
        let log = vec![entry(1, Some("r1"), Some(true))];
        let mut short = same_logs(log.clone());
        short.remove("n3");
        let (p, s) = run(&h, &short, &LogSamples::default());
        assert_eq!(outcomes(&p), [Outcome::Ok, Outcome::Info]);
        assert_eq!(s.incomplete.as_deref(), Some("no final log from n3"));

        let mut behind = same_logs(vec![log[0].clone(), entry(2, None, None)]);
        behind.insert("n2".into(), log.clone());
        let (_, s) = run(&h, &behind, &LogSamples::default());
        assert_eq!(
            s.incomplete.as_deref(),
            Some("n1 and n2 ended at different commit indexes (2 and 1)")
        );

        let gap = same_logs(vec![entry(2, Some("r1"), Some(true))]);
        let (_, s) = run(&h, &gap, &LogSamples::default());
        assert!(s.incomplete.unwrap().contains("not dense"));

        // an entry a node committed during the run and lost by the end: a split brain
        let samples = LogSamples {
            sightings: vec![Sighting {
                node: "n2".into(),
                entry: entry(1, Some("r2"), Some(true)),
                at_ns: 5,
            }],
            capped_at_ns: None,
        };
        let mut other = log.clone();
        other[0].id = "x".into();
        let (p, s) = run(&h, &same_logs(other), &samples);
        assert_eq!(
            s.incomplete.as_deref(),
            Some(
                "n2 committed entry e1 at index 1 during the run, which the final logs do not hold"
            )
        );
        // ...but it did take effect on n2: both writes are ok
        assert_eq!(outcomes(&p), [Outcome::Ok, Outcome::Ok]);

        let nodes = nodes();
        let unhealed = Evidence {
            logs: &same_logs(log),
            samples: &LogSamples::default(),
            nodes: &nodes,
            healed: false,
        };
        let (p, s) = pin(&h, &unhealed);
        assert_eq!(outcomes(&p), [Outcome::Ok, Outcome::Info]);
        assert_eq!(s.resolved(), 1);
    }

    #[test]
    fn without_took_effect_or_with_reads_inside_nothing_is_pinned_ok() {
        use EventType::*;
        let h = hist(&[
            (1, "write", json!(1), Info),
            (
                2,
                "txn",
                json!([["append", "k", 1], ["r", "k", null]]),
                Info,
            ),
            (3, "txn", json!([["append", "k", 2]]), Info),
            (4, "txn", json!([["r", "k", null]]), Info),
        ]);
        let logs = same_logs(vec![
            entry(1, Some("r1"), None),
            entry(2, Some("r2"), Some(true)),
            entry(3, Some("r3"), Some(true)),
        ]);
        let (p, s) = run(&h, &logs, &LogSamples::default());
        // r1: a v1 entry cannot say; r2 read something unlogged; r4 never committed
        assert_eq!(
            outcomes(&p),
            [Outcome::Info, Outcome::Info, Outcome::Ok, Outcome::Fail]
        );
        assert_eq!((s.resolved_ok, s.resolved_fail), (1, 1));
    }

    #[test]
    fn an_id_on_two_ops_pins_neither() {
        let mut events: Vec<Event> = Vec::new();
        for p in [1, 2] {
            push_client(&mut events, p, EventType::Invoke, "write", None, json!(p));
            let i = push_client(&mut events, p, EventType::Info, "write", None, json!(p));
            events[i as usize].request_id = Some("same".into());
        }
        let h = history_of(events);
        let logs = same_logs(vec![entry(1, Some("same"), Some(true))]);
        let (p, s) = run(&h, &logs, &LogSamples::default());
        assert_eq!(outcomes(&p), [Outcome::Info, Outcome::Info]);
        assert_eq!(s.resolved(), 0);
    }

    #[test]
    fn a_write_the_logs_never_committed_cannot_explain_a_read() {
        use EventType::*;
        // the info write of 3 is the only way to explain the read of 3
        let h = hist(&[(1, "write", json!(3), Info), (2, "read", json!(3), Ok)]);
        let o = linearizable::Options::new(Model::CasRegister);
        assert_eq!(linearizable::check_with(&h, &o).valid, Validity::Valid);
        let (p, s) = run(
            &h,
            &same_logs(vec![entry(1, None, None)]),
            &LogSamples::default(),
        );
        assert_eq!(s.resolved_fail, 1);
        assert_eq!(linearizable::check_with(&p, &o).valid, Validity::Invalid);
        // committed: pinned ok, and the read is explained
        let logs = same_logs(vec![entry(1, Some("r1"), Some(true))]);
        let (p, _) = run(&h, &logs, &LogSamples::default());
        assert_eq!(linearizable::check_with(&p, &o).valid, Validity::Valid);
    }

    #[test]
    fn an_op_pinned_ok_may_still_take_effect_after_its_client_gave_up() {
        use EventType::*;
        // p1's write of 1 times out; p2 writes 2 and reads 1 afterwards: only valid if the
        // write of 1 took effect after p2's write, i.e. after p1 gave up (its window is open)
        let h = hist(&[
            (1, "write", json!(1), Info),
            (2, "write", json!(2), Ok),
            (3, "read", json!(1), Ok),
        ]);
        let logs = same_logs(vec![
            entry(1, Some("r2"), Some(true)),
            entry(2, Some("r1"), Some(true)),
        ]);
        let (p, s) = run(&h, &logs, &LogSamples::default());
        assert_eq!(s.resolved_ok, 1);
        let o = linearizable::Options::new(Model::CasRegister);
        assert_eq!(linearizable::check_with(&p, &o).valid, Validity::Valid);
    }
}
