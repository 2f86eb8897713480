//! faultline-paxos: a Multi-Paxos KV node speaking faultline's node protocol, with planted bugs.
//!
//! `core` is the pure protocol (`Paxos::step(Input) -> Vec<Command>`, no IO, no clock reads).

pub mod core;
pub mod replica;
