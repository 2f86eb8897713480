//! `lease-overlap`: no two nodes believe they hold a leader lease at the same harness time.
//! Read from the `/status` probes: a sample in which a node says `leader` with
//! `lease_until_ms` past its own `clock_ms` is a claim that it holds the lease for that many
//! more ms of its own clock.
//!
//! Harness time is the only common clock, so each claim becomes a harness-time interval that
//! the node held the lease for certain, allowing the clock slack measured from the probes:
//! - it starts when the sample was recorded (the node answered before that);
//! - it lasts while later samples of the node show its clock still short of the lease's end
//!   (until each such sample was *asked for*), then for the rest of the lease at the fastest
//!   rate the node's clock was measured to run (its clock advance between two samples over
//!   the least harness time that can have passed between its answers; at least real time);
//! - it ends at the latest when a later sample was asked for that shows the node no longer
//!   claiming (a lease given up early).
//!
//! Two such intervals of different nodes that overlap are a finding: whichever node's clock
//! ran slow or fast, both believed they held the lease at once. A slow clock is exactly what
//! a drift margin must cover, so a lease protocol without one is caught here even when no
//! client read happened to land in the window.

use std::collections::BTreeMap;

use serde_json::json;

use super::probes::{Sample, samples};
use crate::{Anomaly, Verdict};
use faultline_history::History;

/// At most this many overlaps are listed.
const MAX_ANOMALIES: usize = 20;

/// A claim turned into harness time (ns).
#[derive(Clone, Debug)]
struct Held<'a> {
    sample: &'a Sample,
    from: u64,
    until: u64,
}

fn claims(s: &Sample) -> bool {
    s.role == "leader" && matches!((s.clock_ms, s.lease_until_ms), (Some(c), Some(l)) if l > c)
}

/// The fastest rate (node ms per harness ms) the node's clock can have run between
/// consecutive samples, over pairs at least 50 ms apart; at least 1.
fn fastest_rate(of: &[&Sample]) -> f64 {
    of.windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0], w[1]);
            let least_ns = b.sent.checked_sub(a.time)?;
            let advance = b.clock_ms? - a.clock_ms?;
            (least_ns >= 50_000_000).then(|| advance as f64 / (least_ns as f64 / 1e6))
        })
        .fold(1.0, f64::max)
}

/// Every claim of one node as a certain harness-time interval.
fn held<'a>(of: &[&'a Sample]) -> Vec<Held<'a>> {
    let rate = fastest_rate(of);
    let mut out = Vec::new();
    for (i, s) in of.iter().enumerate() {
        if !claims(s) {
            continue;
        }
        let (Some(clock), Some(lease)) = (s.clock_ms, s.lease_until_ms) else {
            continue;
        };
        // The last sample known to answer before the clock reached `lease`.
        let (mut at_ns, mut at_clock) = (s.sent, clock);
        let mut cut = None;
        for later in &of[i + 1..] {
            let Some(c) = later.clock_ms else { break };
            if !claims(later) {
                cut = Some(later.sent);
                break;
            }
            if c >= lease {
                break;
            }
            (at_ns, at_clock) = (later.sent, c);
        }
        let rest_ns = ((lease - at_clock) as f64 / rate * 1e6) as u64;
        let until = cut.map_or(at_ns + rest_ns, |c| c.min(at_ns + rest_ns));
        if until > s.time {
            out.push(Held {
                sample: s,
                from: s.time,
                until,
            });
        }
    }
    // Successive claims of one reign overlap each other: keep their union per stretch.
    let mut merged: Vec<Held> = Vec::new();
    for h in out {
        match merged.last_mut() {
            Some(m) if h.from <= m.until && h.sample.term == m.sample.term => {
                m.until = m.until.max(h.until)
            }
            _ => merged.push(h),
        }
    }
    merged
}

/// Checks the probes of `h`. Unknown when no node ever claimed a lease.
pub fn check(h: &History) -> Verdict {
    let (all, skipped) = samples(h);
    let mut by_node: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in &all {
        by_node.entry(s.node.as_str()).or_default().push(s);
    }
    let mut spans: Vec<Held> = by_node.values().flat_map(|v| held(v)).collect();
    spans.sort_by_key(|h| h.from);
    let claims_seen = all.iter().filter(|s| claims(s)).count();
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut anomalies = Vec::new();
    let mut overlaps = 0usize;
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if b.from >= a.until {
                break;
            }
            if a.sample.node == b.sample.node {
                continue;
            }
            overlaps += 1;
            if anomalies.len() >= MAX_ANOMALIES {
                continue;
            }
            let (from, until) = (b.from, a.until.min(b.until));
            anomalies.push(Anomaly {
                kind: "lease-overlap".into(),
                key: None,
                description: format!(
                    "{} (generation {}) and {} (generation {}) both held a leader lease for \
                     {:.0} ms, from {:.3} s: {}'s lease, by its own clock, outlasted the moment \
                     {} claimed one",
                    a.sample.node,
                    a.sample.term,
                    b.sample.node,
                    b.sample.term,
                    ms(until - from),
                    from as f64 / 1e9,
                    a.sample.node,
                    b.sample.node
                ),
                events: vec![a.sample.event, b.sample.event],
                data: json!({
                    "first": {"node": a.sample.node, "generation": a.sample.term,
                              "from_ns": a.from, "until_ns": a.until},
                    "second": {"node": b.sample.node, "generation": b.sample.term,
                               "from_ns": b.from, "until_ns": b.until},
                    "overlap_ms": ms(until - from),
                }),
            });
        }
    }
    let undecided =
        (claims_seen == 0).then(|| format!("no status of {} samples claimed a lease", all.len()));
    super::verdict(
        "split-brain/lease-overlap",
        anomalies,
        format!(
            "{claims_seen} lease claims in {} status samples: no two nodes held a lease at once",
            all.len()
        ),
        undecided,
        json!({"samples": all.len(), "claims": claims_seen, "held_spans": spans.len(),
               "overlaps": overlaps, "skipped": skipped}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validity;
    use faultline_history::{Event, EventType, Process};
    use serde_json::Value;
    use std::path::Path;

    /// A status sample: asked at `t_ms`, recorded 2 ms later; the node's clock reads
    /// `clock`, and it claims a lease until `lease` if given.
    fn probe(t_ms: u64, node: &str, generation: u64, clock: i64, lease: Option<i64>) -> Event {
        let role = if lease.is_some() {
            "leader"
        } else {
            "follower"
        };
        Event {
            request_id: None,
            index: 0,
            time: (t_ms + 2) * 1_000_000,
            process: Process::probe(),
            kind: EventType::Info,
            f: "status".into(),
            key: None,
            value: json!({"id": node, "role": role, "generation": generation, "clock_ms": clock,
                          "lease_until_ms": lease.map_or(Value::Null, Value::from),
                          "probe_sent_ns": t_ms * 1_000_000}),
            node: Some(node.into()),
            error: None,
        }
    }

    fn history(mut events: Vec<Event>) -> History {
        events.sort_by_key(|e| e.time);
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::from_events(events, Path::new("t.jsonl"), None).unwrap()
    }

    /// n1 leads until 1000 ms (its lease, renewed every 100 ms, lasts 800 ms of its clock,
    /// which runs at `rate`); n2 takes over at `takeover` ms. Probes every 100 ms.
    fn handover(rate: f64, takeover: u64) -> History {
        let mut ev = Vec::new();
        for t in (0..3000).step_by(100) {
            let c1 = (t as f64 * rate) as i64;
            // n1 renews until 1000 ms, then is cut off and keeps its last lease.
            let last_renew = (t.min(1000) as f64 * rate) as i64;
            let l1 = (c1 < last_renew + 800).then_some(last_renew + 800);
            ev.push(probe(t, "n1", 1, c1, l1));
            let l2 = (t >= takeover).then_some(t as i64 + 800);
            ev.push(probe(t, "n2", 2, t as i64, l2));
        }
        history(ev)
    }

    #[test]
    fn a_lease_taken_over_after_it_ran_out_is_valid() {
        let v = check(&handover(1.0, 1900));
        assert_eq!(v.valid, Validity::Valid, "{}", v.explanation);
        assert!(v.stats["claims"].as_u64().unwrap() > 10);
    }

    #[test]
    fn a_lease_that_outlives_the_next_one_by_a_slow_clock_is_caught() {
        // n1's clock at 0.8x: its 800 ms lease from 1000 ms lasts until 2000 ms of harness
        // time, by its own samples; n2 claimed at 1900.
        let v = check(&handover(0.8, 1900));
        assert_eq!(v.valid, Validity::Invalid, "{}", v.explanation);
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "lease-overlap");
        assert_eq!(a.data["first"]["node"], "n1");
        assert_eq!(a.data["second"]["node"], "n2");
        let overlap = a.data["overlap_ms"].as_f64().unwrap();
        assert!((0.0..=120.0).contains(&overlap), "{overlap}");
        // The same takeover with n1's clock on time: its lease ran out at 1800.
        assert_eq!(check(&handover(1.0, 1900)).valid, Validity::Valid);
    }

    #[test]
    fn a_lease_given_up_early_ends_when_the_probe_saw_it_gone() {
        // n1 claims until 1000 at 0 ms, gives it up by the 300 ms sample; n2 claims at 400.
        let ev = vec![
            probe(0, "n1", 1, 0, Some(1000)),
            probe(100, "n1", 1, 100, Some(1000)),
            probe(300, "n1", 1, 300, None),
            probe(400, "n2", 2, 400, Some(1200)),
            probe(500, "n2", 2, 500, Some(1200)),
        ];
        assert_eq!(check(&history(ev)).valid, Validity::Valid);
    }

    #[test]
    fn no_lease_claims_is_unknown() {
        let ev = vec![probe(0, "n1", 1, 0, None), probe(100, "n2", 1, 100, None)];
        assert_eq!(check(&history(ev)).valid, Validity::Unknown);
    }
}
