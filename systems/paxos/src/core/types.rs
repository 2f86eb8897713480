//! Plain data the protocol core works on: ballots, slots, values, what is persisted.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

pub type NodeId = String;
/// A position in the replicated log; slot 0 is the empty-log sentinel and never holds a value.
pub type Slot = u64;

/// A proposal number: `(round, node)`, ordered by round, then node id, so two proposers never
/// share one. The zero ballot `(0, "")` is below every real one.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    pub fn new(round: u64, node: &str) -> Ballot {
        Ballot {
            round,
            node: node.to_string(),
        }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// What a slot holds. The core never looks inside `Data`: the state machine owns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// Fills a slot a new leader found open (no acceptor in its quorum had accepted anything).
    Noop,
    /// A client command; `id` is unique per proposal so the proposer can recognise it.
    Data { id: String, data: Value },
}

impl Payload {
    /// The id shown in `/log` (ground truth for split-brain checks).
    pub fn id(&self) -> &str {
        match self {
            Payload::Noop => "noop",
            Payload::Data { id, .. } => id,
        }
    }
}

/// A slot with its value: what is chosen, learnt, applied, or proposed in phase 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub slot: Slot,
    pub payload: Payload,
}

/// An acceptor's vote: it accepted `payload` for `slot` at `ballot`. Persisted, and reported in
/// promises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub slot: Slot,
    pub ballot: Ballot,
    pub payload: Payload,
}

/// Describes a snapshot: the state machine after applying every chosen slot up to `slot`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub slot: Slot,
}

/// What survives a crash: the acceptor's promise and votes after the snapshot, and the
/// snapshot's position. Everything else (who leads, what is chosen past the snapshot) is
/// learnt again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Durable {
    pub promised: Ballot,
    pub accepted: Vec<Accepted>,
    pub snapshot: SnapshotMeta,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    /// Running phase 1 for its own ballot.
    Candidate,
    /// Phase 1 done: able to choose values in its ballot.
    Leader,
}

impl Role {
    /// The role name of the node protocol (`/status`).
    pub fn protocol_name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node() {
        assert!(Ballot::new(2, "n1") > Ballot::new(1, "n3"));
        assert!(Ballot::new(2, "n2") > Ballot::new(2, "n1"));
        assert!(Ballot::default() < Ballot::new(0, "n1"));
        assert_eq!(Ballot::new(3, "n2").to_string(), "3.n2");
    }
}
