//! The local cluster runtime and its nemesis as the runner's `Target`.

use std::sync::Arc;
use std::time::Instant;

use super::nemesis_task::{Nemesis, NemesisTask};
use super::target::{FaultSink, StatusFn, Target};
use crate::cluster::{ClientAdapter, Cluster};
use crate::nemesis::{Replay, Schedule};
use crate::workload::{Adapter, Endpoint};

pub struct ClusterTarget {
    pub cluster: Cluster,
    faults: Nemesis,
    nemesis: Option<NemesisTask>,
}

impl ClusterTarget {
    pub fn new(cluster: Cluster, schedule: Schedule) -> ClusterTarget {
        ClusterTarget {
            cluster,
            faults: Nemesis::Planned(schedule),
            nemesis: None,
        }
    }

    /// Replays another run's realised faults instead of drawing from the schedule.
    pub fn replaying(mut self, replay: Replay) -> ClusterTarget {
        self.faults = Nemesis::Replayed(replay);
        self
    }
}

impl Target for ClusterTarget {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.cluster
            .nodes()
            .into_iter()
            .map(|n| Endpoint {
                id: n.id,
                base_url: n.url.trim_end_matches('/').to_string(),
            })
            .collect()
    }

    fn adapter(&self) -> Adapter {
        match self.cluster.client_adapter() {
            ClientAdapter::Native => Adapter::Native,
            ClientAdapter::Etcd => Adapter::Etcd,
        }
    }

    fn on_restart_status(&mut self, sink: crate::cluster::StatusSink) {
        self.cluster.on_restart_status(sink);
    }

    fn status_fn(&self) -> StatusFn {
        let c = self.cluster.clone();
        Arc::new(move || {
            let c = c.clone();
            Box::pin(async move {
                c.statuses()
                    .await
                    .into_iter()
                    .map(|(id, r)| (id, r.map_err(|e| e.to_string())))
                    .collect()
            })
        })
    }

    fn set_run_start(&mut self, run_start: Instant) {
        if let Some(p) = self.cluster.peer_proxy() {
            p.set_epoch(run_start);
        }
    }

    async fn start_faults(
        &mut self,
        seed: u64,
        run_start: Instant,
        sink: FaultSink,
    ) -> Result<(), String> {
        self.nemesis = Some(NemesisTask::start(
            crate::faults::for_cluster(&self.cluster),
            Arc::new(self.cluster.clone()),
            &self.faults,
            seed,
            run_start,
            sink,
        )?);
        Ok(())
    }

    async fn heal(&mut self) -> Result<(), String> {
        match self.nemesis.take() {
            Some(task) => task.stop_and_heal().await,
            None => self.cluster.heal().await.map_err(|e| e.to_string()),
        }
    }

    async fn stop(&mut self) -> Result<(), String> {
        if let Some(task) = self.nemesis.take() {
            let _ = task.stop_and_heal().await;
        }
        self.cluster.teardown().await.map_err(|e| e.to_string())
    }
}
