//! `Solo`: the smallest replica on the kit, one node that orders commands by itself. It is
//! the kit's reference system (tests of the server, the harness's in-process node) and the
//! shape a protocol's replica takes: effects out, the kit does the IO.
//!
//! Durable mode writes each command to the WAL and syncs before it applies (so a restart on
//! the same data dir keeps every acknowledged write); in-memory mode persists nothing.

use crate::replica::{Committed, Effect, Index, Input, NodeId, Replica, ReplicaStatus, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A WAL record: one ordered command (`Base` starts a rewritten WAL after a snapshot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    Command {
        index: Index,
        id: String,
        data: Value,
    },
    Base {
        index: Index,
    },
}

/// Solo has no peers; its message type is never sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    Never,
}

pub struct Solo {
    id: NodeId,
    durable: bool,
    last: Index,
    base: Index,
}

impl Solo {
    /// Recovers from WAL records and the snapshot's index; returns the commands the state
    /// machine has not seen yet (after the snapshot), to apply at start.
    pub fn recover(
        id: &str,
        durable: bool,
        records: Vec<Record>,
        snapshot: Index,
    ) -> (Solo, Vec<Committed>) {
        let mut base = snapshot;
        let mut replay = Vec::new();
        for r in records {
            match r {
                Record::Base { index } => base = base.max(index),
                Record::Command { index, id, data } if index > base => replay.push(Committed {
                    index,
                    generation: 1,
                    id,
                    command: Some(data),
                }),
                Record::Command { .. } => {}
            }
        }
        replay.retain(|c| c.index > snapshot);
        let last = replay.last().map_or(base, |c| c.index);
        let solo = Solo {
            id: id.to_string(),
            durable,
            last,
            base,
        };
        (solo, replay)
    }
}

impl Replica for Solo {
    type Msg = Msg;
    type Record = Record;

    fn step(&mut self, input: Input<Msg>) -> Vec<Effect<Msg, Record>> {
        match input {
            Input::Propose { id, data } => {
                self.last += 1;
                let index = self.last;
                let mut out = Vec::new();
                if self.durable {
                    out.push(Effect::Persist(Record::Command {
                        index,
                        id: id.clone(),
                        data: data.clone(),
                    }));
                    out.push(Effect::Sync);
                }
                out.push(Effect::Proposed {
                    id: id.clone(),
                    index,
                });
                out.push(Effect::Apply(vec![Committed {
                    index,
                    generation: 1,
                    id,
                    command: Some(data),
                }]));
                out
            }
            Input::Read { id } => vec![Effect::ReadReady {
                id,
                index: self.last,
            }],
            Input::Admin { id, name, .. } => vec![Effect::Answer {
                id,
                status: 404,
                body: json!({"error": "not-found", "detail": format!("no admin call {name:?}"), "definite": true}),
            }],
            Input::SnapshotTaken { meta } => {
                self.base = crate::replica::snapshot_index(&meta);
                vec![Effect::CompactLog { meta }]
            }
            Input::Tick { .. } | Input::Receive { .. } | Input::Flush => Vec::new(),
        }
    }

    fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            role: Role::Leader,
            generation: 1,
            leader: Some(self.id.clone()),
            commit_index: self.last,
            last_index: self.last,
            lease_until_ms: None,
            extra: serde_json::Map::new(),
        }
    }

    fn peers(&self) -> Vec<(NodeId, String)> {
        Vec::new()
    }

    fn snapshot_meta(&self, applied: Index) -> Option<Value> {
        Some(json!({ "index": applied }))
    }

    fn wal_records(&self) -> Vec<Record> {
        // Called after compaction to `base`: everything up to it is in the snapshot, and
        // Solo applies as it orders, so nothing after it is unapplied.
        vec![Record::Base { index: self.base }]
    }

    fn snapshot_message(&self, _generation: u64, _meta: Value, _data: Value) -> Msg {
        Msg::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposal_is_persisted_synced_then_applied() {
        let (mut s, replay) = Solo::recover("n1", true, vec![], 0);
        assert!(replay.is_empty());
        let data = json!({"op":"write","key":"k","value":1});
        let out = s.step(Input::Propose {
            id: "p1".into(),
            data: data.clone(),
        });
        assert_eq!(
            out,
            vec![
                Effect::Persist(Record::Command {
                    index: 1,
                    id: "p1".into(),
                    data: data.clone()
                }),
                Effect::Sync,
                Effect::Proposed {
                    id: "p1".into(),
                    index: 1
                },
                Effect::Apply(vec![Committed {
                    index: 1,
                    generation: 1,
                    id: "p1".into(),
                    command: Some(data)
                }]),
            ]
        );
        assert_eq!(
            s.step(Input::Read { id: 9 }),
            vec![Effect::ReadReady { id: 9, index: 1 }]
        );
    }

    #[test]
    fn recovery_replays_what_the_snapshot_lacks() {
        let rec = |index| Record::Command {
            index,
            id: format!("p{index}"),
            data: json!({}),
        };
        let (s, replay) = Solo::recover(
            "n1",
            true,
            vec![Record::Base { index: 2 }, rec(3), rec(4), rec(5)],
            4,
        );
        assert_eq!(replay.iter().map(|c| c.index).collect::<Vec<_>>(), vec![5]);
        assert_eq!(s.status().commit_index, 5);
    }
}
