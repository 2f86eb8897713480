//! A FIFO queue: `enqueue v` appends `v`; `dequeue` removes the head and returns it, or
//! returns nil on an empty queue and changes nothing. Knossos's FIFO queue, with two
//! differences it leaves implicit: an `ok` dequeue of nil is legal exactly when the queue
//! is empty (Knossos calls every dequeue from an empty queue inconsistent; Jepsen's
//! clients report it `fail`), and an `info` dequeue, whose result is unknown, removes
//! whatever the head is then (or nothing, when empty), if it took effect at all. An `info`
//! enqueue may or may not have happened, as for every model. A state (the queue's value
//! ids, head first) is interned to an id.

use serde_json::Value;

use faultline_history::{Operation, Outcome};

use super::intern::{Interner, States};
use super::model::{Lookahead, Machine};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Enqueue(u64),
    /// An `ok` dequeue that returned this (non-nil) value id.
    Dequeue(u64),
    /// An `ok` dequeue that returned nil: the queue was empty.
    DequeueEmpty,
    /// A dequeue of unknown result: pops the head, if any.
    DequeueAny,
}

pub fn is_enqueue(f: &str) -> bool {
    matches!(f, "enqueue" | "offer" | "push")
}

pub fn is_dequeue(f: &str) -> bool {
    matches!(f, "dequeue" | "poll" | "pop")
}

pub struct Queue {
    initial: u64,
    ops: Vec<Op>,
    values: Interner,
    states: States,
}

impl Queue {
    pub fn new(ops: &[&Operation]) -> Result<Self, String> {
        let mut values = Interner::default();
        let mut compiled = Vec::with_capacity(ops.len());
        for op in ops {
            compiled.push(match op.f.as_str() {
                f if is_enqueue(f) => {
                    if op.invoke_value.is_null() {
                        return Err(format!(
                            "event {}: an enqueue of nil cannot be told from an empty queue's dequeue",
                            op.call
                        ));
                    }
                    Op::Enqueue(values.id(&op.invoke_value))
                }
                f if is_dequeue(f) => match (op.outcome, &op.value) {
                    (Outcome::Ok, Value::Null) => Op::DequeueEmpty,
                    (Outcome::Ok, v) => Op::Dequeue(values.id(v)),
                    _ => Op::DequeueAny,
                },
                f => {
                    return Err(format!(
                        "event {}: queue knows enqueue, dequeue, not {f:?}",
                        op.call
                    ));
                }
            });
        }
        let mut q = Queue {
            initial: 0,
            ops: compiled,
            values,
            states: States::default(),
        };
        q.states.intern(Vec::new());
        Ok(q)
    }

    /// The queue's opening contents, head first.
    pub fn set_initial(&mut self, v: &Value) -> Result<(), String> {
        let Value::Array(elems) = v else {
            return Err(format!(
                "a queue starts from a list of elements, head first, not {v}"
            ));
        };
        if elems.iter().any(Value::is_null) {
            return Err("a queue cannot hold nil".into());
        }
        let ids: Vec<u64> = elems.iter().map(|e| self.values.id(e)).collect();
        self.initial = self.states.intern(ids);
        Ok(())
    }

    /// Whether `op` removes the head when it succeeds on a non-empty queue.
    fn pops(&self, op: usize) -> bool {
        matches!(self.ops[op], Op::Dequeue(_) | Op::DequeueAny)
    }
}

impl Machine for Queue {
    fn init(&mut self) -> u64 {
        self.initial
    }

    fn step(&mut self, state: u64, op: usize) -> Option<u64> {
        let cur = &self.states[state];
        match self.ops[op] {
            Op::Enqueue(v) => {
                let mut next = Vec::with_capacity(cur.len() + 1);
                next.extend_from_slice(cur);
                next.push(v);
                Some(self.states.intern(next))
            }
            Op::Dequeue(v) => match cur.first() {
                Some(&head) if head == v => {
                    let next = cur[1..].to_vec();
                    Some(self.states.intern(next))
                }
                _ => None,
            },
            Op::DequeueEmpty => cur.is_empty().then_some(state),
            Op::DequeueAny if cur.is_empty() => Some(state),
            Op::DequeueAny => {
                let next = cur[1..].to_vec();
                Some(self.states.intern(next))
            }
        }
    }

    fn read_only(&self, op: usize) -> bool {
        matches!(self.ops[op], Op::DequeueEmpty)
    }

    fn effect(&self, op: usize) -> Option<u64> {
        // Value ids are below 2^63 and nil (0) is never enqueued.
        match self.ops[op] {
            Op::Enqueue(v) => Some(v),
            Op::DequeueAny => Some(u64::MAX),
            Op::Dequeue(_) | Op::DequeueEmpty => None,
        }
    }

    fn lookahead(&self) -> Lookahead {
        Lookahead::Frontier
    }

    /// Dequeuing `v` needs every element ahead of its first copy popped first (and, if
    /// it is not queued, an enqueue of it and everything queued popped); seeing the queue
    /// empty needs everything queued popped. Only dequeues in between can pop.
    fn reachable(&mut self, state: u64, target: usize, between: &[usize]) -> bool {
        let cur = &self.states[state];
        let pops = between.iter().filter(|&&o| self.pops(o)).count();
        match self.ops[target] {
            Op::Dequeue(v) => match cur.iter().position(|&e| e == v) {
                Some(at) => at <= pops,
                None => cur.len() <= pops && between.iter().any(|&o| self.ops[o] == Op::Enqueue(v)),
            },
            Op::DequeueEmpty => cur.len() <= pops,
            Op::Enqueue(_) | Op::DequeueAny => true,
        }
    }

    fn producers(&self, target: usize) -> Vec<usize> {
        match self.ops[target] {
            Op::Dequeue(v) => (0..self.ops.len())
                .filter(|&o| self.ops[o] == Op::Enqueue(v) || self.pops(o) && o != target)
                .collect(),
            Op::DequeueEmpty => (0..self.ops.len()).filter(|&o| self.pops(o)).collect(),
            Op::Enqueue(_) | Op::DequeueAny => Vec::new(),
        }
    }

    fn state_bytes(&self) -> u64 {
        self.states.bytes()
    }

    fn state_json(&self, state: u64) -> Value {
        self.states.list_json(state, &self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::testing::op;
    use serde_json::json;

    #[test]
    fn dequeues_return_the_head_or_nil_when_empty() {
        let mut info = op(4, "dequeue", json!(null), json!(null));
        info.outcome = Outcome::Info;
        let ops = [
            op(0, "enqueue", json!(1), json!(1)),
            op(1, "enqueue", json!(2), json!(2)),
            op(2, "dequeue", json!(null), json!(2)),
            op(3, "dequeue", json!(null), json!(null)),
            info,
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut q = Queue::new(&refs).unwrap();
        let s0 = q.init();
        assert_eq!(q.step(s0, 3), Some(s0), "empty at first");
        assert_eq!(q.step(s0, 2), None);
        let s1 = q.step(s0, 0).unwrap();
        let s12 = q.step(s1, 1).unwrap();
        assert_eq!(q.state_json(s12), json!([1, 2]));
        assert_eq!(q.step(s12, 2), None, "2 is not the head");
        assert_eq!(q.step(s12, 3), None, "not empty");
        let s2 = q.step(s12, 4).unwrap();
        assert_eq!(q.state_json(s2), json!([2]));
        assert_eq!(q.step(s2, 2), Some(s0));
        assert_eq!(
            q.step(s0, 4),
            Some(s0),
            "an unknown dequeue of an empty queue"
        );
        assert!(!q.reachable(s12, 2, &[]), "1 is ahead of 2");
        assert!(q.reachable(s12, 2, &[4]));
        assert!(!q.reachable(s1, 3, &[]));
        assert!(!q.reachable(s0, 2, &[4]), "nothing in between enqueues 2");
        assert!(q.reachable(s0, 2, &[1]));
        assert_eq!(q.effect(0), Some(3), "the value id of 1");
        assert_eq!(q.effect(4), Some(u64::MAX));
        // [] [1] [1 2] [2]: four elements interned, each held twice.
        assert_eq!(q.state_bytes(), 4 * 16);
    }

    #[test]
    fn bad_ops_are_named() {
        let ops = [op(7, "enqueue", json!(null), json!(null))];
        let refs: Vec<&Operation> = ops.iter().collect();
        assert!(Queue::new(&refs).err().unwrap().starts_with("event 7:"));
        let ops = [op(3, "peek", json!(null), json!(1))];
        let refs: Vec<&Operation> = ops.iter().collect();
        assert!(Queue::new(&refs).err().unwrap().contains("\"peek\""));
    }

    #[test]
    fn fifo_order_and_unknown_outcomes_through_the_search() {
        use crate::Validity;
        use crate::linearizable::testing::history;
        use crate::linearizable::{Model, Options, check_with};
        let run = |text: &str| check_with(&history(text), &Options::new(Model::Queue));
        let v = run(
            "0 invoke enqueue 1; 0 ok enqueue 1; 0 invoke enqueue 2; 0 ok enqueue 2; \
             1 invoke dequeue nil; 1 ok dequeue 2",
        );
        assert_eq!(v.valid, Validity::Invalid);
        assert!(
            v.anomalies[0].description.contains("dequeue → 2"),
            "{}",
            v.anomalies[0].description
        );
        // An unknown dequeue invoked before may have removed 1.
        let v = run(
            "2 invoke dequeue nil; 0 invoke enqueue 1; 0 ok enqueue 1; 0 invoke enqueue 2; \
             0 ok enqueue 2; 1 invoke dequeue nil; 1 ok dequeue 2; 2 info dequeue nil",
        );
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        // An unknown enqueue may never have happened; an acknowledged one did.
        let v = run("0 invoke enqueue 1; 1 invoke dequeue nil; 1 ok dequeue nil; 0 info enqueue 1");
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        let v = run("0 invoke enqueue 1; 0 ok enqueue 1; 1 invoke dequeue nil; 1 ok dequeue nil");
        assert_eq!(v.valid, Validity::Invalid);
        // A failed enqueue did not happen.
        let v = run("0 invoke enqueue 1; 0 fail enqueue 1; 1 invoke dequeue nil; 1 ok dequeue 1");
        assert_eq!(v.valid, Validity::Invalid);
    }

    mod props {
        use crate::Validity;
        use crate::linearizable::{Model, Options, check_with};
        use faultline_history::Event;
        use faultline_history::EventType::{self, *};
        use faultline_history::testkit::push_client;
        use proptest::prelude::*;
        use rand::{RngExt, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        use serde_json::{Value, json};
        use std::collections::VecDeque;

        /// `procs` clients enqueueing unique values and dequeueing on a linearizable
        /// FIFO queue (each op takes effect at one instant between invoke and
        /// completion); some ops end `info`, applied or not, and some enqueues fail.
        pub fn simulate(seed: u64, procs: u64, ops: usize) -> Vec<Event> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut events = Vec::new();
            let mut q: VecDeque<Value> = VecDeque::new();
            let mut inflight: Vec<Option<(u64, &str, Value, bool)>> = vec![None; procs as usize];
            let mut pid: Vec<u64> = (0..procs).collect();
            let (mut next_pid, mut started, mut next_value) = (procs, 0, 0);
            let retire = |pid: &mut Vec<u64>, next_pid: &mut u64, slot: usize| {
                pid[slot] = *next_pid;
                *next_pid += 1;
            };
            while started < ops || inflight.iter().any(Option::is_some) {
                let slot = rng.random_range(0..procs as usize);
                match inflight[slot].take() {
                    None if started < ops => {
                        started += 1;
                        let (f, v) = if rng.random_bool(0.55) {
                            next_value += 1;
                            ("enqueue", json!(next_value))
                        } else {
                            ("dequeue", Value::Null)
                        };
                        push_client(&mut events, pid[slot], Invoke, f, None, v.clone());
                        inflight[slot] = Some((pid[slot], f, v, false));
                    }
                    None => {}
                    Some((p, f, v, false)) => {
                        if rng.random_bool(0.1) {
                            // Never takes effect: a failed enqueue, or an unapplied info.
                            let kind = if f == "enqueue" && rng.random_bool(0.5) {
                                Fail
                            } else {
                                Info
                            };
                            push_client(&mut events, p, kind, f, None, v.clone());
                            if kind == Info {
                                retire(&mut pid, &mut next_pid, slot);
                            }
                            continue;
                        }
                        let v = if f == "enqueue" {
                            q.push_back(v.clone());
                            v
                        } else {
                            q.pop_front().unwrap_or(Value::Null)
                        };
                        inflight[slot] = Some((p, f, v, true));
                    }
                    Some((p, f, v, true)) => {
                        let kind: EventType = if rng.random_bool(0.08) { Info } else { Ok };
                        let shown = if kind == Info && f == "dequeue" {
                            Value::Null
                        } else {
                            v
                        };
                        push_client(&mut events, p, kind, f, None, shown);
                        if kind == Info {
                            retire(&mut pid, &mut next_pid, slot);
                        }
                    }
                }
            }
            events
        }

        use faultline_history::testkit::history_of as history;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(150))]

            #[test]
            fn a_linearizable_queue_passes(seed: u64, procs in 1u64..5, ops in 1usize..40) {
                let v = check_with(&history(simulate(seed, procs, ops)), &Options::new(Model::Queue));
                prop_assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
            }

            #[test]
            fn a_duplicate_delivery_is_found(seed: u64, procs in 1u64..5, ops in 0usize..24) {
                let mut events = simulate(seed, procs, ops);
                // A duplicate delivery: a is enqueued once and dequeued twice. No order
                // explains it, whatever the unknown ops did.
                let mut p = 2000;
                let mut seq = |f: &str, inv: Value, out: Value, events: &mut Vec<Event>| {
                    push_client(events, p, Invoke, f, None, inv);
                    push_client(events, p, Ok, f, None, out);
                    p += 1;
                };
                seq("enqueue", json!("a"), json!("a"), &mut events);
                seq("dequeue", Value::Null, json!("a"), &mut events);
                seq("dequeue", Value::Null, json!("a"), &mut events);
                let v = check_with(&history(events), &Options::new(Model::Queue));
                prop_assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
                prop_assert_eq!(v.anomalies[0].kind.as_str(), "nonlinearizable");
            }
        }
    }
}
