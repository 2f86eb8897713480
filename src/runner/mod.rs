//! The runner: starts the system, drives it with clients while the nemesis injects faults,
//! records the history, checks it and stores everything in the run directory.

pub mod analyze;
pub mod checks;
pub mod clients;
pub mod cluster_target;
pub mod log_sampler;
pub mod loopback_node;
pub mod nemesis_task;
pub mod probe;
pub mod progress;
pub mod promise;
pub mod recorder;
pub mod replay;
pub mod run;
pub mod schedule_shrink;
pub mod shrink;
pub mod store;
pub mod target;
pub mod work_done;
