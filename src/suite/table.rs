//! A finished suite as one Markdown table, a line per row: what ran, what it showed over its
//! seeds (valid x/n, or caught x/n) and which checkers flagged it. README's catch tables are
//! this output pasted, so they are measured, not written by hand.

use std::collections::BTreeMap;
use std::fmt::Write;

use faultline_checker::Validity;

use super::outcome::Judgement;
use super::report::Summary;
use super::spec::{Expect, Row};

/// The table for `summary`, whose cases were made from `rows`.
pub fn markdown(summary: &Summary, rows: &[Row]) -> String {
    let mut out = String::from(
        "| row | system | workload | nemesis | bug | expected | result | checkers that flagged it |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let cases: Vec<_> = summary.cases.iter().filter(|c| c.row == row.name).collect();
        if cases.is_empty() {
            continue;
        }
        let ran: Vec<_> = cases
            .iter()
            .filter(|c| !matches!(c.judgement, Judgement::Skipped(_)))
            .collect();
        let n = ran.len();
        let caught = ran
            .iter()
            .filter(|c| c.record.valid == Some(Validity::Invalid))
            .count();
        let passed = ran
            .iter()
            .filter(|c| c.judgement == Judgement::Pass)
            .count();
        let mut result = match row.expect {
            Expect::Valid => format!("{passed}/{n} valid"),
            Expect::Invalid => format!("caught {caught}/{n}"),
            Expect::Quarantined if row.bugs.is_empty() => format!("{passed}/{n} valid"),
            Expect::Quarantined => format!("caught {caught}/{n}"),
        };
        // Anything that is neither the expected outcome nor a plain miss is named with its seed.
        let odd: Vec<String> = ran
            .iter()
            .filter(|c| {
                !matches!(
                    c.judgement,
                    Judgement::Pass | Judgement::NotCaught(_) | Judgement::Quarantined(_)
                )
            })
            .map(|c| format!("seed {}: {}", c.record.seed, c.judgement.word()))
            .collect();
        if !odd.is_empty() {
            let _ = write!(result, " ({})", odd.join("; "));
        }
        if n < cases.len() {
            let _ = write!(result, ", {} skipped", cases.len() - n);
        }
        let mut flagged: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &ran {
            let mut checkers: Vec<&str> = c
                .record
                .fingerprint
                .signatures
                .iter()
                .map(|s| s.split(':').next().unwrap_or(s))
                .collect();
            checkers.sort_unstable();
            checkers.dedup();
            for k in checkers {
                *flagged.entry(k).or_default() += 1;
            }
        }
        let mut flagged: Vec<_> = flagged.into_iter().collect();
        flagged.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let flagged = flagged
            .iter()
            .map(|(k, c)| format!("{k} ({c})"))
            .collect::<Vec<_>>()
            .join(", ");
        let options: String = row
            .options
            .iter()
            .map(|(k, v, _)| match v.as_str() {
                "true" => format!(" --{k}"),
                _ => format!(" --{k} {v}"),
            })
            .collect();
        let code = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("`{s}`")
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            code(&row.system),
            code(&row.workload),
            code(&format!("{}{options}", row.nemesis)),
            code(&row.bugs.join(", ")),
            match row.expect {
                Expect::Valid => "valid",
                Expect::Invalid => "invalid",
                Expect::Quarantined => "quarantined",
            },
            result,
            flagged
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;
    use crate::suite::fingerprint::Fingerprint;
    use crate::suite::outcome::RunRecord;
    use crate::suite::report::CaseResult;

    const SUITE: &str = r#"
time_budget_s = 100
[[row]]
name = "ok"
system = "raft"
seeds = [1, 2]
expect = "valid"
[[row]]
name = "bug"
system = "raft"
nemesis = "leader-flip"
bug = "vote-twice-per-term"
node_choice = "random"
seeds = [3, 4, 5]
expect = "invalid"
min_catch_rate = 0.6
"#;

    fn case(row: &str, seed: u64, valid: Validity, j: Judgement, sigs: &[&str]) -> CaseResult {
        CaseResult {
            row: row.into(),
            canary: false,
            record: RunRecord {
                case: format!("{row}/seed={seed}"),
                seed,
                valid: Some(valid),
                fingerprint: Fingerprint {
                    signatures: sigs.iter().map(|s| s.to_string()).collect(),
                },
                ..RunRecord::default()
            },
            judgement: j,
            classification: None,
            reruns: vec![],
        }
    }

    #[test]
    fn rows_count_their_seeds_and_name_the_checkers() {
        let opts = ["node-choice".to_string()];
        let suite = Suite::parse(SUITE, "t", "t.toml", &opts).unwrap();
        let anomaly = || Judgement::Anomaly("anomalies found".into());
        let s = Summary {
            suite: "t".into(),
            file: "t.toml".into(),
            seed: 1,
            started_at: String::new(),
            elapsed_s: 1.0,
            time_budget_s: 100.0,
            exit_code: 1,
            passed: 3,
            failed: 2,
            quarantined: 0,
            canaries_caught: false,
            cases: vec![
                case("ok", 1, Validity::Valid, Judgement::Pass, &[]),
                case(
                    "ok",
                    2,
                    Validity::Invalid,
                    anomaly(),
                    &["split-brain/logs:log-divergence"],
                ),
                case(
                    "bug",
                    3,
                    Validity::Invalid,
                    Judgement::Pass,
                    &[
                        "linearizable/kv:nonlinearizable:read",
                        "linearizable/kv:nonlinearizable:write",
                        "split-brain/probes:two-leaders",
                    ],
                ),
                case(
                    "bug",
                    4,
                    Validity::Invalid,
                    Judgement::Pass,
                    &["linearizable/kv:nonlinearizable:read"],
                ),
                case(
                    "bug",
                    5,
                    Validity::Valid,
                    Judgement::NotCaught("valid".into()),
                    &[],
                ),
            ],
        };
        let t = markdown(&s, &suite.rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(
            lines[2],
            "| ok | `raft` | `kv` | `partition-halves` |  | valid | 1/2 valid (seed 2: anomaly) | split-brain/logs (1) |"
        );
        assert_eq!(
            lines[3],
            "| bug | `raft` | `kv` | `leader-flip --node-choice random` | `vote-twice-per-term` | invalid | caught 2/3 | linearizable/kv (2), split-brain/probes (1) |"
        );
    }
}
