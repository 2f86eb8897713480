//! `counter`: Jepsen's bounded counter checker (`jepsen.checker/counter`). Ops are
//! `add v` (an integer increment) and `read` (the observed total). Each `ok` read must lie
//! between a lower bound, the adds certainly applied (acknowledged `ok` before the read
//! was invoked), and an upper bound, those plus every add that may have been applied by
//! the time the read completed (`ok` or `info`, invoked before the read completed).
//! Failed adds never count; `info` reads observed nothing. Jepsen's adds are
//! non-negative; a negative add here lowers the lower bound when it may have applied
//! (and its certain application lowers both), so the bounds stay exact for any sign.
//! Keys are independent counters.

use serde_json::{Value, json};

use crate::bad_op::BadOp;
use crate::set::key_prefix;
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "counter";

/// Prefix sums over adds sorted by one event index: the sum of values, of the positive
/// parts and of the negative parts of the adds whose index is below a bound.
struct Sums {
    at: Vec<u64>,
    /// `sum[i]` covers `at[..i]`: (all, positive parts, negative parts).
    sum: Vec<(i128, i128, i128)>,
}

impl Sums {
    fn new(mut adds: Vec<(u64, i64)>) -> Sums {
        adds.sort_unstable();
        let mut sum = Vec::with_capacity(adds.len() + 1);
        let mut acc = (0i128, 0i128, 0i128);
        sum.push(acc);
        for &(_, v) in &adds {
            let v = v as i128;
            acc = (acc.0 + v, acc.1 + v.max(0), acc.2 + v.min(0));
            sum.push(acc);
        }
        Sums {
            at: adds.into_iter().map(|(i, _)| i).collect(),
            sum,
        }
    }

    /// Sums over the adds whose index is below `bound`.
    fn below(&self, bound: u64) -> (i128, i128, i128) {
        self.sum[self.at.partition_point(|&i| i < bound)]
    }
}

/// A sum as a JSON integer, or as text beyond i64.
pub(crate) fn num(x: i128) -> Value {
    i64::try_from(x).map_or_else(|_| Value::String(x.to_string()), Value::from)
}

fn int(op: &Operation, v: &Value, what: &str) -> Result<i64, BadOp> {
    v.as_i64()
        .ok_or_else(|| BadOp::new(op, format!("a counter {what} is an integer, found {v}")))
}

pub fn check(h: &History) -> Result<Verdict, BadOp> {
    let start = std::time::Instant::now();
    let groups = h.by_key();
    let keys = groups.len();
    let mut anomalies = Vec::new();
    let (mut reads, mut adds_seen, mut failed_adds) = (0usize, 0usize, 0usize);
    for (key, ops) in groups {
        // (completion, value) of acknowledged adds; (invocation, value) of adds that may
        // have happened.
        let (mut acked, mut possible) = (Vec::new(), Vec::new());
        let mut key_reads = Vec::new();
        for op in &ops {
            match op.f.as_str() {
                "add" | "increment" | "incr" => {
                    let v = int(op, &op.invoke_value, "add's value")?;
                    adds_seen += 1;
                    match op.outcome {
                        Outcome::Fail => failed_adds += 1,
                        Outcome::Ok => {
                            acked.push((op.ret.expect("ok ops have completed"), v));
                            possible.push((op.call, v));
                        }
                        Outcome::Info => possible.push((op.call, v)),
                    }
                }
                "read" => {
                    if op.outcome == Outcome::Ok {
                        key_reads.push((*op, int(op, &op.value, "read's result")?));
                    }
                }
                _ => return Err(BadOp::unknown_f(op, NAME, &["add", "read"])),
            }
        }
        let (acked, possible) = (Sums::new(acked), Sums::new(possible));
        for (r, value) in key_reads {
            reads += 1;
            let r_ret = r.ret.expect("ok ops have completed");
            let (sure, sure_pos, sure_neg) = acked.below(r.call);
            let (_, may_pos, may_neg) = possible.below(r_ret);
            // Certain adds were invoked before the read completed, so they are among the
            // possible ones; what is left may or may not be seen.
            let lower = sure + (may_neg - sure_neg);
            let upper = sure + (may_pos - sure_pos);
            let v = value as i128;
            if lower <= v && v <= upper {
                continue;
            }
            let side = if v < lower { "below" } else { "above" };
            anomalies.push(Anomaly {
                kind: "out-of-bounds".into(),
                key: key.clone(),
                description: format!(
                    "{}the read at events {}-{r_ret} returned {value}, {side} the bounds [{lower}, {upper}] (adds acknowledged before it began, and those plus every add that may have applied before it completed)",
                    key_prefix(&key),
                    r.call
                ),
                events: vec![r.call, r_ret],
                data: json!({
                    "read": r.call,
                    "value": value,
                    "lower": num(lower),
                    "upper": num(upper),
                }),
            });
        }
    }
    let explanation = if anomalies.is_empty() {
        format!("{reads} counter reads each lay within the adds certainly and possibly applied")
    } else {
        format!(
            "{} of {reads} counter reads lay outside the adds certainly and possibly applied. {}",
            anomalies.len(),
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
            "reads": reads,
            "adds": adds_seen,
            "failed_adds": failed_adds,
            "errors": anomalies.len(),
            "elapsed_ms": start.elapsed().as_secs_f64() * 1e3,
        }),
        anomalies,
    })
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

    /// `procs` clients doing `ops` adds (0..=5, some negative if `signed`) and reads on a
    /// linearizable counter: each op takes effect at one instant between its invoke and
    /// completion; some adds end `info` (applied or not) or `fail` (not applied).
    fn simulate(seed: u64, procs: u64, ops: usize, signed: bool) -> Vec<Event> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut total = 0i64;
        // per slot: (process, f, value, effected)
        let mut inflight: Vec<Option<(u64, &str, i64, bool)>> = vec![None; procs as usize];
        let mut pid: Vec<u64> = (0..procs).collect();
        let (mut next_pid, mut started) = (procs, 0);
        while started < ops || inflight.iter().any(Option::is_some) {
            let slot = rng.random_range(0..procs as usize);
            match inflight[slot].take() {
                None if started < ops => {
                    started += 1;
                    let (f, v) = if rng.random_bool(0.5) {
                        let lo = if signed { -5 } else { 0 };
                        ("add", rng.random_range(lo..=5))
                    } else {
                        ("read", 0)
                    };
                    let inv = if f == "add" { json!(v) } else { Value::Null };
                    push_client(&mut events, pid[slot], Invoke, f, None, inv);
                    inflight[slot] = Some((pid[slot], f, v, false));
                }
                None => {}
                Some((p, f, v, false)) => {
                    // Some adds never take effect: they fail, or end info unapplied.
                    if f == "add" && rng.random_bool(0.15) {
                        let kind = if rng.random_bool(0.6) { Fail } else { Info };
                        push_client(&mut events, p, kind, f, None, json!(v));
                        if kind == Info {
                            pid[slot] = next_pid;
                            next_pid += 1;
                        }
                        continue;
                    }
                    let v = if f == "add" {
                        total += v;
                        v
                    } else {
                        total
                    };
                    inflight[slot] = Some((p, f, v, true));
                }
                Some((p, f, v, true)) => {
                    let kind: EventType = if f == "add" && rng.random_bool(0.1) {
                        Info
                    } else {
                        Ok
                    };
                    push_client(&mut events, p, kind, f, None, json!(v));
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

    fn seq_tail(events: &mut Vec<Event>, p: u64, tail: &[(&str, Value, Value)]) {
        for (f, inv, ok) in tail {
            push_client(events, p, Invoke, f, None, inv.clone());
            push_client(events, p, Ok, f, None, ok.clone());
        }
    }

    #[test]
    fn bounds_follow_jepsen() {
        // add 1 ok; add 2 concurrent with the read; add 4 info; add 8 failed.
        let h = client_history(
            None,
            &[
                (0, Invoke, "add", json!(1)),
                (0, Ok, "add", json!(1)),
                (1, Invoke, "add", json!(2)),
                (2, Invoke, "add", json!(4)),
                (2, Info, "add", json!(4)),
                (3, Invoke, "add", json!(8)),
                (3, Fail, "add", json!(8)),
                (4, Invoke, "read", Value::Null),
                (4, Ok, "read", json!(7)),
                (4, Invoke, "read", Value::Null),
                (4, Ok, "read", json!(0)),
                (1, Ok, "add", json!(2)),
                (4, Invoke, "read", Value::Null),
                (4, Ok, "read", json!(8)),
            ],
        );
        let v = check(&h).unwrap();
        assert_eq!(v.valid, Validity::Invalid, "{v:?}");
        let got: Vec<(u64, &Value, &Value)> = v
            .anomalies
            .iter()
            .map(|a| (a.events[0], &a.data["lower"], &a.data["upper"]))
            .collect();
        // 7 is within [1, 7]; 0 is below 1; 8 (failed add counted) is above [3, 7].
        assert_eq!(got, [(9, &json!(1), &json!(7)), (12, &json!(3), &json!(7))]);
        assert!(v.anomalies.iter().all(|a| a.kind == "out-of-bounds"));
        assert_eq!(v.stats["reads"], json!(3));
    }

    #[test]
    fn negative_adds_widen_the_lower_bound() {
        let h = client_history(
            None,
            &[
                (0, Invoke, "add", json!(5)),
                (0, Ok, "add", json!(5)),
                (1, Invoke, "add", json!(-3)),
                (2, Invoke, "read", Value::Null),
                (2, Ok, "read", json!(2)),
                (1, Ok, "add", json!(-3)),
                (2, Invoke, "read", Value::Null),
                (2, Ok, "read", json!(5)),
            ],
        );
        let v = check(&h).unwrap();
        assert_eq!(v.anomalies.len(), 1, "{v:?}");
        assert_eq!(v.anomalies[0].events[0], 6);
        assert_eq!(v.anomalies[0].data["upper"], json!(2));
    }

    #[test]
    fn malformed_ops_are_errors_naming_the_op() {
        let h = client_history(
            None,
            &[(0, Invoke, "add", json!("x")), (0, Ok, "add", json!("x"))],
        );
        let e = check(&h).unwrap_err();
        assert_eq!(e.event, 0);
        assert!(e.message.contains("integer"), "{e}");
        let h = client_history(
            None,
            &[
                (0, Invoke, "read", Value::Null),
                (0, Ok, "read", json!([1])),
            ],
        );
        assert!(check(&h).unwrap_err().to_string().contains("read's result"));
        let h = client_history(
            None,
            &[
                (0, Invoke, "cas", json!([1, 2])),
                (0, Ok, "cas", json!([1, 2])),
            ],
        );
        assert!(check(&h).unwrap_err().to_string().contains("not \"cas\""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_linearizable_counter_passes(seed: u64, procs in 1u64..6, ops in 1usize..80, signed: bool) {
            let v = check(&history(simulate(seed, procs, ops, signed))).unwrap();
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn a_read_past_every_add_is_found(seed: u64, procs in 1u64..6, ops in 0usize..80, below: bool) {
            let mut events = simulate(seed, procs, ops, false);
            let p = 1000;
            // Everything has completed: the upper bound is the sum of adds not failed,
            // and the lower bound the sum of those acknowledged.
            let h = history(events.clone());
            let (mut sure, mut may) = (0i64, 0i64);
            for o in h.operations.iter().filter(|o| o.f == "add") {
                let v = o.invoke_value.as_i64().unwrap();
                match o.outcome {
                    Outcome::Ok => { sure += v; may += v }
                    Outcome::Info => may += v,
                    Outcome::Fail => {}
                }
            }
            let planted = if below { sure - 1 } else { may + 1 };
            seq_tail(&mut events, p, &[("read", Value::Null, json!(planted))]);
            let v = check(&history(events)).unwrap();
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1);
            prop_assert_eq!(v.anomalies[0].kind.as_str(), "out-of-bounds");
            prop_assert_eq!(&v.anomalies[0].data["value"], &json!(planted));
        }
    }
}
