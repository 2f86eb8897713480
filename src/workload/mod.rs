//! Workloads: their TOML descriptions, the seeded generator, node choice, and the clients
//! that speak each system's API.

pub mod client;
pub mod generator;
pub mod node_choice;
pub mod op;
pub mod spec;

pub use client::{Adapter, Client, Endpoint};
pub use generator::Generator;
pub use node_choice::{NodeChoice, NodePicker};
pub use op::{OpRequest, Reply};
pub use spec::{CheckerName, Kind, WorkloadSpec};
