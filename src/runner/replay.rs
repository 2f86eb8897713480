//! How closely a replay followed the run it replayed: the verdict and fingerprint, and the
//! realised schedule fault by fault (the same nodes, the same time since the start, the same
//! place among the clients' ops).

use serde::Serialize;
use serde_json::Value;

use crate::checker::{Validity, Verdict};
use crate::faults::Fault;
use crate::history::{EventType, History, Process};
use crate::nemesis::Realised;
use crate::suite::fingerprint::{Fingerprint, Match};

/// The invocation times of the clients' ops, in order: a fault's op index is how many of
/// them came before it.
pub fn invoke_times(h: &History) -> Vec<u64> {
    let mut t: Vec<u64> = h
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke && matches!(e.process, Process::Client(_)))
        .map(|e| e.time)
        .collect();
    t.sort_unstable();
    t
}

fn ops_before(times: &[u64], at_ns: u64) -> i64 {
    times.partition_point(|&t| t < at_ns) as i64
}

/// Median and largest of absolute values (0 for none).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        for x in &mut v {
            *x = x.abs();
        }
        v.sort_by(f64::total_cmp);
        Spread {
            median: v[v.len() / 2],
            max: v[v.len() - 1],
        }
    }
}

/// The realised schedules compared.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Fidelity {
    /// Faults the replay was given.
    pub recorded: usize,
    /// Of those, put in force in the replay (without error).
    pub replayed: usize,
    /// Of those, on exactly the recorded nodes (the same grudge, links, targets).
    pub same_targets: usize,
    /// Aimed at the leader, and another node led in the replay.
    pub reaimed: usize,
    /// Indexes of faults not replayed (the run ended first, or applying failed).
    pub missing: Vec<usize>,
    /// |replay - original| of each fault's start, in ms since the run began.
    pub start_delta_ms: Spread,
    /// |replay - original| of the number of client ops invoked before each fault.
    pub op_index_delta: Spread,
}

/// The same fault on the same nodes (a proxy rule's id aside).
fn same_nodes(a: &Fault, b: &Fault) -> bool {
    match (a, b) {
        (Fault::Message { rule: x }, Fault::Message { rule: y }) => {
            let mut y = y.clone();
            y.id = x.id;
            *x == y
        }
        _ => a == b,
    }
}

/// Compares the schedule a replay was given (`given`, times from the original run, whose
/// client invocations are `given_ops`) with what it realised.
pub fn fidelity(given: &Realised, given_ops: &[u64], got: &Realised, got_ops: &[u64]) -> Fidelity {
    let mut f = Fidelity {
        recorded: given.faults.len(),
        ..Fidelity::default()
    };
    let (mut dt, mut dops) = (Vec::new(), Vec::new());
    for g in &given.faults {
        let hit = got
            .faults
            .iter()
            .find(|r| r.detail.get("replay_of").and_then(Value::as_u64) == Some(g.index as u64));
        let Some(r) = hit else {
            f.missing.push(g.index);
            continue;
        };
        f.replayed += 1;
        if same_nodes(&r.fault, &g.fault) {
            f.same_targets += 1;
        }
        if r.detail.contains_key("reaimed_from") {
            f.reaimed += 1;
        }
        dt.push((r.start_ns as f64 - g.start_ns as f64) / 1e6);
        dops.push((ops_before(got_ops, r.start_ns) - ops_before(given_ops, g.start_ns)) as f64);
    }
    f.start_delta_ms = Spread::of(dt);
    f.op_index_delta = Spread::of(dops);
    f
}

/// A replay's comparison with its original, as `replay.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    pub original: String,
    pub faults_from: String,
    pub original_valid: Option<Validity>,
    pub replay_valid: Validity,
    pub original_fingerprint: Option<Fingerprint>,
    pub replay_fingerprint: Fingerprint,
    /// How the fingerprints compare (None when the original has no results).
    pub fingerprint_match: Option<Match>,
    /// The original's outcome came back: the same failure (fingerprint), or valid again.
    pub reproduced: Option<bool>,
    pub schedule: Fidelity,
    /// Faults of the original that failed to start there, so were not replayed.
    pub not_replayed: Vec<String>,
}

fn word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
}

impl ReplayReport {
    /// `before`: the original's verdict and verdicts, if it finished; `after`: the replay's.
    pub fn new(
        original: String,
        faults_from: String,
        before: Option<(Validity, &[Verdict])>,
        after: (Validity, &[Verdict]),
        schedule: Fidelity,
        not_replayed: Vec<String>,
    ) -> ReplayReport {
        let fp_before = before.map(|(_, v)| Fingerprint::of(v));
        let fp_after = Fingerprint::of(after.1);
        let m = fp_before.as_ref().map(|b| b.compare(&fp_after));
        let reproduced = before.map(|(v, _)| match v {
            Validity::Invalid => m.is_some_and(Match::reproduces),
            v => v == after.0,
        });
        ReplayReport {
            original,
            faults_from,
            original_valid: before.map(|(v, _)| v),
            replay_valid: after.0,
            original_fingerprint: fp_before,
            replay_fingerprint: fp_after,
            fingerprint_match: m,
            reproduced,
            schedule,
            not_replayed,
        }
    }

    /// What `faultline replay` prints.
    pub fn lines(&self) -> Vec<String> {
        let was = self.original_valid.map_or("unknown (no results)", word);
        let fp = |f: Option<&Fingerprint>| {
            f.map_or("-".to_string(), |f| {
                if f.is_empty() {
                    "(none)".into()
                } else {
                    f.id()
                }
            })
        };
        let outcome = match self.reproduced {
            Some(true) => "reproduced",
            Some(false) => "NOT reproduced",
            None => "nothing to compare with",
        };
        let s = &self.schedule;
        let mut out = vec![
            format!(
                "verdict {} -> {}; fingerprint {} -> {}{}: {outcome}",
                was,
                word(self.replay_valid),
                fp(self.original_fingerprint.as_ref()),
                fp(Some(&self.replay_fingerprint)),
                self.fingerprint_match.map_or("", |m| match m {
                    Match::Same => " (same)",
                    Match::Primary => " (same primary signature)",
                    Match::Different => " (different)",
                }),
            ),
            format!(
                "schedule: {} of {} faults replayed, {} on the same nodes ({} re-aimed at the new leader); start delta median {:.1} ms (max {:.1}); op index delta median {} (max {})",
                s.replayed,
                s.recorded,
                s.same_targets,
                s.reaimed,
                s.start_delta_ms.median,
                s.start_delta_ms.max,
                s.op_index_delta.median,
                s.op_index_delta.max
            ),
        ];
        if !s.missing.is_empty() {
            out.push(format!(
                "not replayed: faults {:?} (the run ended first or applying failed)",
                s.missing
            ));
        }
        for n in &self.not_replayed {
            out.push(format!("skipped: {n}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Anomaly;
    use crate::nemesis::replay::parse;
    use serde_json::json;

    fn realised(faults: Value) -> Realised {
        parse(&json!({"seed": 1, "faults": faults}).to_string(), "t").unwrap()
    }

    fn start(at_ms: u64, targets: &[&str], extra: Value) -> Value {
        let mut d = json!({"shape": "one"});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"at_ns": at_ms * 1_000_000, "action": "start", "fault": "kill", "targets": targets, "detail": d})
    }

    #[test]
    fn fidelity_counts_faults_targets_and_deltas() {
        let given = realised(json!([
            start(1000, &["n1"], json!({})),
            start(5000, &["n2"], json!({}))
        ]));
        let got = realised(json!([start(1002, &["n1"], json!({"replay_of": 0})),]));
        // original: 10 ops before 1 s; replay: 13
        let given_ops: Vec<u64> = (0..10).map(|i| i * 1_000_000).collect();
        let got_ops: Vec<u64> = (0..13).map(|i| i * 1_000_000).collect();
        let f = fidelity(&given, &given_ops, &got, &got_ops);
        assert_eq!(
            (f.recorded, f.replayed, f.same_targets, f.reaimed),
            (2, 1, 1, 0)
        );
        assert_eq!(f.missing, [1]);
        assert!((f.start_delta_ms.median - 2.0).abs() < 1e-9);
        assert_eq!(f.op_index_delta.max, 3.0);
    }

    #[test]
    fn reaimed_faults_are_counted_and_differ_in_targets() {
        let given = realised(json!([start(1000, &["n1"], json!({}))]));
        let got = realised(json!([start(
            1000,
            &["n3"],
            json!({"replay_of": 0, "reaimed_from": "n1"})
        )]));
        let f = fidelity(&given, &[], &got, &[]);
        assert_eq!((f.replayed, f.same_targets, f.reaimed), (1, 0, 1));
    }

    fn invalid(kind: &str) -> Vec<Verdict> {
        vec![Verdict {
            checker: "linearizable/cas-register".into(),
            valid: Validity::Invalid,
            anomalies: vec![Anomaly {
                kind: kind.into(),
                key: None,
                description: "x".into(),
                events: vec![],
                data: Value::Null,
            }],
            explanation: String::new(),
            stats: Value::Null,
        }]
    }

    #[test]
    fn reproduced_means_the_same_failure_or_valid_again() {
        use Validity::*;
        let f = Fidelity::default;
        let (bad, other) = (invalid("nonlinearizable"), invalid("G1c"));
        let report = |before: Option<(Validity, &[Verdict])>, after: (Validity, &[Verdict])| {
            ReplayReport::new("o".into(), "s".into(), before, after, f(), vec![])
        };
        let r = report(Some((Invalid, &bad)), (Invalid, &bad));
        assert_eq!(r.reproduced, Some(true));
        assert!(
            r.lines()[0].ends_with("(same): reproduced"),
            "{:?}",
            r.lines()
        );
        assert_eq!(
            report(Some((Invalid, &bad)), (Valid, &[])).reproduced,
            Some(false)
        );
        assert_eq!(
            report(Some((Invalid, &bad)), (Invalid, &other)).reproduced,
            Some(false)
        );
        assert_eq!(
            report(Some((Valid, &[])), (Valid, &[])).reproduced,
            Some(true)
        );
        assert_eq!(
            report(Some((Valid, &[])), (Invalid, &bad)).reproduced,
            Some(false)
        );
        assert_eq!(report(None, (Valid, &[])).reproduced, None);
    }
}
