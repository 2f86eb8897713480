//! The local cluster runtime and its nemesis as the runner's `Target`.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::target::{FaultSink, StatusFn, Target};
use crate::cluster::{ClientAdapter, Cluster};
use crate::nemesis::{self, NemesisHandle, Schedule};
use crate::workload::{Adapter, Endpoint};

pub struct ClusterTarget {
    pub cluster: Cluster,
    schedule: Schedule,
    nemesis: Option<(NemesisHandle, tokio::task::JoinHandle<()>)>,
}

impl ClusterTarget {
    pub fn new(cluster: Cluster, schedule: Schedule) -> ClusterTarget {
        ClusterTarget {
            cluster,
            schedule,
            nemesis: None,
        }
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
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = nemesis::spawn(
            self.cluster.clone(),
            self.schedule.clone(),
            seed,
            run_start,
            tx,
        )
        .map_err(|e| e.to_string())?;
        let forward = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                sink(ev);
            }
        });
        self.nemesis = Some((handle, forward));
        Ok(())
    }

    async fn heal(&mut self) -> Result<(), String> {
        match self.nemesis.take() {
            Some((handle, forward)) => {
                let healed = handle
                    .stop_and_heal()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                // the schedule's task has ended and dropped its sender: the last events
                // (the stop of the fault in force) are forwarded before this returns
                let _ = forward.await;
                healed
            }
            None => self.cluster.heal().await.map_err(|e| e.to_string()),
        }
    }

    async fn stop(&mut self) -> Result<(), String> {
        if let Some((handle, forward)) = self.nemesis.take() {
            let _ = handle.stop_and_heal().await;
            let _ = forward.await;
        }
        self.cluster.teardown().await.map_err(|e| e.to_string())
    }
}
