//! The replicated key-value state machine: what committed entries do, deterministically.
//!
//! Also keeps, per applied entry, `(index, term, id)`: the node's `/log` (ground truth for the
//! harness's split-brain checks), carried through snapshots.

use crate::core::{Entry, Index, Payload, Term};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A command proposed through the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Write { key: Value, value: Value },
    Cas { key: Value, from: Value, to: Value },
    Append { key: Value, value: Value },
    Txn { ops: Vec<Value> },
}

/// What applying a command produced. `Failed` had no effect (a definite failure).
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ok(Value),
    Failed { error: &'static str, status: u16 },
}

/// How many applied entries `/log` remembers.
pub const MAX_LOG_META: usize = 200_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogMeta {
    pub index: Index,
    pub term: Term,
    pub id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Kv {
    data: BTreeMap<String, Value>,
    meta: Vec<LogMeta>,
    applied: Index,
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

const TYPE_MISMATCH: Outcome = Outcome::Failed {
    error: "type-mismatch",
    status: 409,
};

impl Kv {
    pub fn applied(&self) -> Index {
        self.applied
    }

    pub fn read(&self, key: &str) -> Value {
        self.data.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Committed entries from `from` on, as `/log` shows them.
    pub fn log_from(&self, from: Index) -> &[LogMeta] {
        let start = self.meta.partition_point(|m| m.index < from);
        &self.meta[start..]
    }

    /// Applies one committed entry; `Some(outcome)` for client commands.
    pub fn apply(&mut self, entry: &Entry) -> Option<Outcome> {
        if entry.index <= self.applied {
            return None;
        }
        self.applied = entry.index;
        if self.meta.len() >= MAX_LOG_META {
            // Bounded: `/log` keeps the most recent entries (the harness reads it per run).
            self.meta.drain(..MAX_LOG_META / 10);
        }
        self.meta.push(LogMeta {
            index: entry.index,
            term: entry.term,
            id: entry.payload.id().to_string(),
        });
        let Payload::Data { data, .. } = &entry.payload else {
            return None;
        };
        let outcome = match serde_json::from_value::<Op>(data.clone()) {
            Ok(op) => self.run(op),
            Err(_) => Outcome::Failed {
                error: "malformed-command",
                status: 400,
            },
        };
        Some(outcome)
    }

    fn run(&mut self, op: Op) -> Outcome {
        match op {
            Op::Write { key, value } => match key_of(&key) {
                Ok(k) => {
                    self.data.insert(k, value);
                    Outcome::Ok(json!({}))
                }
                Err(_) => TYPE_MISMATCH,
            },
            Op::Cas { key, from, to } => {
                let Ok(k) = key_of(&key) else {
                    return TYPE_MISMATCH;
                };
                if self.data.get(&k).unwrap_or(&Value::Null) == &from {
                    self.data.insert(k, to);
                    Outcome::Ok(json!({}))
                } else {
                    Outcome::Failed {
                        error: "precondition-failed",
                        status: 409,
                    }
                }
            }
            Op::Append { key, value } => {
                let Ok(k) = key_of(&key) else {
                    return TYPE_MISMATCH;
                };
                match appended(self.data.get(&k), &value) {
                    Some(v) => {
                        self.data.insert(k, v);
                        Outcome::Ok(json!({}))
                    }
                    None => TYPE_MISMATCH,
                }
            }
            Op::Txn { ops } => self.run_txn(&ops),
        }
    }

    /// All-or-nothing: micro-ops run against an overlay that is merged only if all succeed.
    fn run_txn(&mut self, ops: &[Value]) -> Outcome {
        let Ok(micro) = parse_txn(ops) else {
            return Outcome::Failed {
                error: "malformed-command",
                status: 400,
            };
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
                        None => return TYPE_MISMATCH,
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

    pub fn restore(data: Value) -> Result<Kv, serde_json::Error> {
        serde_json::from_value(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, op: Value) -> Entry {
        Entry {
            index,
            term: 1,
            payload: Payload::Data {
                id: format!("c{index}"),
                data: op,
            },
        }
    }

    #[test]
    fn write_cas_append_and_failed_txn_leaves_no_trace() {
        let mut kv = Kv::default();
        let w = json!({"op":"write","key":"a","value":1});
        assert_eq!(kv.apply(&entry(1, w)), Some(Outcome::Ok(json!({}))));
        let bad_cas = json!({"op":"cas","key":"a","from":2,"to":3});
        assert!(matches!(
            kv.apply(&entry(2, bad_cas)),
            Some(Outcome::Failed {
                error: "precondition-failed",
                ..
            })
        ));
        let cas = json!({"op":"cas","key":"a","from":1,"to":3});
        assert_eq!(kv.apply(&entry(3, cas)), Some(Outcome::Ok(json!({}))));
        assert_eq!(kv.read("a"), json!(3));
        // appending to a number aborts the whole txn, including the earlier append to "l"
        let txn = json!({"op":"txn","ops":[["append","l",1],["append","a",2]]});
        assert_eq!(kv.apply(&entry(4, txn)), Some(TYPE_MISMATCH));
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
    }

    #[test]
    fn txn_parser_names_the_bad_element() {
        let err = parse_txn(&[json!(["r", "k", null]), json!(["x", "k", 1])]).unwrap_err();
        assert!(err.starts_with("ops[1]"), "{err}");
        assert!(parse_txn(&[json!(["r", {"a":1}, null])]).is_err());
    }
}
