//! The pure Raft protocol core: no IO, no clock, no threads.

pub mod bugs;
pub mod log;
pub mod message;
pub mod raft;
pub mod types;

pub use bugs::{Bug, Bugs};
pub use message::Message;
pub use raft::{Command, Config, Input, Lease, Raft, Reject};
pub use types::{Entry, HardState, Index, Membership, NodeId, Payload, Role, SnapshotMeta, Term};
