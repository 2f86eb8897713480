//! A lock: `acquire` succeeds only when free, `release` only when held. State 0 is free,
//! 1 is held.

use serde_json::Value;

use faultline_history::Operation;

use super::model::{Lookahead, Machine};

pub struct Mutex {
    /// true for acquire, false for release.
    acquires: Vec<bool>,
    initial: u64,
}

impl Mutex {
    pub fn new(ops: &[&Operation]) -> Result<Self, String> {
        let acquires = ops
            .iter()
            .map(|op| match op.f.as_str() {
                "acquire" | "lock" => Ok(true),
                "release" | "unlock" => Ok(false),
                f => Err(format!(
                    "event {}: mutex knows acquire, release, not {f:?}",
                    op.call
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Mutex {
            acquires,
            initial: 0,
        })
    }

    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        self.initial = match v.as_str() {
            Some("free") => 0,
            Some("held") => 1,
            _ => return Err(format!("a mutex starts \"free\" or \"held\", not {v}")),
        };
        Ok(())
    }
}

impl Machine for Mutex {
    fn init(&mut self) -> u64 {
        self.initial
    }

    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        match (self.acquires[op], state) {
            (true, 0) => Some(1),
            (false, 1) => Some(0),
            _ => None,
        }
    }

    fn effect(&self, op: usize) -> Option<u64> {
        Some(self.acquires[op] as u64)
    }

    fn lookahead(&self) -> Lookahead {
        Lookahead::Frontier
    }

    fn reachable(&mut self, state: u64, target: usize, between: &[usize]) -> bool {
        let need = if self.acquires[target] { 0 } else { 1 };
        // Only the opposite op moves the lock into the state `target` needs.
        state == need
            || between
                .iter()
                .any(|&o| self.acquires[o] != self.acquires[target])
    }

    fn producers(&self, target: usize) -> Vec<usize> {
        (0..self.acquires.len())
            .filter(|&o| self.acquires[o] != self.acquires[target])
            .collect()
    }

    fn state_json(&self, state: u64) -> Value {
        Value::String(if state == 0 { "free" } else { "held" }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn acquire_needs_free_release_needs_held() {
        let ops = [
            op(0, "acquire", json!(null), json!(null)),
            op(1, "release", json!(null), json!(null)),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut m = Mutex::new(&refs).unwrap();
        let s0 = m.init();
        assert_eq!(m.step(s0, 1), None);
        let s1 = m.step(s0, 0).unwrap();
        assert_eq!(m.step(s1, 0), None);
        assert_eq!(m.step(s1, 1), Some(0));
        assert!(!m.reachable(s1, 0, &[]));
        assert!(m.reachable(s1, 0, &[1]));
    }
}
