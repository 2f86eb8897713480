//! `convergence`: after heal, quiescence and anti-entropy, every replica of a key holds
//! the same value or sibling set. Input: each node's `/replica/dump?key=` answers
//! (`{"node","key","replica","siblings":[...]}`); nodes not on a key's preference list
//! (`"replica": false`, e.g. holding only hints) are not compared.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::set::preview;
use crate::{Anomaly, Validity, Verdict};

pub const NAME: &str = "convergence";

/// One node's answer to `GET /replica/dump?key=K`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaDump {
    pub node: String,
    pub key: String,
    /// Whether this node is on the key's preference list (a home replica).
    #[serde(default = "yes")]
    pub replica: bool,
    /// The live versions' values (one for LWW, several siblings for vector clocks).
    #[serde(default)]
    pub siblings: Vec<Value>,
}

fn yes() -> bool {
    true
}

pub fn check(dumps: &[ReplicaDump]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<(&str, BTreeSet<String>)>> = BTreeMap::new();
    for d in dumps.iter().filter(|d| d.replica) {
        let set = d.siblings.iter().map(Value::to_string).collect();
        by_key.entry(&d.key).or_default().push((&d.node, set));
    }
    let mut anomalies = Vec::new();
    for (key, replicas) in &by_key {
        let distinct: BTreeSet<&BTreeSet<String>> = replicas.iter().map(|(_, s)| s).collect();
        if distinct.len() > 1 {
            let each: Vec<String> = replicas
                .iter()
                .map(|(n, s)| {
                    format!(
                        "{n}: [{}]",
                        s.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            anomalies.push(Anomaly {
                kind: "diverged".into(),
                key: Some(key.to_string()),
                description: format!(
                    "key {key}: {} replicas hold {} different states after heal and quiescence: {}",
                    replicas.len(),
                    distinct.len(),
                    preview(&each)
                ),
                events: vec![],
                data: json!(
                    replicas
                        .iter()
                        .map(|(n, s)| (n.to_string(), s.iter().cloned().collect::<Vec<_>>()))
                        .collect::<BTreeMap<_, _>>()
                ),
            });
        }
    }
    let valid = if !anomalies.is_empty() {
        Validity::Invalid
    } else if by_key.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let explanation = match valid {
        Validity::Valid => format!("all replicas of {} keys agree", by_key.len()),
        Validity::Invalid => format!(
            "{} of {} keys have replicas that disagree after heal",
            anomalies.len(),
            by_key.len()
        ),
        Validity::Unknown => "no replica dumps to compare".into(),
    };
    Verdict {
        checker: NAME.into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"keys": by_key.len(), "dumps": dumps.len()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dump(node: usize, key: usize, replica: bool, vals: &[u8]) -> ReplicaDump {
        ReplicaDump {
            node: format!("n{node}"),
            key: format!("k{key}"),
            replica,
            siblings: vals.iter().map(|v| json!(v)).collect(),
        }
    }

    proptest! {
        #[test]
        fn agreeing_replicas_converge_in_any_sibling_order(
            keys in prop::collection::vec(prop::collection::vec(0u8..5, 0..4), 1..6),
            nodes in 2usize..6,
            hint_noise: Vec<u8>,
            seed: u64,
        ) {
            let mut dumps = Vec::new();
            for (k, vals) in keys.iter().enumerate() {
                for n in 0..nodes {
                    let mut v = vals.clone();
                    let by = (seed as usize + n) % v.len().max(1);
                    v.rotate_left(by);
                    dumps.push(dump(n, k, true, &v));
                }
                // A non-replica's leftovers are not compared.
                dumps.push(dump(nodes, k, false, &hint_noise));
            }
            prop_assert_eq!(check(&dumps).valid, Validity::Valid);
        }

        #[test]
        fn one_replica_off_is_diverged(
            vals in prop::collection::vec(0u8..5, 0..4),
            nodes in 2usize..6,
            off in 0usize..6,
            extra in 5u8..9,
        ) {
            let mut dumps: Vec<ReplicaDump> = (0..nodes).map(|n| dump(n, 0, true, &vals)).collect();
            dumps[off % nodes].siblings.push(json!(extra));
            let v = check(&dumps);
            prop_assert_eq!(v.valid, Validity::Invalid);
            prop_assert_eq!(v.anomalies.len(), 1);
        }
    }

    #[test]
    fn dump_json_reads_with_defaults() {
        let d: ReplicaDump = serde_json::from_str(r#"{"node":"n1","key":"k"}"#).unwrap();
        assert!(d.replica && d.siblings.is_empty());
        assert_eq!(check(&[]).valid, Validity::Unknown);
    }
}
