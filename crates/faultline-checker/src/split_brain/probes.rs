//! Leader-per-generation, from `/status` samples (probe events). A generation is what the
//! system's descriptor says (`term`, `ballot`, `view`, `epoch`; node protocol v2 reports it
//! as `generation`, v1 nodes as `term`), and "leader" means able to commit in it:
//! (1) two different nodes leading one generation is a split brain; (2) a node's generation
//! never decreases; (3) optionally (Raft, leases: not Paxos, where two leaders with
//! different ballots at once are legal), two nodes acting as leader over an overlapping span
//! in which each acknowledged a write that began and ended inside it: a deposed leader that
//! still commits.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Anomaly, Verdict};
use faultline_history::{EventType, History, Outcome, Process};

/// The field a recorder adds to a probe's `/status` body: when the status was asked for (ns
/// since the run began). Without it a sample is taken to be as old as its event.
pub const PROBE_SENT: &str = "probe_sent_ns";

/// One `/status` sample.
#[derive(Clone, Debug)]
pub struct Sample {
    pub event: u64,
    /// When it was recorded: the node answered at some moment in `sent..=time`.
    pub time: u64,
    /// When it was asked for.
    pub sent: u64,
    pub node: String,
    pub role: String,
    /// The generation: v2's `generation`, else v1's `term`.
    pub term: u64,
    /// The leader the node follows in `term` (from its `leader` field), if any.
    pub leader: Option<String>,
    /// The node's wall clock when it answered (ms), if it says.
    pub clock_ms: Option<i64>,
    /// v2: until when (the node's wall clock, ms) it holds a leader lease, if it does.
    pub lease_until_ms: Option<i64>,
}

/// The probe samples of a history, in order. Malformed probe bodies (a node that answered
/// something else) are skipped and counted.
pub fn samples(h: &History) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for &i in &h.annotations {
        let e = &h.events[i];
        if e.process != Process::probe() || e.f != "status" || e.kind != EventType::Info {
            continue;
        }
        let node = e
            .node
            .clone()
            .or_else(|| e.value["id"].as_str().map(String::from));
        let generation = e.value["generation"]
            .as_u64()
            .or_else(|| e.value["term"].as_u64());
        match (node, e.value["role"].as_str(), generation) {
            (Some(node), Some(role), Some(term)) => out.push(Sample {
                event: e.index,
                time: e.time,
                sent: e.value[PROBE_SENT]
                    .as_u64()
                    .map_or(e.time, |s| s.min(e.time)),
                node,
                role: role.to_string(),
                term,
                leader: e.value["leader"].as_str().map(String::from),
                clock_ms: e.value["clock_ms"].as_i64(),
                lease_until_ms: e.value["lease_until_ms"].as_i64(),
            }),
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

/// A span in which a node's successive samples all said "leader" in one term.
#[derive(Clone, Debug)]
struct Reign {
    node: String,
    term: u64,
    from: u64,
    to: u64,
    first_event: u64,
    last_event: u64,
}

fn reigns(samples: &[Sample]) -> Vec<Reign> {
    let mut open: BTreeMap<&str, Reign> = BTreeMap::new();
    let mut out = Vec::new();
    for s in samples {
        let leading = s.role == "leader";
        if let Some(r) = open.get_mut(s.node.as_str()) {
            if leading && r.term == s.term {
                r.to = s.time;
                r.last_event = s.event;
                continue;
            }
            out.push(open.remove(s.node.as_str()).expect("present"));
        }
        if leading {
            open.insert(
                &s.node,
                Reign {
                    node: s.node.clone(),
                    term: s.term,
                    from: s.time,
                    to: s.time,
                    first_event: s.event,
                    last_event: s.event,
                },
            );
        }
    }
    out.extend(open.into_values());
    out
}

fn is_write(f: &str, v: &Value) -> bool {
    match f {
        "write" | "cas" | "append" | "add" => true,
        "txn" => v.as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| matches!(m[0].as_str(), Some("w" | "append")))
        }),
        _ => false,
    }
}

/// How a system's samples are judged (from its descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// What the generation is called, for explanations: `term`, `ballot`, `view`, `epoch`.
    pub generation: String,
    /// Flag overlapping reigns of different generations that both acknowledged writes.
    pub overlapping_reigns: bool,
}

impl Default for ProbeOptions {
    /// Raft's: terms, and a deposed leader must not acknowledge writes.
    fn default() -> Self {
        ProbeOptions {
            generation: "term".into(),
            overlapping_reigns: true,
        }
    }
}

/// `check_probes_with` Raft's options.
pub fn check_probes(h: &History) -> Verdict {
    check_probes_with(h, &ProbeOptions::default())
}

pub fn check_probes_with(h: &History, opts: &ProbeOptions) -> Verdict {
    let (samples, skipped) = samples(h);
    let mut anomalies = Vec::new();
    let g = opts.generation.as_str();

    // 0. A node's generation never decreases (a restart must recover it). Only in real-time
    // order: a sample counts against the highest one of its node recorded before it was
    // asked for. Two probes in flight at once (a round answered together, a restarted node's
    // first status) may be recorded in the other order than the node answered them.
    let mut seen: BTreeMap<&str, Vec<(u64, &Sample)>> = BTreeMap::new();
    for s in &samples {
        let before = seen.entry(s.node.as_str()).or_default();
        // `before` holds the running maximum by record time: the last entry recorded at or
        // before `s.sent` is the highest sample that ended before `s` began.
        let k = before.partition_point(|(t, _)| *t <= s.sent);
        if let Some((_, top)) = k.checked_sub(1).map(|k| before[k])
            && s.term < top.term
        {
            anomalies.push(Anomaly {
                kind: "generation-decreased".into(),
                key: None,
                description: format!(
                    "{} reported {g} {} at {:.3} s (event {}, asked at {:.3} s) after {g} {} at {:.3} s (event {}): a node's {g} never decreases",
                    s.node,
                    s.term,
                    s.time as f64 / 1e9,
                    s.event,
                    s.sent as f64 / 1e9,
                    top.term,
                    top.time as f64 / 1e9,
                    top.event
                ),
                events: vec![top.event, s.event],
                data: json!({"node": s.node, "generation": g, "from": top.term, "to": s.term}),
            });
        }
        if before.last().is_none_or(|(_, top)| s.term > top.term) {
            before.push((s.time, s));
        }
    }

    // 1. Two leaders in one term. A node names the leader of its term by claiming the
    // role or, as a follower, in its `leader` field: it heard AppendEntries of that term
    // from that node. Raft allows one leader per term, so two names for one term are a
    // split brain.
    // term -> leader -> (first sample naming it, nodes that named it)
    let mut leaders: BTreeMap<u64, BTreeMap<&str, (&Sample, Vec<&str>)>> = BTreeMap::new();
    for s in &samples {
        let named = if s.role == "leader" {
            Some(s.node.as_str())
        } else {
            s.leader.as_deref()
        };
        if let Some(l) = named {
            let e = leaders
                .entry(s.term)
                .or_default()
                .entry(l)
                .or_insert((s, Vec::new()));
            if !e.1.contains(&s.node.as_str()) {
                e.1.push(&s.node);
            }
        }
    }
    for (term, named) in &leaders {
        if named.len() > 1 {
            let names: Vec<&str> = named.keys().copied().collect();
            let seen: Vec<String> = named
                .iter()
                .map(|(l, (first, by))| {
                    let who: Vec<String> = by
                        .iter()
                        .map(|n| {
                            if n == l {
                                format!("{n} itself")
                            } else {
                                n.to_string()
                            }
                        })
                        .collect();
                    format!(
                        "{l} (named by {}; first at {:.3} s, event {})",
                        who.join(", "),
                        first.time as f64 / 1e9,
                        first.event
                    )
                })
                .collect();
            anomalies.push(Anomaly {
                kind: "two-leaders-one-term".into(),
                key: None,
                description: format!(
                    "{g} {term} had {} leaders: {}. One leader per {g} is allowed",
                    names.len(),
                    seen.join("; ")
                ),
                events: named.values().map(|(s, _)| s.event).collect(),
                data: json!({"term": term, "generation": g, "leaders": named.iter().map(|(l, (s, by))| json!({"leader": l, "named_by": by, "first_event": s.event, "first_time": s.time})).collect::<Vec<_>>()}),
            });
        }
    }

    // 2. Overlapping reigns in which both leaders acknowledged writes.
    let reigns = if opts.overlapping_reigns {
        reigns(&samples)
    } else {
        Vec::new()
    };
    let acks: Vec<(&str, u64, u64, u64, u64)> = h
        .operations
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && is_write(&o.f, &o.invoke_value))
        .filter_map(|o| Some((o.node.as_deref()?, o.call_time, o.ret_time?, o.call, o.ret?)))
        .collect();
    for (i, a) in reigns.iter().enumerate() {
        for b in &reigns[i + 1..] {
            if a.node == b.node || a.term == b.term {
                continue; // same node, or already reported above
            }
            let (from, to) = (a.from.max(b.from), a.to.min(b.to));
            if from >= to {
                continue;
            }
            let acked = |node: &str| {
                acks.iter()
                    .find(|w| w.0 == node && w.1 >= from && w.2 <= to)
                    .copied()
            };
            if let (Some(wa), Some(wb)) = (acked(&a.node), acked(&b.node)) {
                anomalies.push(Anomaly {
                    kind: "overlapping-leaders-acked-writes".into(),
                    key: None,
                    description: format!(
                        "{} ({g} {}) and {} ({g} {}) both reported being leader from {:.3} s to {:.3} s, and each acknowledged a write begun and finished in that span: {} the op at events {}-{}, {} the op at events {}-{}",
                        a.node, a.term, b.node, b.term,
                        from as f64 / 1e9, to as f64 / 1e9,
                        a.node, wa.3, wa.4, b.node, wb.3, wb.4
                    ),
                    events: vec![a.first_event, a.last_event, b.first_event, b.last_event, wa.4, wb.4],
                    data: json!({"leaders": [{"node": a.node, "term": a.term}, {"node": b.node, "term": b.term}], "from": from, "to": to}),
                });
            }
        }
    }

    let undecided = samples
        .is_empty()
        .then(|| "no /status samples (probe events) in the history".to_string());
    super::verdict(
        "split-brain/probes",
        anomalies,
        format!(
            "{} status samples: at most one leader per {g}, no node's {g} went back{}",
            samples.len(),
            if opts.overlapping_reigns {
                ", and no two leaders acknowledged writes at the same time"
            } else {
                ""
            }
        ),
        undecided,
        json!({"samples": samples.len(), "skipped_samples": skipped, "terms_with_leader": leaders.len(), "reigns": reigns.len()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use faultline_history::Event;
    use std::path::Path;

    fn probe(index: u64, time: u64, node: &str, role: &str, term: u64) -> Event {
        Event {
            request_id: None,
            index,
            time,
            process: Process::probe(),
            kind: EventType::Info,
            f: "status".into(),
            key: None,
            value: json!({"id": node, "role": role, "term": term, "leader": if role == "leader" { Value::from(node) } else { Value::Null }, "commit_index": 0, "applied_index": 0, "clock_ms": 0}),
            node: Some(node.into()),
            error: None,
        }
    }

    fn client(index: u64, time: u64, p: u64, kind: EventType, node: &str) -> Event {
        Event {
            request_id: None,
            index,
            time,
            process: Process::Client(p),
            kind,
            f: "write".into(),
            key: Some("k".into()),
            value: json!(index),
            node: Some(node.into()),
            error: None,
        }
    }

    fn history(mut events: Vec<Event>) -> History {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::from_events(events, Path::new("t.jsonl"), None).unwrap()
    }

    #[test]
    fn one_leader_per_term_is_valid() {
        let h = history(vec![
            probe(0, 10, "n1", "leader", 1),
            probe(0, 20, "n2", "follower", 1),
            probe(0, 30, "n1", "follower", 2),
            probe(0, 40, "n2", "leader", 2),
        ]);
        let v = check_probes(&h);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
    }

    #[test]
    fn two_leaders_in_one_term_are_named() {
        let h = history(vec![
            probe(0, 1_000_000_000, "n1", "leader", 3),
            probe(0, 2_000_000_000, "n3", "leader", 3),
        ]);
        let v = check_probes(&h);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies[0].kind, "two-leaders-one-term");
        let d = &v.anomalies[0].description;
        assert!(
            d.starts_with(
                "term 3 had 2 leaders: n1 (named by n1 itself; first at 1.000 s, event 0); n3"
            ),
            "{d}"
        );
        assert_eq!(v.anomalies[0].events, vec![0, 1]);
    }

    #[test]
    fn a_stale_leader_that_cannot_commit_is_not_split_brain() {
        // n1 keeps claiming term 1 while n2 leads term 2, but only n2 acknowledges writes.
        let h = history(vec![
            probe(0, 10, "n1", "leader", 1),
            probe(0, 20, "n2", "leader", 2),
            client(0, 30, 1, EventType::Invoke, "n2"),
            client(0, 40, 1, EventType::Ok, "n2"),
            probe(0, 50, "n1", "leader", 1),
            probe(0, 60, "n2", "leader", 2),
        ]);
        assert_eq!(check_probes(&h).valid, Validity::Valid);
    }

    /// n1 leads term 1 and n2 term 2 at the same time, and both acknowledge a write.
    fn overlapping_reigns_that_both_ack_writes() -> History {
        history(vec![
            probe(0, 10, "n1", "leader", 1),
            probe(0, 20, "n2", "leader", 2),
            client(0, 30, 1, EventType::Invoke, "n2"),
            client(0, 35, 2, EventType::Invoke, "n1"),
            client(0, 40, 1, EventType::Ok, "n2"),
            client(0, 45, 2, EventType::Ok, "n1"),
            probe(0, 50, "n1", "leader", 1),
            probe(0, 60, "n2", "leader", 2),
        ])
    }

    #[test]
    fn overlapping_leaders_that_both_ack_writes_are_split_brain() {
        let h = overlapping_reigns_that_both_ack_writes();
        let v = check_probes(&h);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies[0].kind, "overlapping-leaders-acked-writes");
        assert!(
            v.anomalies[0]
                .description
                .contains("n1 (term 1) and n2 (term 2)"),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn followers_naming_different_leaders_of_one_term_are_split_brain() {
        // n1 leads term 4 as n2 sees it; n3 follows n5 in the same term. Neither leader
        // was ever sampled as leader.
        let mut a = probe(0, 10, "n2", "follower", 4);
        a.value["leader"] = json!("n1");
        let mut b = probe(0, 20, "n3", "follower", 4);
        b.value["leader"] = json!("n5");
        let v = check_probes(&history(vec![a, b]));
        assert_eq!(v.valid, Validity::Invalid);
        assert!(
            v.anomalies[0]
                .description
                .starts_with("term 4 had 2 leaders: n1 (named by n2;"),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn overlapping_reigns_are_judged_only_where_the_descriptor_says() {
        let h = overlapping_reigns_that_both_ack_writes();
        let paxos = ProbeOptions {
            generation: "ballot".into(),
            overlapping_reigns: false,
        };
        let v = check_probes_with(&h, &paxos);
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        assert!(
            v.explanation.contains("one leader per ballot"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn v2_generation_wins_over_term_and_two_leaders_of_one_ballot_are_named() {
        let mut a = probe(0, 10, "n1", "leader", 1);
        a.value["generation"] = json!(9);
        let mut b = probe(0, 20, "n2", "leader", 2);
        b.value["generation"] = json!(9);
        let paxos = ProbeOptions {
            generation: "ballot".into(),
            overlapping_reigns: false,
        };
        let v = check_probes_with(&history(vec![a, b]), &paxos);
        assert_eq!(v.valid, Validity::Invalid);
        assert!(
            v.anomalies[0]
                .description
                .starts_with("ballot 9 had 2 leaders"),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn a_generation_that_goes_back_is_flagged() {
        let h = history(vec![
            probe(0, 10, "n1", "follower", 5),
            probe(0, 20, "n1", "follower", 5),
            probe(0, 30, "n1", "follower", 3),
        ]);
        let v = check_probes(&h);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies[0].kind, "generation-decreased");
        assert!(
            v.anomalies[0].description.starts_with(
                "n1 reported term 3 at 0.000 s (event 2, asked at 0.000 s) after term 5"
            ),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn a_lower_generation_asked_for_before_the_higher_was_recorded_is_not_a_decrease() {
        // A paxos-set-kill-majority run: a restarted node's first status (ballot 31, recorded
        // at once) and the round of probes asked for before it but recorded after it, with
        // the node's answer from before it campaigned (ballot 30).
        let mut restart = probe(0, 988, "n5", "candidate", 31);
        restart.value[PROBE_SENT] = json!(980);
        let mut round = probe(0, 999, "n5", "follower", 30);
        round.value[PROBE_SENT] = json!(900);
        let mut later = probe(0, 1100, "n5", "follower", 30);
        later.value[PROBE_SENT] = json!(1000);
        let v = check_probes(&history(vec![restart.clone(), round.clone()]));
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        // Asked for after the ballot-31 sample was recorded: that one is a decrease.
        let v = check_probes(&history(vec![restart, round, later]));
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.anomalies.len(), 1);
        assert!(
            v.anomalies[0].description.starts_with(
                "n5 reported term 30 at 0.000 s (event 2, asked at 0.000 s) after term 31"
            ),
            "{}",
            v.anomalies[0].description
        );
    }

    #[test]
    fn no_samples_is_unknown() {
        let h = history(vec![
            client(0, 1, 1, EventType::Invoke, "n1"),
            client(0, 2, 1, EventType::Ok, "n1"),
        ]);
        assert_eq!(check_probes(&h).valid, Validity::Unknown);
    }
}
