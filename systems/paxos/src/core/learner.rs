//! The learner: commit notifications, heartbeats from the leader, catch-up of lagging replicas
//! (chosen values or a snapshot from anyone who has them), and log compaction.

use super::message::Message;
use super::paxos::{Command, Paxos};
use super::types::{Ballot, Entry, NodeId, Role, Slot, SnapshotMeta};
use serde_json::Value;

impl Paxos {
    /// `ballot`'s leader says every slot up to `upto` is chosen: a vote we hold at that ballot
    /// is the chosen value. Stops at the first slot we cannot resolve (catch-up fills it).
    pub(super) fn learn_commit(&mut self, ballot: &Ballot, upto: Slot) {
        let mut slot = self.commit + 1;
        while slot <= upto {
            if self.log.chosen(slot).is_none() {
                match self.log.accepted(slot) {
                    Some((b, payload)) if b == ballot => {
                        let payload = payload.clone();
                        self.log.choose(slot, payload);
                    }
                    _ => break,
                }
            }
            slot += 1;
        }
        self.advance_commit();
    }

    /// Moves `commit` over the run of chosen slots after it and applies them.
    pub(super) fn advance_commit(&mut self) {
        let run = self.log.chosen_run(self.commit + 1, Slot::MAX, usize::MAX);
        let Some(last) = run.last().map(|e| e.slot) else {
            return;
        };
        self.commit = last;
        self.applied = last;
        self.output(Command::Apply { entries: run });
        if self.role == Role::Leader && self.commit >= self.recovered_end {
            let waiting = std::mem::take(&mut self.reads_waiting);
            for id in waiting {
                self.read(id);
            }
        }
    }

    pub(super) fn handle_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        if ballot >= self.promised {
            self.follow(&ballot);
        }
        // A commit is a fact whatever ballot announced it.
        self.learn_commit(&ballot, commit);
        self.catch_up(&from, commit);
    }

    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: Slot,
        seq: u64,
    ) {
        self.note_round(ballot.round);
        if ballot < self.promised {
            self.nack(&from, ballot);
            return;
        }
        self.follow(&ballot);
        self.learn_commit(&ballot, commit);
        self.catch_up(&from, commit);
        let msg = Message::HeartbeatAck {
            ballot,
            seq,
            commit: self.commit,
        };
        self.send(&from, msg);
    }

    /// `peer` knows the log chosen up to `their_commit`: if that is past what we could resolve,
    /// ask it for the values (at most every other heartbeat interval: Accepts still in flight
    /// usually fill the gap first).
    pub(super) fn catch_up(&mut self, peer: &str, their_commit: Slot) {
        if their_commit > self.commit && self.now >= self.catch_up_due {
            self.catch_up_due = self.now + 2 * self.cfg.heartbeat_ms;
            let from = self.commit + 1;
            self.send(peer, Message::CatchUp { from });
        }
    }

    pub(super) fn handle_catch_up(&mut self, from: NodeId, from_slot: Slot) {
        if from_slot <= self.log.snapshot().slot {
            self.output(Command::SendSnapshot { to: from });
            return;
        }
        let entries = self
            .log
            .chosen_run(from_slot, self.commit, self.cfg.max_batch.max(1));
        if !entries.is_empty() {
            let msg = Message::Learn {
                entries,
                commit: self.commit,
            };
            self.send(&from, msg);
        }
    }

    pub(super) fn handle_learn(&mut self, from: NodeId, entries: Vec<Entry>, commit: Slot) {
        let before = self.commit;
        for e in entries {
            if e.slot > self.commit && self.log.chosen(e.slot).is_none() {
                self.log.choose(e.slot, e.payload);
            }
        }
        self.advance_commit();
        if self.commit > before && self.commit < commit {
            let from_slot = self.commit + 1;
            self.send(&from, Message::CatchUp { from: from_slot });
        }
    }

    pub(super) fn handle_install_snapshot(&mut self, meta: SnapshotMeta, data: Value) {
        if meta.slot <= self.commit {
            return;
        }
        let slot = meta.slot;
        self.log.compact(meta.clone());
        self.commit = slot;
        self.applied = slot;
        self.proposals.retain(|s, _| *s > slot);
        // The shell writes the snapshot durably as it executes this, before anything later.
        self.note(Command::InstallSnapshot { meta, data });
        self.advance_commit();
    }

    /// The shell made a snapshot durable: compact the log up to it.
    pub(super) fn snapshot_taken(&mut self, meta: SnapshotMeta) {
        if meta.slot > self.log.snapshot().slot && meta.slot <= self.applied {
            self.log.compact(meta.clone());
            self.note(Command::CompactLog { meta });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bugs::Bugs;
    use super::super::paxos::Input;
    use super::super::testkit::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_commit_resolves_only_votes_of_the_announcing_ballot() {
        // slot 1 voted at the leader's ballot 2, slot 2 at an older ballot 1
        let mut r = follower_with(
            "n2",
            Bugs::default(),
            b(2, "n1"),
            &[(1, b(2, "n1"), "a"), (2, b(1, "n3"), "old")],
        );
        assert_eq!(
            recv(
                &mut r,
                "n1",
                Message::Commit {
                    ballot: b(2, "n1"),
                    commit: 2
                }
            ),
            vec![
                Command::Apply {
                    entries: vec![entry(1, "a")]
                },
                send("n1", Message::CatchUp { from: 2 }),
            ]
        );
        assert_eq!(
            r.commit_index(),
            1,
            "slot 2's vote may not be the chosen value: ask"
        );
    }

    #[test]
    fn a_lagging_replica_catches_up_from_the_leader() {
        let mut r = follower_with("n3", Bugs::default(), b(1, "n1"), &[]);
        tick(&mut r, 100);
        assert_eq!(
            recv(&mut r, "n1", heartbeat(b(1, "n1"), 2, 7)),
            vec![
                send("n1", Message::CatchUp { from: 1 }),
                send(
                    "n1",
                    Message::HeartbeatAck {
                        ballot: b(1, "n1"),
                        seq: 7,
                        commit: 0
                    }
                ),
            ]
        );
        // rate-limited: the next heartbeat does not ask again at once
        let out = recv(&mut r, "n1", heartbeat(b(1, "n1"), 2, 8));
        assert_eq!(out.len(), 1);
        // the leader's side: it answers from its chosen values
        let mut l = leader("n1");
        let ballot = l.generation().clone();
        for id in ["a", "b"] {
            l.step(Input::Propose {
                id: id.into(),
                data: json!(id),
            });
        }
        l.step(Input::Flush);
        recv(&mut l, "n2", accepted(ballot, vec![1, 2], 0));
        let learn = Message::Learn {
            entries: vec![entry(1, "a"), entry(2, "b")],
            commit: 2,
        };
        assert_eq!(
            recv(&mut l, "n3", Message::CatchUp { from: 1 }),
            vec![send("n3", learn.clone())]
        );
        assert_eq!(
            recv(&mut r, "n1", learn),
            vec![Command::Apply {
                entries: vec![entry(1, "a"), entry(2, "b")]
            }]
        );
        assert_eq!(r.commit_index(), 2);
    }

    #[test]
    fn snapshots_compact_the_log_and_go_to_replicas_behind_them() {
        let mut l = leader("n1");
        let ballot = l.generation().clone();
        for id in ["a", "b", "c"] {
            l.step(Input::Propose {
                id: id.into(),
                data: json!(id),
            });
        }
        l.step(Input::Flush);
        recv(&mut l, "n2", accepted(ballot.clone(), vec![1, 2, 3], 0));
        let meta = SnapshotMeta { slot: 2 };
        assert_eq!(
            l.step(Input::SnapshotTaken { meta: meta.clone() }),
            vec![Command::CompactLog { meta: meta.clone() }]
        );
        assert_eq!(
            l.log().accepted(2),
            None,
            "votes inside the snapshot are gone"
        );
        // slot 1 is compacted: the snapshot goes; slot 3 is still held
        assert_eq!(
            recv(&mut l, "n3", Message::CatchUp { from: 1 }),
            vec![Command::SendSnapshot { to: "n3".into() }]
        );
        assert_eq!(
            recv(&mut l, "n3", Message::CatchUp { from: 3 }),
            vec![send(
                "n3",
                Message::Learn {
                    entries: vec![entry(3, "c")],
                    commit: 3
                }
            )]
        );
        // a replica installs it, and a vote it holds beyond it still counts
        let mut f = follower_with(
            "n3",
            Bugs::default(),
            ballot.clone(),
            &[(3, ballot.clone(), "c")],
        );
        let snap = Message::InstallSnapshot {
            meta: meta.clone(),
            data: json!({"k": 1}),
        };
        assert_eq!(
            recv(&mut f, "n1", snap.clone()),
            vec![Command::InstallSnapshot {
                meta,
                data: json!({"k": 1})
            }]
        );
        assert_eq!(f.commit_index(), 2);
        assert_eq!(
            recv(&mut f, "n1", snap),
            vec![],
            "an old snapshot is ignored"
        );
        let out = recv(&mut f, "n1", Message::Commit { ballot, commit: 3 });
        assert_eq!(
            out,
            vec![Command::Apply {
                entries: vec![entry(3, "c")]
            }]
        );
    }
}
