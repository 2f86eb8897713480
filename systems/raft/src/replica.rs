//! Raft on the kit: the pure core's commands mapped to the kit's effects, Raft's admin calls
//! (`/admin/transfer`, `/admin/membership`), `/status` fields, snapshots and WAL rewrites.

use crate::core::{
    Command, Entry, Input as CoreInput, Lease, Message, NodeId, Payload, Raft,
    Reject as CoreReject, Role as CoreRole, SnapshotMeta, Term,
};
use crate::wal::{Record, rewrite_records};
use faultline_node::{Committed, Effect, Index, Input, Reject, Replica, ReplicaStatus, Role};
use serde_json::{Value, json};

pub struct RaftReplica {
    raft: Raft,
    last_role: (CoreRole, Term, Option<NodeId>),
}

impl RaftReplica {
    pub fn new(raft: Raft) -> RaftReplica {
        RaftReplica {
            last_role: (raft.role(), raft.term(), None),
            raft,
        }
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    fn step_core(&mut self, input: CoreInput, out: &mut Vec<Effect<Message, Record>>) {
        for cmd in self.raft.step(input) {
            out.extend(self.effect(cmd));
        }
        self.log_role_change();
    }

    fn log_role_change(&mut self) {
        let (role, term) = (self.raft.role(), self.raft.term());
        let leader = self.raft.leader();
        if (role, term, leader)
            == (
                self.last_role.0,
                self.last_role.1,
                self.last_role.2.as_ref(),
            )
        {
            return;
        }
        let id = self.raft.id();
        match role {
            CoreRole::Leader => faultline_node::log!("[{id}] became leader in term {term}"),
            CoreRole::Candidate => faultline_node::log!("[{id}] became candidate in term {term}"),
            CoreRole::PreCandidate => {
                faultline_node::log!("[{id}] became pre-candidate (term {term})")
            }
            CoreRole::Follower => {
                faultline_node::log!("[{id}] became follower in term {term}, leader {leader:?}")
            }
        }
        self.last_role = (role, term, leader.cloned());
    }

    fn effect(&self, cmd: Command) -> Vec<Effect<Message, Record>> {
        let one = |e| vec![e];
        match cmd {
            Command::PersistHardState(hs) => one(Effect::Persist(Record::HardState(hs))),
            Command::PersistEntries(entries) => entries
                .into_iter()
                .map(|e| Effect::Persist(Record::Entry(e)))
                .collect(),
            Command::Sync => one(Effect::Sync),
            Command::Send { to, msg } => one(Effect::Send { to, msg }),
            Command::SendSnapshot { to, term } => one(Effect::SendSnapshot {
                to,
                generation: term,
            }),
            Command::InstallSnapshot { meta, data } => one(Effect::InstallSnapshot {
                meta: meta_value(&meta),
                data,
            }),
            Command::CompactLog { meta } => one(Effect::CompactLog {
                meta: meta_value(&meta),
            }),
            Command::Apply { entries } => one(Effect::Apply(
                entries.iter().map(|e| self.committed(e)).collect(),
            )),
            Command::Proposed { id, index } => one(Effect::Proposed { id, index }),
            Command::Rejected { id, reason } => one(Effect::Rejected {
                id,
                reason: reject(reason),
            }),
            Command::ReadReady { id, index } => one(Effect::ReadReady { id, index }),
            Command::ReadRejected { id, reason } => one(Effect::ReadRejected {
                id,
                reason: reject(reason),
            }),
        }
    }

    fn committed(&self, e: &Entry) -> Committed {
        let command = match &e.payload {
            Payload::Data { data, .. } => Some(data.clone()),
            Payload::Config { membership, .. } => {
                let voters: Vec<&String> = membership.voters.keys().collect();
                faultline_node::log!(
                    "[{}] membership committed at index {}: {voters:?}",
                    self.raft.id(),
                    e.index
                );
                None
            }
            Payload::Noop => None,
        };
        Committed {
            index: e.index,
            generation: e.term,
            id: e.payload.id().to_string(),
            command,
        }
    }

    /// `POST /admin/transfer {"to"}` and `POST /admin/membership {"add":{"id","addr"}} |
    /// {"remove":id}`.
    fn admin(
        &mut self,
        id: String,
        name: &str,
        body: &Value,
        out: &mut Vec<Effect<Message, Record>>,
    ) {
        let answer = |id: String, status: u16, body: Value| Effect::Answer { id, status, body };
        let bad = |id: String, detail: &str| {
            answer(
                id,
                400,
                json!({"error":"bad-request","detail":detail,"definite":true}),
            )
        };
        match name {
            "transfer" => {
                let Some(to) = body.get("to").and_then(Value::as_str) else {
                    out.push(bad(id, "field \"to\": expected a node id"));
                    return;
                };
                if self.raft.role() != CoreRole::Leader {
                    let leader = self.raft.leader().cloned();
                    out.push(Effect::Rejected {
                        id,
                        reason: Reject::NotLeader { leader },
                    });
                } else if !self.raft.membership().contains(to) || to == self.raft.id() {
                    out.push(answer(
                        id,
                        400,
                        json!({"error":"unknown-target","definite":true}),
                    ));
                } else {
                    self.step_core(CoreInput::TransferLeader { to: to.to_string() }, out);
                    out.push(answer(id, 200, json!({"started": true})));
                }
            }
            "membership" => {
                let mut membership = self.raft.membership().clone();
                if let Some(add) = body.get("add") {
                    let nid = add.get("id").and_then(Value::as_str);
                    let addr = add.get("addr").and_then(Value::as_str);
                    let (Some(nid), Some(addr)) = (nid, addr) else {
                        out.push(bad(id, "field \"add\": expected {\"id\":..,\"addr\":..}"));
                        return;
                    };
                    membership.voters.insert(nid.to_string(), addr.to_string());
                } else if let Some(Value::String(nid)) = body.get("remove") {
                    membership.voters.remove(nid);
                } else {
                    out.push(bad(id, "expected field \"add\" or \"remove\""));
                    return;
                }
                self.step_core(CoreInput::ChangeMembership { id, membership }, out);
            }
            other => out.push(answer(
                id,
                404,
                json!({"error":"not-found","detail":format!("no admin call {other:?}"),"definite":true}),
            )),
        }
    }
}

fn meta_value(meta: &SnapshotMeta) -> Value {
    serde_json::to_value(meta).expect("snapshot metadata serializes")
}

fn reject(reason: CoreReject) -> Reject {
    match reason {
        CoreReject::NotLeader { leader } => Reject::NotLeader { leader },
        CoreReject::Transferring => Reject::Refused {
            status: 503,
            error: "leadership-transfer",
        },
        CoreReject::ConfigChangeInProgress => Reject::Refused {
            status: 409,
            error: "config-change-in-progress",
        },
        CoreReject::InvalidConfigChange => Reject::Refused {
            status: 400,
            error: "invalid-config-change",
        },
    }
}

impl Replica for RaftReplica {
    type Msg = Message;
    type Record = Record;

    fn step(&mut self, input: Input<Message>) -> Vec<Effect<Message, Record>> {
        let mut out = Vec::new();
        let core = match input {
            Input::Tick { now_ms, wall_ms } => CoreInput::Tick { now_ms, wall_ms },
            Input::Receive { from, msg } => CoreInput::Receive { from, msg },
            Input::Propose { id, data } => CoreInput::Propose { id, data },
            Input::Read { id } => CoreInput::Read { id },
            Input::Flush => CoreInput::Flush,
            Input::SnapshotTaken { meta } => match serde_json::from_value(meta) {
                Ok(meta) => CoreInput::SnapshotTaken { meta },
                Err(_) => return out,
            },
            Input::Admin { id, name, body } => {
                self.admin(id, &name, &body, &mut out);
                return out;
            }
        };
        self.step_core(core, &mut out);
        out
    }

    fn status(&self) -> ReplicaStatus {
        let r = &self.raft;
        let role = match r.role() {
            CoreRole::Leader => Role::Leader,
            CoreRole::Follower => Role::Follower,
            CoreRole::PreCandidate | CoreRole::Candidate => Role::Candidate,
        };
        let lease_until_ms = r.lease().map(|l| match l {
            Lease::Remaining(ms) => faultline_node::clock::wall_ms().max(0) as u64 + ms,
            Lease::WallUntil(ms) => ms,
        });
        let mut extra = serde_json::Map::new();
        extra.insert(
            "voters".into(),
            json!(r.membership().voters.keys().collect::<Vec<_>>()),
        );
        ReplicaStatus {
            role,
            generation: r.term(),
            leader: r.leader().cloned(),
            commit_index: r.commit_index(),
            last_index: r.log().last_index(),
            lease_until_ms,
            extra,
        }
    }

    fn peers(&self) -> Vec<(NodeId, String)> {
        self.raft
            .membership()
            .voters
            .iter()
            .map(|(id, addr)| (id.clone(), addr.clone()))
            .collect()
    }

    fn snapshot_meta(&self, applied: Index) -> Option<Value> {
        self.raft.snapshot_meta_at(applied).map(|m| meta_value(&m))
    }

    fn wal_records(&self) -> Vec<Record> {
        let snap = self.raft.log().snapshot();
        rewrite_records(
            self.raft.hard_state(),
            (snap.index, snap.term),
            self.raft.log().entries(),
        )
    }

    fn snapshot_message(&self, generation: u64, meta: Value, data: Value) -> Message {
        Message::InstallSnapshot {
            term: generation,
            meta: serde_json::from_value(meta).expect("our own snapshot metadata parses"),
            data,
        }
    }
}

/// InstallSnapshot carries the whole state machine: it gets a longer send timeout.
pub fn is_large(m: &Message) -> bool {
    matches!(m, Message::InstallSnapshot { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Config, HardState, Membership};

    fn single() -> RaftReplica {
        let mut m = Membership::default();
        m.voters.insert("n1".into(), "addr".into());
        let raft = Raft::new(
            Config::new("n1"),
            HardState::default(),
            SnapshotMeta::default(),
            vec![],
            m,
        );
        RaftReplica::new(raft)
    }

    #[test]
    fn commands_map_to_effects_with_sync_before_anything_leaves() {
        let mut r = single();
        r.step(Input::Tick {
            now_ms: 1000,
            wall_ms: 0,
        });
        assert_eq!(r.status().role, Role::Leader);
        let out = r.step(Input::Propose {
            id: "p1".into(),
            data: json!({"op":"write","key":"k","value":1}),
        });
        let out2 = r.step(Input::Flush);
        let all: Vec<_> = out.into_iter().chain(out2).collect();
        let sync = all.iter().position(|e| *e == Effect::Sync).expect("a sync");
        let apply = all
            .iter()
            .position(|e| matches!(e, Effect::Apply(_)))
            .expect("an apply");
        assert!(sync < apply, "{all:?}");
        assert!(matches!(all[0], Effect::Persist(Record::Entry(_))));
        let Effect::Apply(c) = &all[apply] else {
            unreachable!()
        };
        assert_eq!(
            (c[0].id.as_str(), c[0].generation),
            ("p1", r.status().generation)
        );
    }

    #[test]
    fn admin_calls_parse_their_bodies_and_refuse_unknown_ones() {
        let mut r = single();
        let out = r.step(Input::Admin {
            id: "a".into(),
            name: "transfer".into(),
            body: json!({}),
        });
        assert!(
            matches!(&out[0], Effect::Answer { status: 400, .. }),
            "{out:?}"
        );
        let out = r.step(Input::Admin {
            id: "b".into(),
            name: "transfer".into(),
            body: json!({"to":"n2"}),
        });
        assert_eq!(
            out,
            vec![Effect::Rejected {
                id: "b".into(),
                reason: Reject::NotLeader { leader: None }
            }]
        );
        let out = r.step(Input::Admin {
            id: "c".into(),
            name: "reboot".into(),
            body: json!({}),
        });
        assert!(matches!(&out[0], Effect::Answer { status: 404, .. }));
        assert_eq!(r.wal_records()[1], Record::Base { index: 0, term: 0 });
    }
}
