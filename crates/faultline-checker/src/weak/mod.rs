//! Checkers for what weaker-than-linearizable stores (Dynamo-style quorums) promise:
//! `read-after-write` (a multi-writer regular register, Garage's Jepsen model),
//! `monotonic-reads` per client session, `sibling-lost-writes`, `convergence` of the
//! replicas' final state, and the `staleness` figure.
//!
//! A value written more than once on a key has several candidate sources; a read is
//! judged by the most favourable one, so duplicates can hide an anomaly but never invent
//! one. A read of a value no write wrote is reported, never guessed.

pub mod convergence;
pub mod monotonic_reads;
pub mod read_after_write;
pub mod siblings;
pub mod staleness;

use std::collections::HashMap;

use faultline_history::{Operation, Outcome};

/// Where a read's value came from: the initial `null`, a known write, or nowhere.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source<'a> {
    Initial,
    /// Every write (not definitely failed) of the value, in invocation order.
    Write(Vec<&'a Operation>),
    Unknown,
}

/// One key's writes, indexed for the questions these checkers ask.
pub(crate) struct Writes<'a> {
    by_value: HashMap<String, Vec<&'a Operation>>,
    /// Acknowledged writes sorted by completion, with the running maximum of their
    /// invocation index: "the latest-starting write that completed before event e".
    by_ret: Vec<(u64, u64, &'a Operation)>,
}

impl<'a> Writes<'a> {
    /// Every `write` of `ops` that did not definitely fail.
    pub(crate) fn new(ops: &[&'a Operation]) -> Writes<'a> {
        let writes: Vec<&Operation> = ops
            .iter()
            .filter(|o| o.f == "write" && o.outcome != Outcome::Fail)
            .copied()
            .collect();
        let mut by_value: HashMap<String, Vec<&Operation>> = HashMap::new();
        for o in &writes {
            by_value
                .entry(o.invoke_value.to_string())
                .or_default()
                .push(o);
        }
        let mut acked: Vec<&Operation> = writes
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .copied()
            .collect();
        acked.sort_by_key(|o| o.ret);
        let mut best = 0u64;
        let by_ret = acked
            .into_iter()
            .map(|o| {
                let ret = o.ret.expect("ok ops have completed");
                best = best.max(o.call);
                (ret, best, o)
            })
            .collect();
        Writes { by_value, by_ret }
    }

    /// The write a read's value came from.
    pub(crate) fn source(&self, read_value: &serde_json::Value) -> Source<'a> {
        if read_value.is_null() {
            return Source::Initial;
        }
        self.by_value
            .get(&read_value.to_string())
            .map_or(Source::Unknown, |ws| Source::Write(ws.clone()))
    }

    /// Acknowledged writes that completed before event `before` (a read's invocation).
    pub(crate) fn completed_before(&self, before: u64) -> &[(u64, u64, &'a Operation)] {
        let n = self.by_ret.partition_point(|(ret, _, _)| *ret < before);
        &self.by_ret[..n]
    }

    /// Acknowledged writes that definitely overwrote `source` before event `before`: they
    /// began after `source` completed and completed before `before`. Empty means a
    /// read invoked at `before` may return `source` under a regular register.
    /// For several candidate sources, the fewest of any candidate invoked before `until`
    /// (a read's completion); `None` if every candidate was invoked later.
    pub(crate) fn overwriters(
        &self,
        source: &Source<'a>,
        before: u64,
        until: u64,
    ) -> Option<Vec<&'a Operation>> {
        match source {
            Source::Write(ws) => ws
                .iter()
                .filter(|w| w.call < until)
                .map(|w| self.overwriters_of(Some(w), before))
                .min_by_key(Vec::len),
            Source::Initial => Some(self.overwriters_of(None, before)),
            Source::Unknown => Some(vec![]),
        }
    }

    /// `w = None` is the initial state.
    fn overwriters_of(&self, w: Option<&'a Operation>, before: u64) -> Vec<&'a Operation> {
        let done = self.completed_before(before);
        match w {
            None => done.iter().map(|(_, _, o)| *o).collect(),
            Some(w) => {
                // An info or still-running source never definitely completed, so
                // nothing definitely overwrote it.
                let Some(w_ret) = w.ret.filter(|_| w.outcome == Outcome::Ok) else {
                    return vec![];
                };
                if done
                    .last()
                    .is_none_or(|(_, max_call, _)| *max_call <= w_ret)
                {
                    return vec![];
                }
                done.iter()
                    .filter(|(_, _, o)| o.call > w_ret)
                    .map(|(_, _, o)| *o)
                    .collect()
            }
        }
    }
}

/// Test histories built by construction, shared by the checkers' property tests.
#[cfg(test)]
pub(crate) mod histories {

    use faultline_history::{Event, EventType, Process};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::{Value, json};

    /// What a simulated op does when it takes effect.
    #[derive(Clone, Copy, PartialEq)]
    pub enum Store {
        /// An atomic register: every read sees the latest effect (linearizable).
        Atomic,
        /// A regular register: a read returns the latest write completed before it
        /// began or any write concurrent with it.
        Regular,
    }

    struct Op {
        process: u64,
        f: &'static str,
        value: Value,
        invoked_at: u64,
        effected: bool,
    }

    /// `procs` clients doing `ops` reads and writes (unique values) on key `k` of a
    /// simulated store; some writes end `info` or `fail`. Every op completes.
    pub fn register(seed: u64, procs: u64, ops: usize, store: Store) -> Vec<Event> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events: Vec<Event> = Vec::new();
        let mut inflight: Vec<Option<Op>> = (0..procs).map(|_| None).collect();
        let mut pid: Vec<u64> = (0..procs).collect();
        let mut next_pid = procs;
        let mut current = Value::Null;
        // (value, invoke event, completion event or None while running, effected)
        let mut writes: Vec<(Value, u64, Option<u64>)> = Vec::new();
        let mut started = 0;
        let mut next_value = 1;
        let push = |events: &mut Vec<Event>, p: u64, kind: EventType, f: &str, v: Value| {
            faultline_history::testkit::push_client(events, p, kind, f, Some("k"), v)
        };
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            let p = pid[slot];
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    let (f, v) = if rng.random_bool(0.5) {
                        next_value += 1;
                        ("write", json!(next_value))
                    } else {
                        ("read", Value::Null)
                    };
                    let at = push(&mut events, p, EventType::Invoke, f, v.clone());
                    if f == "write" {
                        writes.push((v.clone(), at, None));
                    }
                    inflight[slot] = Some(Op {
                        process: p,
                        f,
                        value: v,
                        invoked_at: at,
                        effected: false,
                    });
                }
                None => {}
                Some(mut op) if !op.effected && rng.random_bool(0.5) => {
                    // The linearization point (or, for a regular read, the choice).
                    op.effected = true;
                    if op.f == "write" {
                        current = op.value.clone();
                    } else {
                        op.value = match store {
                            Store::Atomic => current.clone(),
                            Store::Regular => {
                                regular_choice(&mut rng, &writes, op.invoked_at, &current)
                            }
                        };
                    }
                    inflight[slot] = Some(op);
                }
                Some(op) if !op.effected => inflight[slot] = Some(op),
                Some(op) => {
                    let roll: f64 = rng.random();
                    let (kind, v) = if op.f == "write" && roll < 0.1 {
                        (EventType::Info, op_value(&op))
                    } else {
                        (EventType::Ok, op.value.clone())
                    };
                    let at = push(&mut events, op.process, kind, op.f, v);
                    if op.f == "write"
                        && let Some(w) = writes.iter_mut().find(|w| w.1 == op.invoked_at)
                    {
                        w.2 = (kind == EventType::Ok).then_some(at);
                    }
                    if kind == EventType::Info {
                        pid[slot] = next_pid;
                        next_pid += 1;
                    }
                }
            }
        }
        events
    }

    fn op_value(op: &Op) -> Value {
        op.value.clone()
    }

    /// A regular read invoked at `invoked`: the newest write completed before it (by
    /// real-time: any not definitely overwritten), or one still running, or `current`.
    fn regular_choice(
        rng: &mut ChaCha8Rng,
        writes: &[(Value, u64, Option<u64>)],
        invoked: u64,
        current: &Value,
    ) -> Value {
        let done: Vec<&(Value, u64, Option<u64>)> = writes
            .iter()
            .filter(|w| w.2.is_some_and(|r| r < invoked))
            .collect();
        let latest_start = done.iter().map(|w| w.1).max();
        let mut allowed: Vec<Value> = writes
            .iter()
            .filter(|w| match w.2 {
                // Completed before the read began: allowed unless overwritten by a
                // write that began after it and also completed before the read.
                Some(r) if r < invoked => latest_start.is_none_or(|s| s <= r),
                // Running or completed during the read, and already invoked.
                _ => true,
            })
            .map(|w| w.0.clone())
            .collect();
        if done.is_empty() {
            allowed.push(Value::Null);
        }
        allowed.push(current.clone());
        allowed[rng.random_range(0..allowed.len())].clone()
    }

    pub use faultline_history::testkit::history_of as history;

    /// Appends, after everything else completed, `tail` as sequential ops on key `k`:
    /// `(process, f, invoke value, ok value)`.
    pub fn append_sequential(events: &mut Vec<Event>, tail: &[(u64, &str, Value, Value)]) {
        for (p, f, inv, ok) in tail {
            for (kind, v) in [(EventType::Invoke, inv), (EventType::Ok, ok)] {
                let i = events.len() as u64;
                events.push(Event {
                    request_id: None,
                    index: i,
                    time: i * 1000,
                    process: Process::Client(*p),
                    kind,
                    f: f.to_string(),
                    key: Some("k".into()),
                    value: v.clone(),
                    node: None,
                    error: None,
                });
            }
        }
    }

    /// A process id no op of `events` uses.
    pub fn fresh_process(events: &[Event]) -> u64 {
        events
            .iter()
            .filter_map(|e| match e.process {
                Process::Client(p) => Some(p + 1),
                Process::Named(_) => None,
            })
            .max()
            .unwrap_or(0)
            + 1000
    }
}
