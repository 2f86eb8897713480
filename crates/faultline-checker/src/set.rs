//! The set workload (`add` v; `read` returns every element): per key, the final read must
//! contain every acknowledged add that finished before it began (else `lost`), nothing
//! that was never added or whose add definitely failed (`unexpected`), and nothing twice
//! (`duplicated`). Adds still in flight or `info` may go either way (`recovered` if seen).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::{Anomaly, Validity, Verdict};
use faultline_history::{History, Operation, Outcome};

/// The last `ok` read of a group of ops (the one invoked last), if any.
pub(crate) fn final_read<'a>(ops: &[&'a Operation]) -> Option<&'a Operation> {
    ops.iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .max_by_key(|o| o.call)
        .copied()
}

/// Elements of a list value, as canonical JSON text (so `1` and `1.0` stay distinct, as
/// they are in the history).
pub(crate) fn elements(v: &Value) -> Vec<String> {
    v.as_array()
        .map_or_else(Vec::new, |xs| xs.iter().map(Value::to_string).collect())
}

/// Acknowledged adds (or appends) of `f` that finished before `read` began and whose
/// value it lacks.
pub(crate) fn lost<'a>(ops: &[&'a Operation], f: &str, read: &Operation) -> Vec<&'a Operation> {
    let seen: std::collections::HashSet<String> = elements(&read.value).into_iter().collect();
    ops.iter()
        .filter(|o| o.f == f && o.outcome == Outcome::Ok && o.ret.is_some_and(|r| r < read.call))
        .filter(|o| !seen.contains(&o.invoke_value.to_string()))
        .copied()
        .collect()
}

/// "key k: " before a sentence about key k; nothing for a history without keys.
pub(crate) fn key_prefix(k: &Option<String>) -> String {
    k.as_deref().map_or(String::new(), |k| format!("key {k}: "))
}

pub(crate) fn key_text(k: &Option<String>) -> String {
    k.as_deref()
        .map_or("(no key)".to_string(), |k| format!("key {k}"))
}

pub fn check(h: &History) -> Verdict {
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    let mut stats: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, ops) in h.by_key() {
        let adds: Vec<&Operation> = ops.iter().filter(|o| o.f == "add").copied().collect();
        if adds.is_empty() {
            continue;
        }
        let Some(read) = final_read(&ops) else {
            undecided.push(format!(
                "{} has {} adds but no successful read",
                key_text(&key),
                adds.len()
            ));
            continue;
        };
        let read_elems = elements(&read.value);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for e in &read_elems {
            *count.entry(e).or_default() += 1;
        }
        let by_value: HashMap<String, &Operation> = adds
            .iter()
            .map(|o| (o.invoke_value.to_string(), *o))
            .collect();
        *stats.entry("adds").or_default() += adds.len();
        *stats.entry("acknowledged").or_default() +=
            adds.iter().filter(|o| o.outcome == Outcome::Ok).count();
        *stats.entry("final_read_size").or_default() += read_elems.len();

        let lost = lost(&ops, "add", read);
        *stats.entry("lost").or_default() += lost.len();
        if !lost.is_empty() {
            let vals: Vec<String> = lost.iter().map(|o| o.invoke_value.to_string()).collect();
            anomalies.push(Anomaly {
                kind: "lost".into(),
                key: key.clone(),
                description: format!(
                    "{}: {} acknowledged add(s) finished before the final read (events {}-{}) began but are missing from it: {}",
                    key_text(&key),
                    lost.len(),
                    read.call,
                    read.ret.unwrap_or(read.call),
                    preview(&vals)
                ),
                events: lost.iter().filter_map(|o| o.ret).chain(read.ret).collect(),
                data: json!({"lost": vals, "final_read": read.ret}),
            });
        }
        let mut unexpected = Vec::new();
        let mut duplicated = Vec::new();
        let mut recovered = 0;
        for (e, n) in &count {
            if *n > 1 {
                duplicated.push(format!("{e} (x{n})"));
            }
            match by_value.get(*e).map(|o| o.outcome) {
                None | Some(Outcome::Fail) => unexpected.push(e.to_string()),
                Some(Outcome::Info) => recovered += 1,
                Some(Outcome::Ok) => {}
            }
        }
        *stats.entry("recovered").or_default() += recovered;
        unexpected.sort();
        duplicated.sort();
        if !unexpected.is_empty() {
            anomalies.push(Anomaly {
                kind: "unexpected".into(),
                key: key.clone(),
                description: format!(
                    "{}: the final read contains element(s) never added, or whose add definitely failed: {}",
                    key_text(&key),
                    preview(&unexpected)
                ),
                events: read.ret.into_iter().collect(),
                data: json!({"unexpected": unexpected}),
            });
        }
        if !duplicated.is_empty() {
            anomalies.push(Anomaly {
                kind: "duplicated".into(),
                key: key.clone(),
                description: format!(
                    "{}: the final read contains element(s) more than once: {}",
                    key_text(&key),
                    preview(&duplicated)
                ),
                events: read.ret.into_iter().collect(),
                data: json!({"duplicated": duplicated}),
            });
        }
    }
    let (valid, explanation) = if !anomalies.is_empty() {
        let kinds: Vec<&str> = anomalies.iter().map(|a| a.kind.as_str()).collect();
        (
            Validity::Invalid,
            format!("{}. First: {}", kinds.join(", "), anomalies[0].description),
        )
    } else if !undecided.is_empty() {
        (Validity::Unknown, undecided.join("; "))
    } else if stats.get("adds").copied().unwrap_or(0) == 0 {
        (
            Validity::Unknown,
            "the history has no add operations".to_string(),
        )
    } else {
        (
            Validity::Valid,
            "every acknowledged add is in the final read, and nothing else is".to_string(),
        )
    };
    Verdict {
        checker: "set".into(),
        valid,
        anomalies,
        explanation,
        stats: json!(stats),
    }
}

pub(crate) fn preview(xs: &[String]) -> String {
    const N: usize = 10;
    if xs.len() <= N {
        xs.join(", ")
    } else {
        format!("{}, ... ({} in all)", xs[..N].join(", "), xs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::EventType;

    fn history(evs: &[(u64, EventType, &str, Value)]) -> History {
        faultline_history::testkit::client_history(None, evs)
    }

    use EventType::{Fail, Info, Invoke, Ok};

    #[test]
    fn all_acknowledged_adds_present_is_valid_and_info_adds_may_appear() {
        let h = history(&[
            (1, Invoke, "add", json!(1)),
            (1, Ok, "add", json!(1)),
            (2, Invoke, "add", json!(2)),
            (2, Info, "add", json!(2)),
            (3, Invoke, "read", Value::Null),
            (3, Ok, "read", json!([1, 2])),
        ]);
        let v = check(&h);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        assert_eq!(v.stats["recovered"], 1);
    }

    #[test]
    fn lost_unexpected_and_duplicated_elements_are_reported() {
        let h = history(&[
            (1, Invoke, "add", json!(1)),
            (1, Ok, "add", json!(1)),
            (2, Invoke, "add", json!(2)),
            (2, Ok, "add", json!(2)),
            (4, Invoke, "add", json!(5)),
            (4, Fail, "add", json!(5)),
            (3, Invoke, "read", Value::Null),
            (3, Ok, "read", json!([2, 2, 9, 5])),
        ]);
        let v = check(&h);
        assert_eq!(v.valid, Validity::Invalid);
        let kinds: Vec<&str> = v.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["lost", "unexpected", "duplicated"]);
        assert!(
            v.anomalies[0].description.contains(": 1"),
            "{}",
            v.anomalies[0].description
        );
        assert!(
            v.anomalies[1].description.ends_with("5, 9"),
            "{}",
            v.anomalies[1].description
        );
        assert!(v.anomalies[2].description.ends_with("2 (x2)"));
    }

    #[test]
    fn an_add_concurrent_with_the_final_read_may_be_missing() {
        let h = history(&[
            (3, Invoke, "read", Value::Null),
            (1, Invoke, "add", json!(1)),
            (1, Ok, "add", json!(1)),
            (3, Ok, "read", json!([])),
        ]);
        assert_eq!(check(&h).valid, Validity::Valid);
    }

    #[test]
    fn adds_without_a_read_are_unknown() {
        let h = history(&[(1, Invoke, "add", json!(1)), (1, Ok, "add", json!(1))]);
        assert_eq!(check(&h).valid, Validity::Unknown);
    }
}
