//! faultline-raft: a Raft KV node speaking faultline's node protocol, with planted bugs.
//!
//! `core` is the pure protocol (`Raft::step(Input) -> Vec<Command>`); the rest is the IO shell:
//! write-ahead log, snapshots, the key-value state machine, peer transport and HTTP API.

pub mod core;
pub mod http;
pub mod kv;
pub mod local_cluster;
pub mod logline;
pub mod node;
pub mod transport;
pub mod wal;
