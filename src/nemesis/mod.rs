//! Faults and their schedules: a typed vocabulary (partitions by grudge, packet loss,
//! pause, kill, clock bump/strobe/drift), TOML schedules in `nemeses/` driven by the run's
//! seed, and an executor that applies them to a [`crate::cluster::Cluster`] and reports each
//! realized step (for the history and schedule.json).

pub mod error;
pub mod executor;
pub mod fault;
pub mod grudge;
pub mod replay;
pub mod schedule;

pub use error::NemesisError;
pub use executor::{
    ActiveFault, NemesisHandle, Roster, check_backend, check_clock, check_supported, spawn,
    spawn_on, start_fault, stop_fault,
};
pub use fault::{
    Action, ClockOf, ClockSpec, FaultEvent, FaultKind, GrudgeSpec, LinkSpec, TargetSpec,
};
pub use grudge::Grudge;
pub use replay::{Realised, Recorded, Replay};
pub use schedule::{FaultSpec, Lane, MsgSpec, Plan, Schedule, Step};
