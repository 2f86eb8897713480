//! `read-after-write`: each key is a multi-writer regular register (Lamport; the model of
//! Garage's Jepsen test). A read may return the initial `null` only if no write completed
//! before it began, and a written value only if that write was invoked before the read
//! completed and no other acknowledged write began after it completed and completed
//! before the read began. Weaker than linearizability: two reads may disagree on the
//! order of concurrent writes, and a read concurrent with a write may go either way.

use serde_json::json;

use super::{Source, Writes};
use crate::set::{key_text, preview};
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Outcome};

pub const NAME: &str = "read-after-write";

pub fn check(h: &History) -> Verdict {
    let mut anomalies = Vec::new();
    let (mut reads, mut writes_seen) = (0usize, 0usize);
    for (key, ops) in h.by_key() {
        let writes = Writes::new(&ops);
        writes_seen += ops.iter().filter(|o| o.f == "write").count();
        for r in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            reads += 1;
            let r_ret = r.ret.expect("ok ops have completed");
            let source = writes.source(&r.value);
            let found = match writes.overwriters(&source, r.call, r_ret) {
                _ if source == Source::Unknown => Some(Anomaly {
                    kind: "unwritten-value".into(),
                    key: key.clone(),
                    description: format!(
                        "{}: the read at events {}-{r_ret} returned {}, which no write that did not fail wrote",
                        key_text(&key),
                        r.call,
                        r.value
                    ),
                    events: vec![r.call, r_ret],
                    data: json!({"read": r.call, "value": r.value}),
                }),
                None => Some(Anomaly {
                    kind: "read-from-future".into(),
                    key: key.clone(),
                    description: format!(
                        "{}: the read at events {}-{r_ret} returned {}, written only by write(s) invoked after it completed",
                        key_text(&key),
                        r.call,
                        r.value,
                    ),
                    events: vec![r.call, r_ret],
                    data: json!({"read": r.call, "value": r.value}),
                }),
                Some(over) if over.is_empty() => None,
                Some(over) => {
                    let from = match &source {
                        Source::Write(_) => format!("a write of {}", r.value),
                        _ => "the initial state".into(),
                    };
                    let newer: Vec<String> = over
                        .iter()
                        .map(|o| {
                            format!(
                                "{} (events {}-{})",
                                o.invoke_value,
                                o.call,
                                o.ret.unwrap_or(o.call)
                            )
                        })
                        .collect();
                    Some(Anomaly {
                        kind: "stale-read".into(),
                        key: key.clone(),
                        description: format!(
                            "{}: the read at events {}-{r_ret} returned {} from {from}, but {} acknowledged write(s) began after it completed and completed before the read began: {}",
                            key_text(&key),
                            r.call,
                            r.value,
                            over.len(),
                            preview(&newer)
                        ),
                        events: [r.call, r_ret]
                            .into_iter()
                            .chain(over.iter().filter_map(|o| o.ret))
                            .collect(),
                        data: json!({
                            "read": r.call,
                            "value": r.value,
                            "overwritten_by": over.iter().map(|o| o.call).collect::<Vec<_>>(),
                        }),
                    })
                }
            };
            anomalies.extend(found);
        }
    }
    let valid = Validity::from_anomalies(&anomalies);
    let explanation = if anomalies.is_empty() {
        format!("{reads} reads each returned a value a regular register allows")
    } else {
        format!(
            "{} of {reads} reads returned a value a regular register does not allow (stale, unwritten or from the future)",
            anomalies.len()
        )
    };
    Verdict {
        checker: NAME.into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"reads": reads, "writes": writes_seen}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weak::histories::{self, Store};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn concurrent_write_may_be_read_either_way() {
        use faultline_history::EventType::*;
        let h = faultline_history::testkit::client_history(
            Some("k"),
            &[
                (0, Invoke, "write", json!(1)),
                (0, Ok, "write", json!(1)),
                (1, Invoke, "write", json!(2)),
                (2, Invoke, "read", Value::Null),
                (2, Ok, "read", json!(1)),
                (3, Invoke, "read", Value::Null),
                (3, Ok, "read", json!(2)),
                (1, Ok, "write", json!(2)),
                (2, Invoke, "read", Value::Null),
                (2, Ok, "read", json!(1)),
            ],
        );
        let v = check(&h);
        // The last read began after write 2 completed, and 2 began after 1 completed.
        assert_eq!(v.valid, Validity::Invalid, "{v:?}");
        assert_eq!(v.anomalies.len(), 1);
        assert_eq!(v.anomalies[0].kind, "stale-read");
        assert_eq!(v.anomalies[0].events[0], 8);
    }

    #[test]
    fn null_after_a_completed_write_is_stale_and_unwritten_values_are_named() {
        use faultline_history::EventType::*;
        let h = faultline_history::testkit::client_history(
            Some("k"),
            &[
                (0, Invoke, "write", json!(1)),
                (0, Ok, "write", json!(1)),
                (1, Invoke, "read", Value::Null),
                (1, Ok, "read", Value::Null),
                (1, Invoke, "read", Value::Null),
                (1, Ok, "read", json!(7)),
            ],
        );
        let kinds: Vec<String> = check(&h).anomalies.into_iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["stale-read", "unwritten-value"]);
    }

    #[test]
    fn a_value_written_twice_is_judged_by_its_freshest_write() {
        use faultline_history::EventType::*;
        let h = faultline_history::testkit::client_history(
            Some("k"),
            &[
                (0, Invoke, "write", json!(1)),
                (0, Ok, "write", json!(1)),
                (0, Invoke, "write", json!(2)),
                (0, Ok, "write", json!(2)),
                (0, Invoke, "write", json!(1)),
                (0, Ok, "write", json!(1)),
                (1, Invoke, "read", Value::Null),
                (1, Ok, "read", json!(1)),
                (1, Invoke, "read", Value::Null),
                (1, Ok, "read", json!(2)),
            ],
        );
        let v = check(&h);
        assert_eq!(v.anomalies.len(), 1, "{v:?}");
        assert_eq!(v.anomalies[0].events[0], 8);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn regular_and_atomic_registers_pass(seed: u64, procs in 1u64..6, ops in 1usize..60, atomic: bool) {
            let store = if atomic { Store::Atomic } else { Store::Regular };
            let h = histories::history(histories::register(seed, procs, ops, store));
            let v = check(&h);
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn a_read_of_an_overwritten_value_fails(seed: u64, procs in 1u64..6, ops in 0usize..60) {
            let mut events = histories::register(seed, procs, ops, Store::Regular);
            let p = histories::fresh_process(&events);
            histories::append_sequential(&mut events, &[
                (p, "write", json!("a"), json!("a")),
                (p + 1, "write", json!("b"), json!("b")),
                (p + 2, "read", Value::Null, json!("a")),
            ]);
            let v = check(&histories::history(events));
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1);
            prop_assert_eq!(v.anomalies[0].kind.as_str(), "stale-read");
        }
    }
}
