//! Several registers changed by transactions: `txn` of `[:read k v]` / `[:write k v]`
//! micro-ops applied in order, atomically; every register starts nil. A state (one value
//! per register) is interned to an id.

use serde_json::Value;

use faultline_history::{Operation, Outcome};

use super::intern::{Interner, States};
use super::model::Machine;

/// An `info` txn of reads only cannot change anything.
pub fn is_read_only(op: &Operation) -> bool {
    op.invoke_value.as_array().is_some_and(|ops| {
        ops.iter()
            .all(|m| m.get(0).and_then(Value::as_str).is_some_and(is_read))
    })
}

fn is_read(f: &str) -> bool {
    matches!(f, "read" | "r")
}

#[derive(Clone, Copy, Debug)]
enum Micro {
    Read(usize, u64),
    Write(usize, u64),
}

pub struct MultiRegister {
    initial: u64,
    ops: Vec<Vec<Micro>>,
    names: Vec<String>,
    values: Interner,
    states: States,
}

impl MultiRegister {
    pub fn new(ops: &[&Operation]) -> Result<Self, String> {
        let mut values = Interner::default();
        let mut names: Vec<String> = Vec::new();
        let mut compiled = Vec::with_capacity(ops.len());
        for op in ops {
            if op.f != "txn" {
                return Err(format!(
                    "event {}: multi-register knows txn, not {:?}",
                    op.call, op.f
                ));
            }
            // An ok txn's completion carries what its reads saw; otherwise reads are unknown.
            let value = if op.outcome == Outcome::Ok {
                &op.value
            } else {
                &op.invoke_value
            };
            let micros = value.as_array().ok_or_else(|| {
                format!(
                    "event {}: a txn's value is a list of [f k v], found {value}",
                    op.call
                )
            })?;
            let mut out = Vec::with_capacity(micros.len());
            for m in micros {
                let Some([f, k, v]) = m.as_array().map(Vec::as_slice) else {
                    return Err(format!("event {}: micro-op {m} is not [f k v]", op.call));
                };
                let key = k.as_str().map_or_else(|| k.to_string(), str::to_string);
                let reg = match names.iter().position(|n| *n == key) {
                    Some(r) => r,
                    None => {
                        names.push(key);
                        names.len() - 1
                    }
                };
                match f.as_str() {
                    Some(f) if is_read(f) => {
                        if op.outcome == Outcome::Ok {
                            out.push(Micro::Read(reg, values.id(v)));
                        }
                    }
                    Some("write" | "w") => out.push(Micro::Write(reg, values.id(v))),
                    _ => {
                        return Err(format!(
                            "event {}: micro-op {m}: expected read or write",
                            op.call
                        ));
                    }
                }
            }
            compiled.push(out);
        }
        let mut m = MultiRegister {
            initial: 0,
            ops: compiled,
            names,
            values,
            states: States::default(),
        };
        m.states.intern(vec![0; m.names.len()]);
        Ok(m)
    }

    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        let Value::Object(map) = v else {
            return Err(format!(
                "a multi-register starts from an object of registers, not {v}"
            ));
        };
        let mut regs = vec![0; self.names.len()];
        for (k, val) in map {
            // Registers no op touches cannot matter.
            if let Some(r) = self.names.iter().position(|n| n == k) {
                regs[r] = self.values.id(val);
            }
        }
        self.initial = self.states.intern(regs);
        Ok(())
    }
}

impl Machine for MultiRegister {
    fn init(&mut self) -> u64 {
        self.initial
    }

    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        let mut regs: Option<Vec<u64>> = None;
        for m in &self.ops[op] {
            let cur = regs.as_ref().unwrap_or(&self.states[state]);
            match *m {
                Micro::Read(r, v) if cur[r] != v => return None,
                Micro::Read(..) => {}
                Micro::Write(r, v) => {
                    regs.get_or_insert_with(|| self.states[state].clone())[r] = v;
                }
            }
        }
        Some(match regs {
            None => state,
            Some(r) => self.states.intern(r),
        })
    }

    fn read_only(&self, op: usize) -> bool {
        self.ops[op].iter().all(|m| matches!(m, Micro::Read(..)))
    }

    fn state_json(&self, state: u64) -> Value {
        let regs = &self.states[state];
        Value::Object(
            self.names
                .iter()
                .zip(regs)
                .map(|(n, &v)| (n.clone(), self.values.value(v)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn txns_read_and_write_atomically() {
        let ops = [
            op(
                0,
                "txn",
                json!([["write", "x", 1], ["write", "y", 2]]),
                json!([["write", "x", 1], ["write", "y", 2]]),
            ),
            op(
                1,
                "txn",
                json!([["read", "x", null], ["read", "y", null]]),
                json!([["read", "x", 1], ["read", "y", 2]]),
            ),
            op(
                2,
                "txn",
                json!([["read", "x", null]]),
                json!([["read", "x", null]]),
            ),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut m = MultiRegister::new(&refs).unwrap();
        let s0 = m.init();
        assert_eq!(m.step(s0, 2), Some(s0));
        assert_eq!(m.step(s0, 1), None);
        let s1 = m.step(s0, 0).unwrap();
        assert_eq!(m.step(s1, 1), Some(s1));
        assert_eq!(m.state_json(s1), json!({"x": 1, "y": 2}));
        assert!(is_read_only(&ops[1]));
        assert!(!is_read_only(&ops[0]));
    }
}
