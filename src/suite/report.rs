//! A finished suite as data: `summary.json` (what `faultline serve` reads back across nights)
//! and one JUnit file with a testcase per run, whose failure carries the seed, the
//! fingerprint and the exact command that reproduces it.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::outcome::{Classification, Judgement, RunRecord};
use crate::report::escape::html as xml;

/// One run in the summary: what came back, how it was judged, and any reruns.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub row: String,
    pub canary: bool,
    #[serde(flatten)]
    pub record: RunRecord,
    pub judgement: Judgement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reruns: Vec<RunRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub suite: String,
    pub file: String,
    pub seed: u64,
    pub started_at: String,
    pub elapsed_s: f64,
    pub time_budget_s: f64,
    pub exit_code: u8,
    pub passed: usize,
    pub failed: usize,
    pub quarantined: usize,
    /// Canaries caught every time (false if any was missed or not run).
    pub canaries_caught: bool,
    pub cases: Vec<CaseResult>,
}

/// What `faultline serve` needs of a stored summary (read leniently).
#[derive(Clone, Debug, Deserialize)]
pub struct StoredCase {
    pub row: String,
    pub case: String,
    pub seed: u64,
    #[serde(default)]
    pub canary: bool,
    #[serde(default)]
    pub run_dir: Option<String>,
    #[serde(default)]
    pub fingerprint: super::fingerprint::Fingerprint,
    pub judgement: StoredJudgement,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StoredJudgement {
    pub outcome: String,
    #[serde(default)]
    pub why: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StoredSummary {
    pub suite: String,
    pub started_at: String,
    pub exit_code: u8,
    #[serde(default)]
    pub elapsed_s: f64,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub failed: usize,
    #[serde(default)]
    pub quarantined: usize,
    #[serde(default)]
    pub cases: Vec<StoredCase>,
}

pub fn junit(s: &Summary) -> String {
    let failures = s
        .cases
        .iter()
        .filter(|c| matches!(c.judgement.exit_code(), 1))
        .count();
    let errors = s
        .cases
        .iter()
        .filter(|c| matches!(c.judgement.exit_code(), 2 | 255))
        .count();
    let skipped = s.quarantined;
    let n = s.cases.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="faultline suite {}" tests="{n}" failures="{failures}" errors="{errors}" time="{:.3}">"#,
        xml(&s.suite),
        s.elapsed_s
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{n}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{:.3}" timestamp="{}">"#,
        xml(&s.suite),
        s.elapsed_s,
        xml(&s.started_at)
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"file\" value=\"{}\"/>\n      <property name=\"suite_seed\" value=\"{}\"/>\n    </properties>",
        xml(&s.file),
        s.seed
    );
    for c in &s.cases {
        let r = &c.record;
        let _ = write!(
            out,
            r#"    <testcase classname="{}" name="seed={}" time="{:.3}""#,
            xml(&c.row),
            r.seed,
            r.elapsed_s
        );
        let mut body = format!(
            "seed: {}\nfingerprint: {}\nreproduce: {}\n",
            r.seed, r.fingerprint, r.command
        );
        if let Some(d) = &r.run_dir {
            let _ = writeln!(body, "run: {d}");
            // the same faults at the same times, not only the same seed
            let _ = writeln!(body, "replay: faultline replay {d}");
        }
        if let Some(cl) = c.classification {
            let _ = writeln!(body, "reruns: {} on the same seed: {cl:?}", c.reruns.len());
        }
        let message = format!(
            "{}{}: {} (seed {}; reproduce: {})",
            if c.canary { "canary " } else { "" },
            c.judgement.word(),
            c.judgement.why(),
            r.seed,
            r.command
        );
        let tag = match c.judgement.exit_code() {
            0 if matches!(c.judgement, Judgement::Quarantined(_)) => Some("skipped"),
            0 => None,
            1 => Some("failure"),
            _ => Some("error"),
        };
        match tag {
            None => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml(&body)
                );
            }
            Some(t) => {
                let _ = writeln!(
                    out,
                    ">\n      <{t} message=\"{}\" type=\"{}\">{}</{t}>\n    </testcase>",
                    xml(&message),
                    xml(c.judgement.word()),
                    xml(&body)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::fingerprint::Fingerprint;

    #[test]
    fn a_failure_names_seed_fingerprint_and_command() {
        let rec = RunRecord {
            case: "r/seed=7".into(),
            seed: 7,
            command: "faultline run --seed 7 --bug stale-local-read".into(),
            fingerprint: Fingerprint {
                signatures: vec!["linearizable/kv:nonlinearizable:read".into()],
            },
            ..RunRecord::default()
        };
        let case = |j: Judgement| CaseResult {
            row: "r".into(),
            canary: false,
            record: rec.clone(),
            judgement: j,
            classification: None,
            reruns: vec![],
        };
        let s = Summary {
            suite: "t".into(),
            file: "t.toml".into(),
            seed: 1,
            started_at: "2026-01-01T00:00:00Z".into(),
            elapsed_s: 3.0,
            time_budget_s: 10.0,
            exit_code: 1,
            passed: 1,
            failed: 1,
            quarantined: 1,
            canaries_caught: true,
            cases: vec![
                case(Judgement::Pass),
                case(Judgement::Anomaly("anomalies found".into())),
                case(Judgement::Quarantined("valid".into())),
            ],
        };
        let x = junit(&s);
        assert!(
            x.contains(r#"tests="3" failures="1" errors="0" skipped="1""#),
            "{x}"
        );
        assert!(x.contains(r#"<failure message="anomaly: anomalies found (seed 7; reproduce: faultline run --seed 7 --bug stale-local-read)""#), "{x}");
        assert!(x.contains("fingerprint: "), "{x}");
        assert!(x.contains("<skipped message=\"quarantined"), "{x}");
    }
}
