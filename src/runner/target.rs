//! What the runner needs from a started system: its nodes, the API they speak, node
//! status, faults on request, healing and stopping. `ClusterTarget` provides it for the
//! local cluster runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::nemesis::FaultEvent;
use crate::workload::{Adapter, Endpoint};

/// Receives each fault event as it is realized.
pub type FaultSink = Arc<dyn Fn(FaultEvent) + Send + Sync>;

/// Every node's status in the node protocol's `/status` shape, in node order.
pub type Statuses = Vec<(String, Result<Value, String>)>;
pub type StatusFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Statuses> + Send>> + Send + Sync>;

pub trait Target: Send {
    fn endpoints(&self) -> Vec<Endpoint>;
    fn adapter(&self) -> Adapter;
    /// How to ask every node for its status (usable from another task).
    fn status_fn(&self) -> StatusFn;
    /// Where a restarted node's first status goes (recorded as a probe); targets that do
    /// not restart nodes ignore it.
    fn on_restart_status(&mut self, _sink: crate::cluster::StatusSink) {}
    /// The run's time origin (history times count from it), told once before any op.
    fn set_run_start(&mut self, _run_start: Instant) {}
    /// Starts the fault schedule (driven by `seed`, times relative to `run_start`); every
    /// realized action goes to `sink`.
    fn start_faults(
        &mut self,
        seed: u64,
        run_start: Instant,
        sink: FaultSink,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops the schedule and heals every fault (the `stop` actions go to the sink first).
    fn heal(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops the nodes and releases everything the system holds (idempotent).
    fn stop(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}
