//! What one run of a suite showed, judged against its row: pass, or which kind of failure,
//! and the exit code each contributes (harness failure 255 > unknown 2 > anomaly 1 > 0).

use serde::Serialize;

use super::fingerprint::Fingerprint;
use super::spec::{Expect, Row};
use crate::checker::Validity;

/// What came back from one `faultline run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub case: String,
    pub seed: u64,
    /// The exact command that makes this run again.
    pub command: String,
    pub exit_code: Option<i32>,
    pub run_dir: Option<String>,
    pub valid: Option<Validity>,
    pub ok_ops: u64,
    /// Faults that took effect (start events without an error).
    pub faults: u64,
    pub fingerprint: Fingerprint,
    pub elapsed_s: f64,
    /// Killed for running past the row's `run_timeout_s`.
    pub timed_out: bool,
    /// Not started: the suite's time budget was spent.
    pub skipped: bool,
    /// The harness's own words when it failed (last lines of the run's output).
    pub error: Option<String>,
}

/// A run judged against its row.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "why", rename_all = "kebab-case")]
pub enum Judgement {
    Pass,
    /// Run, but the row does not count (quarantined): what it showed.
    Quarantined(String),
    /// An expected-valid run found anomalies.
    Anomaly(String),
    /// An expected-invalid run came back valid.
    NotCaught(String),
    /// Too little work to mean anything (ok ops or faults under the row's floor).
    DidNothing(String),
    /// Nothing decided (checker budget, or the run said unknown).
    Unknown(String),
    /// Setup, heal or teardown failed, or the run ran past its limit.
    Harness(String),
    /// Not run: the suite's time budget ran out first.
    Skipped(String),
}

impl Judgement {
    pub fn exit_code(&self) -> u8 {
        match self {
            Judgement::Pass | Judgement::Quarantined(_) => 0,
            Judgement::Anomaly(_) | Judgement::NotCaught(_) => 1,
            Judgement::DidNothing(_) | Judgement::Unknown(_) | Judgement::Skipped(_) => 2,
            Judgement::Harness(_) => 255,
        }
    }

    pub fn is_failure(&self) -> bool {
        self.exit_code() != 0
    }

    /// A short word for progress lines and JUnit messages.
    pub fn word(&self) -> &'static str {
        match self {
            Judgement::Pass => "pass",
            Judgement::Quarantined(_) => "quarantined",
            Judgement::Anomaly(_) => "anomaly",
            Judgement::NotCaught(_) => "not caught",
            Judgement::DidNothing(_) => "did nothing",
            Judgement::Unknown(_) => "unknown",
            Judgement::Harness(_) => "harness failure",
            Judgement::Skipped(_) => "skipped",
        }
    }

    pub fn why(&self) -> &str {
        match self {
            Judgement::Pass => "",
            Judgement::Quarantined(w)
            | Judgement::Anomaly(w)
            | Judgement::NotCaught(w)
            | Judgement::DidNothing(w)
            | Judgement::Unknown(w)
            | Judgement::Harness(w)
            | Judgement::Skipped(w) => w,
        }
    }
}

/// The suite's exit code: the highest in precedence of its runs' (255 > 2 > 1 > 0).
pub fn exit_code<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> u8 {
    judgements
        .into_iter()
        .map(Judgement::exit_code)
        .max()
        .unwrap_or(0)
}

/// What the run showed, before the row's expectation: `Ok(validity)` or a harness failure.
fn showed(r: &RunRecord) -> Result<Validity, Judgement> {
    if r.skipped {
        return Err(Judgement::Skipped(
            "the suite's time budget was spent before this run".into(),
        ));
    }
    if r.timed_out {
        return Err(Judgement::Harness(format!(
            "ran past its limit ({:.0} s) and was stopped",
            r.elapsed_s
        )));
    }
    let err = || r.error.clone().unwrap_or_default();
    match (r.exit_code, r.valid) {
        (Some(255), _) => Err(Judgement::Harness(format!(
            "faultline run exited 255: {}",
            err()
        ))),
        (Some(254), _) => Err(Judgement::Harness(format!(
            "faultline run refused its arguments (exit 254): {}",
            err()
        ))),
        (_, Some(v)) => Ok(v),
        (code, None) => Err(Judgement::Harness(format!(
            "no results.json (exit {}): {}",
            code.map_or("by signal".into(), |c| c.to_string()),
            err()
        ))),
    }
}

/// Judges one run against its row (catch rates are applied over the row afterwards).
pub fn judge(row: &Row, r: &RunRecord) -> Judgement {
    let v = match showed(r) {
        Ok(v) => v,
        Err(j) if row.expect == Expect::Quarantined => {
            return Judgement::Quarantined(format!("{}: {}", j.word(), j.why()));
        }
        Err(j) => return j,
    };
    let work = if r.ok_ops < row.min_ok_ops {
        Some(format!(
            "{} ok ops, the row needs at least {}",
            r.ok_ops, row.min_ok_ops
        ))
    } else if r.faults < row.min_faults {
        Some(format!(
            "{} faults took effect, the row needs at least {}",
            r.faults, row.min_faults
        ))
    } else {
        None
    };
    let found = || format!("anomalies found: {}", r.fingerprint);
    match (row.expect, v) {
        (Expect::Quarantined, v) => Judgement::Quarantined(match v {
            Validity::Invalid => found(),
            Validity::Valid => "valid".into(),
            Validity::Unknown => "unknown".into(),
        }),
        (_, Validity::Unknown) => Judgement::Unknown("the checkers could not decide".into()),
        (Expect::Valid, Validity::Invalid) => Judgement::Anomaly(found()),
        // a caught bug is caught, however little else happened
        (Expect::Invalid, Validity::Invalid) => Judgement::Pass,
        (_, Validity::Valid) if work.is_some() => Judgement::DidNothing(work.unwrap_or_default()),
        (Expect::Valid, Validity::Valid) => Judgement::Pass,
        (Expect::Invalid, Validity::Valid) => Judgement::NotCaught(format!(
            "valid, but bug{} {} must be caught{}",
            if row.bugs.len() == 1 { "" } else { "s" },
            row.bugs.join(", "),
            if row.canary {
                " (a canary: the suite cannot be trusted while it is not caught)"
            } else {
                ""
            }
        )),
    }
}

/// For expect-invalid rows with a catch rate below 1: if enough runs were caught, the misses
/// pass; otherwise each miss says the rate it fell short of.
pub fn apply_catch_rate(row: &Row, judgements: &mut [Judgement]) {
    if row.expect != Expect::Invalid || row.min_catch_rate >= 1.0 {
        return;
    }
    let ran = judgements
        .iter()
        .filter(|j| matches!(j, Judgement::Pass | Judgement::NotCaught(_)))
        .count();
    let caught = judgements
        .iter()
        .filter(|j| matches!(j, Judgement::Pass))
        .count();
    if ran == 0 {
        return;
    }
    let rate = caught as f64 / ran as f64;
    for j in judgements.iter_mut() {
        if let Judgement::NotCaught(w) = j {
            if rate >= row.min_catch_rate {
                *j = Judgement::Pass;
            } else {
                *w = format!(
                    "{w}; caught {caught} of {ran}, under the row's min_catch_rate {}",
                    row.min_catch_rate
                );
            }
        }
    }
}

/// A failed run made again on the same seed: is it the same failure?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Every rerun failed the same way (for anomalies: the same fingerprint).
    Reproducible,
    /// Some rerun did not.
    Flaky,
    /// The harness itself failed (setup, heal, a run past its limit).
    Infra,
}

pub fn classify(
    original: &Judgement,
    first: &RunRecord,
    reruns: &[(RunRecord, Judgement)],
) -> Classification {
    if matches!(original, Judgement::Harness(_)) {
        return Classification::Infra;
    }
    let same = reruns.iter().all(|(r, j)| {
        std::mem::discriminant(j) == std::mem::discriminant(original)
            && (first.fingerprint.is_empty()
                || first.fingerprint.compare(&r.fingerprint).reproduces())
    });
    if same {
        Classification::Reproducible
    } else {
        Classification::Flaky
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::spec::Suite;

    fn rows() -> Vec<Row> {
        let text = r#"
time_budget_s = 100
[[row]]
name = "correct"
system = "raft"
seeds = [1]
expect = "valid"
min_ok_ops = 100
[[row]]
name = "canary"
system = "raft"
bug = "stale-local-read"
seeds = [1]
expect = "invalid"
canary = true
[[row]]
name = "rate"
system = "raft"
bug = "x"
seeds = [1, 2, 3, 4]
expect = "invalid"
min_catch_rate = 0.5
[[row]]
name = "q"
system = "raft"
seeds = [1]
expect = "quarantined"
"#;
        Suite::parse(text, "t", "t.toml", &[]).unwrap().rows
    }

    fn rec(valid: Option<Validity>, code: i32, ok: u64, faults: u64) -> RunRecord {
        RunRecord {
            exit_code: Some(code),
            valid,
            ok_ops: ok,
            faults,
            ..RunRecord::default()
        }
    }

    #[test]
    fn expectations_invert_and_floors_hold() {
        let r = rows();
        let (valid, invalid) = (Some(Validity::Valid), Some(Validity::Invalid));
        assert_eq!(judge(&r[0], &rec(valid, 0, 500, 3)), Judgement::Pass);
        assert_eq!(judge(&r[0], &rec(invalid, 1, 500, 3)).exit_code(), 1);
        let idle = judge(&r[0], &rec(valid, 0, 5, 3));
        assert_eq!(idle.word(), "did nothing");
        assert_eq!(idle.exit_code(), 2);
        assert!(idle.why().contains("5 ok ops"), "{idle:?}");
        assert_eq!(judge(&r[0], &rec(valid, 0, 500, 0)).word(), "did nothing");
        assert_eq!(judge(&r[1], &rec(invalid, 1, 3, 0)), Judgement::Pass);
        let missed = judge(&r[1], &rec(valid, 0, 500, 3));
        assert_eq!(missed.exit_code(), 1);
        assert!(missed.why().contains("canary"), "{missed:?}");
        assert_eq!(judge(&r[0], &rec(None, 255, 0, 0)).exit_code(), 255);
        assert_eq!(judge(&r[0], &rec(invalid, 255, 0, 0)).exit_code(), 255);
        assert_eq!(
            judge(&r[0], &rec(Some(Validity::Unknown), 2, 500, 3)).exit_code(),
            2
        );
        assert_eq!(judge(&r[3], &rec(invalid, 1, 500, 3)).exit_code(), 0);
        assert_eq!(judge(&r[3], &rec(None, 255, 0, 0)).exit_code(), 0);
        let timed = RunRecord {
            timed_out: true,
            ..rec(None, 0, 0, 0)
        };
        assert_eq!(judge(&r[0], &timed).word(), "harness failure");
        let skipped = RunRecord {
            skipped: true,
            ..RunRecord::default()
        };
        assert_eq!(judge(&r[0], &skipped).exit_code(), 2);
    }

    #[test]
    fn exit_precedence() {
        let j = |c: u8| match c {
            1 => Judgement::Anomaly(String::new()),
            2 => Judgement::Unknown(String::new()),
            255 => Judgement::Harness(String::new()),
            _ => Judgement::Pass,
        };
        assert_eq!(exit_code(&[j(0), j(1), j(2)]), 2);
        assert_eq!(exit_code(&[j(255), j(1), j(2)]), 255);
        assert_eq!(exit_code(&[j(0), j(1)]), 1);
        assert_eq!(exit_code(&[]), 0);
    }

    #[test]
    fn catch_rate_over_a_row() {
        let r = &rows()[2];
        let miss = || Judgement::NotCaught("valid".into());
        let mut half = vec![Judgement::Pass, miss(), Judgement::Pass, miss()];
        apply_catch_rate(r, &mut half);
        assert!(half.iter().all(|j| *j == Judgement::Pass));
        let mut low = vec![Judgement::Pass, miss(), miss(), miss()];
        apply_catch_rate(r, &mut low);
        assert_eq!(exit_code(&low), 1);
        assert!(low[1].why().contains("caught 1 of 4"), "{:?}", low[1]);
    }

    #[test]
    fn reruns_classify() {
        let fp = |s: &str| Fingerprint {
            signatures: vec![s.into()],
        };
        let first = RunRecord {
            fingerprint: fp("linearizable:nonlinearizable:read"),
            ..RunRecord::default()
        };
        let anomaly = Judgement::Anomaly(String::new());
        let again = (first.clone(), anomaly.clone());
        assert_eq!(
            classify(&anomaly, &first, &[again.clone(), again.clone()]),
            Classification::Reproducible
        );
        let passed = (RunRecord::default(), Judgement::Pass);
        assert_eq!(
            classify(&anomaly, &first, &[again.clone(), passed]),
            Classification::Flaky
        );
        let other = (
            RunRecord {
                fingerprint: fp("split-brain/logs:x"),
                ..RunRecord::default()
            },
            anomaly.clone(),
        );
        assert_eq!(classify(&anomaly, &first, &[other]), Classification::Flaky);
        assert_eq!(
            classify(&Judgement::Harness(String::new()), &first, &[again]),
            Classification::Infra
        );
    }
}
