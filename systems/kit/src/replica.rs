//! The seam between the kit and a protocol: a `Replica` takes `Input`s and answers with
//! ordered `Effect`s; the kit's node loop executes them (persist, sync once per batch before
//! anything leaves, send, apply to the KV state machine, answer clients).
//!
//! A system is a pure core plus one `Replica` impl that maps the core's commands to effects.
//! The kit owns client requests: it gives each proposal a string id and each read a number,
//! and matches `Proposed`/`Apply`/`ReadReady` back to the waiting HTTP request.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub type NodeId = String;
pub type Index = u64;

/// What the kit hands a replica.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<M> {
    /// Timers: `now_ms` is the node's timer clock (monotonic, survives libfaketime, moved by
    /// the protocol clock's rate), `wall_ms` the protocol wall clock.
    Tick { now_ms: u64, wall_ms: u64 },
    /// A peer message (the transport delivers each message of a batch in order).
    Receive { from: NodeId, msg: M },
    /// A client command to order; `data` is the KV command (opaque to the replica).
    Propose { id: String, data: Value },
    /// A linearizable read: answer `ReadReady { id, index }` once it is safe to read the state
    /// machine after it applied `index`, or `ReadRejected`.
    Read { id: u64 },
    /// `POST /admin/NAME` other than `failpoint` (e.g. Raft's `transfer`, `membership`);
    /// answer with `Answer`, or `Proposed`/`Rejected` to wait for a committed entry.
    Admin {
        id: String,
        name: String,
        body: Value,
    },
    /// The kit wrote a durable snapshot described by `meta` (what `snapshot_meta` returned).
    SnapshotTaken { meta: Value },
    /// End of a batch of inputs (send what was proposed: batching).
    Flush,
}

/// Why a request was refused; every refusal is definite (the request had no effect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    NotLeader {
        leader: Option<NodeId>,
    },
    /// Another definite refusal: HTTP status and error name (e.g. 503 `leadership-transfer`).
    Refused {
        status: u16,
        error: &'static str,
    },
}

/// One committed log position, applied in index order. `id` is what `/log` shows (`noop`, a
/// proposal id, ...); `command` is the client command, if the entry carries one.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub index: Index,
    pub generation: u64,
    pub id: String,
    pub command: Option<Value>,
}

/// What a replica asks the kit to do, in order. Persist effects are buffered; the first
/// effect after them that leaves the node must be preceded by `Sync` (the replica says so:
/// a planted bug may leave it out).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<M, R> {
    Persist(R),
    Sync,
    Send {
        to: NodeId,
        msg: M,
    },
    /// Send the latest durable snapshot to `to` (the kit asks `snapshot_message` to wrap it).
    SendSnapshot {
        to: NodeId,
        generation: u64,
    },
    /// Replace the state machine with this snapshot from another node and persist it.
    InstallSnapshot {
        meta: Value,
        data: Value,
    },
    /// The replica dropped log entries covered by snapshot `meta`; the WAL may too.
    CompactLog {
        meta: Value,
    },
    Apply(Vec<Committed>),
    Proposed {
        id: String,
        index: Index,
    },
    Rejected {
        id: String,
        reason: Reject,
    },
    ReadReady {
        id: u64,
        index: Index,
    },
    ReadRejected {
        id: u64,
        reason: Reject,
    },
    /// The answer to an `Admin` input that needs no commit.
    Answer {
        id: String,
        status: u16,
        body: Value,
    },
}

/// The node protocol's role names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Able to commit in its generation (protocol v2), not merely trying to lead.
    Leader,
    Follower,
    Candidate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => faultline_proto::ROLE_LEADER,
            Role::Follower => faultline_proto::ROLE_FOLLOWER,
            Role::Candidate => faultline_proto::ROLE_CANDIDATE,
        }
    }
}

/// What `/status` shows of the replica (the kit adds id, applied index, clock and bugs).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaStatus {
    pub role: Role,
    /// Term, ballot, view or epoch: shown as `generation` and (v1) `term`.
    pub generation: u64,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub last_index: Index,
    /// Until when (protocol wall clock, ms) a leader lease is held, if the replica uses one.
    pub lease_until_ms: Option<u64>,
    /// System-specific fields (e.g. Raft's `voters`), merged into the body.
    pub extra: serde_json::Map<String, Value>,
}

/// A protocol on the kit.
pub trait Replica: Send + 'static {
    /// Peer messages: JSON on the wire, ideally internally tagged by `"type"` (the peer proxy
    /// and `--trace-messages` read it).
    type Msg: Serialize + DeserializeOwned + Clone + Send + std::fmt::Debug + 'static;
    /// WAL records.
    type Record: Serialize + DeserializeOwned + Send + 'static;

    fn step(&mut self, input: Input<Self::Msg>) -> Vec<Effect<Self::Msg, Self::Record>>;

    fn status(&self) -> ReplicaStatus;

    /// The peers to keep connections to, `(id, address)`, this node excluded or not.
    fn peers(&self) -> Vec<(NodeId, String)>;

    /// Metadata for a snapshot of the state machine after applying `applied` (an object with
    /// at least `"index"`), or `None` if the replica cannot compact there yet.
    fn snapshot_meta(&self, applied: Index) -> Option<Value>;

    /// Every record that describes the replica's durable state, for a WAL rewrite after
    /// compaction (the rewritten WAL plus the latest snapshot must recover this state).
    fn wal_records(&self) -> Vec<Self::Record>;

    /// Wraps the latest snapshot in the message that installs it on a peer.
    fn snapshot_message(&self, generation: u64, meta: Value, data: Value) -> Self::Msg;
}

/// The `"index"` of a snapshot's metadata.
pub fn snapshot_index(meta: &Value) -> Index {
    meta.get("index").and_then(Value::as_u64).unwrap_or(0)
}
