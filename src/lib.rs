//! faultline: a Jepsen-style fault-injection harness and linearizability checker.
//!
//! Data flows as DESIGN.md draws it: the runner starts a [`cluster`], drives it with
//! [`workload`] clients while a [`nemesis`] injects faults, records a [`history`], and
//! hands it to the [`checker`]s; the [`report`] shows what happened.

// The pure layers live in their own crates (usable from any Rust project); re-exported under
// their old module names so the harness reads `crate::history`, `crate::checker`.
pub use faultline_checker as checker;
pub use faultline_history as history;

pub mod cluster;
pub mod external;
pub mod faults;
pub mod nemesis;
pub mod report;
pub mod runner;
pub mod suite;
pub mod workload;
