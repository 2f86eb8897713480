//! faultline-raft: a Raft KV node on faultline's node kit, with planted bugs.
//!
//! `core` is the pure protocol (`Raft::step(Input) -> Vec<Command>`); `replica` maps it onto
//! the kit (`faultline_node::Replica`), which does the IO: the node-protocol server, KV state
//! machine, WAL and snapshots, peer transport; `wal` holds Raft's WAL records.

pub mod core;
pub mod replica;
pub mod wal;

/// Real node processes on loopback (tests and the benchmark): the kit's.
pub use faultline_node::local_cluster;
