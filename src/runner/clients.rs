//! Client tasks: each takes ops from the shared generator at the run's rate, records the
//! invoke, sends it, and records the completion. An `info` completion retires the process
//! id: the task continues as `process + concurrency`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::recorder::Recorder;
use crate::history::{EventType, HistoryError};
use crate::workload::{Client, Generator, NodeChoice, NodePicker, OpRequest, Reply};

/// Spaces invocations evenly at a total rate (all clients together).
pub struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    /// `rate` in ops/s; 0 means no pacing.
    pub fn new(rate: f64) -> Pacer {
        Pacer {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // a client that fell behind does not earn a burst
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// What every client task shares.
pub struct Drive {
    pub recorder: Arc<Recorder>,
    pub client: Client,
    pub generator: Mutex<Generator>,
    pub pacer: Pacer,
    pub choice: NodeChoice,
    pub seed: u64,
    pub concurrency: usize,
    pub stop: AtomicBool,
    /// Ops started so far: numbers each request id, so ids are unique within the run.
    pub started: AtomicU64,
}

/// One op, recorded from invoke to completion. Returns the process to use next.
async fn perform(
    drive: &Drive,
    picker: &mut NodePicker,
    process: u64,
    op: &OpRequest,
) -> Result<(u64, bool), HistoryError> {
    let mut op = op.clone();
    // Recorded on the invoke too, so an op never completed (a control node killed
    // mid-run) can still be found in the nodes' logs.
    let n = drive.started.fetch_add(1, Ordering::Relaxed);
    op.request_id = Some(format!("{}{process}:{n}", drive.client.key_prefix()));
    let op = &op;
    drive.recorder.invoke(process, op)?;
    let (reply, node) = drive.client.invoke(picker, op).await;
    let node_id = drive.client.nodes()[node].id.as_str();
    let (kind, value, error) = match reply {
        Reply::Ok(v) => (EventType::Ok, v, None),
        Reply::Fail(e) => (EventType::Fail, op.value.clone(), Some(e)),
        Reply::Info(e) => (EventType::Info, op.value.clone(), Some(e)),
        Reply::NotLeader(_) => unreachable!("Client::invoke resolves not-leader"),
    };
    drive
        .recorder
        .complete(process, op, kind, value, Some(node_id), error)?;
    Ok(match kind {
        EventType::Info => (process + drive.concurrency as u64, false),
        EventType::Ok => (process, true),
        _ => (process, false),
    })
}

/// Runs generated ops until `drive.stop`; returns the task's next process id.
pub async fn generated(
    drive: Arc<Drive>,
    task: usize,
    mut process: u64,
) -> Result<u64, HistoryError> {
    let mut picker = NodePicker::new(drive.choice, drive.client.nodes().len(), task, drive.seed);
    while !drive.stop.load(Ordering::Relaxed) {
        drive.pacer.wait().await;
        if drive.stop.load(Ordering::Relaxed) {
            break;
        }
        let op = drive
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_op();
        process = perform(&drive, &mut picker, process, &op).await?.0;
    }
    Ok(process)
}

/// Final reads, shared out among tasks; each read is retried (it is only useful once it
/// succeeds) until `attempts` or the deadline run out.
pub struct FinalReads {
    queue: Mutex<VecDeque<(OpRequest, u32)>>,
    attempts: u32,
    deadline: Instant,
    missed: Mutex<Vec<OpRequest>>,
}

impl FinalReads {
    pub fn new(ops: Vec<OpRequest>, attempts: u32, within: Duration) -> FinalReads {
        FinalReads {
            queue: Mutex::new(ops.into_iter().map(|o| (o, 0)).collect()),
            attempts,
            deadline: Instant::now() + within,
            missed: Mutex::new(Vec::new()),
        }
    }

    /// Reads that never succeeded.
    pub fn missed(&self) -> Vec<OpRequest> {
        self.missed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub async fn final_reads(
    drive: Arc<Drive>,
    reads: Arc<FinalReads>,
    task: usize,
    mut process: u64,
) -> Result<u64, HistoryError> {
    let mut picker = NodePicker::new(drive.choice, drive.client.nodes().len(), task, drive.seed);
    loop {
        let next = reads
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some((op, tries)) = next else {
            return Ok(process);
        };
        let (p, ok) = perform(&drive, &mut picker, process, &op).await?;
        process = p;
        if !ok {
            if tries + 1 < reads.attempts && Instant::now() < reads.deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                reads
                    .queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back((op, tries + 1));
            } else {
                reads
                    .missed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(op);
            }
        }
    }
}

/// Starts one generated-op task per unit of concurrency, task `i` as process `i`.
pub fn spawn_generated(
    drive: &Arc<Drive>,
) -> Vec<tokio::task::JoinHandle<Result<u64, HistoryError>>> {
    (0..drive.concurrency)
        .map(|i| tokio::spawn(generated(drive.clone(), i, i as u64)))
        .collect()
}

/// Waits for client tasks (after `drive.stop` is set; each finishes its op in flight,
/// bounded by the request timeout). Returns their next process ids.
pub async fn join(
    handles: Vec<tokio::task::JoinHandle<Result<u64, HistoryError>>>,
) -> Result<Vec<u64>, HistoryError> {
    let mut next = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(r) => next.push(r?),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    Ok(next)
}

/// Runs the final reads on `processes.len()` tasks, continuing their process ids.
pub async fn run_final_reads(
    drive: &Arc<Drive>,
    reads: &Arc<FinalReads>,
    processes: &[u64],
) -> Result<Vec<u64>, HistoryError> {
    let handles = processes
        .iter()
        .enumerate()
        .map(|(i, &p)| tokio::spawn(final_reads(drive.clone(), reads.clone(), i, p)))
        .collect();
    join(handles).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_spaces_ops_at_the_rate() {
        let p = Pacer::new(200.0);
        let t = Instant::now();
        for _ in 0..21 {
            p.wait().await;
        }
        let took = t.elapsed();
        // 20 intervals of 5 ms; generous upper bound for a loaded machine
        assert!(took >= Duration::from_millis(99), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        let free = Pacer::new(0.0);
        let t = Instant::now();
        for _ in 0..1000 {
            free.wait().await;
        }
        assert!(t.elapsed() < Duration::from_millis(100));
    }
}
