//! The pure primary-backup core: no IO, no clock reads, no threads. Time arrives in
//! `Input::Tick`, randomness from a seeded generator, and everything the node must do leaves as
//! an ordered list of `Command`s.
//!
//! - `store.rs`: the replicated log shared by every mode: the primary appends, replicates
//!   `Append { epoch, prev, entries, commit }` synchronously (to a majority, or to every live
//!   backup), a backup rejects a generation older than its own (the fencing token), reads are
//!   served at the primary only. A new primary first collects the logs of the nodes that
//!   obeyed its claim and adopts the most up-to-date one, then commits a noop of its
//!   generation before it serves anything.
//! - `lease.rs`: a majority grants a lease per epoch on the timer clock; the holder renews.
//! - `bully.rs`: ELECTION / ANSWER / COORDINATOR, highest reachable id wins.
//! - `ring.rs`: an ELECTION token around the logical ring collects ids, ELECTED names the max.

pub mod bugs;
mod bully;
mod lease;
mod ring;
pub mod store;
#[cfg(test)]
mod testkit;

pub use bugs::{Bug, Bugs};
pub use store::Core;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type NodeId = String;
pub type Index = u64;

/// How the primary is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Bully,
    Ring,
    Lease,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "bully" => Ok(Mode::Bully),
            "ring" => Ok(Mode::Ring),
            "lease" => Ok(Mode::Lease),
            _ => Err(format!("--election: {s:?} is not bully, ring or lease")),
        }
    }
}

/// To whom a write must be replicated before it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replicate {
    Majority,
    /// Every backup that answered within `live_ms` (the primary alone if none did).
    AllLive,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    pub mode: Mode,
    pub replicate: Replicate,
    /// Bully and ring: a coordinator acts only once a majority obeyed it, and reads are
    /// confirmed by a majority round (implies majority replication).
    pub quorum_gate: bool,
    pub heartbeat_ms: u64,
    /// Lease length, granted per epoch.
    pub lease_ms: u64,
    /// Kept back at the holder for clock-rate drift between it and its granters.
    pub drift_ms: u64,
    /// Bully/ring: silence from the primary for this long (plus up to as much again, random)
    /// starts an election.
    pub election_ms: u64,
    /// Bully: how long to wait for an ANSWER (and, ungated, for logs after a claim).
    pub answer_ms: u64,
    pub max_batch: usize,
    pub bugs: Bugs,
    pub seed: u64,
}

impl Config {
    pub fn new(id: &str, mode: Mode) -> Config {
        Config {
            id: id.to_string(),
            mode,
            replicate: Replicate::Majority,
            quorum_gate: false,
            heartbeat_ms: 50,
            lease_ms: 800,
            drift_ms: 200,
            election_ms: 300,
            answer_ms: 100,
            max_batch: 512,
            bugs: Bugs::default(),
            seed: 1,
        }
    }

    pub fn live_ms(&self) -> u64 {
        self.heartbeat_ms * 4
    }
}

/// One log entry: the generation that wrote it, the id `/log` shows, the client command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub epoch: u64,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A WAL record. Recovery keeps the last `Meta`; an `Entry` at `index` cuts the log there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    Meta {
        epoch: u64,
        voted: Option<NodeId>,
    },
    Entry {
        index: Index,
        #[serde(flatten)]
        entry: Entry,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A would-be primary's claim for generation `epoch` (lease: a lease request or renewal;
    /// bully and ring: COORDINATOR). `want_log`: send the entries after `commit`.
    Claim {
        epoch: u64,
        seq: u64,
        commit: Index,
        want_log: bool,
    },
    ClaimReply {
        epoch: u64,
        seq: u64,
        granted: bool,
        /// The replier's generation (higher than `epoch`: the claimant is stale).
        my_gen: u64,
        last_gen: u64,
        last_index: Index,
        /// Entries after the claim's `commit`, if asked and granted.
        entries: Vec<Entry>,
    },
    Append {
        epoch: u64,
        seq: u64,
        prev_index: Index,
        prev_gen: u64,
        entries: Vec<Entry>,
        commit: Index,
    },
    AppendReply {
        epoch: u64,
        seq: u64,
        ok: bool,
        my_gen: u64,
        /// ok: the last index now known to match; not ok: where to resend from, minus one.
        match_index: Index,
    },
    /// Bully: sent to every higher node.
    Election { epoch: u64 },
    /// Bully: a higher node is alive and takes the election over.
    Answer { epoch: u64 },
    /// Ring: the token, collecting live ids.
    Ring {
        initiator: NodeId,
        candidates: Vec<NodeId>,
    },
    /// Ring: the winner, travelling once around.
    Elected { initiator: NodeId, winner: NodeId },
    /// Lease: a candidate that gave up its epoch frees the leases granted to it (it never
    /// serves in that epoch), so a split vote does not lock every granter for a whole lease.
    Release { epoch: u64 },
    /// Ring: liveness beacon (every heartbeat), so a dead successor can be skipped.
    Ping,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Tick { now_ms: u64, wall_ms: u64 },
    Receive { from: NodeId, msg: Message },
    Propose { id: String, data: Value },
    Read { id: u64 },
    Flush,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Claiming (lease: asking for grants; bully/ring: coordinator collecting logs).
    Candidate,
    Primary,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Persist(Record),
    Sync,
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Newly committed entries, in index order.
    Apply(Vec<(Index, Entry)>),
    Proposed {
        id: String,
        index: Index,
    },
    Rejected {
        id: String,
        leader: Option<NodeId>,
    },
    ReadReady {
        id: u64,
        index: Index,
    },
    ReadRejected {
        id: u64,
        leader: Option<NodeId>,
    },
}
