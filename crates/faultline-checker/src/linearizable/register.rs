//! Registers: `read`, `write v`, and (for cas-register) `cas [old new]`, initially nil.
//! States are interned value ids.

use serde_json::Value;

use faultline_history::{Operation, Outcome};

use super::intern::Interner;
use super::model::{Lookahead, Machine};

pub fn is_read(f: &str) -> bool {
    matches!(f, "read" | "get" | "r")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A read that returned this value id.
    Read(u64),
    Write(u64),
    Cas(u64, u64),
}

pub struct Register {
    ops: Vec<Op>,
    values: Interner,
    initial: u64,
}

impl Register {
    pub fn new(ops: &[&Operation], allow_cas: bool) -> Result<Self, String> {
        let mut values = Interner::default();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let compiled = match op.f.as_str() {
                f if is_read(f) => {
                    if op.outcome != Outcome::Ok {
                        return Err(format!(
                            "event {}: a read of unknown outcome should have been skipped",
                            op.call
                        ));
                    }
                    Op::Read(values.id(&op.value))
                }
                "write" | "put" | "w" => Op::Write(values.id(&op.invoke_value)),
                "cas" if allow_cas => match op.invoke_value.as_array().map(Vec::as_slice) {
                    Some([from, to]) => Op::Cas(values.id(from), values.id(to)),
                    _ => {
                        return Err(format!(
                            "event {}: cas needs [old new], found {}",
                            op.call, op.invoke_value
                        ));
                    }
                },
                f => {
                    let allowed = if allow_cas {
                        "read, write, cas"
                    } else {
                        "read, write"
                    };
                    return Err(format!(
                        "event {}: this model knows {allowed}, not {f:?}",
                        op.call
                    ));
                }
            };
            out.push(compiled);
        }
        Ok(Register {
            ops: out,
            values,
            initial: 0,
        })
    }

    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        self.initial = self.values.id(v);
        Ok(())
    }

    /// The state op `target` needs to succeed, if it needs one.
    fn needs(&self, target: usize) -> Option<u64> {
        match self.ops[target] {
            Op::Read(v) | Op::Cas(v, _) => Some(v),
            Op::Write(_) => None,
        }
    }

    fn writes(&self, op: usize, v: u64) -> bool {
        matches!(self.ops[op], Op::Write(w) | Op::Cas(_, w) if w == v)
    }
}

impl Machine for Register {
    fn init(&mut self) -> u64 {
        self.initial
    }

    #[inline]
    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        match self.ops[op] {
            Op::Read(v) => (state == v).then_some(state),
            Op::Write(v) => Some(v),
            Op::Cas(from, to) => (state == from).then_some(to),
        }
    }

    fn effect(&self, op: usize) -> Option<u64> {
        // Value ids are below 2^63; fold the op kind in with a multiplier.
        Some(match self.ops[op] {
            Op::Read(v) => v.wrapping_mul(3),
            Op::Write(v) => v.wrapping_mul(3).wrapping_add(1),
            Op::Cas(a, b) => (a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b)
                .wrapping_mul(3)
                .wrapping_add(2),
        })
    }

    fn read_only(&self, op: usize) -> bool {
        matches!(self.ops[op], Op::Read(_))
    }

    fn lookahead(&self) -> Lookahead {
        Lookahead::Frontier
    }

    fn reachable(&mut self, state: u64, target: usize, between: &[usize]) -> bool {
        match self.needs(target) {
            None => true,
            Some(v) => state == v || between.iter().any(|&o| self.writes(o, v)),
        }
    }

    fn producers(&self, target: usize) -> Vec<usize> {
        match self.needs(target) {
            None => Vec::new(),
            Some(v) => (0..self.ops.len()).filter(|&o| self.writes(o, v)).collect(),
        }
    }

    fn state_json(&self, state: u64) -> Value {
        self.values.value(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn steps_follow_the_register_spec() {
        let ops = [
            op(0, "write", json!(1), json!(1)),
            op(1, "read", json!(null), json!(1)),
            op(2, "cas", json!([1, 2]), json!([1, 2])),
            op(3, "read", json!(null), json!(null)),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut r = Register::new(&refs, true).unwrap();
        let s0 = r.init();
        assert_eq!(r.step(s0, 3), Some(s0), "reads nil initially");
        assert_eq!(r.step(s0, 1), None);
        let s1 = r.step(s0, 0).unwrap();
        assert_eq!(r.step(s1, 1), Some(s1));
        let s2 = r.step(s1, 2).unwrap();
        assert_eq!(r.state_json(s2), json!(2));
        assert_eq!(r.step(s2, 2), None, "cas from 1 fails when 2");
        assert!(r.reachable(s0, 1, &[0]), "write 1 may come first");
        assert!(!r.reachable(s0, 1, &[2]), "nothing in between writes 1");
        assert_eq!(r.producers(1), vec![0]);
        assert!(Register::new(&refs, false).is_err(), "register has no cas");
    }
}
