//! What the runner needs from a started system: its nodes, the API they speak, faults on
//! request, healing and stopping. The local cluster runtime provides it for real runs.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::workload::{Adapter, Endpoint};

/// One realized fault action, as `schedule.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultEvent {
    /// Run time of the action (the history's clock); set by the runner when recorded.
    pub at_ns: u64,
    /// `start` or `stop`.
    pub action: String,
    /// partition | loss | pause | kill | clock
    pub fault: String,
    pub targets: Vec<String>,
    pub detail: Value,
}

/// Receives each fault event as it is realized.
pub type FaultSink = Arc<dyn Fn(FaultEvent) + Send + Sync>;

pub trait Target: Send {
    fn endpoints(&self) -> Vec<Endpoint>;
    fn adapter(&self) -> Adapter;
    /// Starts the fault schedule (driven by `seed`); every realized action goes to `sink`.
    fn start_faults(&mut self, seed: u64, sink: FaultSink) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops the schedule and heals every fault (the `stop` actions go to the sink).
    fn heal(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops the nodes and releases everything the system holds (idempotent).
    fn stop(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}
