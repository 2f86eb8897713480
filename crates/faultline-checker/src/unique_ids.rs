//! `unique-ids`: Jepsen's unique-id checker (`jepsen.checker/unique-ids`). Every `generate`
//! that completed `ok` returned an id; no two may return the same one. Ids compare as
//! canonical JSON (so `1` and `"1"` differ). Failed and `info` generates returned nothing
//! and count only as attempted. Keys are independent generators.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::bad_op::BadOp;
use crate::set::{key_prefix, preview};
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "unique-ids";

pub fn check(h: &History) -> Result<Verdict, BadOp> {
    let start = std::time::Instant::now();
    let groups = h.by_key();
    let keys = groups.len();
    let (mut attempted, mut acknowledged) = (0usize, 0usize);
    let (mut lowest, mut highest): (Option<i64>, Option<i64>) = (None, None);
    let mut all_ints = true;
    let mut anomalies = Vec::new();
    for (key, ops) in groups {
        // canonical id -> the ok generates that returned it, in invocation order
        let mut by_id: HashMap<String, Vec<&Operation>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for op in ops {
            if !matches!(op.f.as_str(), "generate" | "gen") {
                return Err(BadOp::unknown_f(op, NAME, &["generate"]));
            }
            attempted += 1;
            if op.outcome != Outcome::Ok {
                continue;
            }
            if op.value.is_null() {
                return Err(BadOp::new(op, "an ok generate returns an id, found nil"));
            }
            acknowledged += 1;
            match op.value.as_i64() {
                Some(i) => {
                    lowest = Some(lowest.map_or(i, |l| l.min(i)));
                    highest = Some(highest.map_or(i, |h| h.max(i)));
                }
                None => all_ints = false,
            }
            let id = op.value.to_string();
            let slot = by_id.entry(id.clone()).or_default();
            if slot.is_empty() {
                order.push(id);
            }
            slot.push(op);
        }
        for id in order {
            let ops = &by_id[&id];
            if ops.len() < 2 {
                continue;
            }
            let at: Vec<String> = ops
                .iter()
                .map(|o| format!("events {}-{}", o.call, o.ret.unwrap_or(o.call)))
                .collect();
            anomalies.push(Anomaly {
                kind: "duplicated-id".into(),
                key: key.clone(),
                description: format!(
                    "{}id {id} was returned by {} generates: {}",
                    key_prefix(&key),
                    ops.len(),
                    preview(&at)
                ),
                events: ops.iter().filter_map(|o| o.ret).collect(),
                data: json!({
                    "id": ops[0].value,
                    "count": ops.len(),
                    "ops": ops.iter().map(|o| o.call).collect::<Vec<_>>(),
                }),
            });
        }
    }
    let duplicated: usize = anomalies.len();
    let range = match (lowest, highest) {
        (Some(l), Some(h)) if all_ints => json!([l, h]),
        _ => Value::Null,
    };
    let explanation = if anomalies.is_empty() {
        format!(
            "{acknowledged} acknowledged of {attempted} attempted generates returned distinct ids"
        )
    } else {
        format!(
            "{duplicated} id(s) returned more than once among {acknowledged} acknowledged generates. {}",
            anomalies[0].description
        )
    };
    Ok(Verdict {
        checker: NAME.into(),
        valid: Validity::from_anomalies(&anomalies),
        explanation,
        stats: json!({
            "ops": h.operations.len(),
            "keys": keys,
            "attempted_count": attempted,
            "acknowledged_count": acknowledged,
            "duplicated_count": duplicated,
            "range": range,
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
        }),
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::EventType::*;
    use faultline_history::testkit::{client_history, push_client};
    use faultline_history::{Event, EventType};
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `procs` clients generating ids from a correct generator (a shared counter, some
    /// string ids), with some generates failing or ending info; `dup` makes one later ok
    /// generate return an id already handed out.
    fn simulate(seed: u64, procs: u64, ops: usize, dup: bool) -> (History, Option<u64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events: Vec<Event> = Vec::new();
        let mut next_id = 0u64;
        let mut handed: Vec<Value> = Vec::new();
        let mut inflight: Vec<Option<u64>> = vec![None; procs as usize];
        let mut pid: Vec<u64> = (0..procs).collect();
        let (mut next_pid, mut started) = (procs, 0);
        let mut planted = None;
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    push_client(
                        &mut events,
                        pid[slot],
                        Invoke,
                        "generate",
                        None,
                        Value::Null,
                    );
                    inflight[slot] = Some(pid[slot]);
                }
                None => {}
                Some(p) => {
                    let roll: f64 = rng.random();
                    let kind: EventType = if roll < 0.1 {
                        Fail
                    } else if roll < 0.2 {
                        Info
                    } else {
                        Ok
                    };
                    let id = if kind == Ok
                        && dup
                        && planted.is_none()
                        && !handed.is_empty()
                        && rng.random_bool(0.3)
                    {
                        handed[rng.random_range(0..handed.len())].clone()
                    } else {
                        next_id += 1;
                        // Info generates may have consumed an id too.
                        if next_id.is_multiple_of(7) {
                            json!(format!("id-{next_id}"))
                        } else {
                            json!(next_id)
                        }
                    };
                    let at = push_client(
                        &mut events,
                        p,
                        kind,
                        "generate",
                        None,
                        if kind == Ok { id.clone() } else { Value::Null },
                    );
                    if kind == Ok {
                        if handed.contains(&id) {
                            planted = Some(at);
                        }
                        handed.push(id);
                    }
                    if kind == Info {
                        pid[slot] = next_pid;
                        next_pid += 1;
                    }
                }
            }
        }
        let h = History::from_events(events, std::path::Path::new("gen.jsonl"), None).unwrap();
        (h, planted)
    }

    #[test]
    fn names_each_duplicated_id_with_its_ops() {
        let h = client_history(
            None,
            &[
                (0, Invoke, "generate", Value::Null),
                (1, Invoke, "generate", Value::Null),
                (0, Ok, "generate", json!(1)),
                (1, Ok, "generate", json!(1)),
                (2, Invoke, "generate", Value::Null),
                (2, Fail, "generate", Value::Null),
                (2, Invoke, "generate", Value::Null),
                (2, Ok, "generate", json!("1")),
            ],
        );
        let v = check(&h).unwrap();
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1);
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "duplicated-id");
        assert_eq!(a.data["ops"], json!([0, 1]));
        assert_eq!(a.events, vec![2, 3]);
        assert_eq!(v.stats["attempted_count"], json!(4));
        assert_eq!(v.stats["acknowledged_count"], json!(3));
        assert_eq!(
            v.stats["range"],
            Value::Null,
            "a string id: no numeric range"
        );
    }

    #[test]
    fn bad_ops_are_errors() {
        let h = client_history(
            None,
            &[(0, Invoke, "read", Value::Null), (0, Ok, "read", json!(1))],
        );
        assert_eq!(check(&h).unwrap_err().event, 0);
        let h = client_history(
            None,
            &[
                (0, Invoke, "generate", Value::Null),
                (0, Ok, "generate", Value::Null),
            ],
        );
        assert!(check(&h).unwrap_err().message.contains("nil"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_correct_generator_passes(seed: u64, procs in 1u64..6, ops in 1usize..80) {
            let (h, _) = simulate(seed, procs, ops, false);
            let v = check(&h).unwrap();
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn a_handed_out_id_returned_again_is_found(seed: u64, procs in 1u64..6, ops in 2usize..80) {
            let (mut h, planted) = simulate(seed, procs, ops, true);
            if planted.is_none() {
                // No duplicate drawn: plant one at the end.
                let mut events = h.events.clone();
                let first = h.operations.iter().find(|o| o.outcome == Outcome::Ok).map(|o| o.value.clone());
                let id = first.unwrap_or(json!(1));
                for (kind, v) in [(Invoke, Value::Null), (Ok, id.clone()), (Invoke, Value::Null), (Ok, id)] {
                    push_client(&mut events, 5000, kind, "generate", None, v);
                }
                h = History::from_events(events, std::path::Path::new("gen.jsonl"), None).unwrap();
            }
            let v = check(&h).unwrap();
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1);
            prop_assert_eq!(v.anomalies[0].kind.as_str(), "duplicated-id");
        }
    }
}
