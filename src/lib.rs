//! faultline: a Jepsen-style fault-injection harness and linearizability checker.
//!
//! Data flows as DESIGN.md draws it: the runner starts a [`cluster`], drives it with
//! [`workload`] clients while a [`nemesis`] injects faults, records a [`history`], and
//! hands it to the [`checker`]s; the [`report`] shows what happened.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod runner;
pub mod workload;
