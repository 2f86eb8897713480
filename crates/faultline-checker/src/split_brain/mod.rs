//! Split-brain checks, one property per file: `probes` (leader-per-generation: two leaders
//! in one generation, a generation going back, or (per descriptor) overlapping leaders that
//! both acknowledged writes, from `/status` samples recorded as probe events), `logs`
//! (committed logs of all nodes, at the end and sampled during the run, form one chain),
//! `lost_writes`
//! (acknowledged writes missing from the final reads), `lease_overlap` (two nodes holding
//! a leader lease at once, in harness time, from the probes).

pub mod lease_overlap;
pub mod logs;
pub mod lost_writes;
pub mod probes;

pub use logs::{LogEntry, LogSamples, Sighting, check_logs, check_logs_and_samples};
pub use lost_writes::check_lost_writes;
pub use probes::{ProbeOptions, check_probes, check_probes_with};

use crate::{Anomaly, Validity, Verdict};

/// A verdict from a list of findings: invalid if any, else valid (or unknown with `why`
/// when the input could not support a decision).
pub(crate) fn verdict(
    checker: &str,
    anomalies: Vec<Anomaly>,
    ok_text: String,
    undecided: Option<String>,
    stats: serde_json::Value,
) -> Verdict {
    let (valid, explanation) = if !anomalies.is_empty() {
        let mut kinds: Vec<&str> = anomalies.iter().map(|a| a.kind.as_str()).collect();
        kinds.dedup();
        (
            Validity::Invalid,
            format!(
                "{} finding(s): {}. First: {}",
                anomalies.len(),
                kinds.join(", "),
                anomalies[0].description
            ),
        )
    } else if let Some(why) = undecided {
        (Validity::Unknown, why)
    } else {
        (Validity::Valid, ok_text)
    };
    Verdict {
        checker: checker.to_string(),
        valid,
        anomalies,
        explanation,
        stats,
    }
}
