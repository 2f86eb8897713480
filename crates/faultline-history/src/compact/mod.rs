//! A compact history for checking large recordings: fixed-size operations (96 bytes)
//! whose names and keys are interned and whose string values are spans of one text,
//! loaded by a streaming, parallel reader (`load`). Only the named-process events (faults, probes) are kept whole.
//!
//! A checker reads operations through [`OpSource`], which both [`History`] and
//! [`CompactHistory`] implement; a compact op becomes an [`Operation`] only while its key
//! is being checked.
//!
//! ```
//! use faultline_history::compact::{CompactHistory, OpSource};
//! use faultline_history::testkit::client_history;
//! use faultline_history::EventType::{Invoke, Ok};
//! use serde_json::json;
//!
//! let h = client_history(Some("x"), &[(0, Invoke, "write", json!(1)), (0, Ok, "write", json!(1))]);
//! let c = CompactHistory::from_history(&h);
//! assert_eq!(c.len(), 1);
//! assert_eq!(c.operation(0), h.operations[0]);
//! ```

mod fast;
mod load;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde_json::Value;

use crate::event::{Event, EventType, Process};
use crate::operation::{History, Operation, Outcome};

pub(crate) use load::read_history;
pub use load::{LoadError, LoadLimits, LoadStats, load};

/// No key, no node, no error, no completion.
pub const NONE: u32 = u32::MAX;
const NO_RET: u64 = u64::MAX;

/// A value as a compact op holds it: small cases inline, strings as spans of the
/// history's value text, anything else an index into the history's value table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Val {
    Null,
    Int(i64),
    /// `CompactHistory::text[start..start + len]`. Values are nearly all distinct in a
    /// large history, so they are stored end to end rather than interned.
    Str {
        len: u32,
        start: u64,
    },
    /// Index into `CompactHistory::values`.
    Json(u32),
}

/// An invocation joined with its completion, in 96 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactOp {
    /// Event index of the invocation.
    pub call: u64,
    /// Event index of the completion, `u64::MAX` if none.
    pub ret: u64,
    pub call_time: u64,
    pub ret_time: u64,
    pub process: u64,
    /// Interned names.
    pub f: u32,
    pub key: u32,
    pub node: u32,
    pub error: u32,
    pub invoke_value: Val,
    /// The completion's value: an ok op's result; for a failed or unknown op, whose value
    /// as an [`Operation`] is its invocation's (see [`CompactOp::op_value`]), what its
    /// completion event said, kept for the whole history's events.
    pub value: Val,
    pub outcome: Outcome,
}

impl CompactOp {
    /// The op's value as an [`Operation`] has it: an ok op's result, else what was invoked.
    pub fn op_value(&self) -> Val {
        if self.outcome == Outcome::Ok {
            self.value
        } else {
            self.invoke_value
        }
    }
}

/// Interned strings: equal text, equal id.
#[derive(Clone, Debug, Default)]
pub struct Strings {
    ids: HashMap<Arc<str>, u32, BuildHasherDefault<Fx>>,
    text: Vec<Arc<str>>,
}

impl Strings {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.text.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.text.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    pub fn get(&self, id: u32) -> &str {
        &self.text[id as usize]
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Bytes held, roughly (text, table slots).
    pub fn bytes(&self) -> usize {
        self.text.iter().map(|t| t.len() + 56).sum()
    }
}

/// A history of compact operations plus the named-process events.
#[derive(Clone, Debug, Default)]
pub struct CompactHistory {
    pub ops: Vec<CompactOp>,
    pub strings: Strings,
    /// The string values, end to end.
    pub text: String,
    /// Values that are neither null, an integer nor a string.
    pub values: Vec<Value>,
    /// Named-process events (faults, probes, orphaned completions), whole.
    pub annotations: Vec<Event>,
    /// Events in the input (client and named).
    pub events: u64,
}

impl CompactHistory {
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn name(&self, id: u32) -> Option<String> {
        (id != NONE).then(|| self.strings.get(id).to_string())
    }

    /// A value as JSON.
    pub fn value(&self, v: Val) -> Value {
        match v {
            Val::Null => Value::Null,
            Val::Int(i) => Value::from(i),
            Val::Str { .. } => Value::String(self.str_of(v).to_string()),
            Val::Json(j) => self.values[j as usize].clone(),
        }
    }

    /// The text of a string value ("" for any other).
    pub fn str_of(&self, v: Val) -> &str {
        match v {
            Val::Str { len, start } => &self.text[start as usize..start as usize + len as usize],
            _ => "",
        }
    }

    /// Appends a string value to the value text.
    pub(crate) fn push_str(&mut self, s: &str) -> Val {
        match u32::try_from(s.len()) {
            Ok(len) => {
                let start = self.text.len() as u64;
                self.text.push_str(s);
                Val::Str { len, start }
            }
            Err(_) => {
                self.values.push(Value::String(s.to_string()));
                Val::Json(self.values.len() as u32 - 1)
            }
        }
    }

    /// The function name of op `i`.
    pub fn f(&self, i: usize) -> &str {
        self.strings.get(self.ops[i].f)
    }

    /// Op `i` as an [`Operation`].
    pub fn operation(&self, i: usize) -> Operation {
        let o = &self.ops[i];
        Operation {
            id: i,
            process: o.process,
            f: self.strings.get(o.f).to_string(),
            key: self.name(o.key),
            invoke_value: self.value(o.invoke_value),
            value: self.value(o.op_value()),
            outcome: o.outcome,
            call: o.call,
            ret: (o.ret != NO_RET).then_some(o.ret),
            call_time: o.call_time,
            ret_time: (o.ret != NO_RET).then_some(o.ret_time),
            node: self.name(o.node),
            error: self.name(o.error),
            // Request ids only serve pinning against node logs, which works on a whole
            // History of a run dir; the compact form (checking files) drops them.
            request_id: None,
        }
    }

    /// Op `i` written over `out`, reusing its strings' allocations.
    pub fn operation_into(&self, i: usize, out: &mut Operation) {
        let o = &self.ops[i];
        let name = |out: &mut Option<String>, id: u32| match out {
            _ if id == NONE => *out = None,
            Some(s) => {
                s.clear();
                s.push_str(self.strings.get(id));
            }
            None => *out = Some(self.strings.get(id).to_string()),
        };
        let value = |out: &mut Value, v: Val| match (v, out) {
            (Val::Str { .. }, Value::String(s)) => {
                s.clear();
                s.push_str(self.str_of(v));
            }
            (v, out) => *out = self.value(v),
        };
        // Every field named, so a field added to `Operation` fails to compile here
        // instead of keeping a stale value from the slot's previous op.
        let Operation {
            id,
            process,
            f,
            key,
            invoke_value,
            value: result,
            outcome,
            call,
            ret,
            call_time,
            ret_time,
            node,
            error,
            request_id,
        } = out;
        *id = i;
        *process = o.process;
        f.clear();
        f.push_str(self.strings.get(o.f));
        name(key, o.key);
        value(invoke_value, o.invoke_value);
        value(result, o.op_value());
        *outcome = o.outcome;
        *call = o.call;
        *ret = (o.ret != NO_RET).then_some(o.ret);
        *call_time = o.call_time;
        *ret_time = (o.ret != NO_RET).then_some(o.ret_time);
        name(node, o.node);
        name(error, o.error);
        // As in `operation`: the compact form drops request ids.
        *request_id = None;
    }

    /// Intern a value.
    fn val(&mut self, v: &Value) -> Val {
        match v {
            Value::Null => Val::Null,
            Value::Number(n) if n.is_i64() => Val::Int(n.as_i64().expect("is_i64")),
            Value::String(s) => self.push_str(s),
            other => {
                self.values.push(other.clone());
                Val::Json(self.values.len() as u32 - 1)
            }
        }
    }

    fn opt(&mut self, s: &Option<String>) -> u32 {
        s.as_deref().map_or(NONE, |s| self.strings.intern(s))
    }

    /// The compact form of a validated history.
    pub fn from_history(h: &History) -> CompactHistory {
        let mut c = CompactHistory {
            events: h.events.len() as u64,
            annotations: h.annotations.iter().map(|&i| h.events[i].clone()).collect(),
            ..Default::default()
        };
        c.ops.reserve(h.operations.len());
        for o in &h.operations {
            let op = CompactOp {
                call: o.call,
                ret: o.ret.unwrap_or(NO_RET),
                call_time: o.call_time,
                ret_time: o.ret_time.unwrap_or(0),
                process: o.process,
                f: c.strings.intern(&o.f),
                key: c.opt(&o.key),
                node: c.opt(&o.node),
                error: c.opt(&o.error),
                invoke_value: c.val(&o.invoke_value),
                // A failed or unknown op's completion said its own value.
                value: match o.ret.and_then(|r| h.events.get(r as usize)) {
                    Some(done) if o.outcome != Outcome::Ok && done.index == o.ret.unwrap_or(0) => {
                        c.val(&done.value)
                    }
                    _ => c.val(&o.value),
                },
                outcome: o.outcome,
            };
            c.ops.push(op);
        }
        c
    }

    /// The whole history again, events and all (for reports and exports).
    pub fn to_history(&self) -> History {
        let mut events: Vec<Event> = Vec::with_capacity(self.events as usize);
        let mut notes = self.annotations.iter().peekable();
        // Completions in event order, merged with invocations (already in order).
        let mut rets: Vec<(u64, usize)> = self
            .ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.ret != NO_RET)
            .map(|(i, o)| (o.ret, i))
            .collect();
        rets.sort_unstable();
        let mut rets = rets.into_iter().peekable();
        let mut calls = self.ops.iter().enumerate().peekable();
        let mut annotations = Vec::with_capacity(self.annotations.len());
        loop {
            let next_call = calls.peek().map(|(_, o)| o.call);
            let next_ret = rets.peek().map(|&(r, _)| r);
            let next_note = notes.peek().map(|e| e.index);
            let Some(at) = [next_call, next_ret, next_note].into_iter().flatten().min() else {
                break;
            };
            if next_note == Some(at) {
                annotations.push(events.len());
                events.push(notes.next().expect("peeked").clone());
            } else if next_call == Some(at) {
                let (i, o) = calls.next().expect("peeked");
                let op = self.operation(i);
                events.push(Event {
                    request_id: None,
                    index: o.call,
                    time: o.call_time,
                    process: Process::Client(o.process),
                    kind: EventType::Invoke,
                    f: op.f,
                    key: op.key,
                    value: op.invoke_value,
                    node: op.node.clone(),
                    error: None,
                });
            } else {
                let (_, i) = rets.next().expect("peeked");
                let op = self.operation(i);
                let o = &self.ops[i];
                events.push(Event {
                    request_id: None,
                    index: o.ret,
                    time: o.ret_time,
                    process: Process::Client(o.process),
                    kind: match o.outcome {
                        Outcome::Ok => EventType::Ok,
                        Outcome::Fail => EventType::Fail,
                        Outcome::Info => EventType::Info,
                    },
                    f: op.f,
                    key: op.key,
                    value: self.value(o.value),
                    node: op.node,
                    error: op.error,
                });
            }
        }
        History {
            operations: (0..self.ops.len()).map(|i| self.operation(i)).collect(),
            events,
            annotations,
        }
    }
}

/// Where a checker reads operations from: a whole [`History`] or a [`CompactHistory`].
pub trait OpSource: Sync {
    /// Client operations in invocation order.
    fn op_count(&self) -> usize;
    /// Events in the history (client and named).
    fn event_count(&self) -> usize;
    /// Operation `i`, borrowed when the source holds it whole.
    fn op(&self, i: usize) -> Cow<'_, Operation>;
    /// The function name of op `i`, without building the op.
    fn op_f(&self, i: usize) -> &str;
    /// Op indexes grouped by key (ops without a key under `None`), groups in order of
    /// first appearance, each in invocation order.
    fn key_groups(&self) -> Vec<(Option<String>, Vec<usize>)>;
    /// The whole history, for checkers that read every event at once.
    fn whole(&self) -> Cow<'_, History>;
    /// Ops `ids` as [`Operation`]s: borrowed when the source holds them whole, else
    /// written into `pool`, whose allocations are reused from call to call (building
    /// each op afresh costs several allocations per op).
    fn ops_of<'a>(&'a self, ids: &[usize], pool: &'a mut Vec<Operation>) -> Vec<&'a Operation>;
}

impl OpSource for History {
    fn op_count(&self) -> usize {
        self.operations.len()
    }
    fn event_count(&self) -> usize {
        self.events.len()
    }
    fn op(&self, i: usize) -> Cow<'_, Operation> {
        Cow::Borrowed(&self.operations[i])
    }
    fn op_f(&self, i: usize) -> &str {
        &self.operations[i].f
    }
    fn key_groups(&self) -> Vec<(Option<String>, Vec<usize>)> {
        self.by_key()
            .into_iter()
            .map(|(k, ops)| (k, ops.into_iter().map(|o| o.id).collect()))
            .collect()
    }
    fn whole(&self) -> Cow<'_, History> {
        Cow::Borrowed(self)
    }
    fn ops_of<'a>(&'a self, ids: &[usize], _: &'a mut Vec<Operation>) -> Vec<&'a Operation> {
        ids.iter().map(|&i| &self.operations[i]).collect()
    }
}

impl OpSource for CompactHistory {
    fn op_count(&self) -> usize {
        self.ops.len()
    }
    fn event_count(&self) -> usize {
        self.events as usize
    }
    fn op(&self, i: usize) -> Cow<'_, Operation> {
        Cow::Owned(self.operation(i))
    }
    fn op_f(&self, i: usize) -> &str {
        self.f(i)
    }
    fn whole(&self) -> Cow<'_, History> {
        Cow::Owned(self.to_history())
    }
    fn ops_of<'a>(&'a self, ids: &[usize], pool: &'a mut Vec<Operation>) -> Vec<&'a Operation> {
        // New slots start as whole ops; old ones are overwritten in place below.
        if pool.len() < ids.len() {
            let have = pool.len();
            pool.extend(ids[have..].iter().map(|&i| self.operation(i)));
        }
        // A key's ops lie scattered over the whole history. Touching them (and their
        // texts) first, in loops of independent loads, lets the cache misses overlap
        // instead of stalling the conversion one op at a time; a chunk at a time, so
        // what was touched is still cached when it is read.
        let byte = |v: Val| match v {
            Val::Str { start, len } if len > 0 => self.text.as_bytes()[start as usize] as u64,
            _ => 0,
        };
        for (ids, outs) in ids.chunks(512).zip(pool.chunks_mut(512)) {
            let mut sink = 0u64;
            for &i in ids {
                sink = sink.wrapping_add(self.ops[i].call);
            }
            for &i in ids {
                let o = &self.ops[i];
                sink = sink.wrapping_add(byte(o.invoke_value) + byte(o.value));
            }
            std::hint::black_box(sink);
            for (&i, out) in ids.iter().zip(outs.iter_mut()) {
                self.operation_into(i, out);
            }
        }
        pool[..ids.len()].iter().collect()
    }
    fn key_groups(&self) -> Vec<(Option<String>, Vec<usize>)> {
        // Key ids are dense among all strings; a slot table by id is cheaper than hashing.
        let mut slot: HashMap<u32, usize, BuildHasherDefault<Fx>> = HashMap::default();
        let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        for (i, o) in self.ops.iter().enumerate() {
            let g = *slot.entry(o.key).or_insert_with(|| {
                groups.push((self.name(o.key), Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        groups
    }
}

/// FxHash (rustc's): fast for short keys, no DoS resistance needed for local files.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ (rest.len() as u64) << 59);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::client_history;
    use serde_json::json;

    #[test]
    fn round_trips_a_history() {
        use EventType::*;
        let h = client_history(
            Some("k"),
            &[
                (0, Invoke, "write", json!("a")),
                (1, Invoke, "cas", json!([1, 2])),
                (0, Ok, "write", json!("a")),
                (1, Info, "cas", json!([1, 2])),
                (2, Invoke, "read", Value::Null),
            ],
        );
        let c = CompactHistory::from_history(&h);
        assert_eq!(std::mem::size_of::<CompactOp>(), 96);
        assert_eq!(c.to_history(), h);
        let groups = c.key_groups();
        assert_eq!(groups, vec![(Some("k".to_string()), vec![0, 1, 2])]);
        assert_eq!(groups, h.key_groups());
    }

    #[test]
    fn ops_of_reuses_the_pool_and_gives_each_op_whole() {
        use EventType::*;
        let h = client_history(
            Some("k"),
            &[
                (0, Invoke, "write", json!("long text")),
                (0, Ok, "write", json!("long text")),
                (1, Invoke, "read", Value::Null),
                (1, Ok, "read", json!(7)),
                (2, Invoke, "cas", json!([1, 2])),
                (2, Fail, "cas", json!([1, 2])),
            ],
        );
        let c = CompactHistory::from_history(&h);
        let mut pool = Vec::new();
        // Each slot is overwritten by ops of other shapes (string, null, int, array).
        for ids in [vec![0, 1, 2], vec![2, 0, 1], vec![1]] {
            let got: Vec<Operation> = c.ops_of(&ids, &mut pool).into_iter().cloned().collect();
            let want: Vec<Operation> = ids.iter().map(|&i| h.operations[i].clone()).collect();
            assert_eq!(got, want);
        }
    }
}
