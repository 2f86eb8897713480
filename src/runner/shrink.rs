//! Shrinking a stored run's history: the run's own checkers decide, and "still rejected" means
//! the same finding (checker and anomaly kind) as the run's. Only what the history carries can
//! shrink: the node-log check (`split-brain/logs`) reads `/log` bodies, not the history, so a
//! run whose only finding is there has nothing to shrink.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{checks, store};
use crate::checker::Verdict;
use crate::checker::shrink::{self, Limits, Shrunk};
use crate::history::History;
use crate::suite::Fingerprint;
use crate::workload::WorkloadSpec;

#[derive(Debug, thiserror::Error)]
pub enum ShrinkRunError {
    #[error("{0}")]
    History(#[from] crate::report::ReportError),
    #[error("{0}")]
    Workload(#[from] crate::workload::spec::SpecError),
    #[error(
        "{0}: its history is not rejected by the run's checkers, so there is nothing to shrink"
    )]
    NotRejected(String),
}

/// A finding's identity for shrinking: `checker:kind`, without the witness's shape, which may
/// change as ops go.
pub fn finding(signature: &str) -> String {
    signature
        .splitn(3, ':')
        .take(2)
        .collect::<Vec<_>>()
        .join(":")
}

/// The findings `verdicts` hold, as `finding`s.
pub fn findings(verdicts: &[Verdict]) -> Vec<String> {
    Fingerprint::of(verdicts)
        .signatures
        .iter()
        .map(|s| finding(s))
        .collect()
}

pub struct RunShrink {
    pub shrunk: Shrunk,
    /// The finding kept, `checker:kind`.
    pub finding: String,
    /// The shrunk history's verdicts under the checker that found it.
    pub verdicts: Vec<Verdict>,
}

/// Shrinks the history of the run in `dir`, keeping its most telling history finding.
pub fn shrink_run(
    dir: &Path,
    check_time_limit: Duration,
    limits: &Limits,
) -> Result<RunShrink, ShrinkRunError> {
    let (history, _torn) = crate::report::run_dir::read_history(&dir.join(store::HISTORY))?;
    let spec = WorkloadSpec::load(&dir.join(store::WORKLOAD).to_string_lossy())?;
    let no_logs = BTreeMap::new();
    let no_samples = crate::checker::split_brain::LogSamples::default();
    let probes = super::analyze::probe_options(&dir.join(store::RESULTS));
    // The checker (of the workload's) whose finding is kept, and that finding.
    let target = spec.checkers.iter().find_map(|c| {
        let one = WorkloadSpec {
            checkers: vec![*c],
            ..spec.clone()
        };
        let v = checks::check_run(
            &history,
            &one,
            &no_logs,
            &no_samples,
            check_time_limit,
            &probes,
        );
        findings(&v).into_iter().next().map(|f| (one, f))
    });
    let Some((one, target)) = target else {
        return Err(ShrinkRunError::NotRejected(dir.display().to_string()));
    };
    let check =
        |h: &History| checks::check_run(h, &one, &no_logs, &no_samples, check_time_limit, &probes);
    let mut rejects = |h: &History| findings(&check(h)).contains(&target);
    let shrunk = shrink::shrink(&history, &mut rejects, limits)
        .map_err(|_| ShrinkRunError::NotRejected(dir.display().to_string()))?;
    let verdicts = check(&shrunk.history);
    Ok(RunShrink {
        shrunk,
        finding: target,
        verdicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_leaves_out_the_witness_shape() {
        assert_eq!(
            finding("linearizable/cas-register:nonlinearizable:read"),
            "linearizable/cas-register:nonlinearizable"
        );
        assert_eq!(
            finding("split-brain/lost-writes:lost-write"),
            "split-brain/lost-writes:lost-write"
        );
    }
}
