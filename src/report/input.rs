//! What a report is made from: a history and its verdicts, and when it comes from a run
//! directory, the run's results, schedule and node logs.

use serde_json::Value;

use super::node_logs::NodeLog;
use super::results::RunResults;
use crate::checker::Verdict;
use crate::faults::proxy::trace::MessageEvent;
use crate::history::History;

pub struct ReportInput<'a> {
    /// Heading of the page, e.g. `raft / kv / partition` or the checked file's name.
    pub title: String,
    pub history: &'a History,
    pub verdicts: &'a [Verdict],
    pub results: Option<&'a RunResults>,
    /// `schedule.json` as written by the runner.
    pub schedule: Option<&'a Value>,
    /// `replay.json`, when the run replayed another.
    pub replay: Option<&'a Value>,
    pub node_logs: &'a [NodeLog],
    /// The peer proxy's message trace (`messages.jsonl`), if the run kept one.
    pub messages: &'a [MessageEvent],
    /// Message windows the user asked to see drawn (ns since the run began, start and end).
    pub message_windows: Vec<(u64, u64)>,
    /// Where the history came from, shown in the summary.
    pub source: Option<String>,
    /// Files linked from the page, relative to it.
    pub files: Vec<String>,
}

impl<'a> ReportInput<'a> {
    /// A report of a history and its verdicts alone (`faultline check --html`).
    pub fn new(title: impl Into<String>, history: &'a History, verdicts: &'a [Verdict]) -> Self {
        ReportInput {
            title: title.into(),
            history,
            verdicts,
            results: None,
            schedule: None,
            replay: None,
            node_logs: &[],
            messages: &[],
            message_windows: Vec::new(),
            source: None,
            files: Vec::new(),
        }
    }
}
