//! From each node's committed log (`GET /log` at the end of a run, and sampled while it
//! ran): all nodes' committed entries, at any time, must form one chain. Two different
//! entries committed at one index mean two leaders committed conflicting histories, even if
//! one of them was overwritten before the end (a primary that pushes its whole state on
//! heal); a node's own final log must have rising indexes and non-decreasing terms.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::{Anomaly, Verdict};

/// One committed entry, as `/log` reports it: `{"index","term","id"}`, and in protocol v2
/// optionally the client's `request_id` and whether applying it `took_effect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// The entry's identity (a proposal id); numbers are read as their text.
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_effect: Option<bool>,
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

/// An entry one node reported committed while the run went on (its `/log`, sampled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub node: String,
    #[serde(flatten)]
    pub entry: LogEntry,
    /// When it was first seen, in ns since the history began.
    pub at_ns: u64,
}

/// What sampling every node's `/log` during the run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSamples {
    pub sightings: Vec<Sighting>,
    /// Sampling reached its cap at this time (ns) and stopped: entries committed later only
    /// the final logs show.
    pub capped_at_ns: Option<u64>,
}

/// Findings beyond this many per kind are counted, not listed.
const MAX_LISTED: usize = 16;

/// The final logs alone (see `check_logs_and_samples`).
pub fn check_logs(logs: &BTreeMap<String, Vec<LogEntry>>) -> Verdict {
    check_logs_and_samples(logs, &LogSamples::default())
}

/// Final logs and the entries sampled during the run: every entry any node reported
/// committed at any time counts toward the one chain; the order check is on final logs.
pub fn check_logs_and_samples(
    logs: &BTreeMap<String, Vec<LogEntry>>,
    samples: &LogSamples,
) -> Verdict {
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

    // One chain: at every index, every node that committed something, at the end or at any
    // time it was sampled, has the same entry. Per version: the nodes whose final log holds
    // it, and the others that were seen with it (first sighting, ns).
    type Holders<'a> = (BTreeSet<&'a str>, BTreeMap<&'a str, u64>);
    let mut at: BTreeMap<u64, BTreeMap<(u64, &str), Holders<'_>>> = BTreeMap::new();
    let mut finals: HashSet<(&str, u64, u64, &str)> = HashSet::new();
    for (node, log) in logs {
        for e in log {
            finals.insert((node.as_str(), e.index, e.term, e.id.as_str()));
            at.entry(e.index)
                .or_default()
                .entry((e.term, e.id.as_str()))
                .or_default()
                .0
                .insert(node.as_str());
        }
    }
    let mut sampled_only = 0usize;
    for s in &samples.sightings {
        let e = &s.entry;
        if finals.contains(&(s.node.as_str(), e.index, e.term, e.id.as_str())) {
            continue;
        }
        sampled_only += 1;
        let first = at
            .entry(e.index)
            .or_default()
            .entry((e.term, e.id.as_str()))
            .or_default()
            .1
            .entry(s.node.as_str())
            .or_insert(s.at_ns);
        *first = (*first).min(s.at_ns);
    }
    let mut divergent = 0usize;
    let mut divergent_only_sampled = 0usize;
    for (index, versions) in &at {
        if versions.len() < 2 {
            continue;
        }
        divergent += 1;
        let in_finals = versions.values().filter(|(f, _)| !f.is_empty()).count();
        if in_finals < 2 {
            divergent_only_sampled += 1;
        }
        let parts: Vec<String> = versions
            .iter()
            .map(|((term, id), (fin, seen))| {
                let mut who: Vec<String> = fin.iter().map(|n| n.to_string()).collect();
                who.extend(
                    seen.iter()
                        .filter(|(n, _)| !fin.contains(*n))
                        .map(|(n, t)| {
                            format!(
                                "{n} (seen at {:.3} s, not in its final log)",
                                *t as f64 / 1e9
                            )
                        }),
                );
                format!("{} committed term {term} entry {id}", who.join(", "))
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
                    "entries": versions.iter().map(|((term, id), (fin, seen))| json!({
                        "term": term, "id": id, "nodes": fin,
                        "sampled": seen.iter().filter(|(n, _)| !fin.contains(*n)).map(|(n, t)| json!({"node": n, "at_ns": t})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
            },
            &mut anomalies,
        );
    }
    let entries: usize = logs.values().map(Vec::len).sum();
    let undecided = (entries == 0 && samples.sightings.is_empty())
        .then(|| "no committed entries were collected from any node".to_string());
    let mut ok = format!(
        "{} nodes' committed logs ({entries} entries, {} indexes) form one chain",
        logs.len(),
        at.len()
    );
    if !samples.sightings.is_empty() {
        ok.push_str(&format!(
            ", with the {} entries sampled during the run",
            samples.sightings.len()
        ));
    }
    if let Some(t) = samples.capped_at_ns {
        ok.push_str(&format!(
            " (sampling stopped at its cap at {:.3} s; later entries are checked in the final logs only)",
            t as f64 / 1e9
        ));
    }
    super::verdict(
        "split-brain/logs",
        anomalies,
        ok,
        undecided,
        json!({"nodes": logs.len(), "entries": entries, "indexes": at.len(), "divergent_indexes": divergent,
               "sampled": samples.sightings.len(), "sampled_not_final": sampled_only,
               "divergent_indexes_seen_only_while_running": divergent_only_sampled,
               "sampling_capped_at_ns": samples.capped_at_ns, "findings": counts}),
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
                request_id: None,
                took_effect: None,
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

    fn seen(node: &str, index: u64, term: u64, id: &str, at_ns: u64) -> Sighting {
        Sighting {
            node: node.into(),
            entry: LogEntry {
                request_id: None,
                took_effect: None,
                index,
                term,
                id: id.into(),
            },
            at_ns,
        }
    }

    #[test]
    fn an_entry_overwritten_before_the_end_still_diverges() {
        // At the end every node holds n5's entry at index 2 (the loser was overwritten on
        // heal); while partitioned, n1 and n2 had committed n2's.
        let mut logs = BTreeMap::new();
        for n in ["n1", "n2", "n5"] {
            logs.insert(n.to_string(), log(&[(1, 1, "a"), (2, 3, "n5-3-2")]));
        }
        assert_eq!(check_logs(&logs).valid, Validity::Valid);
        let samples = LogSamples {
            sightings: vec![
                seen("n1", 1, 1, "a", 1_000_000_000),
                seen("n2", 2, 2, "n2-2-2", 4_200_000_000),
                seen("n1", 2, 2, "n2-2-2", 4_700_000_000),
                seen("n1", 2, 2, "n2-2-2", 4_100_000_000),
                seen("n5", 2, 3, "n5-3-2", 4_300_000_000),
            ],
            capped_at_ns: None,
        };
        let v = check_logs_and_samples(&logs, &samples);
        assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
        assert_eq!(v.anomalies.len(), 1);
        assert_eq!(
            v.anomalies[0].description,
            "at index 2, n1 (seen at 4.100 s, not in its final log), n2 (seen at 4.200 s, not \
             in its final log) committed term 2 entry n2-2-2; n1, n2, n5 committed term 3 entry \
             n5-3-2: two different entries were committed at one index"
        );
        assert_eq!(v.stats["divergent_indexes_seen_only_while_running"], 1);
    }

    #[test]
    fn samples_that_agree_with_the_chain_are_valid_and_a_cap_is_said() {
        let mut logs = BTreeMap::new();
        logs.insert("n1".to_string(), log(&[(1, 1, "a"), (2, 1, "b")]));
        let samples = LogSamples {
            sightings: vec![seen("n2", 1, 1, "a", 5), seen("n1", 2, 1, "b", 6)],
            capped_at_ns: Some(2_500_000_000),
        };
        let v = check_logs_and_samples(&logs, &samples);
        assert_eq!(v.valid, Validity::Valid);
        assert_eq!(
            v.explanation,
            "1 nodes' committed logs (2 entries, 2 indexes) form one chain, with the 2 entries \
             sampled during the run (sampling stopped at its cap at 2.500 s; later entries are \
             checked in the final logs only)"
        );
        // Samples alone decide too (a node whose final /log failed).
        let v = check_logs_and_samples(&BTreeMap::new(), &samples);
        assert_eq!(v.valid, Validity::Valid);
    }

    #[test]
    fn sightings_read_back_from_their_json_lines() {
        let s = seen("n3", 4, 2, "x", 9);
        let line = serde_json::to_string(&s).unwrap();
        assert_eq!(
            line,
            r#"{"node":"n3","index":4,"term":2,"id":"x","at_ns":9}"#
        );
        assert_eq!(serde_json::from_str::<Sighting>(&line).unwrap(), s);
        let numeric: Sighting =
            serde_json::from_str(r#"{"node":"n3","index":4,"term":2,"id":17,"at_ns":9}"#).unwrap();
        assert_eq!(numeric.entry.id, "17");
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
