//! `monotonic-reads`: within one client session (a history process), once a read has
//! returned a write's value, no later read returns a value the store must order before
//! it. The store's version order is unknown to a history, so this uses the order every
//! correct store keeps: a write that completed before another began is older (and the
//! initial `null` is older than every write). Sound for any store whose version order
//! extends real time; LWW under clock skew does not, which is what it then shows.

use std::collections::HashMap;

use serde_json::json;

use super::{Source, Writes};
use crate::set::key_text;
use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

pub const NAME: &str = "monotonic-reads";

pub fn check(h: &History) -> Verdict {
    let mut anomalies = Vec::new();
    let mut reads = 0usize;
    for (key, ops) in h.by_key() {
        let writes = Writes::new(&ops);
        // process -> the read that surely saw the latest-starting write so far, and the
        // earliest invocation among that read's candidate sources (what it surely saw).
        let mut newest: HashMap<u64, (&Operation, u64)> = HashMap::new();
        for r in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            reads += 1;
            let source = writes.source(&r.value);
            // An older value than the newest seen: completed before that one began.
            if let Some((seen_read, seen_call)) = newest.get(&r.process) {
                let older = match &source {
                    Source::Initial => true,
                    Source::Write(ws) => ws.iter().all(|w| {
                        w.ret
                            .is_some_and(|ret| w.outcome == Outcome::Ok && ret < *seen_call)
                    }),
                    Source::Unknown => false,
                };
                if older {
                    anomalies.push(Anomaly {
                        kind: "non-monotonic-read".into(),
                        key: key.clone(),
                        description: format!(
                            "{}: process {} read {} (events {}-{}), then {} (events {}-{}), which was written before {} was",
                            key_text(&key),
                            r.process,
                            seen_read.value,
                            seen_read.call,
                            seen_read.ret.unwrap_or(seen_read.call),
                            r.value,
                            r.call,
                            r.ret.unwrap_or(r.call),
                            seen_read.value
                        ),
                        events: [seen_read.call, r.call]
                            .into_iter()
                            .chain(r.ret)
                            .collect(),
                        data: json!({"process": r.process, "first": seen_read.call, "then": r.call}),
                    });
                }
            }
            if let Source::Write(ws) = source {
                let surely = ws.iter().map(|w| w.call).min().unwrap_or(0);
                if newest
                    .get(&r.process)
                    .is_none_or(|(_, seen)| surely > *seen)
                {
                    newest.insert(r.process, (r, surely));
                }
            }
        }
    }
    let valid = Validity::from_anomalies(&anomalies);
    let explanation = if anomalies.is_empty() {
        format!("no session's {reads} reads went back to an older value")
    } else {
        format!(
            "{} read(s) returned a value older than one the same session had already read",
            anomalies.len()
        )
    };
    Verdict {
        checker: NAME.into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"reads": reads}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weak::histories::{self, Store};
    use proptest::prelude::*;
    use serde_json::Value;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_linearizable_register_reads_monotonically(seed: u64, procs in 1u64..6, ops in 1usize..60) {
            let h = histories::history(histories::register(seed, procs, ops, Store::Atomic));
            let v = check(&h);
            prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }

        #[test]
        fn going_back_to_an_older_write_fails(seed: u64, procs in 1u64..6, ops in 0usize..60, null_back: bool) {
            let mut events = histories::register(seed, procs, ops, Store::Atomic);
            let p = histories::fresh_process(&events);
            let back = if null_back { Value::Null } else { json!("a") };
            histories::append_sequential(&mut events, &[
                (p, "write", json!("a"), json!("a")),
                (p, "write", json!("b"), json!("b")),
                (p + 1, "read", Value::Null, json!("b")),
                (p + 1, "read", Value::Null, back),
            ]);
            let v = check(&histories::history(events));
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1);
        }

        #[test]
        fn another_sessions_older_read_is_fine(seed: u64, procs in 1u64..6, ops in 0usize..60) {
            let mut events = histories::register(seed, procs, ops, Store::Atomic);
            let p = histories::fresh_process(&events);
            histories::append_sequential(&mut events, &[
                (p, "write", json!("a"), json!("a")),
                (p, "write", json!("b"), json!("b")),
                (p + 1, "read", Value::Null, json!("b")),
                (p + 2, "read", Value::Null, json!("a")),
            ]);
            prop_assert_eq!(check(&histories::history(events)).valid, Validity::Valid);
        }
    }
}
