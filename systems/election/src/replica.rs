//! The shell: the core as a `faultline_node::Replica`; commands map to the kit's effects.

use crate::core::{Command, Config, Core, Entry, Input, Message, Mode, Record, Role};
use faultline_node::replica::{self as kit, Committed, Effect, NodeId, ReplicaStatus};
use serde_json::{Value, json};

pub struct ElectionReplica {
    core: Core,
    addrs: Vec<(NodeId, String)>,
}

impl ElectionReplica {
    pub fn recover(
        cfg: Config,
        addrs: Vec<(NodeId, String)>,
        records: Vec<Record>,
    ) -> ElectionReplica {
        let (epoch, voted, log) = Core::recover(records);
        let nodes = addrs.iter().map(|(id, _)| id.clone()).collect();
        ElectionReplica {
            core: Core::new(cfg, nodes, epoch, voted, log),
            addrs,
        }
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    fn effect(cmd: Command) -> Effect<Message, Record> {
        match cmd {
            Command::Persist(r) => Effect::Persist(r),
            Command::Sync => Effect::Sync,
            Command::Send { to, msg } => Effect::Send { to, msg },
            Command::Apply(entries) => Effect::Apply(
                entries
                    .into_iter()
                    .map(|(index, Entry { epoch, id, data })| Committed {
                        index,
                        generation: epoch,
                        id,
                        command: data,
                    })
                    .collect(),
            ),
            Command::Proposed { id, index } => Effect::Proposed { id, index },
            Command::Rejected { id, leader } => Effect::Rejected {
                id,
                reason: kit::Reject::NotLeader { leader },
            },
            Command::ReadReady { id, index } => Effect::ReadReady { id, index },
            Command::ReadRejected { id, leader } => Effect::ReadRejected {
                id,
                reason: kit::Reject::NotLeader { leader },
            },
        }
    }
}

impl kit::Replica for ElectionReplica {
    type Msg = Message;
    type Record = Record;

    fn step(&mut self, input: kit::Input<Message>) -> Vec<Effect<Message, Record>> {
        let input = match input {
            kit::Input::Tick { now_ms, wall_ms } => Input::Tick { now_ms, wall_ms },
            kit::Input::Receive { from, msg } => Input::Receive { from, msg },
            kit::Input::Propose { id, data } => Input::Propose { id, data },
            kit::Input::Read { id } => Input::Read { id },
            kit::Input::Flush => Input::Flush,
            kit::Input::SnapshotTaken { .. } => return Vec::new(),
            kit::Input::Admin { id, name, .. } => {
                return vec![Effect::Answer {
                    id,
                    status: 404,
                    body: json!({"error": "not-found", "detail": format!("no admin call {name:?}"), "definite": true}),
                }];
            }
        };
        self.core
            .step(input)
            .into_iter()
            .map(Self::effect)
            .collect()
    }

    fn status(&self) -> ReplicaStatus {
        let c = &self.core;
        let role = match c.role() {
            Role::Primary if c.serving() => kit::Role::Leader,
            Role::Primary | Role::Candidate => kit::Role::Candidate,
            Role::Follower => kit::Role::Follower,
        };
        let mut extra = serde_json::Map::new();
        extra.insert(
            "election".into(),
            serde_json::to_value(c.mode()).unwrap_or(Value::Null),
        );
        extra.insert("primary".into(), json!(c.role() == Role::Primary));
        ReplicaStatus {
            role,
            generation: c.generation(),
            leader: c.leader().cloned(),
            commit_index: c.commit_index(),
            last_index: c.last_index(),
            lease_until_ms: if c.mode() == Mode::Lease {
                c.lease_until_wall_ms()
            } else {
                None
            },
            extra,
        }
    }

    fn peers(&self) -> Vec<(NodeId, String)> {
        self.addrs.clone()
    }

    /// No snapshots: the log is kept whole (runs are minutes long) and replayed at start.
    fn snapshot_meta(&self, _applied: kit::Index) -> Option<Value> {
        None
    }

    fn wal_records(&self) -> Vec<Record> {
        let c = &self.core;
        std::iter::once(Record::Meta {
            epoch: c.generation(),
            voted: c.voted().cloned(),
        })
        .chain(c.log().iter().enumerate().map(|(i, e)| Record::Entry {
            index: i as u64 + 1,
            entry: e.clone(),
        }))
        .collect()
    }

    fn snapshot_message(&self, _generation: u64, _meta: Value, _data: Value) -> Message {
        Message::Ping
    }
}

/// Claim replies carrying logs are large.
pub fn is_large(msg: &Message) -> bool {
    match msg {
        Message::ClaimReply { entries, .. } | Message::Append { entries, .. } => entries.len() > 64,
        _ => false,
    }
}
