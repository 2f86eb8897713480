//! Transactions in the compact form the graph checkers work on: interned keys, scalar
//! values, micro-ops and read lists in flat arrays. Built once from a `History` (or
//! directly, by generators and benchmarks) so inference never touches JSON again.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use faultline_history::{History, Outcome};

/// A key or an element: integers stay integers; anything else is interned text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    Int(i64),
    Text(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MopKind {
    Append,
    Write,
    Read,
}

/// What a micro-op carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MopValue {
    /// An append's or write's value, or a register read's value.
    One(Scalar),
    /// A register read of the initial (nil) state, or a read whose result is unknown
    /// (invocations, `info` completions).
    Nil,
    /// A list read: `len` elements from `Txns::elems[start..]`.
    List { start: u32, len: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Mop {
    pub kind: MopKind,
    /// Dense key id; `Txns::keys[key]` is the key itself.
    pub key: u32,
    pub value: MopValue,
}

/// One transaction: an operation of the history with its micro-ops.
#[derive(Clone, Copy, Debug)]
pub struct Txn {
    /// `Operation::id` in the source history.
    pub op: u32,
    pub process: u64,
    pub outcome: Outcome,
    /// Event index of the invocation.
    pub call: u64,
    /// Event index of the completion (`u64::MAX` if it never completed).
    pub ret: u64,
    pub mop_start: u32,
    pub mop_end: u32,
}

/// Malformed transactional input: which event, which field, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("event {event}: {field}: {message}")]
pub struct TxnError {
    pub event: u64,
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Txns {
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    pub elems: Vec<Scalar>,
    /// Key id -> key.
    pub keys: Vec<Scalar>,
    /// Interned text, indexed by `Scalar::Text`.
    pub texts: Vec<String>,
    key_ids: HashMap<Scalar, u32>,
    text_ids: HashMap<String, u32>,
}

impl Txns {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn mops(&self, t: usize) -> &[Mop] {
        let t = &self.txns[t];
        &self.mops[t.mop_start as usize..t.mop_end as usize]
    }

    pub fn list(&self, start: u32, len: u32) -> &[Scalar] {
        &self.elems[start as usize..(start + len) as usize]
    }

    pub fn text(&mut self, s: &str) -> Scalar {
        if let Some(&id) = self.text_ids.get(s) {
            return Scalar::Text(id);
        }
        let id = self.texts.len() as u32;
        self.texts.push(s.to_string());
        self.text_ids.insert(s.to_string(), id);
        Scalar::Text(id)
    }

    pub fn key_id(&mut self, k: Scalar) -> u32 {
        let next = self.keys.len() as u32;
        *self.key_ids.entry(k).or_insert_with(|| {
            self.keys.push(k);
            next
        })
    }

    /// Starts a transaction; add its micro-ops with the `push_*` methods.
    pub fn begin(&mut self, op: u32, process: u64, outcome: Outcome, call: u64, ret: u64) {
        let at = self.mops.len() as u32;
        self.txns.push(Txn {
            op,
            process,
            outcome,
            call,
            ret,
            mop_start: at,
            mop_end: at,
        });
    }

    fn push_mop(&mut self, kind: MopKind, key: Scalar, value: MopValue) {
        let key = self.key_id(key);
        self.mops.push(Mop { kind, key, value });
        self.txns.last_mut().expect("begin() first").mop_end = self.mops.len() as u32;
    }

    pub fn push_append(&mut self, key: Scalar, v: Scalar) {
        self.push_mop(MopKind::Append, key, MopValue::One(v));
    }

    pub fn push_write(&mut self, key: Scalar, v: Scalar) {
        self.push_mop(MopKind::Write, key, MopValue::One(v));
    }

    pub fn push_read_register(&mut self, key: Scalar, v: Option<Scalar>) {
        self.push_mop(MopKind::Read, key, v.map_or(MopValue::Nil, MopValue::One));
    }

    /// `None` is an unknown read (the invocation's `nil`).
    pub fn push_read_list(&mut self, key: Scalar, elems: Option<&[Scalar]>) {
        let value = match elems {
            None => MopValue::Nil,
            Some(es) => {
                let start = self.elems.len() as u32;
                self.elems.extend_from_slice(es);
                MopValue::List {
                    start,
                    len: es.len() as u32,
                }
            }
        };
        self.push_mop(MopKind::Read, key, value);
    }

    /// Converts every `txn` operation of a history (an op whose value is a list of
    /// micro-ops). Non-`txn` ops are skipped. For `ok` ops the completion's micro-ops are
    /// used (they carry what reads returned); otherwise the invocation's.
    pub fn from_history(h: &History) -> Result<Txns, TxnError> {
        let mut t = Txns::new();
        let mut elems: Vec<Scalar> = Vec::new();
        for op in &h.operations {
            if op.f != "txn" {
                continue;
            }
            let (value, event) = match op.outcome {
                Outcome::Ok => (&op.value, op.ret.unwrap_or(op.call)),
                _ => (&op.invoke_value, op.call),
            };
            let err = |field: &str, message: String| TxnError {
                event,
                field: field.to_string(),
                message,
            };
            let Some(mops) = value.as_array() else {
                return Err(err(
                    "value",
                    format!("a txn's value must be a list of micro-ops, found {value}"),
                ));
            };
            t.begin(
                op.id as u32,
                op.process,
                op.outcome,
                op.call,
                op.ret.unwrap_or(u64::MAX),
            );
            for (i, mop) in mops.iter().enumerate() {
                let field = format!("value[{i}]");
                let parts = match mop.as_array() {
                    Some(p) if p.len() == 3 => p,
                    _ => {
                        return Err(err(
                            &field,
                            format!("a micro-op is [f, key, value], found {mop}"),
                        ));
                    }
                };
                let key = t.scalar(&parts[1]).ok_or_else(|| {
                    err(
                        &field,
                        format!("key must be an integer or a string, found {}", parts[1]),
                    )
                })?;
                let f = parts[0].as_str().unwrap_or("");
                match f {
                    "append" | "w" => {
                        let v = t.scalar(&parts[2]).ok_or_else(|| {
                            err(
                                &field,
                                format!(
                                    "{f} value must be an integer or a string, found {}",
                                    parts[2]
                                ),
                            )
                        })?;
                        if f == "append" {
                            t.push_append(key, v)
                        } else {
                            t.push_write(key, v)
                        }
                    }
                    "r" => {
                        match &parts[2] {
                            Value::Null => t.push_mop(MopKind::Read, key, MopValue::Nil),
                            Value::Array(xs) => {
                                elems.clear();
                                for x in xs {
                                    let s = t.scalar(x).ok_or_else(|| {
                                    err(&field, format!("list elements must be integers or strings, found {x}"))
                                })?;
                                    elems.push(s);
                                }
                                t.push_read_list(key, Some(&elems));
                            }
                            other => {
                                let v = t.scalar(other).ok_or_else(|| {
                                err(&field, format!("read value must be null, a list, an integer or a string, found {other}"))
                            })?;
                                t.push_read_register(key, Some(v));
                            }
                        }
                    }
                    _ => {
                        return Err(err(
                            &field,
                            format!(
                                "micro-op must be \"append\", \"w\" or \"r\", found {}",
                                parts[0]
                            ),
                        ));
                    }
                }
            }
        }
        Ok(t)
    }

    fn scalar(&mut self, v: &Value) -> Option<Scalar> {
        match v {
            Value::Number(n) => n.as_i64().map(Scalar::Int),
            Value::String(s) => Some(self.text(s)),
            _ => None,
        }
    }

    pub fn show(&self, s: Scalar) -> ScalarDisplay<'_> {
        ScalarDisplay(self, s)
    }

    pub fn show_key(&self, k: u32) -> ScalarDisplay<'_> {
        ScalarDisplay(self, self.keys[k as usize])
    }

    pub fn key_text(&self, k: u32) -> String {
        self.show_key(k).to_string()
    }

    pub fn scalar_json(&self, s: Scalar) -> Value {
        match s {
            Scalar::Int(i) => Value::from(i),
            Scalar::Text(t) => Value::from(self.texts[t as usize].clone()),
        }
    }
}

pub struct ScalarDisplay<'a>(&'a Txns, Scalar);

impl fmt::Display for ScalarDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Text(t) => f.write_str(&self.0.texts[t as usize]),
        }
    }
}
