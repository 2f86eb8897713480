//! Status probes: every interval, each node's status is recorded as a probe event (the
//! split-brain checker looks for two leaders in one term). A node that does not answer is
//! simply not recorded for that round.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::recorder::Recorder;
use super::target::StatusFn;
use crate::history::HistoryError;

pub async fn probe_loop(
    recorder: Arc<Recorder>,
    statuses: StatusFn,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<u64, HistoryError> {
    let mut recorded = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let asked = std::time::Instant::now();
        for (node, status) in statuses().await {
            if let Ok(status) = status {
                recorder.probe(&node, status, asked)?;
                recorded += 1;
            }
        }
    }
    Ok(recorded)
}
