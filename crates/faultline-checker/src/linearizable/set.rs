//! A grow-only set: `add v`, and `read` returning every element. A state (the sorted
//! element ids) is interned to an id.

use serde_json::Value;

use faultline_history::Operation;

use super::intern::{Interner, States};
use super::model::{Lookahead, Machine};

#[derive(Clone, Debug)]
enum Op {
    Add(u64),
    /// The sorted, deduplicated element ids the read returned.
    Read(Vec<u64>),
}

pub struct Set {
    initial: u64,
    ops: Vec<Op>,
    values: Interner,
    states: States,
}

impl Set {
    pub fn new(ops: &[&Operation]) -> Result<Self, String> {
        let mut values = Interner::default();
        let mut compiled = Vec::with_capacity(ops.len());
        for op in ops {
            compiled.push(match op.f.as_str() {
                "add" => Op::Add(values.id(&op.invoke_value)),
                "read" => {
                    let elems = op.value.as_array().ok_or_else(|| {
                        format!(
                            "event {}: a set read returns a list, found {}",
                            op.call, op.value
                        )
                    })?;
                    let mut ids: Vec<u64> = elems.iter().map(|e| values.id(e)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Op::Read(ids)
                }
                f => return Err(format!("event {}: set knows add, read, not {f:?}", op.call)),
            });
        }
        let mut s = Set {
            initial: 0,
            ops: compiled,
            values,
            states: States::default(),
        };
        s.states.intern(Vec::new());
        Ok(s)
    }

    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        let Value::Array(elems) = v else {
            return Err(format!("a set starts from a list of elements, not {v}"));
        };
        let mut ids: Vec<u64> = elems.iter().map(|e| self.values.id(e)).collect();
        ids.sort_unstable();
        ids.dedup();
        self.initial = self.states.intern(ids);
        Ok(())
    }
}

impl Machine for Set {
    fn init(&mut self) -> u64 {
        self.initial
    }

    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        match &self.ops[op] {
            Op::Read(want) => (self.states[state] == *want).then_some(state),
            Op::Add(v) => {
                let cur = &self.states[state];
                match cur.binary_search(v) {
                    Ok(_) => Some(state),
                    Err(at) => {
                        let mut next = cur.clone();
                        next.insert(at, *v);
                        Some(self.states.intern(next))
                    }
                }
            }
        }
    }

    fn read_only(&self, op: usize) -> bool {
        matches!(self.ops[op], Op::Read(_))
    }

    fn lookahead(&self) -> Lookahead {
        Lookahead::Frontier
    }

    /// Elements never disappear: the state must be a subset of the read, and each
    /// missing element must be added by an op in between.
    fn reachable(&mut self, state: u64, target: usize, between: &[usize]) -> bool {
        let Op::Read(want) = &self.ops[target] else {
            return true;
        };
        let cur = &self.states[state];
        cur.iter().all(|e| want.binary_search(e).is_ok())
            && want.iter().all(|e| {
                cur.binary_search(e).is_ok()
                    || between
                        .iter()
                        .any(|&o| matches!(self.ops[o], Op::Add(a) if a == *e))
            })
    }

    fn state_json(&self, state: u64) -> Value {
        self.states.list_json(state, &self.values)
    }

    /// A set's states grow with the adds: the search charges them to the memory budget.
    fn state_bytes(&self) -> u64 {
        self.states.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn reads_see_exactly_the_added_elements() {
        let ops = [
            op(0, "add", json!(1), json!(1)),
            op(1, "add", json!(2), json!(2)),
            op(2, "read", json!(null), json!([2, 1])),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut s = Set::new(&refs).unwrap();
        let s0 = s.init();
        assert_eq!(s.step(s0, 2), None);
        let before = s.state_bytes();
        let sa = s.step(s0, 0).unwrap();
        let s2 = s.step(sa, 1).unwrap();
        assert!(s.state_bytes() > before, "new states are charged");
        assert_eq!(s.step(s2, 2), Some(s2));
        let s1 = s.step(s0, 1).unwrap();
        assert!(s.reachable(s1, 2, &[0]));
        assert!(!s.reachable(s1, 2, &[]));
    }
}
