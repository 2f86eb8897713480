//! From each node's committed log (`GET /log` at the end of a run): all nodes' committed
//! entries must form one chain. Two different entries committed at one index mean two
//! leaders committed conflicting histories; a node's own log must have rising indexes and
//! non-decreasing terms.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::{Anomaly, Verdict};

/// One committed entry, as `/log` reports it: `{"index","term","id"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// The entry's identity (a proposal id); numbers are read as their text.
    #[serde(deserialize_with = "id_text")]
    pub id: String,
}

fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id must be a string or a number, not {other}"
        ))),
    }
}

/// Findings beyond this many per kind are counted, not listed.
const MAX_LISTED: usize = 16;

pub fn check_logs(logs: &BTreeMap<String, Vec<LogEntry>>) -> Verdict {
    let mut anomalies = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut push = |a: Anomaly, anomalies: &mut Vec<Anomaly>| {
        let c = counts
            .entry(if a.kind == "log-divergence" {
                "log-divergence"
            } else {
                "log-order"
            })
            .or_default();
        *c += 1;
        if *c <= MAX_LISTED {
            anomalies.push(a);
        }
    };

    // Each node's own order.
    for (node, log) in logs {
        for w in log.windows(2) {
            if w[1].index <= w[0].index || w[1].term < w[0].term {
                push(
                    Anomaly {
                        kind: "log-order".into(),
                        key: None,
                        description: format!(
                            "{node}'s committed log has index {} term {} ({}) followed by index {} term {} ({}): indexes must rise and terms never fall",
                            w[0].index, w[0].term, w[0].id, w[1].index, w[1].term, w[1].id
                        ),
                        events: Vec::new(),
                        data: json!({"node": node, "entries": [w[0], w[1]]}),
                    },
                    &mut anomalies,
                );
            }
        }
    }

    // One chain: at every index, every node that committed something has the same entry.
    let mut at: BTreeMap<u64, BTreeMap<(u64, &str), Vec<&str>>> = BTreeMap::new();
    for (node, log) in logs {
        for e in log {
            at.entry(e.index)
                .or_default()
                .entry((e.term, e.id.as_str()))
                .or_default()
                .push(node);
        }
    }
    let mut divergent = 0usize;
    for (index, versions) in &at {
        if versions.len() < 2 {
            continue;
        }
        divergent += 1;
        let parts: Vec<String> = versions
            .iter()
            .map(|((term, id), nodes)| {
                format!("{} committed term {term} entry {id}", nodes.join(", "))
            })
            .collect();
        push(
            Anomaly {
                kind: "log-divergence".into(),
                key: None,
                description: format!(
                    "at index {index}, {}: two different entries were committed at one index",
                    parts.join("; ")
                ),
                events: Vec::new(),
                data: json!({
                    "index": index,
                    "entries": versions.iter().map(|((term, id), nodes)| json!({"term": term, "id": id, "nodes": nodes})).collect::<Vec<_>>(),
                }),
            },
            &mut anomalies,
        );
    }
    let entries: usize = logs.values().map(Vec::len).sum();
    let undecided =
        (entries == 0).then(|| "no committed entries were collected from any node".to_string());
    super::verdict(
        "split-brain/logs",
        anomalies,
        format!(
            "{} nodes' committed logs ({entries} entries, {} indexes) form one chain",
            logs.len(),
            at.len()
        ),
        undecided,
        json!({"nodes": logs.len(), "entries": entries, "indexes": at.len(), "divergent_indexes": divergent, "findings": counts}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;

    fn log(entries: &[(u64, u64, &str)]) -> Vec<LogEntry> {
        entries
            .iter()
            .map(|&(index, term, id)| LogEntry {
                index,
                term,
                id: id.into(),
            })
            .collect()
    }

    #[test]
    fn agreeing_logs_of_different_lengths_are_one_chain() {
        let mut logs = BTreeMap::new();
        logs.insert(
            "n1".to_string(),
            log(&[(1, 1, "a"), (2, 1, "b"), (3, 2, "c")]),
        );
        logs.insert("n2".to_string(), log(&[(1, 1, "a"), (2, 1, "b")]));
        logs.insert("n3".to_string(), log(&[(2, 1, "b"), (3, 2, "c")])); // compacted prefix
        let v = check_logs(&logs);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn two_entries_at_one_index_name_nodes_terms_and_ids() {
        let mut logs = BTreeMap::new();
        logs.insert("n1".to_string(), log(&[(1, 1, "a"), (2, 2, "x")]));
        logs.insert("n2".to_string(), log(&[(1, 1, "a"), (2, 3, "y")]));
        logs.insert("n3".to_string(), log(&[(1, 1, "a"), (2, 3, "y")]));
        let v = check_logs(&logs);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1);
        let d = &v.anomalies[0].description;
        assert!(
            d.starts_with(
                "at index 2, n1 committed term 2 entry x; n2, n3 committed term 3 entry y"
            ),
            "{d}"
        );
    }

    #[test]
    fn falling_terms_within_a_node_are_reported() {
        let mut logs = BTreeMap::new();
        logs.insert("n1".to_string(), log(&[(1, 3, "a"), (2, 2, "b")]));
        let v = check_logs(&logs);
        assert_eq!(v.anomalies[0].kind, "log-order");
    }

    #[test]
    fn entries_parse_from_the_log_endpoint_with_numeric_ids() {
        let e: Vec<LogEntry> = serde_json::from_str(
            r#"[{"index":1,"term":1,"id":"n1-0-1"},{"index":2,"term":1,"id":7}]"#,
        )
        .unwrap();
        assert_eq!(e[1].id, "7");
        assert_eq!(check_logs(&BTreeMap::new()).valid, Validity::Unknown);
    }
}
