//! The sequential specifications the search checks against, and the compact interface
//! the search drives them through: states are `u64` ids (values, or ids of interned
//! composite states), operations are indexes into the key's op list.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use faultline_history::{Operation, Outcome};

pub use super::search::Walk;
use super::{append_kv, multi_register, mutex, queue, register, set};

/// A data type whose histories can be checked for linearizability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// `read` / `write`; initial value nil.
    Register,
    /// `read` / `write` / `cas [old new]`; initial value nil. (`kv` is an alias: every
    /// model is checked per key.)
    CasRegister,
    /// Porcupine's kv: `get` / `put` / `append` on strings; initial value "".
    AppendKv,
    /// `txn` of `[:read k v]` / `[:write k v]` micro-ops over several registers.
    MultiRegister,
    /// `acquire` / `release`; initially free.
    Mutex,
    /// `add v` / `read` (the whole set); initially empty.
    Set,
    /// A FIFO queue: `enqueue v` / `dequeue` (the head, or nil when empty); initially
    /// empty.
    Queue,
}

impl Model {
    pub const NAMES: [&'static str; 8] = [
        "register",
        "cas-register",
        "kv",
        "append-kv",
        "multi-register",
        "mutex",
        "set",
        "queue",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::AppendKv => "append-kv",
            Model::MultiRegister => "multi-register",
            Model::Mutex => "mutex",
            Model::Set => "set",
            Model::Queue => "queue",
        }
    }

    /// Ops that constrain nothing: failed ops (they did not happen) and ops of unknown
    /// outcome that cannot change the state (an `info` read observed nothing).
    pub fn ignores(self, op: &Operation) -> bool {
        match op.outcome {
            Outcome::Fail => true,
            Outcome::Ok => false,
            Outcome::Info => match self {
                Model::Register | Model::CasRegister => register::is_read(&op.f),
                Model::AppendKv => op.f == "get" || op.f == "read",
                Model::MultiRegister => multi_register::is_read_only(op),
                Model::Mutex => false,
                Model::Set => op.f == "read",
                // An unknown enqueue may have happened; an unknown dequeue may have
                // removed the head.
                Model::Queue => false,
            },
        }
    }

    /// Builds the model's machine for one key's ops (already stripped of ignored ops).
    /// `initial` overrides the model's initial state (a register's value, a
    /// multi-register's `{"x": 0, ...}`, append-kv's text, a set's elements, a mutex's
    /// `"held"`).
    pub fn build(self, ops: &[&Operation], initial: Option<&Value>) -> Result<AnyMachine, String> {
        let mut m = match self {
            Model::Register => AnyMachine::Register(register::Register::new(ops, false)?),
            Model::CasRegister => AnyMachine::Register(register::Register::new(ops, true)?),
            Model::AppendKv => AnyMachine::AppendKv(append_kv::AppendKv::new(ops)?),
            Model::MultiRegister => {
                AnyMachine::MultiRegister(multi_register::MultiRegister::new(ops)?)
            }
            Model::Mutex => AnyMachine::Mutex(mutex::Mutex::new(ops)?),
            Model::Set => AnyMachine::Set(set::Set::new(ops)?),
            Model::Queue => AnyMachine::Queue(queue::Queue::new(ops)?),
        };
        if let Some(v) = initial {
            match &mut m {
                AnyMachine::Register(x) => x.set_initial(v),
                AnyMachine::AppendKv(x) => x.set_initial(v),
                AnyMachine::MultiRegister(x) => x.set_initial(v),
                AnyMachine::Mutex(x) => x.set_initial(v),
                AnyMachine::Set(x) => x.set_initial(v),
                AnyMachine::Queue(x) => x.set_initial(v),
            }
            .map_err(|e| format!("initial state: {e}"))?;
        }
        Ok(m)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "register" => Model::Register,
            "cas-register" | "kv" => Model::CasRegister,
            "append-kv" => Model::AppendKv,
            "multi-register" => Model::MultiRegister,
            "mutex" => Model::Mutex,
            "set" => Model::Set,
            "queue" | "fifo-queue" => Model::Queue,
            other => {
                return Err(format!(
                    "unknown linearizability model {other:?} (expected one of {})",
                    Model::NAMES.join(", ")
                ));
            }
        })
    }
}

/// A sequential specification compiled for one key's operations.
pub trait Machine {
    /// The initial state.
    fn init(&mut self) -> u64;
    /// Applies op `op` (an index into the key's ops) to `state`; `None` if the op's
    /// observed result is impossible from `state`.
    fn step(&mut self, state: u64, op: usize) -> Option<u64>;
    /// Whether op `op` never changes the state when it succeeds (a read). The search
    /// places such ops greedily.
    fn read_only(&self, _op: usize) -> bool {
        false
    }
    /// Ops with equal effect keys do exactly the same thing to every state (e.g. two
    /// writes of 3). Unknown-outcome ops of one effect are interchangeable, so the search
    /// places them only in call order. `None`: no such key.
    fn effect(&self, _op: usize) -> Option<u64> {
        None
    }
    /// Which lookahead, if any, prunes for this model.
    fn lookahead(&self) -> Lookahead {
        Lookahead::None
    }
    /// Could op `target` still succeed, starting from `state`, if only the ops in
    /// `between` may take effect before it? Must answer `true` when unsure.
    fn reachable(&mut self, _state: u64, _target: usize, _between: &[usize]) -> bool {
        true
    }
    /// Could every pending op still succeed from `state`? `pending` walks the unplaced
    /// ops' call and return entries in history order; the machine reads as far as it
    /// likes. Must answer `true` when unsure.
    fn scan(&mut self, _state: u64, _pending: Walk<'_>) -> bool {
        true
    }
    /// Ops that could bring about the state `target` needs (for the witness's words).
    fn producers(&self, _target: usize) -> Vec<usize> {
        Vec::new()
    }
    /// A state as JSON, for witnesses.
    fn state_json(&self, state: u64) -> Value;
    /// Bytes the model's interned states hold beyond the search's fixed charge per state,
    /// for models whose states grow with the history (a queue's contents). The search
    /// charges the growth against the memory budget as its memo grows.
    fn state_bytes(&self) -> u64 {
        0
    }
}

/// How the search asks a model whether a new state is a dead end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookahead {
    None,
    /// `reachable` for the op with the earliest pending return.
    Frontier,
    /// `scan` over the pending entries.
    Scan,
}

/// An entry of the search's list of unplaced ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub op: usize,
    /// A call entry (else a return entry).
    pub call: bool,
    /// The op completed `ok` (else its outcome is unknown and it returns at the end).
    pub ok: bool,
}

/// Static dispatch over the models, so the search is monomorphised per model.
pub enum AnyMachine {
    Register(register::Register),
    AppendKv(append_kv::AppendKv),
    MultiRegister(multi_register::MultiRegister),
    Mutex(mutex::Mutex),
    Set(set::Set),
    Queue(queue::Queue),
}

/// Short text for an op's effect and result, as the witness says it.
pub fn describe(op: &Operation) -> String {
    let v = |v: &Value| match v {
        Value::Null => "nil".to_string(),
        v => v.to_string(),
    };
    let reads = matches!(op.f.as_str(), "read" | "get" | "r") || queue::is_dequeue(&op.f);
    match (op.f.as_str(), op.outcome) {
        (_, Outcome::Ok) if reads => format!("{} → {}", op.f, v(&op.value)),
        (_, _) if reads => format!("{} (result unknown)", op.f),
        ("cas", _) => match op.invoke_value.as_array().map(Vec::as_slice) {
            Some([a, b]) => format!("cas {}→{}", v(a), v(b)),
            _ => format!("cas {}", v(&op.invoke_value)),
        },
        ("txn", Outcome::Ok) => format!("txn {}", op.value),
        (f, _) if op.invoke_value.is_null() => f.to_string(),
        (f, _) => format!("{f} {}", v(&op.invoke_value)),
    }
}
