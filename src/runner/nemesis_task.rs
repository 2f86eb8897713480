//! A running nemesis whose fault events reach the runner's sink as they happen: how every
//! `Target` (the local cluster, an external one) starts its schedule and heals it.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::target::FaultSink;
use crate::faults::Faults;
use crate::nemesis::{self, NemesisHandle, Replay, Roster, Schedule};

/// Where a run's faults come from.
#[derive(Clone, Debug)]
pub enum Nemesis {
    /// Drawn from a schedule by the run's seed.
    Planned(Schedule),
    /// Another run's realised faults, at their recorded times (`faultline replay`).
    Replayed(Replay),
}

pub struct NemesisTask {
    handle: NemesisHandle,
    forward: tokio::task::JoinHandle<()>,
}

impl NemesisTask {
    /// Starts `nemesis` on `backend` over `roster`; a schedule is seeded by `seed`.
    pub fn start(
        backend: Arc<dyn Faults>,
        roster: Arc<dyn Roster>,
        nemesis: &Nemesis,
        seed: u64,
        run_start: Instant,
        sink: FaultSink,
    ) -> Result<NemesisTask, String> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = match nemesis {
            Nemesis::Planned(schedule) => {
                nemesis::spawn_on(backend, roster, schedule.clone(), seed, run_start, tx)
            }
            Nemesis::Replayed(replay) => {
                nemesis::replay::spawn_replay(backend, roster, replay, run_start, tx)
            }
        }
        .map_err(|e| e.to_string())?;
        let forward = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                sink(ev);
            }
        });
        Ok(NemesisTask { handle, forward })
    }

    /// Stops the schedule and heals what it left in force.
    pub async fn stop_and_heal(self) -> Result<(), String> {
        let healed = self
            .handle
            .stop_and_heal()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        // the schedule's task has ended and dropped its sender: the last events (the stop of
        // the fault in force) are forwarded before this returns
        let _ = self.forward.await;
        healed
    }
}
