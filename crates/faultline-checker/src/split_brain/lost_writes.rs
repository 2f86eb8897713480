//! Acknowledged writes missing from the final reads, per key: an acknowledged `append` or
//! `add` that finished before the key's final read began must be in it; for registers
//! (`write`, `cas`), when one acknowledged write is provably the last before the final
//! read (no other write could take effect after it), the final read must return it.

use serde_json::{Value, json};

use crate::set::{final_read, lost};
use crate::{Anomaly, Verdict};
use faultline_history::{History, Operation, Outcome};

fn written(o: &Operation) -> Option<&Value> {
    match o.f.as_str() {
        "write" => Some(&o.invoke_value),
        "cas" => o.invoke_value.get(1),
        _ => None,
    }
}

pub fn check_lost_writes(h: &History) -> Verdict {
    let mut anomalies = Vec::new();
    let mut keys_checked = 0usize;
    let mut acknowledged = 0usize;
    for (key, ops) in h.by_key() {
        let Some(read) = final_read(&ops) else {
            continue;
        };
        let key_name = key.as_deref().unwrap_or("(no key)").to_string();
        keys_checked += 1;
        for f in ["append", "add"] {
            acknowledged += ops
                .iter()
                .filter(|o| o.f == f && o.outcome == Outcome::Ok)
                .count();
            for w in lost(&ops, f, read) {
                anomalies.push(Anomaly {
                    kind: "lost-write".into(),
                    key: key.clone(),
                    description: format!(
                        "key {key_name}: the {f} of {} was acknowledged (event {}, node {}) before the final read began (event {}), but the final read {} lacks it",
                        w.invoke_value,
                        w.ret.unwrap_or(w.call),
                        w.node.as_deref().unwrap_or("?"),
                        read.call,
                        read.value
                    ),
                    events: vec![w.call, w.ret.unwrap_or(w.call), read.call, read.ret.unwrap_or(read.call)],
                    data: json!({"f": f, "value": w.invoke_value, "final_read": read.value, "node": w.node}),
                });
            }
        }
        // Registers: the last acknowledged write before the read, if nothing else could
        // have landed after it.
        let writes: Vec<&Operation> = ops
            .iter()
            .filter(|o| written(o).is_some() && o.outcome != Outcome::Fail)
            .copied()
            .collect();
        acknowledged += writes.iter().filter(|o| o.outcome == Outcome::Ok).count();
        let last = writes
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && o.ret.is_some_and(|r| r < read.call))
            .max_by_key(|o| o.ret)
            .copied();
        if let Some(w) = last {
            let wret = w.ret.unwrap_or(w.call);
            // A rival may have taken effect after `w`: it overlapped `w` or began later, or it
            // ended `info`, which may take effect at any time after its invoke.
            let rivals = writes.iter().any(|x| {
                x.id != w.id
                    && x.call < read.ret.unwrap_or(u64::MAX)
                    && (x.outcome == Outcome::Info || x.ret.is_none_or(|r| r > w.call))
            });
            let want = written(w).expect("a write");
            if !rivals && read.value != *want {
                anomalies.push(Anomaly {
                    kind: "lost-write".into(),
                    key: key.clone(),
                    description: format!(
                        "key {key_name}: the {} of {want} (acknowledged at event {wret}, node {}) was the last write before the final read (event {}), and no other write could take effect after it, yet the final read returned {}",
                        w.f,
                        w.node.as_deref().unwrap_or("?"),
                        read.call,
                        read.value
                    ),
                    events: vec![w.call, wret, read.call, read.ret.unwrap_or(read.call)],
                    data: json!({"f": w.f, "value": want, "final_read": read.value, "node": w.node}),
                });
            }
        }
    }
    let undecided = (keys_checked == 0).then(|| "no key has a successful final read".to_string());
    super::verdict(
        "split-brain/lost-writes",
        anomalies,
        format!(
            "{keys_checked} keys: every acknowledged write that must be visible is in the final reads"
        ),
        undecided,
        json!({"keys": keys_checked, "acknowledged_writes": acknowledged}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use EventType::{Info, Invoke, Ok};
    use faultline_history::EventType;

    fn history(evs: &[(u64, EventType, &str, Value)]) -> History {
        faultline_history::testkit::client_history(Some("k"), evs)
    }

    #[test]
    fn an_acknowledged_append_missing_from_the_final_read_is_lost() {
        let h = history(&[
            (1, Invoke, "append", json!(1)),
            (1, Ok, "append", json!(1)),
            (1, Invoke, "append", json!(2)),
            (1, Ok, "append", json!(2)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!([2])),
        ]);
        let v = check_lost_writes(&h);
        assert_eq!(v.valid, Validity::Invalid);
        assert!(
            v.anomalies[0]
                .description
                .contains("the append of 1 was acknowledged (event 1, node n1)"),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn the_last_register_write_must_be_read() {
        let ok = history(&[
            (1, Invoke, "write", json!(1)),
            (1, Ok, "write", json!(1)),
            (1, Invoke, "cas", json!([1, 3])),
            (1, Ok, "cas", json!([1, 3])),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(3)),
        ]);
        assert_eq!(check_lost_writes(&ok).valid, Validity::Valid);
        let bad = history(&[
            (1, Invoke, "write", json!(1)),
            (1, Ok, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(0)),
        ]);
        assert_eq!(check_lost_writes(&bad).valid, Validity::Invalid);
    }

    #[test]
    fn a_write_that_may_land_later_excuses_the_read() {
        let h = history(&[
            (1, Invoke, "write", json!(1)),
            (1, Ok, "write", json!(1)),
            (3, Invoke, "write", json!(7)),
            (3, Info, "write", json!(7)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(7)),
        ]);
        assert_eq!(check_lost_writes(&h).valid, Validity::Valid);
    }

    #[test]
    fn an_info_write_that_ended_before_the_last_write_may_still_land_after_it() {
        // The info write's completion precedes the acknowledged write, but an info op may
        // take effect at any time after its invoke: reading 7 is linearizable.
        let h = history(&[
            (3, Invoke, "write", json!(7)),
            (3, Info, "write", json!(7)),
            (1, Invoke, "write", json!(1)),
            (1, Ok, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(7)),
        ]);
        let v = check_lost_writes(&h);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }
}
