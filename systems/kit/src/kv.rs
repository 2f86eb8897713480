//! The replicated key-value state machine: what committed commands do, deterministically.
//!
//! Also keeps, per applied entry, `(index, generation, id, request_id, took_effect)`: the node's `/log` (ground truth
//! for the harness's split-brain checks), and the outcome of each client request id it
//! applied, so a request delivered twice (forwarded, retried, duplicated on the wire) takes
//! effect once. Both are carried through snapshots.

use crate::replica::{Committed, Index};
use faultline_proto::LogEntry;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A client command ordered through the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Write { key: Value, value: Value },
    Cas { key: Value, from: Value, to: Value },
    Append { key: Value, value: Value },
    Txn { ops: Vec<Value> },
}

/// An op with the client's request id (`faultline_proto::REQUEST_ID`), as proposed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    #[serde(flatten)]
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Command {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("commands serialize")
    }
}

/// What applying a command produced. `Failed` had no effect (a definite failure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Ok(Value),
    Failed { error: String, status: u16 },
}

fn failed(error: &str, status: u16) -> Outcome {
    Outcome::Failed {
        error: error.to_string(),
        status,
    }
}

/// How many applied entries `/log` remembers.
pub const MAX_LOG_META: usize = 200_000;
/// How many request ids (with outcomes) the dedupe table remembers.
pub const MAX_REQUESTS: usize = 100_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kv {
    data: BTreeMap<String, Value>,
    meta: Vec<LogEntry>,
    applied: Index,
    /// Applied request ids with their outcomes, oldest first.
    #[serde(default)]
    requests: VecDeque<(String, Outcome)>,
    #[serde(skip)]
    seen: HashMap<String, Outcome>,
    /// Off only for a planted bug: a duplicated request is applied again.
    #[serde(skip, default = "yes")]
    dedupe: bool,
}

fn yes() -> bool {
    true
}

impl Default for Kv {
    fn default() -> Kv {
        Kv {
            data: BTreeMap::new(),
            meta: Vec::new(),
            applied: 0,
            requests: VecDeque::new(),
            seen: HashMap::new(),
            dedupe: true,
        }
    }
}

/// A key as the map stores it: strings as they are, numbers and booleans as their JSON text.
pub fn key_of(key: &Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("key must be a string or number, got {other}")),
    }
}

/// A transaction micro-op, validated before it is proposed.
#[derive(Clone, Debug, PartialEq)]
pub enum MicroOp {
    Read(Value),
    Write(Value, Value),
    Append(Value, Value),
}

/// Parses `[["r",k,null],["w",k,v],["append",k,v]]`, naming the offending element on error.
pub fn parse_txn(ops: &[Value]) -> Result<Vec<MicroOp>, String> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let arr = op
                .as_array()
                .filter(|a| a.len() == 3)
                .ok_or_else(|| format!("ops[{i}]: expected [f, key, value]"))?;
            key_of(&arr[1]).map_err(|e| format!("ops[{i}]: {e}"))?;
            match arr[0].as_str() {
                Some("r") => Ok(MicroOp::Read(arr[1].clone())),
                Some("w") => Ok(MicroOp::Write(arr[1].clone(), arr[2].clone())),
                Some("append") => Ok(MicroOp::Append(arr[1].clone(), arr[2].clone())),
                _ => Err(format!("ops[{i}]: f must be \"r\", \"w\" or \"append\"")),
            }
        })
        .collect()
}

fn appended(current: Option<&Value>, v: &Value) -> Option<Value> {
    match current {
        None | Some(Value::Null) => Some(Value::Array(vec![v.clone()])),
        Some(Value::Array(items)) => {
            let mut items = items.clone();
            items.push(v.clone());
            Some(Value::Array(items))
        }
        Some(_) => None,
    }
}

fn type_mismatch() -> Outcome {
    failed("type-mismatch", 409)
}

impl Kv {
    /// Switches request-id dedupe off (only for a planted bug).
    pub fn set_dedupe(&mut self, on: bool) {
        self.dedupe = on;
    }

    pub fn applied(&self) -> Index {
        self.applied
    }

    pub fn read(&self, key: &str) -> Value {
        self.data.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Committed entries from `from` on, as `/log` shows them.
    pub fn log_from(&self, from: Index) -> &[LogEntry] {
        let start = self.meta.partition_point(|m| m.index < from);
        &self.meta[start..]
    }

    /// Applies one committed entry; `Some(outcome)` for client commands.
    pub fn apply(&mut self, entry: &Committed) -> Option<Outcome> {
        if entry.index <= self.applied {
            return None;
        }
        self.applied = entry.index;
        if self.meta.len() >= MAX_LOG_META {
            // Bounded: `/log` keeps the most recent entries (the harness reads it per run).
            self.meta.drain(..MAX_LOG_META / 10);
        }
        let cmd = entry
            .command
            .as_ref()
            .map(|data| serde_json::from_value::<Command>(data.clone()));
        self.meta.push(LogEntry {
            index: entry.index,
            term: entry.generation,
            id: entry.id.clone(),
            request_id: match &cmd {
                Some(Ok(c)) => c.request_id.clone(),
                _ => None,
            },
            took_effect: None,
        });
        let (outcome, took_effect) = self.run_command(cmd?);
        if let Some(last) = self.meta.last_mut() {
            last.took_effect = Some(took_effect);
        }
        Some(outcome)
    }

    /// Runs a client command once per request id; the outcome, and whether this entry
    /// changed the state (a duplicate did not, whatever its first outcome was).
    fn run_command(&mut self, cmd: Result<Command, serde_json::Error>) -> (Outcome, bool) {
        let cmd = match cmd {
            Ok(c) => c,
            Err(_) => return (failed("malformed-command", 400), false),
        };
        if let Some(rid) = &cmd.request_id
            && self.dedupe
            && let Some(first) = self.seen.get(rid)
        {
            return (first.clone(), false);
        }
        let outcome = self.run(cmd.op);
        if let Some(rid) = cmd.request_id {
            self.remember(rid, outcome.clone());
        }
        let took_effect = matches!(outcome, Outcome::Ok(_));
        (outcome, took_effect)
    }

    fn remember(&mut self, rid: String, outcome: Outcome) {
        if self.requests.len() >= MAX_REQUESTS
            && let Some((old, _)) = self.requests.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(rid.clone(), outcome.clone());
        self.requests.push_back((rid, outcome));
    }

    fn run(&mut self, op: Op) -> Outcome {
        match op {
            Op::Write { key, value } => match key_of(&key) {
                Ok(k) => {
                    self.data.insert(k, value);
                    Outcome::Ok(json!({}))
                }
                Err(_) => type_mismatch(),
            },
            Op::Cas { key, from, to } => {
                let Ok(k) = key_of(&key) else {
                    return type_mismatch();
                };
                if self.data.get(&k).unwrap_or(&Value::Null) == &from {
                    self.data.insert(k, to);
                    Outcome::Ok(json!({}))
                } else {
                    failed("precondition-failed", 409)
                }
            }
            Op::Append { key, value } => {
                let Ok(k) = key_of(&key) else {
                    return type_mismatch();
                };
                match appended(self.data.get(&k), &value) {
                    Some(v) => {
                        self.data.insert(k, v);
                        Outcome::Ok(json!({}))
                    }
                    None => type_mismatch(),
                }
            }
            Op::Txn { ops } => self.run_txn(&ops),
        }
    }

    /// All-or-nothing: micro-ops run against an overlay that is merged only if all succeed.
    fn run_txn(&mut self, ops: &[Value]) -> Outcome {
        let Ok(micro) = parse_txn(ops) else {
            return failed("malformed-command", 400);
        };
        let mut overlay: BTreeMap<String, Value> = BTreeMap::new();
        let mut results = Vec::with_capacity(micro.len());
        for m in micro {
            match m {
                MicroOp::Read(k) => {
                    let key = key_of(&k).unwrap_or_default();
                    let v = overlay
                        .get(&key)
                        .or_else(|| self.data.get(&key))
                        .cloned()
                        .unwrap_or(Value::Null);
                    results.push(json!(["r", k, v]));
                }
                MicroOp::Write(k, v) => {
                    overlay.insert(key_of(&k).unwrap_or_default(), v.clone());
                    results.push(json!(["w", k, v]));
                }
                MicroOp::Append(k, v) => {
                    let key = key_of(&k).unwrap_or_default();
                    let current = overlay.get(&key).or_else(|| self.data.get(&key));
                    match appended(current, &v) {
                        Some(new) => {
                            overlay.insert(key, new);
                        }
                        None => return type_mismatch(),
                    }
                    results.push(json!(["append", k, v]));
                }
            }
        }
        self.data.extend(overlay);
        Outcome::Ok(json!({ "ops": results }))
    }

    pub fn snapshot(&self) -> Value {
        serde_json::to_value(self).expect("kv state serializes")
    }

    /// Restores a snapshot (dedupe stays as configured on `self`'s default: on).
    pub fn restore(data: Value) -> Result<Kv, serde_json::Error> {
        let mut kv: Kv = serde_json::from_value(data)?;
        kv.seen = kv.requests.iter().cloned().collect();
        Ok(kv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, op: Value) -> Committed {
        Committed {
            index,
            generation: 1,
            id: format!("c{index}"),
            command: Some(op),
        }
    }

    #[test]
    fn write_cas_append_and_failed_txn_leaves_no_trace() {
        let mut kv = Kv::default();
        let w = json!({"op":"write","key":"a","value":1});
        assert_eq!(kv.apply(&entry(1, w)), Some(Outcome::Ok(json!({}))));
        let bad_cas = json!({"op":"cas","key":"a","from":2,"to":3});
        assert_eq!(
            kv.apply(&entry(2, bad_cas)),
            Some(failed("precondition-failed", 409))
        );
        let cas = json!({"op":"cas","key":"a","from":1,"to":3});
        assert_eq!(kv.apply(&entry(3, cas)), Some(Outcome::Ok(json!({}))));
        assert_eq!(kv.read("a"), json!(3));
        // appending to a number aborts the whole txn, including the earlier append to "l"
        let txn = json!({"op":"txn","ops":[["append","l",1],["append","a",2]]});
        assert_eq!(kv.apply(&entry(4, txn)), Some(type_mismatch()));
        assert_eq!(kv.read("l"), Value::Null);
        let txn = json!({"op":"txn","ops":[["append","l",1],["r","l",null],["w",5,"x"]]});
        assert_eq!(
            kv.apply(&entry(5, txn)),
            Some(Outcome::Ok(
                json!({"ops":[["append","l",1],["r","l",[1]],["w",5,"x"]]})
            ))
        );
        assert_eq!(kv.read("5"), json!("x"));
        assert_eq!(kv.log_from(4).len(), 2);
        let restored = Kv::restore(kv.snapshot()).unwrap();
        assert_eq!(restored.read("l"), json!([1]));
        assert_eq!(restored.applied(), 5);
        // entries without a command (no-ops, config) only reach the log
        let noop = Committed {
            index: 6,
            generation: 2,
            id: "noop".into(),
            command: None,
        };
        assert_eq!(kv.apply(&noop), None);
        assert_eq!(
            kv.log_from(6)[0],
            LogEntry {
                index: 6,
                term: 2,
                id: "noop".into(),
                request_id: None,
                took_effect: None
            }
        );
    }

    #[test]
    fn a_request_id_applies_once_even_across_a_snapshot_unless_dedupe_is_off() {
        let append = json!({"op":"append","key":"l","value":1,"request_id":"p3-17"});
        let mut kv = Kv::default();
        assert_eq!(
            kv.apply(&entry(1, append.clone())),
            Some(Outcome::Ok(json!({})))
        );
        assert_eq!(
            kv.apply(&entry(2, append.clone())),
            Some(Outcome::Ok(json!({})))
        );
        assert_eq!(kv.read("l"), json!([1]));
        assert_eq!(kv.log_from(2)[0].request_id.as_deref(), Some("p3-17"));
        // the log tells which entry of a request took effect: the first, not its duplicate
        let effects: Vec<_> = kv.log_from(1).iter().map(|e| e.took_effect).collect();
        assert_eq!(effects, [Some(true), Some(false)]);
        // the first outcome is what a duplicate gets, even a failure
        let cas = json!({"op":"cas","key":"c","from":1,"to":2,"request_id":"p1-1"});
        assert_eq!(
            kv.apply(&entry(3, cas.clone())),
            Some(failed("precondition-failed", 409))
        );
        // a cas committed to the log but failing its precondition took no effect
        assert_eq!(kv.log_from(3)[0].took_effect, Some(false));
        kv.apply(&entry(4, json!({"op":"write","key":"c","value":1})));
        let mut kv = Kv::restore(kv.snapshot()).unwrap();
        assert_eq!(
            kv.apply(&entry(5, cas)),
            Some(failed("precondition-failed", 409))
        );
        assert_eq!(kv.read("c"), json!(1));
        assert_eq!(
            kv.apply(&entry(6, append.clone())),
            Some(Outcome::Ok(json!({})))
        );
        assert_eq!(kv.read("l"), json!([1]));
        kv.set_dedupe(false);
        kv.apply(&entry(7, append));
        assert_eq!(kv.read("l"), json!([1, 1]));
    }

    #[test]
    fn txn_parser_names_the_bad_element() {
        let err = parse_txn(&[json!(["r", "k", null]), json!(["x", "k", 1])]).unwrap_err();
        assert!(err.starts_with("ops[1]"), "{err}");
        assert!(parse_txn(&[json!(["r", {"a":1}, null])]).is_err());
    }
}
