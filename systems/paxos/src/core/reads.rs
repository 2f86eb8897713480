//! Linearizable reads on the leader: at the chosen prefix once a quorum confirmed in a
//! heartbeat round (started after the read arrived) that no higher ballot took over, or at once
//! inside a leader lease on the monotonic protocol clock with a drift margin.

use super::message::Message;
use super::paxos::{Command, Paxos, Reject};
use super::types::{Ballot, NodeId, Role};

impl Paxos {
    pub(super) fn read(&mut self, id: u64) {
        // BUG read-from-local-acceptor: whoever we are, answer from our own state.
        if self.cfg.bugs.read_from_local_acceptor {
            let index = self.applied;
            self.output(Command::ReadReady { id, index });
            return;
        }
        if self.role != Role::Leader {
            let reason = Reject::NotLeader {
                leader: self.leader.clone(),
            };
            self.output(Command::ReadRejected { id, reason });
            return;
        }
        if self.commit < self.recovered_end {
            // Values phase 1 recovered may have been acknowledged by an earlier leader.
            self.reads_waiting.push(id);
            return;
        }
        let index = self.commit;
        if self.lease_valid() || self.quorum() <= 1 {
            self.output(Command::ReadReady { id, index });
            return;
        }
        if self.reads.queue(id, index) {
            self.broadcast_heartbeat();
        }
    }

    pub(super) fn abandon_reads(&mut self, leader: Option<NodeId>) {
        let mut ids = self.reads.abandon();
        ids.append(&mut self.reads_waiting);
        for id in ids {
            let reason = Reject::NotLeader {
                leader: leader.clone(),
            };
            self.output(Command::ReadRejected { id, reason });
        }
        self.lease_until_mono = 0;
        self.lease_until_wall = 0;
    }

    /// Until when, on the protocol wall clock, this leader trusts its lease (None: no leases).
    pub fn lease_until_wall_ms(&self) -> Option<u64> {
        if self.cfg.bugs.lease_no_drift_margin {
            return Some(if self.role == Role::Leader {
                self.lease_until_wall
            } else {
                0
            });
        }
        if !self.cfg.lease_reads {
            return None;
        }
        let left = match self.role {
            Role::Leader => self.lease_until_mono.saturating_sub(self.now),
            _ => 0,
        };
        Some(if left > 0 { self.wall + left } else { 0 })
    }

    fn lease_valid(&self) -> bool {
        if self.cfg.bugs.lease_no_drift_margin {
            // BUG lease-no-drift-margin: trust the wall clock, no margin kept back.
            return self.wall < self.lease_until_wall;
        }
        self.cfg.lease_reads && self.now < self.lease_until_mono
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
        let seq = self.reads.start_round(self.now, self.wall);
        let msg = Message::Heartbeat {
            ballot: self.ballot.clone(),
            commit: self.commit,
            seq,
        };
        self.broadcast(msg);
        self.advance_reads();
    }

    pub(super) fn handle_heartbeat_ack(&mut self, from: NodeId, ballot: Ballot, seq: u64) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            p.active = true;
            p.acked_seq = p.acked_seq.max(seq);
        }
        self.advance_reads();
    }

    /// Serves reads whose round a quorum has acknowledged; starts the next round if needed.
    fn advance_reads(&mut self) {
        let acked = self
            .voters
            .iter()
            .map(|v| {
                if *v == self.cfg.id {
                    self.reads.sent()
                } else {
                    self.peers.get(v).map_or(0, |p| p.acked_seq)
                }
            })
            .collect();
        let released = self.reads.acknowledged(acked, self.quorum());
        if let Some((mono, wall)) = released.sent_at {
            // The acceptors that answered will not promise a rival for election_min_ms
            // after they heard this round, which left us at `mono`.
            self.lease_until_mono = mono + self.cfg.lease_ms();
            self.lease_until_wall = wall + self.cfg.election_min_ms;
        }
        for (id, index) in released.ready {
            self.output(Command::ReadReady { id, index });
        }
        if released.need_round {
            self.broadcast_heartbeat();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bugs::{Bug, Bugs};
    use super::super::paxos::{Config, Input};
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn reads_wait_for_a_quorum_round_on_the_leader_and_are_refused_elsewhere() {
        let mut f = follower_with("n2", Bugs::default(), b(1, "n1"), &[]);
        tick(&mut f, 100);
        recv(&mut f, "n1", heartbeat(b(1, "n1"), 0, 1));
        assert_eq!(
            f.step(Input::Read { id: 7 }),
            vec![Command::ReadRejected {
                id: 7,
                reason: Reject::NotLeader {
                    leader: Some("n1".into())
                }
            }]
        );
        let mut l = leader("n1");
        let ballot = l.generation().clone();
        let hb = heartbeat(ballot.clone(), 0, 2);
        assert_eq!(
            l.step(Input::Read { id: 9 }),
            vec![send("n2", hb.clone()), send("n3", hb)]
        );
        let ack = |seq| Message::HeartbeatAck {
            ballot: ballot.clone(),
            seq,
            commit: 0,
        };
        assert_eq!(
            recv(&mut l, "n2", ack(1)),
            vec![],
            "an ack of the round before the read"
        );
        assert_eq!(
            recv(&mut l, "n2", ack(2)),
            vec![Command::ReadReady { id: 9, index: 0 }]
        );
    }

    #[test]
    fn any_replica_answers_locally_with_read_from_local_acceptor() {
        let mut f = follower_with(
            "n2",
            Bugs::one(Bug::ReadFromLocalAcceptor),
            b(1, "n1"),
            &[(1, b(1, "n1"), "a")],
        );
        recv(
            &mut f,
            "n1",
            Message::Commit {
                ballot: b(1, "n1"),
                commit: 1,
            },
        );
        assert_eq!(
            f.step(Input::Read { id: 7 }),
            vec![Command::ReadReady { id: 7, index: 1 }]
        );
    }

    #[test]
    fn reads_wait_until_the_recovered_slots_are_chosen() {
        let mut r = candidate("n1", Bugs::default(), &[]);
        recv(
            &mut r,
            "n2",
            promise(b(5, "n1"), vec![vote(1, b(3, "n2"), "a")], 0, 0),
        );
        assert_eq!(r.step(Input::Read { id: 1 }), vec![]);
        assert_eq!(
            recv(&mut r, "n2", accepted(b(5, "n1"), vec![1], 0)),
            vec![Command::Apply {
                entries: vec![entry(1, "a")]
            }]
        );
        // now the read waits for a round after it: round 1 (sent on election) is answered, so
        // round 2 starts
        let ack = Message::HeartbeatAck {
            ballot: b(5, "n1"),
            seq: 1,
            commit: 1,
        };
        let hb = heartbeat(b(5, "n1"), 1, 2);
        assert_eq!(
            recv(&mut r, "n2", ack),
            vec![send("n2", hb.clone()), send("n3", hb)]
        );
    }

    #[test]
    fn leases_use_the_monotonic_clock_with_margin_unless_lease_no_drift_margin() {
        for (bugged, lease_reads) in [(false, true), (true, false)] {
            let bugs = if bugged {
                Bugs::one(Bug::LeaseNoDriftMargin)
            } else {
                Bugs::default()
            };
            let cfg = Config {
                bugs,
                lease_reads,
                seed: 7,
                ..Config::new("n1")
            };
            let mut l = leader_from(cfg);
            let ballot = l.generation().clone();
            let t = l.now;
            // round 1 (sent at t when elected) is acknowledged: lease until t+120 (mono)
            recv(
                &mut l,
                "n2",
                Message::HeartbeatAck {
                    ballot: ballot.clone(),
                    seq: 1,
                    commit: 0,
                },
            );
            l.step(Input::Tick {
                now_ms: t + 40,
                wall_ms: t + 40,
            });
            assert_eq!(
                l.step(Input::Read { id: 2 }),
                vec![Command::ReadReady { id: 2, index: 0 }]
            );
            // 140 ms on while the wall clock was set back: only the buggy lease still holds
            l.step(Input::Tick {
                now_ms: t + 140,
                wall_ms: t,
            });
            let out = l.step(Input::Read { id: 3 });
            if bugged {
                assert_eq!(out, vec![Command::ReadReady { id: 3, index: 0 }]);
            } else {
                assert!(
                    !out.iter().any(|c| matches!(c, Command::ReadReady { .. })),
                    "{out:?}"
                );
            }
        }
    }
}
