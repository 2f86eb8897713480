//! The shell: the core as a `faultline_node::Replica`. Commands map to the kit's effects one
//! to one; the kit does the IO (WAL and fsync, peers, the KV state machine, HTTP).

use crate::core::{
    Accepted, Ballot, Command, Config, Durable, Input, Message, Paxos, Payload, Reject, Role,
    SnapshotMeta,
};
use faultline_node::replica::{self as kit, Committed, Effect, NodeId, ReplicaStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A WAL record: the acceptor's promise or one vote. Recovery keeps the highest promise and
/// the last vote per slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    Promise { ballot: Ballot },
    Vote(Accepted),
}

pub struct PaxosReplica {
    core: Paxos,
    /// Every replica's peer address, this one included.
    addrs: Vec<(NodeId, String)>,
}

/// A ballot as the node protocol's single `generation` number: round, then the node's rank
/// among the sorted voters (unique per ballot, ordered as ballots are).
pub fn generation(ballot: &Ballot, voters: &BTreeSet<NodeId>) -> u64 {
    let rank = voters
        .iter()
        .position(|v| *v == ballot.node)
        .map_or(0, |i| i + 1);
    ballot.round * 1000 + rank as u64
}

impl PaxosReplica {
    /// Rebuilds the replica from its WAL records and the snapshot's metadata.
    pub fn recover(
        cfg: Config,
        addrs: Vec<(NodeId, String)>,
        records: Vec<Record>,
        snapshot: Option<&Value>,
    ) -> PaxosReplica {
        let slot = snapshot.map_or(0, kit::snapshot_index);
        let mut durable = Durable {
            snapshot: SnapshotMeta { slot },
            ..Durable::default()
        };
        let mut votes = std::collections::BTreeMap::new();
        for r in records {
            match r {
                Record::Promise { ballot } => durable.promised = durable.promised.max(ballot),
                Record::Vote(v) if v.slot > slot => {
                    votes.insert(v.slot, v);
                }
                Record::Vote(_) => {}
            }
        }
        durable.accepted = votes.into_values().collect();
        let voters = addrs.iter().map(|(id, _)| id.clone()).collect();
        PaxosReplica {
            core: Paxos::new(cfg, voters, durable),
            addrs,
        }
    }

    pub fn core(&self) -> &Paxos {
        &self.core
    }

    fn effect(&self, cmd: Command) -> Vec<Effect<Message, Record>> {
        match cmd {
            Command::PersistPromise(ballot) => vec![Effect::Persist(Record::Promise { ballot })],
            Command::PersistAccepted(votes) => votes
                .into_iter()
                .map(|v| Effect::Persist(Record::Vote(v)))
                .collect(),
            Command::Sync => vec![Effect::Sync],
            Command::Send { to, msg } => vec![Effect::Send { to, msg }],
            Command::SendSnapshot { to } => vec![Effect::SendSnapshot {
                to,
                generation: self.generation(),
            }],
            Command::InstallSnapshot { meta, data } => vec![Effect::InstallSnapshot {
                meta: meta_json(&meta),
                data,
            }],
            Command::CompactLog { meta } => vec![Effect::CompactLog {
                meta: meta_json(&meta),
            }],
            Command::Apply { entries } => vec![Effect::Apply(
                entries
                    .into_iter()
                    .map(|e| Committed {
                        index: e.slot,
                        // A slot's value may be chosen at several ballots (a new leader
                        // re-proposes it), so no ballot is the same on every replica: /log
                        // compares replicas by id, with one constant generation.
                        generation: 0,
                        id: e.payload.id().to_string(),
                        command: match e.payload {
                            Payload::Noop => None,
                            Payload::Data { data, .. } => Some(data),
                        },
                    })
                    .collect(),
            )],
            Command::Proposed { id, slot } => vec![Effect::Proposed { id, index: slot }],
            Command::Rejected { id, reason } => vec![Effect::Rejected {
                id,
                reason: reject(reason),
            }],
            Command::ReadReady { id, index } => vec![Effect::ReadReady { id, index }],
            Command::ReadRejected { id, reason } => vec![Effect::ReadRejected {
                id,
                reason: reject(reason),
            }],
        }
    }

    fn generation(&self) -> u64 {
        generation(self.core.generation(), self.core.voters())
    }
}

fn meta_json(meta: &SnapshotMeta) -> Value {
    json!({ "index": meta.slot })
}

fn reject(reason: Reject) -> kit::Reject {
    match reason {
        Reject::NotLeader { leader } => kit::Reject::NotLeader { leader },
    }
}

impl kit::Replica for PaxosReplica {
    type Msg = Message;
    type Record = Record;

    fn step(&mut self, input: kit::Input<Message>) -> Vec<Effect<Message, Record>> {
        let input = match input {
            kit::Input::Tick { now_ms, wall_ms } => Input::Tick { now_ms, wall_ms },
            kit::Input::Receive { from, msg } => Input::Receive { from, msg },
            kit::Input::Propose { id, data } => Input::Propose { id, data },
            kit::Input::Read { id } => Input::Read { id },
            kit::Input::SnapshotTaken { meta } => Input::SnapshotTaken {
                meta: SnapshotMeta {
                    slot: kit::snapshot_index(&meta),
                },
            },
            kit::Input::Flush => Input::Flush,
            kit::Input::Admin { id, name, .. } if name == "campaign" => {
                let mut out: Vec<_> = self
                    .core
                    .step(Input::Campaign)
                    .into_iter()
                    .flat_map(|c| self.effect(c))
                    .collect();
                out.push(Effect::Answer {
                    id,
                    status: 200,
                    body: json!({"ballot": self.core.generation().to_string()}),
                });
                return out;
            }
            kit::Input::Admin { id, name, .. } => {
                return vec![Effect::Answer {
                    id,
                    status: 404,
                    body: json!({"error": "not-found", "detail": format!("no admin call {name:?}"), "definite": true}),
                }];
            }
        };
        let cmds = self.core.step(input);
        cmds.into_iter().flat_map(|c| self.effect(c)).collect()
    }

    fn status(&self) -> ReplicaStatus {
        let role = match self.core.role() {
            Role::Leader => kit::Role::Leader,
            Role::Candidate => kit::Role::Candidate,
            Role::Follower => kit::Role::Follower,
        };
        let mut extra = serde_json::Map::new();
        extra.insert("ballot".into(), json!(self.core.generation().to_string()));
        extra.insert("promised".into(), json!(self.core.promised().to_string()));
        extra.insert(
            "voters".into(),
            json!(self.core.voters().iter().collect::<Vec<_>>()),
        );
        // `leader` is the leader of the generation reported. A follower that promised a higher
        // ballot than its leader's no longer votes for that leader, and the new ballot's owner
        // has not reached it yet: it names no leader rather than pair the new ballot with the
        // old leader (which split-brain/probes would read as two leaders of one ballot).
        let ballot = self.core.generation();
        let leader = self
            .core
            .leader()
            .filter(|l| role != kit::Role::Follower || **l == ballot.node)
            .cloned();
        ReplicaStatus {
            role,
            generation: self.generation(),
            leader,
            commit_index: self.core.commit_index(),
            last_index: self.core.log().last_slot(),
            lease_until_ms: self.core.lease_until_wall_ms(),
            extra,
        }
    }

    fn peers(&self) -> Vec<(NodeId, String)> {
        self.addrs.clone()
    }

    fn snapshot_meta(&self, applied: kit::Index) -> Option<Value> {
        (applied <= self.core.commit_index()).then(|| json!({ "index": applied }))
    }

    fn wal_records(&self) -> Vec<Record> {
        let durable = self.core.durable();
        std::iter::once(Record::Promise {
            ballot: durable.promised,
        })
        .chain(durable.accepted.into_iter().map(Record::Vote))
        .collect()
    }

    fn snapshot_message(&self, _generation: u64, meta: Value, data: Value) -> Message {
        Message::InstallSnapshot {
            meta: SnapshotMeta {
                slot: kit::snapshot_index(&meta),
            },
            data,
        }
    }
}

/// Large messages (snapshots, big batches) get the transport's long timeout.
pub fn is_large(msg: &Message) -> bool {
    match msg {
        Message::InstallSnapshot { .. } => true,
        Message::Accept { entries, .. } | Message::Learn { entries, .. } => entries.len() > 64,
        Message::Promise { accepted, .. } => accepted.len() > 64,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_node::Replica;

    fn addrs() -> Vec<(NodeId, String)> {
        ["n1", "n2", "n3"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), format!("127.0.0.1:{}", 7001 + i)))
            .collect()
    }

    #[test]
    fn recovery_keeps_the_highest_promise_and_the_last_vote_per_slot() {
        let vote = |slot, round, id: &str| {
            Record::Vote(Accepted {
                slot,
                ballot: Ballot::new(round, "n2"),
                payload: Payload::Data {
                    id: id.into(),
                    data: json!(1),
                },
            })
        };
        let records = vec![
            Record::Promise {
                ballot: Ballot::new(3, "n2"),
            },
            vote(1, 1, "old"),
            vote(5, 2, "a"),
            vote(5, 3, "b"),
            Record::Promise {
                ballot: Ballot::new(2, "n1"),
            },
        ];
        let snap = json!({"index": 1});
        let r = PaxosReplica::recover(Config::new("n1"), addrs(), records, Some(&snap));
        assert_eq!(r.core().promised(), &Ballot::new(3, "n2"));
        let recs = r.wal_records();
        assert_eq!(
            recs.len(),
            2,
            "the promise and slot 5's last vote: {recs:?}"
        );
        assert_eq!(recs[1], vote(5, 3, "b"));
        let status = r.status();
        assert_eq!(
            status.generation, 3002,
            "round 3, n2 is second of the voters"
        );
        assert_eq!(status.commit_index, 1);
    }

    #[test]
    fn a_follower_names_no_leader_for_a_ballot_whose_owner_it_has_not_heard() {
        let mut r = PaxosReplica::recover(Config::new("n3"), addrs(), vec![], None);
        let prepare = Message::Prepare {
            ballot: Ballot::new(1, "n1"),
            from: 1,
        };
        r.step(kit::Input::Receive {
            from: "n1".into(),
            msg: prepare,
        });
        let heartbeat = Message::Heartbeat {
            ballot: Ballot::new(1, "n1"),
            commit: 0,
            seq: 1,
        };
        r.step(kit::Input::Receive {
            from: "n1".into(),
            msg: heartbeat,
        });
        let st = r.status();
        assert_eq!((st.generation, st.leader.as_deref()), (1001, Some("n1")));
        // n1 falls silent past its lease; n2 prepares round 2 and n3 promises it.
        r.step(kit::Input::Tick {
            now_ms: 150,
            wall_ms: 0,
        });
        let prepare = Message::Prepare {
            ballot: Ballot::new(2, "n2"),
            from: 1,
        };
        r.step(kit::Input::Receive {
            from: "n2".into(),
            msg: prepare,
        });
        assert_eq!(r.core().promised(), &Ballot::new(2, "n2"));
        assert_eq!(r.core().role(), Role::Follower);
        assert_eq!(
            r.core().leader().map(String::as_str),
            Some("n1"),
            "the core's hint"
        );
        let st = r.status();
        assert_eq!(
            (st.generation, st.leader),
            (2002, None),
            "not n1 with n2's ballot"
        );
    }

    #[test]
    fn generations_order_as_ballots_do() {
        let voters: BTreeSet<NodeId> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let g = |r, n| generation(&Ballot::new(r, n), &voters);
        assert!(g(1, "n3") < g(2, "n1"));
        assert!(g(2, "n1") < g(2, "n2"));
    }
}
