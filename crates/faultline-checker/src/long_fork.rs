//! `long-fork`: Jepsen's long-fork checker (`jepsen.tests.long-fork`, the anomaly parallel
//! snapshot isolation allows and snapshot isolation forbids). Each key is written at most
//! once (`[[:w k v]]`), so a read of a key either saw its write or did not. Snapshot
//! isolation orders all writes, and every read-only transaction sees a prefix of that
//! order: of two reads, one must have seen every write the other saw, on the keys both
//! read. A long fork is two `ok` read-only transactions where each saw a write the other
//! did not: they observed the writes in incompatible orders.
//!
//! Jepsen compares only reads of exactly the same keys (its generator reads fixed
//! groups); this compares any two reads on the keys they share, which finds the same
//! forks in Jepsen's histories and more in others. A key written twice, or read with two
//! different values, breaks the checker's premise and is bad input.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::bad_op::BadOp;
use crate::set::preview;
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "long-fork";

/// At most this many forks are reported as anomalies; all are counted.
const MAX_REPORTED: usize = 100;

/// A micro-op: read (`r`) or write (`w`), key, value.
fn mops<'a>(op: &'a Operation, v: &'a Value) -> Result<Vec<(bool, &'a Value, &'a Value)>, BadOp> {
    let bad = |what: String| BadOp::new(op, what);
    let list = v.as_array().ok_or_else(|| {
        bad(format!(
            "a long-fork op's value is a list of [f k v] micro-ops, found {v}"
        ))
    })?;
    list.iter()
        .map(|m| match m.as_array().map(Vec::as_slice) {
            Some([f, k, v]) => match f.as_str() {
                Some("r" | "read") => Ok((true, k, v)),
                Some("w" | "write") => Ok((false, k, v)),
                _ => Err(bad(format!("long-fork knows r and w micro-ops, not {f}"))),
            },
            _ => Err(bad(format!("a micro-op is [f k v], found {m}"))),
        })
        .collect()
}

/// A key as people write it: strings without quotes.
fn key_words(k: &str) -> String {
    match serde_json::from_str::<Value>(k) {
        Ok(Value::String(s)) => s,
        _ => k.to_string(),
    }
}

struct Read<'a> {
    op: &'a Operation,
    /// (key id, saw the write), sorted by key id.
    seen: Vec<(u32, bool)>,
}

pub fn check(h: &History) -> Result<Verdict, BadOp> {
    let start = std::time::Instant::now();
    let mut key_ids: HashMap<String, u32> = HashMap::new();
    let mut keys: Vec<String> = Vec::new();
    // key id -> (the one value written or seen, the op that fixed it, whether a write)
    let mut value_of: Vec<Option<(String, u64, bool)>> = Vec::new();
    let mut id = |k: &Value, keys: &mut Vec<String>, value_of: &mut Vec<_>| -> u32 {
        let text = k.to_string();
        *key_ids.entry(text.clone()).or_insert_with(|| {
            keys.push(text);
            value_of.push(None);
            keys.len() as u32 - 1
        })
    };
    let mut reads: Vec<Read> = Vec::new();
    let mut writes = 0usize;
    for op in &h.operations {
        // Writes: every op not known to have failed (what it asked for).
        if op.outcome != Outcome::Fail {
            for (is_read, k, v) in mops(op, &op.invoke_value)? {
                if is_read {
                    continue;
                }
                if v.is_null() {
                    return Err(BadOp::new(
                        op,
                        "a write of nil cannot be told from no write",
                    ));
                }
                writes += 1;
                let k = id(k, &mut keys, &mut value_of);
                match &value_of[k as usize] {
                    Some((_, at, true)) => {
                        return Err(BadOp::new(
                            op,
                            format!(
                                "key {} is written again (first by the op at event {at}); long-fork needs each key written at most once",
                                key_words(&keys[k as usize])
                            ),
                        ));
                    }
                    _ => value_of[k as usize] = Some((v.to_string(), op.call, true)),
                }
            }
        }
        if op.outcome != Outcome::Ok {
            continue;
        }
        let ms = mops(op, &op.value)?;
        if ms.is_empty() || ms.iter().any(|m| !m.0) {
            continue; // only read-only transactions are compared
        }
        let mut seen = Vec::with_capacity(ms.len());
        for (_, k, v) in ms {
            let k = id(k, &mut keys, &mut value_of);
            seen.push((k, !v.is_null()));
        }
        seen.sort_unstable();
        seen.dedup_by_key(|s| s.0);
        reads.push(Read { op, seen });
    }
    // Every non-nil value read must be the key's one value.
    for r in &reads {
        for (is_read, k, v) in mops(r.op, &r.op.value)? {
            if !is_read || v.is_null() {
                continue;
            }
            let k = key_ids[&k.to_string()] as usize;
            let text = v.to_string();
            match &value_of[k] {
                None => value_of[k] = Some((text, r.op.call, false)),
                Some((w, at, write)) if *w != text => {
                    let source = if *write { "written" } else { "read" };
                    return Err(BadOp::new(
                        r.op,
                        format!(
                            "read {text} from key {}, which was {source} as {w} by the op at event {at}; long-fork needs a single value per key",
                            key_words(&keys[k])
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let early = reads.iter().filter(|r| r.seen.iter().all(|s| !s.1)).count();
    let late = reads.iter().filter(|r| r.seen.iter().all(|s| s.1)).count();
    // Reads that saw the same thing are one class; compare one read of each.
    let mut classes: Vec<usize> = Vec::new();
    let mut class_of: HashMap<&[(u32, bool)], usize> = HashMap::new();
    for (i, r) in reads.iter().enumerate() {
        class_of.entry(&r.seen).or_insert_with(|| {
            classes.push(i);
            i
        });
    }
    let mut anomalies = Vec::new();
    let mut forks = 0usize;
    for (x, &a) in classes.iter().enumerate() {
        for &b in &classes[x + 1..] {
            let (ra, rb) = (&reads[a], &reads[b]);
            let (only_a, only_b) = differences(&ra.seen, &rb.seen);
            if only_a.is_empty() || only_b.is_empty() {
                continue;
            }
            forks += 1;
            if anomalies.len() >= MAX_REPORTED {
                continue;
            }
            let names = |ks: &[u32]| -> Vec<String> {
                ks.iter().map(|&k| key_words(&keys[k as usize])).collect()
            };
            let (na, nb) = (names(&only_a), names(&only_b));
            let span = |o: &Operation| format!("events {}-{}", o.call, o.ret.unwrap_or(o.call));
            anomalies.push(Anomaly {
                kind: "long-fork".into(),
                key: None,
                description: format!(
                    "the read at {} saw the write(s) of {} but not of {}; the read at {} saw {} but not {}: no order of the writes explains both",
                    span(ra.op),
                    preview(&na),
                    preview(&nb),
                    span(rb.op),
                    preview(&nb),
                    preview(&na),
                ),
                events: [ra.op, rb.op]
                    .iter()
                    .flat_map(|o| [o.call, o.ret.unwrap_or(o.call)])
                    .collect(),
                data: json!({
                    "reads": [ra.op.call, rb.op.call],
                    "values": [ra.op.value, rb.op.value],
                    "first_only": na,
                    "second_only": nb,
                }),
            });
        }
    }
    let explanation = if forks == 0 {
        format!(
            "{} read-only transactions all saw the writes in one order",
            reads.len()
        )
    } else {
        format!(
            "{forks} pair(s) of reads saw the writes in incompatible orders (long forks). {}",
            anomalies[0].description
        )
    };
    Ok(Verdict {
        checker: NAME.into(),
        valid: if forks == 0 {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        explanation,
        stats: json!({
            "ops": h.operations.len(),
            "keys": keys.len(),
            "reads_count": reads.len(),
            "early_read_count": early,
            "late_read_count": late,
            "writes": writes,
            "forks": forks,
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
        }),
        anomalies,
    })
}

/// Keys both reads read on which only the first saw the write, and only the second.
fn differences(a: &[(u32, bool)], b: &[(u32, bool)]) -> (Vec<u32>, Vec<u32>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                match (a[i].1, b[j].1) {
                    (true, false) => only_a.push(a[i].0),
                    (false, true) => only_b.push(a[i].0),
                    _ => {}
                }
                i += 1;
                j += 1;
            }
        }
    }
    (only_a, only_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::Event;
    use faultline_history::EventType::{self, *};
    use faultline_history::testkit::{client_history, push_client};
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `procs` clients on a snapshot-isolated store: writes of fresh keys, each applied at
    /// one instant (some fail, some end info, applied or not), and read-only txns of 1-4
    /// keys that see every write applied before their instant.
    fn simulate(seed: u64, procs: u64, ops: usize) -> Vec<Event> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut applied: Vec<bool> = Vec::new();
        let mut inflight: Vec<Option<(u64, &str, Value, bool)>> = vec![None; procs as usize];
        let mut pid: Vec<u64> = (0..procs).collect();
        let (mut next_pid, mut started) = (procs, 0);
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    let (f, v) = if applied.is_empty() || rng.random_bool(0.4) {
                        applied.push(false);
                        ("write", json!([["w", applied.len() - 1, 1]]))
                    } else {
                        let n = rng.random_range(1..=4);
                        let ks: Vec<Value> = (0..n)
                            .map(|_| json!(["r", rng.random_range(0..applied.len() + 1), null]))
                            .collect();
                        ("read", Value::Array(ks))
                    };
                    push_client(&mut events, pid[slot], Invoke, f, None, v.clone());
                    inflight[slot] = Some((pid[slot], f, v, false));
                }
                None => {}
                Some((p, f, v, false)) => {
                    if f == "write" && rng.random_bool(0.15) {
                        let kind = if rng.random_bool(0.5) { Fail } else { Info };
                        push_client(&mut events, p, kind, f, None, v);
                        if kind == Info {
                            pid[slot] = next_pid;
                            next_pid += 1;
                        }
                        continue;
                    }
                    let v = if f == "write" {
                        applied[v[0][1].as_u64().unwrap() as usize] = true;
                        v
                    } else {
                        let seen = v.as_array().unwrap().iter().map(|m| {
                            let k = m[1].as_u64().unwrap() as usize;
                            let saw = applied.get(k).copied().unwrap_or(false);
                            json!(["r", k, if saw { json!(1) } else { Value::Null }])
                        });
                        Value::Array(seen.collect())
                    };
                    inflight[slot] = Some((p, f, v, true));
                }
                Some((p, f, v, true)) => {
                    let kind: EventType = if f == "write" && rng.random_bool(0.1) {
                        Info
                    } else {
                        Ok
                    };
                    push_client(&mut events, p, kind, f, None, v);
                    if kind == Info {
                        pid[slot] = next_pid;
                        next_pid += 1;
                    }
                }
            }
        }
        events
    }

    use faultline_history::testkit::history_of as history;

    fn seq(events: &mut Vec<Event>, p: u64, f: &str, inv: Value, ok: Value) {
        push_client(events, p, Invoke, f, None, inv);
        push_client(events, p, Ok, f, None, ok);
    }

    #[test]
    fn two_reads_that_saw_different_writes_fork() {
        let h = client_history(
            None,
            &[
                (
                    0,
                    Invoke,
                    "read",
                    json!([["r", "x", null], ["r", "y", null]]),
                ),
                (0, Ok, "read", json!([["r", "x", 1], ["r", "y", null]])),
                (
                    1,
                    Invoke,
                    "read",
                    json!([["r", "y", null], ["r", "x", null], ["r", "z", null]]),
                ),
                (
                    1,
                    Ok,
                    "read",
                    json!([["r", "y", 1], ["r", "x", null], ["r", "z", 1]]),
                ),
                (2, Invoke, "read", json!([["r", "z", null]])),
                (2, Ok, "read", json!([["r", "z", null]])),
            ],
        );
        let v = check(&h).unwrap();
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1, "{v:?}");
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "long-fork");
        assert_eq!(a.events, vec![0, 1, 2, 3]);
        assert_eq!(a.data["first_only"], json!(["x"]));
        assert_eq!(a.data["second_only"], json!(["y"]));
        assert_eq!(v.stats["early_read_count"], json!(1));
        assert_eq!(v.stats["late_read_count"], json!(0));
    }

    #[test]
    fn premise_violations_are_bad_input() {
        let w = |k: &str, v: i64| json!([["w", k, v]]);
        let h = client_history(
            None,
            &[
                (0, Invoke, "write", w("x", 1)),
                (0, Ok, "write", w("x", 1)),
                (0, Invoke, "write", w("x", 2)),
                (0, Ok, "write", w("x", 2)),
            ],
        );
        let e = check(&h).unwrap_err();
        assert_eq!(e.event, 2);
        assert!(e.message.contains("written again"), "{e}");
        let h = client_history(
            None,
            &[
                (0, Invoke, "write", w("x", 1)),
                (0, Ok, "write", w("x", 1)),
                (1, Invoke, "read", json!([["r", "x", null]])),
                (1, Ok, "read", json!([["r", "x", 3]])),
            ],
        );
        assert!(check(&h).unwrap_err().message.contains("single value"));
        let h = client_history(
            None,
            &[(0, Invoke, "read", json!(3)), (0, Ok, "read", json!(3))],
        );
        assert!(check(&h).unwrap_err().message.contains("micro-ops"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn snapshot_isolated_reads_pass(seed: u64, procs in 1u64..6, ops in 1usize..80) {
            let v = check(&history(simulate(seed, procs, ops))).unwrap();
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn one_planted_fork_is_found(seed: u64, procs in 1u64..6, ops in 0usize..80) {
            let mut events = simulate(seed, procs, ops);
            let (x, y) = ("planted-x", "planted-y");
            seq(&mut events, 900, "write", json!([["w", x, 1]]), json!([["w", x, 1]]));
            seq(&mut events, 901, "write", json!([["w", y, 1]]), json!([["w", y, 1]]));
            let r = json!([["r", x, null], ["r", y, null]]);
            seq(&mut events, 902, "read", r.clone(), json!([["r", x, 1], ["r", y, null]]));
            seq(&mut events, 903, "read", r, json!([["r", x, null], ["r", y, 1]]));
            let v = check(&history(events)).unwrap();
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1, "{:?}", v.anomalies);
            prop_assert_eq!(v.anomalies[0].kind.as_str(), "long-fork");
        }
    }
}
