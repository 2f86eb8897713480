//! Messages exchanged between Raft peers (sent by the shell over HTTP as JSON).

use super::types::{Entry, Index, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Pre-vote (`pre_vote`, term = candidate's term + 1, nothing persisted) or a real vote.
    /// `transfer` marks a campaign started by TimeoutNow: voters skip the leader-lease check.
    RequestVote {
        term: Term,
        last_index: Index,
        last_term: Term,
        pre_vote: bool,
        transfer: bool,
    },
    VoteResponse {
        term: Term,
        granted: bool,
        pre_vote: bool,
    },
    AppendEntries {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// On rejection, `reject_index` is the request's prev_index and `conflict_*` let the leader
    /// skip a whole term at once (fast backtracking).
    AppendResponse {
        term: Term,
        success: bool,
        match_index: Index,
        reject_index: Index,
        conflict_index: Index,
        conflict_term: Option<Term>,
    },
    /// Carries `commit` = min(follower's match, leader commit), safe for the follower to apply,
    /// and `seq`, the read round it proves leadership for (ReadIndex).
    Heartbeat {
        term: Term,
        commit: Index,
        seq: u64,
    },
    HeartbeatResponse {
        term: Term,
        seq: u64,
    },
    InstallSnapshot {
        term: Term,
        meta: SnapshotMeta,
        data: Value,
    },
    /// Leadership transfer: the receiver campaigns at once.
    TimeoutNow {
        term: Term,
    },
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }
}
