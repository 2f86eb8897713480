//! `sibling-lost-writes`: a store that keeps concurrent writes as siblings (vector clocks)
//! must not lose an acknowledged one. Per key, the last successful read (the final read,
//! after heal and quiescence) returns the sibling set: a list of values, or one value.
//!
//! - A blind `add` never supersedes anything, so every acknowledged add that completed
//!   before the final read began must be in it.
//! - A `write` may supersede the versions it saw; it can only have seen writes that took
//!   effect before it completed. So an acknowledged write is accounted for if it is in
//!   the final set, or some write that did not fail and completed after it was invoked
//!   is accounted for (transitively). Writes still unresolved at the final read (running,
//!   `info`, or completed after it began) count as accounted. Sound for any causal store;
//!   it can miss a loss that a later write could have hidden.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::set::{final_read, key_text, preview};
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "sibling-lost-writes";

/// The values of a sibling set: a list's elements, one value, or none for `null`.
pub fn siblings(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::Array(xs) => xs.iter().map(Value::to_string).collect(),
        one => vec![one.to_string()],
    }
}

/// Acknowledged writes of `writes` neither in `present` nor superseded, per the rule above.
fn unaccounted<'a>(
    writes: &[&'a Operation],
    present: &HashSet<String>,
    final_call: u64,
) -> Vec<&'a Operation> {
    let resolved =
        |o: &Operation| o.outcome == Outcome::Ok && o.ret.is_some_and(|r| r < final_call);
    let mut accounted: Vec<bool> = writes
        .iter()
        .map(|o| present.contains(&o.invoke_value.to_string()) || !resolved(o))
        .collect();
    // The latest completion among accounted writes (unresolved ones: never completed).
    let reach = |acc: &[bool]| {
        writes
            .iter()
            .zip(acc)
            .filter(|(_, a)| **a)
            .map(|(o, _)| o.ret.unwrap_or(u64::MAX))
            .max()
    };
    while let Some(horizon) = reach(&accounted) {
        let mut changed = false;
        for (o, a) in writes.iter().zip(accounted.iter_mut()) {
            if !*a && o.call < horizon {
                *a = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    writes
        .iter()
        .zip(&accounted)
        .filter(|(o, a)| !**a && o.outcome == Outcome::Ok)
        .map(|(o, _)| *o)
        .collect()
}

pub fn check(h: &History) -> Verdict {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let (mut acked, mut keys) = (0usize, 0usize);
    for (key, ops) in h.by_key() {
        let writes: Vec<&Operation> = ops
            .iter()
            .filter(|o| o.f == "write" && o.outcome != Outcome::Fail)
            .copied()
            .collect();
        let adds: Vec<&Operation> = ops.iter().filter(|o| o.f == "add").copied().collect();
        if writes.is_empty() && adds.is_empty() {
            continue;
        }
        let Some(read) = final_read(&ops) else {
            undecided.push(key_text(&key));
            continue;
        };
        keys += 1;
        acked += writes
            .iter()
            .chain(&adds)
            .filter(|o| o.outcome == Outcome::Ok)
            .count();
        let present: HashSet<String> = siblings(&read.value).into_iter().collect();
        let mut lost = unaccounted(&writes, &present, read.call);
        lost.extend(crate::set::lost(&adds, "add", read));
        if !lost.is_empty() {
            let vals: Vec<String> = lost.iter().map(|o| o.invoke_value.to_string()).collect();
            anomalies.push(Anomaly {
                kind: "lost-sibling".into(),
                key: key.clone(),
                description: format!(
                    "{}: {} acknowledged write(s) are neither in the final sibling set {} (read at events {}-{}) nor superseded by a later write that is: {}",
                    key_text(&key),
                    lost.len(),
                    read.value,
                    read.call,
                    read.ret.unwrap_or(read.call),
                    preview(&vals)
                ),
                events: lost.iter().filter_map(|o| o.ret).chain(read.ret).collect(),
                data: json!({"lost": vals, "final_read": read.call}),
            });
        }
    }
    let valid = if !anomalies.is_empty() {
        Validity::Invalid
    } else if !undecided.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let explanation = match valid {
        Validity::Valid => format!("{acked} acknowledged writes on {keys} keys all accounted for"),
        Validity::Invalid => format!(
            "{} key(s) lost acknowledged sibling writes",
            anomalies.len()
        ),
        Validity::Unknown => format!("no successful final read for {}", preview(&undecided)),
    };
    Verdict {
        checker: NAME.into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"keys": keys, "acknowledged": acked, "undecided": undecided.len()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::{Event, EventType};
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// An op in flight: (process, f, value, context, effected).
    type Inflight<'a> = Option<(u64, &'a str, String, Vec<String>, bool)>;

    /// A simulated sibling store: a write reads the versions at invoke (its context) and
    /// at its effect replaces what it saw by its own value; an add only adds. The final
    /// read returns the siblings; with `drop`, one acknowledged sibling silently vanishes
    /// before it (if any can).
    fn sibling_store(
        seed: u64,
        procs: u64,
        ops: usize,
        adds: bool,
        drop: bool,
    ) -> (Vec<Event>, bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut state: Vec<String> = Vec::new();
        let mut inflight: Vec<Inflight> = (0..procs).map(|_| None).collect();
        let mut acked: Vec<String> = Vec::new();
        let mut started = 0;
        let mut push = |p: u64, kind: EventType, f: &str, v: Value| {
            faultline_history::testkit::push_client(&mut events, p, kind, f, Some("k"), v);
        };
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    let f = if adds { "add" } else { "write" };
                    let v = format!("{started}");
                    push(slot as u64, EventType::Invoke, f, json!(v));
                    inflight[slot] = Some((slot as u64, f, v, state.clone(), false));
                }
                None => {}
                Some((p, f, v, ctx, false)) if rng.random_bool(0.5) => {
                    if f == "write" {
                        state.retain(|s| !ctx.contains(s));
                    }
                    state.push(v.clone());
                    inflight[slot] = Some((p, f, v, ctx, true));
                }
                Some(op @ (_, _, _, _, false)) => inflight[slot] = Some(op),
                Some((p, f, v, _, true)) => {
                    push(p, EventType::Ok, f, json!(v));
                    acked.push(v);
                }
            }
        }
        let mut dropped = false;
        if drop && let Some(i) = state.iter().position(|s| acked.contains(s)) {
            state.remove(i);
            dropped = true;
        }
        let p = procs + 1;
        push(p, EventType::Invoke, "read", Value::Null);
        let vals: Vec<Value> = state.iter().map(|s| json!(s)).collect();
        push(p, EventType::Ok, "read", Value::Array(vals));
        (events, dropped)
    }

    use faultline_history::testkit::history_of as history;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_causal_sibling_store_loses_nothing(seed: u64, procs in 1u64..6, ops in 1usize..40, adds: bool) {
            let (events, _) = sibling_store(seed, procs, ops, adds, false);
            let v = check(&history(events));
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn a_dropped_blind_add_is_caught(seed: u64, procs in 1u64..6, ops in 1usize..40) {
            let (events, dropped) = sibling_store(seed, procs, ops, true, true);
            prop_assert!(dropped);
            let v = check(&history(events));
            prop_assert_eq!(v.valid, Validity::Invalid);
        }

        #[test]
        fn a_dropped_last_sibling_is_caught(seed: u64, procs in 1u64..6, ops in 1usize..40) {
            // Dropping a sibling that no later-completing write could hide is a loss:
            // here, every sibling of the final set, so the read is empty.
            let (mut events, _) = sibling_store(seed, procs, ops, false, false);
            let last = events.last_mut().unwrap();
            last.value = json!([]);
            let v = check(&history(events));
            prop_assert_eq!(v.valid, Validity::Invalid);
        }
    }
}
