//! The runner: starts the system, drives it with clients while the nemesis injects faults,
//! records the history, checks it and stores everything in the run directory.

pub mod clients;
pub mod probe;
pub mod progress;
pub mod recorder;
pub mod store;
pub mod loopback_node;
pub mod target;
pub mod checks;
pub mod run;
pub mod analyze;
pub mod cluster_target;
