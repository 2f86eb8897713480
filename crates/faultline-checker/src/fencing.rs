//! `fencing`: the writes each node's storage accepted carry non-decreasing generations (the
//! fencing token of Kleppmann's argument): once a node accepted a write of generation g, it
//! must never accept one below g. Input: each node's `/log` (entries in index order).

use std::collections::BTreeMap;

use serde_json::json;

use crate::split_brain::LogEntry;
use crate::{Anomaly, Validity, Verdict};

/// Checks every node's log; one anomaly per node that accepted a stale generation (its first).
pub fn check(logs: &BTreeMap<String, Vec<LogEntry>>) -> Verdict {
    let mut anomalies = Vec::new();
    let mut entries = 0usize;
    for (node, log) in logs {
        entries += log.len();
        let mut highest: Option<&LogEntry> = None;
        for e in log {
            match highest {
                Some(h) if e.term < h.term => {
                    anomalies.push(Anomaly {
                        kind: "stale-generation-accepted".into(),
                        key: None,
                        description: format!(
                            "{node} accepted entry {} of generation {} at index {} after \
                             entry {} of generation {} at index {}",
                            e.id, e.term, e.index, h.id, h.term, h.index
                        ),
                        events: vec![],
                        data: json!({"node": node, "stale": {"index": e.index, "generation": e.term, "id": e.id},
                                     "after": {"index": h.index, "generation": h.term, "id": h.id}}),
                    });
                    break;
                }
                Some(h) if e.term == h.term => {}
                _ => highest = Some(e),
            }
        }
    }
    let valid = Validity::from_anomalies(&anomalies);
    let explanation = if anomalies.is_empty() {
        format!(
            "{entries} accepted entries on {} nodes: generations never go back",
            logs.len()
        )
    } else {
        format!(
            "{} node(s) accepted a write from an older generation: {}",
            anomalies.len(),
            anomalies[0].description
        )
    };
    Verdict {
        checker: "fencing".into(),
        valid,
        anomalies,
        explanation,
        stats: json!({"nodes": logs.len(), "entries": entries}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(u64, u64)]) -> Vec<LogEntry> {
        entries
            .iter()
            .map(|&(index, term)| LogEntry {
                request_id: None,
                took_effect: None,
                index,
                term,
                id: format!("e{index}"),
            })
            .collect()
    }

    #[test]
    fn non_decreasing_generations_are_valid() {
        let logs = BTreeMap::from([
            ("n1".to_string(), log(&[(1, 1), (2, 1), (3, 2), (4, 4)])),
            ("n2".to_string(), log(&[(1, 1), (2, 3)])),
        ]);
        let v = check(&logs);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        assert_eq!(v.stats["entries"], 6);
    }

    #[test]
    fn a_write_below_the_highest_generation_seen_is_caught() {
        // n2 took generation 3's write, then a deposed primary's generation-2 write.
        let logs = BTreeMap::from([
            ("n1".to_string(), log(&[(1, 1), (2, 2)])),
            (
                "n2".to_string(),
                log(&[(1, 1), (2, 3), (3, 3), (4, 2), (5, 1)]),
            ),
        ]);
        let v = check(&logs);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1, "one per node");
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "stale-generation-accepted");
        assert_eq!(a.data["stale"]["index"], 4);
        assert_eq!(a.data["after"]["generation"], 3);
        assert!(a.description.starts_with("n2 accepted entry e4"));
    }
}
