//! The pure Multi-Paxos protocol core: no IO, no clock, no threads.

mod acceptor;
pub mod bugs;
mod learner;
pub mod log;
pub mod message;
pub mod paxos;
mod proposer;
mod reads;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod testkit;
pub mod types;

pub use bugs::{Bug, Bugs};
pub use message::Message;
pub use paxos::{Command, Config, Input, Paxos, Reject};
pub use types::{Accepted, Ballot, Durable, Entry, NodeId, Payload, Role, Slot, SnapshotMeta};
