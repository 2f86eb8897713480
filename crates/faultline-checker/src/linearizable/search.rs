//! The search for a linearization of one key's operations: Wing & Gong's algorithm as
//! Lowe improved it (and Porcupine implements it), with
//! - a memo of visited (linearized set, state) configurations kept as 128-bit
//!   fingerprints (see `fingerprint`), charged against the shared memory budget;
//! - Jepsen semantics: `info` ops return at the end of time, so they may be linearized
//!   anywhere after their call or never; the search succeeds once every `ok` op is placed;
//! - a model lookahead: after placing an op, the op that must be placed next (the
//!   earliest pending return) is asked whether it can still succeed from the new state
//!   given only the ops that may come before it (`Machine::reachable`). Dead branches
//!   are cut at once instead of after exploring every ordering of the ops in between,
//!   which is what makes Porcupine's hard kv keys take minutes;
//! - the deepest linearizable prefix kept for the witness.

use faultline_history::{Operation, Outcome};

use super::fingerprint::{self, FingerprintSet};
use super::limits::{Limits, Stop};
use super::model::{Lookahead, Machine, Pending};

const NONE: u32 = u32::MAX;

/// The deepest point the search reached on an invalid key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deepest {
    /// Ops placed, in order, each with the state after it.
    pub prefix: Vec<(usize, u64)>,
    /// The state after the prefix.
    pub state: u64,
    /// The op that had to be placed next and could not be.
    pub blocked: Option<usize>,
    /// Other unplaced ops that could have been placed before it.
    pub candidates: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Valid,
    Invalid(Deepest),
    Unknown(Stop),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Distinct configurations remembered.
    pub states: u64,
    /// Ops tried.
    pub steps: u64,
    /// Branches cut by the lookahead.
    pub pruned: u64,
}

/// The doubly linked list of call and return entries, in history order, from which
/// placed ops are lifted out (and put back when the search backtracks).
pub struct Entries {
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// For a call entry, its return entry.
    partner: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

impl Entries {
    fn build(ops: &[&Operation]) -> Self {
        // Order by event index; info ops return after everything, in call order.
        let mut order: Vec<(u64, u32, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, i as u32, true));
            let ret = match (op.outcome, op.ret) {
                (Outcome::Ok, Some(r)) => r,
                _ => u64::MAX / 2 + op.call,
            };
            order.push((ret, i as u32, false));
        }
        order.sort_unstable();
        let n = order.len();
        let mut e = Entries {
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            partner: vec![NONE; n],
            next: Vec::with_capacity(n + 1),
            prev: Vec::with_capacity(n + 1),
            head: n as u32,
        };
        let mut call_of = vec![NONE; ops.len()];
        for (id, &(_, op, is_call)) in order.iter().enumerate() {
            e.op.push(op);
            e.is_call.push(is_call);
            if is_call {
                call_of[op as usize] = id as u32;
            } else {
                e.partner[call_of[op as usize] as usize] = id as u32;
            }
        }
        for id in 0..n {
            e.next.push(if id + 1 < n { id as u32 + 1 } else { NONE });
            e.prev.push(if id == 0 { n as u32 } else { id as u32 - 1 });
        }
        e.next.push(if n > 0 { 0 } else { NONE });
        e.prev.push(NONE);
        e
    }

    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        if n != NONE {
            self.prev[n as usize] = x;
        }
    }

    /// Removes a call entry and its return.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        self.unlink(self.partner[call as usize]);
    }

    /// Undoes `lift`, in reverse order.
    fn unlift(&mut self, call: u32) {
        self.relink(self.partner[call as usize]);
        self.relink(call);
    }

    /// Walks from the head: the ops of the call entries before the first return entry,
    /// and that return entry (or NONE).
    fn frontier(&self, between: &mut Vec<usize>) -> u32 {
        between.clear();
        let mut e = self.next[self.head as usize];
        while e != NONE && self.is_call[e as usize] {
            between.push(self.op[e as usize] as usize);
            e = self.next[e as usize];
        }
        e
    }
}

/// The pending entries from the head of the list, for `Machine::scan`.
pub struct Walk<'a> {
    list: &'a Entries,
    at: u32,
    is_ok: &'a [bool],
}

impl Iterator for Walk<'_> {
    type Item = Pending;
    #[inline]
    fn next(&mut self) -> Option<Pending> {
        if self.at == NONE {
            return None;
        }
        let e = self.at as usize;
        self.at = self.list.next[e];
        let op = self.list.op[e] as usize;
        Some(Pending {
            op,
            call: self.list.is_call[e],
            ok: self.is_ok[op],
        })
    }
}

/// Searches for a linearization of `ops` (one key's ops in call order, without the ones
/// the model ignores). `bytes_per_state` is what the model allocates per new state, for
/// the memory budget.
pub fn search<M: Machine>(
    m: &mut M,
    ops: &[&Operation],
    limits: &Limits,
    bytes_per_state: u64,
) -> (Decision, SearchStats) {
    let mut stats = SearchStats::default();
    let mut charged = 0u64;
    let result = run(m, ops, limits, bytes_per_state, &mut stats, &mut charged);
    limits.release(charged);
    (result, stats)
}

fn run<M: Machine>(
    m: &mut M,
    ops: &[&Operation],
    limits: &Limits,
    bytes_per_state: u64,
    stats: &mut SearchStats,
    charged: &mut u64,
) -> Decision {
    let mut remaining_ok = ops.iter().filter(|o| o.outcome == Outcome::Ok).count();
    if remaining_ok == 0 {
        return Decision::Valid;
    }
    // What the model's own state table held when last charged.
    let mut model_charged = m.state_bytes();
    let mut list = Entries::build(ops);
    let keys = fingerprint::op_keys(ops.len());
    let is_ok: Vec<bool> = ops.iter().map(|o| o.outcome == Outcome::Ok).collect();
    let read_only: Vec<bool> = (0..ops.len()).map(|o| m.read_only(o)).collect();
    // Unknown-outcome ops of equal effect are placed in call order only: (class, rank).
    let mut class_of: Vec<Option<(u32, u32)>> = vec![None; ops.len()];
    let mut placed_in_class: Vec<u32> = Vec::new();
    {
        let mut classes: std::collections::HashMap<u64, (u32, u32)> = Default::default();
        for (o, op) in ops.iter().enumerate() {
            if op.outcome == Outcome::Ok {
                continue;
            }
            if let Some(effect) = m.effect(o) {
                let next = classes.len() as u32;
                let slot = classes.entry(effect).or_insert((next, 0));
                class_of[o] = Some(*slot);
                slot.1 += 1;
            }
        }
        placed_in_class.resize(classes.len(), 0);
    }
    let lookahead = m.lookahead();
    let mut cache = FingerprintSet::default();
    // (call entry, state before it, placed greedily)
    let mut stack: Vec<(u32, u64, bool)> = Vec::new();
    let mut between = Vec::new();
    let mut deepest = Deepest::default();
    let mut state = m.init();
    let mut lin: u128 = 0;
    let mut entry = list.next[list.head as usize];
    record(&mut deepest, &stack, state, &list, &mut between);
    // The deepest prefix is copied out only when the search turns back from a new
    // peak, so a search that never backtracks (most valid keys) copies nothing.
    let mut best_len = 0usize;
    let mut peak_pending = false;

    loop {
        if entry == NONE {
            return Decision::Valid;
        }
        stats.steps += 1;
        if stats.steps & 0xFFF == 0 {
            stats.states = cache.len() as u64;
            if let Err(stop) = limits.check() {
                return Decision::Unknown(stop);
            }
        }
        let e = entry as usize;
        let op = list.op[e] as usize;
        // Whether the configuration we are in is known dead: backtrack.
        let mut dead = !list.is_call[e];
        let out_of_turn = class_of[op].is_some_and(|(c, rank)| placed_in_class[c as usize] != rank);
        if list.is_call[e] && out_of_turn {
            entry = list.next[e];
            continue;
        }
        if list.is_call[e] {
            if let Some(next_state) = m.step(state, op) {
                // A read-only op that succeeds now can always be placed now: moving it to
                // the front of any completion changes no state and breaks no real-time
                // order (every pending op returns after its call). So placing it is the
                // only branch worth exploring, and if that branch dies, so does this one.
                let greedy = read_only[op];
                let next_lin = lin ^ keys[op];
                if cache.len() == cache.capacity() {
                    let cap = cache.capacity().max(512);
                    let grow = fingerprint::set_bytes(cap * 2)
                        - fingerprint::set_bytes(cache.capacity())
                        + cap as u64 * bytes_per_state;
                    // States whose size grows with the history (a queue's contents) are
                    // charged as the model reports them.
                    let model_now = m.state_bytes();
                    let grow = grow + model_now.saturating_sub(model_charged);
                    model_charged = model_charged.max(model_now);
                    if !limits.reserve(grow) {
                        stats.states = cache.len() as u64;
                        return Decision::Unknown(Stop::MemoryLimit);
                    }
                    *charged += grow;
                    cache.reserve(cap);
                }
                if cache.insert(next_lin ^ fingerprint::state_key(next_state)) {
                    list.lift(entry);
                    stack.push((entry, state, greedy));
                    let live = match lookahead {
                        Lookahead::None => true,
                        Lookahead::Frontier => {
                            let r = list.frontier(&mut between);
                            r == NONE || !is_ok[list.op[r as usize] as usize] || {
                                let target = list.op[r as usize] as usize;
                                between.retain(|&o| o != target);
                                m.reachable(next_state, target, &between)
                            }
                        }
                        // After a read-only op the state and the pending puts are as
                        // they were, and the pending gets a subset: the last scan holds.
                        Lookahead::Scan if greedy => true,
                        Lookahead::Scan => {
                            let walk = Walk {
                                list: &list,
                                at: list.next[list.head as usize],
                                is_ok: &is_ok,
                            };
                            m.scan(next_state, walk)
                        }
                    };
                    if live {
                        if let Some((c, _)) = class_of[op] {
                            placed_in_class[c as usize] += 1;
                        }
                        if stack.len() > best_len {
                            best_len = stack.len();
                            peak_pending = true;
                        }
                        state = next_state;
                        lin = next_lin;
                        if is_ok[op] {
                            remaining_ok -= 1;
                            if remaining_ok == 0 {
                                stats.states = cache.len() as u64;
                                return Decision::Valid;
                            }
                        }
                        entry = list.next[list.head as usize];
                        continue;
                    }
                    stats.pruned += 1;
                    if stack.len() > best_len {
                        // A linearizable prefix the lookahead proved to be a dead end.
                        best_len = stack.len();
                        peak_pending = false;
                        record(&mut deepest, &stack, next_state, &list, &mut between);
                    }
                    stack.pop();
                    list.unlift(entry);
                }
                // Placing a greedy op leads nowhere (pruned, or already explored): the
                // configuration it was placed from is dead too.
                dead = greedy;
            }
            if !dead {
                entry = list.next[e];
                continue;
            }
        }
        // Backtrack: a return entry was reached (its op had to be placed by now), or a
        // greedy op proved this configuration dead.
        if !list.is_call[e] && !is_ok[op] {
            stats.states = cache.len() as u64;
            return Decision::Valid; // only info ops remain, and they may never happen
        }
        if peak_pending {
            peak_pending = false;
            record(&mut deepest, &stack, state, &list, &mut between);
        }
        loop {
            let Some((call, prev_state, greedy)) = stack.pop() else {
                stats.states = cache.len() as u64;
                return Decision::Invalid(deepest);
            };
            let undone = list.op[call as usize] as usize;
            if is_ok[undone] {
                remaining_ok += 1;
            }
            if let Some((c, _)) = class_of[undone] {
                placed_in_class[c as usize] -= 1;
            }
            state = prev_state;
            lin ^= keys[undone];
            list.unlift(call);
            entry = list.next[call as usize];
            if !greedy {
                break;
            }
        }
    }
}

fn record(
    deepest: &mut Deepest,
    stack: &[(u32, u64, bool)],
    state: u64,
    list: &Entries,
    between: &mut Vec<usize>,
) {
    // States after each op: the state before the next one, and `state` for the last.
    deepest.prefix.clear();
    for (i, &(call, _, _)) in stack.iter().enumerate() {
        let after = stack.get(i + 1).map_or(state, |&(_, before, _)| before);
        deepest
            .prefix
            .push((list.op[call as usize] as usize, after));
    }
    deepest.state = state;
    let r = list.frontier(between);
    deepest.blocked = (r != NONE).then(|| list.op[r as usize] as usize);
    deepest.candidates = between
        .iter()
        .copied()
        .filter(|&o| Some(o) != deepest.blocked)
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Budget;
    use crate::linearizable::register::Register;
    use crate::linearizable::testing::{history, kept};
    use std::time::Instant;

    fn decide(text: &str) -> (Decision, SearchStats) {
        let h = history(text);
        let ops = kept(&h);
        let mut m = Register::new(&ops, true).unwrap();
        let limits = Limits::new(&Budget::default(), Instant::now());
        search(&mut m, &ops, &limits, 0)
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        // p0 writes 1; p1 reads 1 concurrently; valid.
        let (d, _) = decide("0 invoke write 1; 1 invoke read nil; 1 ok read 1; 0 ok write 1");
        assert_eq!(d, Decision::Valid);
        // A read of 1 strictly before the write of 1 began.
        let (d, _) = decide("1 invoke read nil; 1 ok read 1; 0 invoke write 1; 0 ok write 1");
        let Decision::Invalid(deep) = d else {
            panic!("expected invalid, got {d:?}")
        };
        assert_eq!(deep.blocked, Some(0), "the read cannot be placed");
        assert!(deep.prefix.is_empty());
    }

    #[test]
    fn info_ops_may_happen_late_or_never() {
        // An info write may take effect after a later read.
        let (d, _) = decide(
            "0 invoke write 1; 0 info write 1; 1 invoke read nil; 1 ok read nil; 2 invoke read nil; 2 ok read 1",
        );
        assert_eq!(d, Decision::Valid);
        // A failed write did not happen.
        let (d, _) = decide("0 invoke write 1; 0 fail write 1; 1 invoke read nil; 1 ok read 1");
        assert!(matches!(d, Decision::Invalid(_)), "{d:?}");
    }

    #[test]
    fn interchangeable_info_ops() {
        // Two unknown-outcome writes of 1: either may land after the write of 2.
        let base = "0 invoke write 1; 0 info write 1; 1 invoke write 1; 1 info write 1; \
                    2 invoke write 2; 2 ok write 2; 3 invoke read nil; 3 ok read 1";
        assert_eq!(decide(base).0, Decision::Valid);
        // Both may land, one after the other, but nothing writes 2 again.
        let (d, _) = decide(&format!("{base}; 4 invoke read nil; 4 ok read 2"));
        assert!(matches!(d, Decision::Invalid(_)), "{d:?}");
        let (d, _) = decide(&format!(
            "{base}; 4 invoke read nil; 4 ok read 1; 5 invoke read nil; 5 ok read 1"
        ));
        assert_eq!(d, Decision::Valid);
    }

    #[test]
    fn stale_read_deepest_prefix() {
        let (d, stats) = decide(
            "0 invoke write 1; 0 ok write 1; 0 invoke write 2; 0 ok write 2; 1 invoke read nil; 1 ok read 1",
        );
        let Decision::Invalid(deep) = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            deep.prefix.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(deep.blocked, Some(2));
        assert!(stats.states >= 2);
    }
}
