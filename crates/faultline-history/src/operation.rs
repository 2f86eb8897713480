//! Pairs invocations with their completions, enforcing the history rules of DESIGN.md:
//! dense indexes, at most one op in flight per client process, a completion matches its
//! invoke, and a process whose op ended `info` is retired.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::compact::FxMap;
use super::error::HistoryError;
use super::event::{Event, EventType, Process};

/// How an operation ended, as far as the history knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened, between its invoke and its completion.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may take effect at any time after its invoke, or never. Also used
    /// for ops still in flight when the history ends.
    Info,
}

/// An invocation joined with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Dense position among the history's client operations, in invocation order.
    pub id: usize,
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// The value the client asked for (e.g. a write's value, a read's `null`).
    pub invoke_value: Value,
    /// The value the completion reported (e.g. what a read returned); for `info` and
    /// `fail`, the invoke's value.
    pub value: Value,
    pub outcome: Outcome,
    /// Event index of the invocation.
    pub call: u64,
    /// Event index of the completion; `None` if the op never completed.
    pub ret: Option<u64>,
    pub call_time: u64,
    pub ret_time: Option<u64>,
    pub node: Option<String>,
    pub error: Option<String>,
    /// The request id the client sent (from the invoke or the completion event).
    pub request_id: Option<String>,
}

/// A validated history: its events, its client operations, and the events of named
/// processes (nemesis, probe) kept aside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    pub operations: Vec<Operation>,
    /// Indexes into `events` of named-process events (faults, probes).
    pub annotations: Vec<usize>,
}

impl History {
    /// Validates `events` and pairs them. `file` names the input in errors; `lines[i]`
    /// is the 1-based input line of `events[i]` (pass `None` when events are one a line).
    pub fn from_events(
        events: Vec<Event>,
        file: &Path,
        lines: Option<&[usize]>,
    ) -> Result<History, HistoryError> {
        let line_of = |i: usize| lines.map_or(i + 1, |l| l[i]);
        // Client ops are at most half the events; reserving avoids regrowth copies.
        let mut operations: Vec<Operation> = Vec::with_capacity(events.len() / 2 + 1);
        let mut annotations = Vec::new();
        // client process -> index into `operations` of its op in flight
        let mut in_flight: FxMap<u64, usize> = FxMap::default();
        // client process -> line at which it was retired by an `info`
        let mut retired: FxMap<u64, usize> = FxMap::default();
        let mut last_time = 0u64;

        for (i, e) in events.iter().enumerate() {
            let line = line_of(i);
            let bad = |field: &str, msg: String| HistoryError::malformed(file, line, field, msg);
            if e.index != i as u64 {
                return Err(bad(
                    "index",
                    format!("expected {i} (indexes are dense from 0), found {}", e.index),
                ));
            }
            if e.time < last_time {
                return Err(bad(
                    "time",
                    format!(
                        "{} is earlier than the previous event's {last_time}",
                        e.time
                    ),
                ));
            }
            last_time = e.time;
            let p = match &e.process {
                Process::Named(_) => {
                    annotations.push(i);
                    continue;
                }
                Process::Client(p) => *p,
            };
            match e.kind {
                EventType::Invoke => {
                    if let Some(&open) = in_flight.get(&p) {
                        return Err(bad(
                            "process",
                            format!(
                                "process {p} invoked again while its op at index {} is in flight",
                                operations[open].call
                            ),
                        ));
                    }
                    if let Some(&at) = retired.get(&p) {
                        return Err(bad(
                            "process",
                            format!(
                                "process {p} was retired by an info completion at line {at}; \
                                 a client continues under a fresh process id"
                            ),
                        ));
                    }
                    in_flight.insert(p, operations.len());
                    operations.push(Operation {
                        id: operations.len(),
                        process: p,
                        f: e.f.clone(),
                        key: e.key.clone(),
                        invoke_value: e.value.clone(),
                        value: e.value.clone(),
                        outcome: Outcome::Info,
                        call: e.index,
                        ret: None,
                        call_time: e.time,
                        ret_time: None,
                        node: e.node.clone(),
                        error: None,
                        request_id: e.request_id.clone(),
                    });
                }
                kind => {
                    let Some(open) = in_flight.remove(&p) else {
                        return Err(bad(
                            "type",
                            format!(
                                "{} for process {p}, which has no op in flight",
                                kind.as_str()
                            ),
                        ));
                    };
                    let op = &mut operations[open];
                    if op.f != e.f {
                        return Err(bad(
                            "f",
                            format!("completion {:?} does not match its invoke {:?}", e.f, op.f),
                        ));
                    }
                    if op.key != e.key {
                        return Err(bad(
                            "key",
                            format!(
                                "completion key {:?} does not match its invoke key {:?}",
                                e.key, op.key
                            ),
                        ));
                    }
                    op.ret = Some(e.index);
                    op.ret_time = Some(e.time);
                    op.error = e.error.clone();
                    if e.request_id.is_some() {
                        op.request_id = e.request_id.clone();
                    }
                    if e.node.is_some() {
                        op.node = e.node.clone();
                    }
                    match kind {
                        EventType::Ok => {
                            op.outcome = Outcome::Ok;
                            op.value = e.value.clone();
                        }
                        EventType::Fail => op.outcome = Outcome::Fail,
                        _ => {
                            op.outcome = Outcome::Info;
                            retired.insert(p, line);
                        }
                    }
                }
            }
        }
        Ok(History {
            events,
            operations,
            annotations,
        })
    }

    /// Client operations grouped by key (ops without a key under `None`), each group in
    /// invocation order.
    pub fn by_key(&self) -> Vec<(Option<String>, Vec<&Operation>)> {
        let mut groups: Vec<(Option<String>, Vec<&Operation>)> = Vec::new();
        let mut at: HashMap<Option<&str>, usize> = HashMap::new();
        for op in &self.operations {
            let slot = *at.entry(op.key.as_deref()).or_insert_with(|| {
                groups.push((op.key.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(op);
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, process: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            request_id: None,
            index,
            time: index * 10,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    fn build(events: Vec<Event>) -> Result<History, HistoryError> {
        History::from_events(events, Path::new("h.jsonl"), None)
    }

    #[test]
    fn pairs_invokes_with_completions() {
        let h = build(vec![
            ev(0, 1, EventType::Invoke, "write", json!(3)),
            ev(1, 2, EventType::Invoke, "read", Value::Null),
            ev(2, 1, EventType::Ok, "write", json!(3)),
            ev(3, 2, EventType::Ok, "read", json!(3)),
            ev(4, 3, EventType::Invoke, "write", json!(4)),
        ])
        .unwrap();
        assert_eq!(h.operations.len(), 3);
        assert_eq!(h.operations[1].value, json!(3));
        assert_eq!(h.operations[1].invoke_value, Value::Null);
        assert_eq!(h.operations[2].outcome, Outcome::Info);
        assert_eq!(h.operations[2].ret, None);
    }

    #[test]
    fn rejects_two_ops_in_flight() {
        let err = build(vec![
            ev(0, 1, EventType::Invoke, "write", json!(3)),
            ev(1, 1, EventType::Invoke, "write", json!(4)),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.jsonl:2: process: process 1 invoked again while its op at index 0 is in flight"
        );
    }

    #[test]
    fn rejects_gaps_mismatches_and_retired_processes() {
        let gap = build(vec![ev(1, 1, EventType::Invoke, "read", Value::Null)]).unwrap_err();
        assert!(gap.to_string().contains(":1: index:"), "{gap}");
        let mismatch = build(vec![
            ev(0, 1, EventType::Invoke, "write", json!(3)),
            ev(1, 1, EventType::Ok, "read", json!(3)),
        ])
        .unwrap_err();
        assert!(mismatch.to_string().contains(":2: f:"), "{mismatch}");
        let orphan = build(vec![ev(0, 1, EventType::Ok, "read", json!(3))]).unwrap_err();
        assert!(orphan.to_string().contains("no op in flight"), "{orphan}");
        let reused = build(vec![
            ev(0, 1, EventType::Invoke, "write", json!(3)),
            ev(1, 1, EventType::Info, "write", json!(3)),
            ev(2, 1, EventType::Invoke, "write", json!(4)),
        ])
        .unwrap_err();
        assert!(reused.to_string().contains("retired"), "{reused}");
    }
}
