//! faultline-election: a primary-backup KV store on the node kit whose primary is chosen by
//! `--election bully|ring|lease`. `core` is the pure protocol (`step(Input) -> Vec<Command>`),
//! `replica` the thin shell the kit runs.

pub mod core;
pub mod replica;
