//! Plain data the protocol core works on: ids, entries, membership, persisted state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub type NodeId = String;
pub type Term = u64;
pub type Index = u64;

/// One log entry. Index 0 / term 0 is the empty-log sentinel and never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub index: Index,
    pub term: Term,
    pub payload: Payload,
}

impl Entry {
    /// The empty entry a new leader appends so entries of earlier terms can commit.
    pub fn noop(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }
}

/// What an entry carries. The core never looks inside `Data`: the state machine owns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// Appended by every new leader so it can commit (and serve reads) in its own term.
    Noop,
    /// A client command; `id` is unique per proposal so the proposer can recognise it.
    Data { id: String, data: Value },
    /// The complete voter set (id -> peer address), effective as soon as it is appended.
    Config { id: String, membership: Membership },
}

impl Payload {
    /// The id shown in `/log` (ground truth for split-brain checks).
    pub fn id(&self) -> &str {
        match self {
            Payload::Noop => "noop",
            Payload::Data { id, .. } | Payload::Config { id, .. } => id,
        }
    }
}

/// The voters of the cluster with their peer addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeMap<NodeId, String>,
}

impl Membership {
    pub fn contains(&self, id: &str) -> bool {
        self.voters.contains_key(id)
    }
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// Term and vote: written (and synced) before any message that depends on them leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
}

/// Describes a snapshot: the state machine after applying every entry up to `index`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    pub membership: Membership,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    /// The role name of the node protocol (`/status`): pre-candidates report `candidate`.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate | Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}
