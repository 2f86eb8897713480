//! `/status`, `/log` and error bodies as JSON. Every field a v2 node adds is optional, so v1
//! nodes (and etcd, normalised by the harness) keep parsing.

use serde::{Deserialize, Serialize};

pub const ROLE_LEADER: &str = "leader";
pub const ROLE_FOLLOWER: &str = "follower";
pub const ROLE_CANDIDATE: &str = "candidate";

/// The body field carrying a client's request id on `/kv/*` and `/txn`: a string unique per
/// operation within a run. A node applies a request id at most once (a duplicate delivery,
/// e.g. a forwarded or retried request, gets the first outcome).
pub const REQUEST_ID: &str = "request_id";

/// `GET /status`. `role` is `leader` only when the node can commit in `generation` (protocol
/// v2: after phase 1 in Paxos, after NEW-VIEW in PBFT); `term` is the v1 name of the same
/// number and stays for v1 readers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
    #[serde(default)]
    pub commit_index: u64,
    #[serde(default)]
    pub applied_index: u64,
    /// The node's wall clock (ms since the epoch) when it answered.
    #[serde(default)]
    pub clock_ms: Option<i64>,
    /// v2: the leadership generation (what it is, term/ballot/view/epoch, the system's
    /// descriptor says). Absent in v1 nodes: readers fall back to `term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// v2: until when (node-local wall clock, ms) this node holds a leader lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
}

impl NodeStatus {
    pub fn from_value(v: &serde_json::Value) -> Option<NodeStatus> {
        serde_json::from_value(v.clone()).ok()
    }

    /// The generation this status speaks for: v2's `generation`, else v1's `term`.
    pub fn generation(&self) -> u64 {
        self.generation.unwrap_or(self.term)
    }
}

/// One committed entry of `GET /log?from=i` (slot-log shape: Raft, Paxos). `term` holds the
/// generation the entry was committed in; `id` is the node's proposal id (or `noop`);
/// `request_id` the client's, when the entry carries a client command that had one;
/// `took_effect` whether applying it changed the state (false: a cas whose precondition
/// failed, an aborted txn, a duplicate of an applied request), so a reader of the log can
/// tell what happened to a request whose client never heard (protocol v2, additive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_effect: Option<bool>,
}

/// Every error answer: `definite` says whether the op surely did not happen (`fail`) or may
/// have (`info`). `leader` comes with `not-leader`; `detail` with `bad-request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub definite: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ErrorBody {
    pub fn new(error: &str, definite: bool) -> ErrorBody {
        ErrorBody {
            error: error.to_string(),
            definite,
            leader: None,
            detail: None,
        }
    }

    pub fn not_leader(leader: Option<String>) -> ErrorBody {
        ErrorBody {
            leader,
            ..ErrorBody::new("not-leader", true)
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("error bodies serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_status_parses_and_v2_fields_are_optional() {
        let v1 = json!({"id":"n1","role":"leader","term":3,"leader":"n1"});
        let s = NodeStatus::from_value(&v1).unwrap();
        assert_eq!(
            (s.generation(), s.lease_until_ms, s.clock_ms),
            (3, None, None)
        );
        let v2 = json!({"id":"n1","role":"follower","term":3,"generation":7,"leader":null,
            "lease_until_ms": 99, "clock_ms": 5});
        let s = NodeStatus::from_value(&v2).unwrap();
        assert_eq!((s.generation(), s.lease_until_ms), (7, Some(99)));
        assert!(NodeStatus::from_value(&json!({"id":"n1"})).is_none());
    }

    #[test]
    fn error_bodies_keep_the_documented_shape() {
        assert_eq!(
            ErrorBody::not_leader(Some("n2".into())).to_value(),
            json!({"error":"not-leader","leader":"n2","definite":true})
        );
        assert_eq!(
            ErrorBody::new("timeout", false).to_value(),
            json!({"error":"timeout","definite":false})
        );
        let e: ErrorBody =
            serde_json::from_value(json!({"error":"x","definite":true,"detail":"d"})).unwrap();
        assert_eq!(e.detail.as_deref(), Some("d"));
    }
}
