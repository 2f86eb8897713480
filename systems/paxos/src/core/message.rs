//! Messages exchanged between Paxos replicas (sent by the shell over HTTP as JSON).

use super::types::{Accepted, Ballot, Entry, Slot, SnapshotMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Phase 1a, once per ballot, for every slot from `from` on (all the leader does not know
    /// to be chosen).
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: every vote the acceptor holds from `from` on, its compaction point (slots up to
    /// `snapshot` are chosen and their votes gone) and how far it knows the log to be chosen.
    Promise {
        ballot: Ballot,
        accepted: Vec<Accepted>,
        snapshot: Slot,
        commit: Slot,
    },
    /// Phase 2a, batched: one value per slot, all at `ballot`; `commit` piggybacks the
    /// leader's chosen prefix.
    Accept {
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: Slot,
    },
    /// Phase 2b for the listed slots.
    Accepted {
        ballot: Ballot,
        slots: Vec<Slot>,
        commit: Slot,
    },
    /// `ballot` was refused: the acceptor promised `promised`, which is higher.
    Nack { ballot: Ballot, promised: Ballot },
    /// Every slot up to `commit` is chosen; a replica holding a vote at `ballot` for one of
    /// them holds the chosen value (a leader proposes one value per slot in its ballot).
    Commit { ballot: Ballot, commit: Slot },
    /// Leadership for failure detection and read rounds (`seq`); carries the chosen prefix.
    Heartbeat {
        ballot: Ballot,
        commit: Slot,
        seq: u64,
    },
    HeartbeatAck {
        ballot: Ballot,
        seq: u64,
        commit: Slot,
    },
    /// A lagging replica asks anyone for chosen values from `from` on.
    CatchUp { from: Slot },
    /// Chosen values (contiguous from the first) in answer to a CatchUp.
    Learn { entries: Vec<Entry>, commit: Slot },
    /// The sender's snapshot, in answer to a CatchUp that asks for compacted slots.
    InstallSnapshot { meta: SnapshotMeta, data: Value },
}

impl Message {
    /// The message's kind, as its JSON `type` (for logs and message-level faults).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::Commit { .. } => "commit",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatAck { .. } => "heartbeat_ack",
            Message::CatchUp { .. } => "catch_up",
            Message::Learn { .. } => "learn",
            Message::InstallSnapshot { .. } => "install_snapshot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_json_type_tag() {
        let m = Message::Prepare {
            ballot: Ballot::new(1, "n1"),
            from: 1,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], m.kind());
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
