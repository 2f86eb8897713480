//! The proposer: phase 1 once per ballot over every open slot, adoption of the highest vote,
//! no-ops in the gaps, then pipelined, batched phase 2 and retransmission.

use super::message::Message;
use super::paxos::{Command, Paxos, Peer, PromiseInfo, Proposal, Reject};
use super::types::{Accepted, Ballot, Entry, NodeId, Payload, Role, Slot};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

impl Paxos {
    /// Phase 1a with a ballot above every round seen; our own acceptor promises first.
    pub(super) fn start_phase1(&mut self) {
        if self.role == Role::Leader {
            self.become_follower(None);
        }
        let round = self.max_round.max(self.promised.round) + 1;
        self.note_round(round);
        self.ballot = Ballot::new(round, &self.cfg.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.promises.clear();
        self.raise_promise(self.ballot.clone());
        self.phase1_from = self.commit + 1;
        let own = PromiseInfo {
            accepted: self.log.votes(self.phase1_from, Slot::MAX),
            snapshot: self.log.snapshot().slot,
            commit: self.commit,
        };
        self.promises.insert(self.cfg.id.clone(), own);
        self.reset_election_timer();
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
        if self.promises.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        let msg = Message::Prepare {
            ballot: self.ballot.clone(),
            from: self.phase1_from,
        };
        self.broadcast(msg);
    }

    /// Phase 1a again, same ballot, to acceptors that have not answered (lost messages).
    pub(super) fn resend_prepare(&mut self) {
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
        let msg = Message::Prepare {
            ballot: self.ballot.clone(),
            from: self.phase1_from,
        };
        for p in self.others() {
            if !self.promises.contains_key(&p) {
                self.send(&p, msg.clone());
            }
        }
    }

    pub(super) fn handle_promise(&mut self, from: NodeId, ballot: Ballot, info: PromiseInfo) {
        if self.role != Role::Candidate || ballot != self.ballot {
            return;
        }
        self.promises.insert(from, info);
        if self.promises.len() >= self.quorum() {
            self.become_leader();
        }
    }

    pub(super) fn handle_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.note_round(promised.round);
        if self.role != Role::Follower && ballot == self.ballot && promised > self.ballot {
            self.become_follower(None);
        }
    }

    /// Phase 1 is done: re-propose, at our ballot, the highest vote of every open slot the
    /// quorum reported, a no-op where none did.
    fn become_leader(&mut self) {
        let promises = std::mem::take(&mut self.promises);
        // Slots up to an acceptor's snapshot are chosen but their votes are gone: never propose
        // there; learn them instead.
        let floor = promises.values().map(|p| p.snapshot).max().unwrap_or(0);
        let mut best: BTreeMap<Slot, &Accepted> = BTreeMap::new();
        for a in promises.values().flat_map(|p| &p.accepted) {
            if best.get(&a.slot).is_none_or(|b| a.ballot > b.ballot) {
                best.insert(a.slot, a);
            }
        }
        let start = self.commit.max(floor) + 1;
        let last = best.keys().next_back().copied().unwrap_or(0).max(start - 1);
        let recovered: Vec<(Slot, Payload)> = (start..=last)
            .map(|slot| {
                let payload = match (self.log.chosen(slot), best.get(&slot)) {
                    (Some(chosen), _) => chosen.clone(),
                    // BUG ignore-promised-values: the open slot gets our own no-op even though
                    // an acceptor reported a vote there (perhaps for a chosen value).
                    (None, Some(_)) if self.cfg.bugs.ignore_promised_values => Payload::Noop,
                    (None, Some(a)) => a.payload.clone(),
                    (None, None) => Payload::Noop,
                };
                (slot, payload)
            })
            .collect();
        // Catch up from whoever knows the most, if that is more than we do.
        let ahead = promises
            .iter()
            .filter(|(id, p)| **id != self.cfg.id && p.commit.max(p.snapshot) > self.commit)
            .max_by_key(|(_, p)| p.commit.max(p.snapshot))
            .map(|(id, p)| (id.clone(), p.commit.max(p.snapshot)));

        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.peers = self
            .others()
            .into_iter()
            .map(|p| {
                (
                    p,
                    Peer {
                        active: true,
                        ..Peer::default()
                    },
                )
            })
            .collect();
        self.proposals.clear();
        self.unsent.clear();
        self.reads.restart();
        self.check_quorum_due = self.now + self.cfg.election_max_ms;
        self.commit_sent = self.commit;
        self.next_slot = last + 1;
        self.recovered_end = last;
        for (slot, payload) in recovered {
            self.propose_at(slot, payload);
        }
        if let Some((peer, commit)) = ahead {
            self.catch_up(&peer, commit);
        }
        self.flush();
        // Followers learn of the new leader (and stop their election timers) at once.
        self.broadcast_heartbeat();
    }

    pub(super) fn propose(&mut self, id: String, data: Value) {
        if self.role != Role::Leader {
            let reason = Reject::NotLeader {
                leader: self.leader.clone(),
            };
            self.note(Command::Rejected { id, reason });
            return;
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.propose_at(
            slot,
            Payload::Data {
                id: id.clone(),
                data,
            },
        );
        self.note(Command::Proposed { id, slot });
    }

    /// Our own acceptor votes, then the slot waits in `unsent` for the batch's Accept.
    fn propose_at(&mut self, slot: Slot, payload: Payload) {
        let ballot = self.ballot.clone();
        self.log.accept(slot, ballot.clone(), payload.clone());
        self.persist(Command::PersistAccepted(vec![Accepted {
            slot,
            ballot,
            payload: payload.clone(),
        }]));
        self.proposals.insert(
            slot,
            Proposal {
                payload: payload.clone(),
                acks: BTreeSet::from([self.cfg.id.clone()]),
                sent_at: self.now,
            },
        );
        self.unsent.push(Entry { slot, payload });
    }

    /// End of a batch: a single-replica quorum chooses at once; proposals leave as batched
    /// Accepts (pipelined: no waiting for earlier ones); a commit that moved is announced.
    pub(super) fn flush(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let quorum = self.quorum();
        let ready: Vec<Slot> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.acks.len() >= quorum)
            .map(|(s, _)| *s)
            .collect();
        self.mark_chosen(ready);
        let unsent = std::mem::take(&mut self.unsent);
        for chunk in unsent.chunks(self.cfg.max_batch.max(1)) {
            let msg = Message::Accept {
                ballot: self.ballot.clone(),
                entries: chunk.to_vec(),
                commit: self.commit,
            };
            self.broadcast(msg);
            self.commit_sent = self.commit;
        }
        if self.commit > self.commit_sent {
            self.commit_sent = self.commit;
            let msg = Message::Commit {
                ballot: self.ballot.clone(),
                commit: self.commit,
            };
            self.broadcast(msg);
        }
    }

    /// Unchosen proposals go again to the acceptors that have not voted for them.
    pub(super) fn retransmit(&mut self) {
        let due = self.now.saturating_sub(self.cfg.retransmit_ms());
        if !self.proposals.values().any(|p| p.sent_at <= due) {
            return;
        }
        let max = self.cfg.max_batch.max(1);
        for peer in self.others() {
            let entries: Vec<Entry> = self
                .proposals
                .iter()
                .filter(|(_, p)| p.sent_at <= due && !p.acks.contains(&peer))
                .take(max)
                .map(|(slot, p)| Entry {
                    slot: *slot,
                    payload: p.payload.clone(),
                })
                .collect();
            if !entries.is_empty() {
                let msg = Message::Accept {
                    ballot: self.ballot.clone(),
                    entries,
                    commit: self.commit,
                };
                self.send(&peer, msg);
            }
        }
        let now = self.now;
        for p in self.proposals.values_mut().filter(|p| p.sent_at <= due) {
            p.sent_at = now;
        }
    }

    pub(super) fn handle_accepted(&mut self, from: NodeId, ballot: Ballot, slots: Vec<Slot>) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            p.active = true;
        }
        let quorum = self.quorum();
        let mut ready = Vec::new();
        for slot in slots {
            if let Some(p) = self.proposals.get_mut(&slot) {
                p.acks.insert(from.clone());
                if p.acks.len() >= quorum {
                    ready.push(slot);
                }
            }
        }
        self.mark_chosen(ready);
    }

    /// A quorum voted for these slots at our ballot: their values are chosen.
    fn mark_chosen(&mut self, slots: Vec<Slot>) {
        if slots.is_empty() {
            return;
        }
        for slot in slots {
            if let Some(p) = self.proposals.remove(&slot) {
                self.log.choose(slot, p.payload);
            }
        }
        self.advance_commit();
    }
}

#[cfg(test)]
mod tests {
    use super::super::bugs::{Bug, Bugs};
    use super::super::paxos::Input;
    use super::super::testkit::*;
    use super::super::types::Ballot;
    use super::*;

    /// What n1 (of n1-n3) emits starting phase 1 at `ballot` from `from`: its own promise
    /// made durable, then the Prepare to both peers.
    fn phase_one(ballot: Ballot, from: Slot) -> Vec<Command> {
        let p = prepare(ballot.clone(), from);
        vec![
            Command::PersistPromise(ballot),
            Command::Sync,
            send("n2", p.clone()),
            send("n3", p),
        ]
    }

    #[test]
    fn a_timeout_starts_phase_one_with_a_ballot_above_every_round_seen() {
        let mut r = follower_with("n1", Bugs::default(), b(4, "n3"), &[]);
        assert_eq!(
            tick(&mut r, 100),
            vec![],
            "no election before the minimum timeout"
        );
        assert_eq!(tick(&mut r, 1000), phase_one(b(5, "n1"), 1));
        assert_eq!(r.role(), Role::Candidate);
        // a nack naming round 9 sends us back to follower; the next ballot outbids it
        recv(&mut r, "n2", nack(b(5, "n1"), b(9, "n2")));
        assert_eq!(r.role(), Role::Follower);
        let out = tick(&mut r, 2000);
        assert_eq!(out[0], Command::PersistPromise(b(10, "n1")));
    }

    #[test]
    fn a_campaign_starts_phase_one_at_once_even_under_a_leader() {
        let mut r = follower_with("n1", Bugs::default(), b(4, "n3"), &[]);
        assert_eq!(r.step(Input::Campaign), phase_one(b(5, "n1"), 1));
        assert_eq!(r.role(), Role::Candidate);
        // A leader asked to campaign gives its ballot up for a higher one.
        let mut l = leader("n1");
        let before = l.generation().round;
        let out = l.step(Input::Campaign);
        assert_eq!(
            out[0],
            Command::PersistPromise(b(before + 1, "n1")),
            "{out:?}"
        );
        assert_eq!(l.role(), Role::Candidate);
    }

    #[test]
    fn the_new_leader_adopts_the_highest_vote_and_fills_gaps_with_noops() {
        let mut r = candidate("n1", Bugs::default(), &[(2, b(1, "n1"), "old")]);
        // n2 voted for "a" at 1 and "b" at 3, n3 (not needed) never answers
        let promise_n2 = promise(
            b(5, "n1"),
            vec![
                vote(1, b(3, "n2"), "a"),
                vote(2, b(4, "n2"), "new"),
                vote(4, b(1, "n2"), "d"),
            ],
            0,
            0,
        );
        let out = recv(&mut r, "n2", promise_n2);
        let ballot = b(5, "n1");
        let recovered = vec![entry(1, "a"), entry(2, "new"), noop(3), entry(4, "d")];
        let votes: Vec<Command> = recovered
            .iter()
            .map(|e| Command::PersistAccepted(vec![vote_of(e, &ballot)]))
            .collect();
        let acc = accept(ballot.clone(), recovered.clone(), 0);
        let hb = heartbeat(ballot.clone(), 0, 1);
        let mut want = votes;
        want.extend([
            Command::Sync,
            send("n2", acc.clone()),
            send("n3", acc),
            send("n2", hb.clone()),
            send("n3", hb),
        ]);
        assert_eq!(out, want);
        assert_eq!(r.role(), Role::Leader);
        // the next client value goes after the recovered slots
        let out = r.step(Input::Propose {
            id: "p".into(),
            data: serde_json::json!("p"),
        });
        assert_eq!(
            out.last(),
            Some(&Command::Proposed {
                id: "p".into(),
                slot: 5
            })
        );
    }

    #[test]
    fn with_ignore_promised_values_the_new_leader_proposes_noops_over_reported_votes() {
        let mut r = candidate("n1", Bugs::one(Bug::IgnorePromisedValues), &[]);
        let out = recv(
            &mut r,
            "n2",
            promise(b(5, "n1"), vec![vote(1, b(3, "n2"), "a")], 0, 0),
        );
        assert_eq!(
            out[0],
            Command::PersistAccepted(vec![vote_of(&noop(1), &b(5, "n1"))])
        );
    }

    #[test]
    fn slots_inside_an_acceptors_snapshot_are_learnt_not_proposed() {
        let mut r = candidate("n1", Bugs::default(), &[]);
        let out = recv(
            &mut r,
            "n2",
            promise(b(5, "n1"), vec![vote(4, b(2, "n2"), "d")], 3, 3),
        );
        let ballot = b(5, "n1");
        let acc = accept(ballot.clone(), vec![entry(4, "d")], 0);
        assert_eq!(
            out[..5],
            [
                Command::PersistAccepted(vec![vote(4, ballot.clone(), "d")]),
                Command::Sync,
                send("n2", Message::CatchUp { from: 1 }),
                send("n2", acc.clone()),
                send("n3", acc),
            ]
        );
    }

    #[test]
    fn phase_two_is_batched_pipelined_and_chosen_by_a_quorum() {
        let mut r = leader("n1");
        let ballot = r.generation().clone();
        let p1 = r.step(Input::Propose {
            id: "a".into(),
            data: serde_json::json!("a"),
        });
        let p2 = r.step(Input::Propose {
            id: "b".into(),
            data: serde_json::json!("b"),
        });
        assert_eq!(
            [p1, p2].concat(),
            vec![
                Command::PersistAccepted(vec![vote(1, ballot.clone(), "a")]),
                Command::Proposed {
                    id: "a".into(),
                    slot: 1
                },
                Command::PersistAccepted(vec![vote(2, ballot.clone(), "b")]),
                Command::Proposed {
                    id: "b".into(),
                    slot: 2
                },
            ]
        );
        let acc = accept(ballot.clone(), vec![entry(1, "a"), entry(2, "b")], 0);
        assert_eq!(
            r.step(Input::Flush),
            vec![Command::Sync, send("n2", acc.clone()), send("n3", acc)]
        );
        // slot 2's vote arrives first: chosen, but not applied before slot 1
        assert_eq!(
            recv(&mut r, "n3", accepted(ballot.clone(), vec![2], 0)),
            vec![]
        );
        assert_eq!(r.commit_index(), 0);
        assert_eq!(
            recv(&mut r, "n2", accepted(ballot.clone(), vec![1, 2], 0)),
            vec![Command::Apply {
                entries: vec![entry(1, "a"), entry(2, "b")]
            }]
        );
        // the commit is announced to every replica at the end of the batch
        let c = Message::Commit {
            ballot: ballot.clone(),
            commit: 2,
        };
        assert_eq!(
            r.step(Input::Flush),
            vec![send("n2", c.clone()), send("n3", c)]
        );
        // an acceptor of a stale ballot counts for nothing
        let old = Ballot::new(1, "n1");
        assert_eq!(recv(&mut r, "n2", accepted(old, vec![3], 0)), vec![]);
    }

    #[test]
    fn unanswered_proposals_are_sent_again_to_the_silent_acceptors_only() {
        let mut r = leader("n1");
        let ballot = r.generation().clone();
        let t = r.now;
        r.step(Input::Propose {
            id: "a".into(),
            data: serde_json::json!("a"),
        });
        r.step(Input::Flush);
        recv(&mut r, "n2", accepted(ballot.clone(), vec![1], 0));
        r.step(Input::Propose {
            id: "b".into(),
            data: serde_json::json!("b"),
        });
        r.step(Input::Flush);
        let out = tick(&mut r, t + 120);
        let resent: Vec<&Command> = out
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Command::Send {
                        msg: Message::Accept { .. },
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            resent,
            vec![
                &send("n2", accept(ballot.clone(), vec![entry(2, "b")], 1)),
                &send("n3", accept(ballot.clone(), vec![entry(2, "b")], 1)),
            ],
            "slot 1 was chosen; only slot 2 is still open"
        );
    }

    #[test]
    fn a_quorum_of_n_over_2_with_quorum_off_by_one() {
        let mut r = follower_with("n1", Bugs::one(Bug::QuorumOffByOne), Ballot::default(), &[]);
        let out = tick(&mut r, 1000);
        assert_eq!(
            r.role(),
            Role::Leader,
            "its own promise is a quorum of one: {out:?}"
        );
        let out = r.step(Input::Propose {
            id: "a".into(),
            data: serde_json::json!("a"),
        });
        assert_eq!(
            out.last(),
            Some(&Command::Proposed {
                id: "a".into(),
                slot: 1
            })
        );
        let out = r.step(Input::Flush);
        assert_eq!(
            out[1],
            Command::Apply {
                entries: vec![entry(1, "a")]
            },
            "chosen alone"
        );
    }
}
