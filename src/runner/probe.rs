//! Status probes: every interval, each node's `/status` is recorded as a probe event (the
//! split-brain checker looks for two leaders in one term). A node that does not answer is
//! simply not recorded for that round.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::clients::Drive;
use crate::history::HistoryError;

pub async fn probe_loop(drive: Arc<Drive>, every: Duration, timeout: Duration) -> Result<u64, HistoryError> {
    let mut recorded = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !drive.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let n = drive.client.nodes().len();
        let answers = futures_join(&drive, n, timeout).await;
        for (i, status) in answers.into_iter().enumerate() {
            if let Some(status) = status {
                drive.recorder.probe(&drive.client.nodes()[i].id, status)?;
                recorded += 1;
            }
        }
    }
    Ok(recorded)
}

async fn futures_join(drive: &Arc<Drive>, n: usize, timeout: Duration) -> Vec<Option<serde_json::Value>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let d = drive.clone();
        set.spawn(async move {
            let s = tokio::time::timeout(timeout, d.client.status(i)).await;
            (i, s.ok().and_then(Result::ok))
        });
    }
    let mut out = vec![None; n];
    while let Some(r) = set.join_next().await {
        if let Ok((i, s)) = r {
            out[i] = s;
        }
    }
    out
}
