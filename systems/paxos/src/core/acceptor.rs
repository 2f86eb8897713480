//! The acceptor: promises (phase 1b) and votes (phase 2b), each durable before it is answered.

use super::message::Message;
use super::paxos::{Command, Paxos};
use super::types::{Accepted, Ballot, Entry, NodeId, Slot};

impl Paxos {
    pub(super) fn raise_promise(&mut self, ballot: Ballot) {
        self.promised = ballot.clone();
        // BUG promise-not-persisted: the promise lives in memory only and a restart forgets it.
        if !self.cfg.bugs.promise_not_persisted {
            self.persist(Command::PersistPromise(ballot));
        }
    }

    pub(super) fn nack(&mut self, to: &str, ballot: Ballot) {
        let msg = Message::Nack {
            ballot,
            promised: self.promised.clone(),
        };
        self.send(to, msg);
    }

    pub(super) fn handle_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        self.note_round(ballot.round);
        if ballot < self.promised {
            self.nack(&from, ballot);
            return;
        }
        if ballot > self.promised {
            if self.in_lease() && self.leader.as_deref() != Some(ballot.node.as_str()) {
                // A leader we heard from recently may hold a lease on our word: no promise to a
                // rival until it runs out (the rival retries with a higher round).
                return;
            }
            if self.role != super::types::Role::Follower {
                self.become_follower(None);
            }
            self.raise_promise(ballot.clone());
            self.reset_election_timer();
        }
        let last = if self.cfg.bugs.prepare_only_first_slot {
            // BUG prepare-only-first-slot: the promise reports the vote of the first open slot
            // only, so the new leader takes the later slots for open.
            from_slot
        } else {
            Slot::MAX
        };
        let msg = Message::Promise {
            ballot,
            accepted: self.log.votes(from_slot, last),
            snapshot: self.log.snapshot().slot,
            commit: self.commit,
        };
        self.send(&from, msg);
    }

    pub(super) fn handle_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<Entry>,
        commit: Slot,
    ) {
        self.note_round(ballot.round);
        let current = ballot >= self.promised;
        // BUG accept-without-promise-check: the vote is cast whatever was promised.
        if !current && !self.cfg.bugs.accept_without_promise_check {
            self.nack(&from, ballot);
            return;
        }
        let mut raised = false;
        if current {
            // BUG promise-does-not-raise-on-accept (ScyllaDB #6139): the promise stays below the
            // ballot just voted for, so a lower ballot's Accept is taken later.
            if ballot > self.promised && !self.cfg.bugs.promise_does_not_raise_on_accept {
                self.promised = ballot.clone();
                raised = true;
            }
            self.follow(&ballot);
        }
        // Slots inside our snapshot are decided: no vote is cast (or acknowledged) for them.
        let snap = self.log.snapshot().slot;
        let mut slots = Vec::with_capacity(entries.len());
        let mut votes = Vec::new();
        for e in entries.into_iter().filter(|e| e.slot > snap) {
            if self.log.accepted(e.slot).map(|(b, _)| b) != Some(&ballot) {
                self.log.accept(e.slot, ballot.clone(), e.payload.clone());
                votes.push(Accepted {
                    slot: e.slot,
                    ballot: ballot.clone(),
                    payload: e.payload,
                });
            }
            slots.push(e.slot);
        }
        if !votes.is_empty() {
            // The votes carry their ballot: on recovery they raise the promise to it as well.
            self.persist(Command::PersistAccepted(votes));
        } else if raised {
            self.persist(Command::PersistPromise(ballot.clone()));
        }
        self.learn_commit(&ballot, commit);
        self.catch_up(&from, commit);
        let msg = Message::Accepted {
            ballot,
            slots,
            commit: self.commit,
        };
        self.send(&from, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::super::bugs::{Bug, Bugs};
    use super::super::testkit::*;
    use super::super::types::{Ballot, Payload};
    use super::*;

    #[test]
    fn a_prepare_above_the_promise_is_persisted_before_the_promise_reports_every_open_vote() {
        let mut r = follower_with(
            "n2",
            Bugs::default(),
            b(1, "n1"),
            &[(3, b(1, "n1"), "x"), (5, b(1, "n1"), "y")],
        );
        assert_eq!(
            recv(&mut r, "n3", prepare(b(2, "n3"), 2)),
            vec![
                Command::PersistPromise(b(2, "n3")),
                Command::Sync,
                send(
                    "n3",
                    promise(
                        b(2, "n3"),
                        vec![vote(3, b(1, "n1"), "x"), vote(5, b(1, "n1"), "y")],
                        0,
                        0
                    )
                ),
            ]
        );
        // a duplicate is answered again without persisting anything
        let out = recv(&mut r, "n3", prepare(b(2, "n3"), 2));
        assert!(matches!(&out[..], [Command::Send { .. }]), "{out:?}");
        // a lower ballot is refused with the promise it lost to
        assert_eq!(
            recv(&mut r, "n1", prepare(b(1, "n1"), 1)),
            vec![send("n1", nack(b(1, "n1"), b(2, "n3")))]
        );
    }

    #[test]
    fn a_promise_is_not_persisted_with_promise_not_persisted() {
        let mut r = follower_with(
            "n2",
            Bugs::one(Bug::PromiseNotPersisted),
            Ballot::default(),
            &[],
        );
        assert_eq!(
            recv(&mut r, "n3", prepare(b(2, "n3"), 1)),
            vec![send("n3", promise(b(2, "n3"), vec![], 0, 0))],
            "the deviation: no PersistPromise, no Sync"
        );
        assert_eq!(r.durable().promised, b(2, "n3"), "in memory only");
    }

    #[test]
    fn a_promise_reports_only_the_first_slot_with_prepare_only_first_slot() {
        let votes = [(3, b(1, "n1"), "x"), (5, b(1, "n1"), "y")];
        let mut r = follower_with(
            "n2",
            Bugs::one(Bug::PrepareOnlyFirstSlot),
            b(1, "n1"),
            &votes,
        );
        let out = recv(&mut r, "n3", prepare(b(2, "n3"), 3));
        assert_eq!(
            out.last(),
            Some(&send(
                "n3",
                promise(b(2, "n3"), vec![vote(3, b(1, "n1"), "x")], 0, 0)
            ))
        );
    }

    #[test]
    fn accepts_below_the_promise_are_refused_unless_accept_without_promise_check() {
        let mut r = follower_with("n2", Bugs::default(), b(2, "n3"), &[]);
        assert_eq!(
            recv(&mut r, "n1", accept(b(1, "n1"), vec![entry(1, "x")], 0)),
            vec![send("n1", nack(b(1, "n1"), b(2, "n3")))]
        );
        let mut r = follower_with(
            "n2",
            Bugs::one(Bug::AcceptWithoutPromiseCheck),
            b(2, "n3"),
            &[],
        );
        assert_eq!(
            recv(&mut r, "n1", accept(b(1, "n1"), vec![entry(1, "x")], 0)),
            vec![
                Command::PersistAccepted(vec![vote(1, b(1, "n1"), "x")]),
                Command::Sync,
                send("n1", accepted(b(1, "n1"), vec![1], 0)),
            ]
        );
        assert_eq!(r.promised(), &b(2, "n3"));
    }

    #[test]
    fn an_accept_above_the_promise_raises_it_unless_promise_does_not_raise_on_accept() {
        for bugged in [false, true] {
            let bugs = if bugged {
                Bugs::one(Bug::PromiseDoesNotRaiseOnAccept)
            } else {
                Bugs::default()
            };
            let mut r = follower_with("n2", bugs, b(1, "n1"), &[]);
            assert_eq!(
                recv(&mut r, "n3", accept(b(3, "n3"), vec![entry(1, "x")], 0)),
                vec![
                    Command::PersistAccepted(vec![vote(1, b(3, "n3"), "x")]),
                    Command::Sync,
                    send("n3", accepted(b(3, "n3"), vec![1], 0)),
                ]
            );
            // the stale ballot 2 (between the old promise and the vote) then arrives
            let out = recv(&mut r, "n1", accept(b(2, "n1"), vec![entry(1, "y")], 0));
            if bugged {
                assert_eq!(
                    out,
                    vec![
                        Command::PersistAccepted(vec![vote(1, b(2, "n1"), "y")]),
                        Command::Sync,
                        send("n1", accepted(b(2, "n1"), vec![1], 0)),
                    ],
                    "the deviation: the vote at ballot 3 is overwritten by ballot 2"
                );
            } else {
                assert_eq!(out, vec![send("n1", nack(b(2, "n1"), b(3, "n3")))]);
                assert_eq!(r.log().accepted(1).map(|(_, p)| p.clone()), Some(data("x")));
            }
        }
    }

    #[test]
    fn duplicate_accepts_are_acknowledged_without_a_second_write() {
        let mut r = follower_with("n2", Bugs::default(), b(1, "n1"), &[]);
        recv(
            &mut r,
            "n1",
            accept(b(1, "n1"), vec![entry(1, "x"), entry(2, "y")], 0),
        );
        assert_eq!(
            recv(&mut r, "n1", accept(b(1, "n1"), vec![entry(2, "y")], 0)),
            vec![send("n1", accepted(b(1, "n1"), vec![2], 0))]
        );
        assert_eq!(
            r.log().accepted(2).map(|(_, p)| p.clone()),
            Some(Payload::Data {
                id: "y".into(),
                data: serde_json::json!("y")
            })
        );
    }

    #[test]
    fn a_replica_in_its_leaders_lease_does_not_promise_a_rival() {
        let mut r = follower_with("n2", Bugs::default(), b(1, "n1"), &[]);
        tick(&mut r, 100);
        recv(&mut r, "n1", heartbeat(b(1, "n1"), 0, 1));
        tick(&mut r, 200);
        assert_eq!(recv(&mut r, "n3", prepare(b(2, "n3"), 1)), vec![]);
        tick(&mut r, 300);
        let out = recv(&mut r, "n3", prepare(b(2, "n3"), 1));
        assert_eq!(
            out[0],
            Command::PersistPromise(b(2, "n3")),
            "the lease ran out"
        );
    }
}
