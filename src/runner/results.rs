//! `results.json`: the run's verdict and what it was run with.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::recorder::Counts;
use crate::checker::{Validity, Verdict};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    pub valid: Validity,
    pub seed: u64,
    pub system: String,
    pub workload: String,
    pub nemesis: String,
    pub nodes: Vec<String>,
    pub started_at: String,
    pub elapsed_s: f64,
    pub counts: Counts,
    pub verdicts: Vec<Verdict>,
    /// Client ops completed per second over the client phases.
    #[serde(default)]
    pub ops_per_s: f64,
    /// `--bug` flags the system ran with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bugs: Vec<String>,
    /// Final reads that never succeeded (their keys are judged without a final value).
    #[serde(default)]
    pub final_reads_missed: usize,
    /// Trouble after the clients stopped (healing, stopping nodes, collecting logs); the
    /// verdict stands regardless.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teardown_errors: Vec<String>,
}

impl RunResults {
    /// The overall validity: every verdict combined.
    pub fn combine(verdicts: &[Verdict]) -> Validity {
        if verdicts.is_empty() {
            return Validity::Unknown;
        }
        verdicts
            .iter()
            .fold(Validity::Valid, |acc, v| acc.and(v.valid))
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        // write then rename: a reader never sees half a results file
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> Result<RunResults, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}:{}: {e}", path.display(), e.line()))
    }
}
