//! Linearizable reads: ReadIndex (heartbeat rounds with sequence numbers) and the optional
//! leader lease (monotonic clock, drift margin).

use super::*;

impl Raft {
    /// How long the leader lease still holds on the timer clock (ms), if this node serves
    /// lease reads and holds one; the buggy wall-clock lease reports its wall deadline.
    pub fn lease(&self) -> Option<Lease> {
        if self.role != Role::Leader || self.transfer.is_some() {
            return None;
        }
        if self.cfg.bugs.lease_no_drift_margin {
            return (self.wall < self.lease_until_wall)
                .then_some(Lease::WallUntil(self.lease_until_wall));
        }
        (self.cfg.lease_reads && self.now < self.lease_until_mono)
            .then(|| Lease::Remaining(self.lease_until_mono - self.now))
    }

    pub(super) fn abandon_reads(&mut self, leader: Option<NodeId>) {
        let mut ids = self.reads.abandon();
        ids.append(&mut self.reads_waiting_for_term);
        for id in ids {
            self.output(Command::ReadRejected {
                id,
                reason: Reject::NotLeader {
                    leader: leader.clone(),
                },
            });
        }
        self.lease_until_mono = 0;
        self.lease_until_wall = 0;
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: &str, seq: u64) {
        let last = self.log.last_index();
        let stall = self.cfg.heartbeat_ms * 4;
        let now = self.now;
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.active = true;
        pr.acked_seq = pr.acked_seq.max(seq);
        let behind = pr.matched < last;
        if behind && pr.inflight > 0 && now >= pr.last_sent + stall {
            // A pipelined message was lost: restart from what the follower surely has.
            pr.next = pr.matched + 1;
            pr.probing = true;
            pr.inflight = 0;
            pr.snapshot_pending = false;
        }
        let idle = pr.inflight == 0;
        if behind && idle {
            self.send_append(from, true);
        }
        self.advance_reads();
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
        let seq = self.reads.start_round(self.now, self.wall);
        for p in self.peers() {
            let matched = self.progress.get(&p).map_or(0, |pr| pr.matched);
            let msg = Message::Heartbeat {
                term: self.hs.term,
                commit: matched.min(self.commit),
                seq,
            };
            self.send(&p, msg);
        }
        self.advance_reads();
    }

    pub(super) fn lease_valid(&self) -> bool {
        if self.transfer.is_some() {
            return false;
        }
        if self.cfg.bugs.lease_no_drift_margin {
            // BUG lease-no-drift-margin: trust the wall clock, no margin kept back.
            return self.wall < self.lease_until_wall;
        }
        self.cfg.lease_reads && self.now < self.lease_until_mono
    }

    pub(super) fn read(&mut self, id: u64) {
        // BUG stale-local-read: answer from local state, whoever we are, without ReadIndex.
        if self.cfg.bugs.stale_local_read {
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
        if self.commit < self.term_start {
            if self.log.last_index() < self.term_start {
                // No entry of our term yet (commit-prior-term skips the election no-op): the
                // read would wait for a client write, so append the no-op now.
                self.append_noop(self.term_start);
            }
            self.reads_waiting_for_term.push(id);
            return;
        }
        let index = self.commit;
        if self.lease_valid() || self.membership.quorum() <= 1 {
            self.output(Command::ReadReady { id, index });
            return;
        }
        if self.reads.queue(id, index) {
            self.broadcast_heartbeat();
        }
    }

    /// Serves reads whose round a quorum has acknowledged; starts the next round if needed.
    pub(super) fn advance_reads(&mut self) {
        let acked = self
            .membership
            .voters
            .keys()
            .map(|v| {
                if *v == self.cfg.id {
                    self.reads.sent()
                } else {
                    self.progress.get(v).map_or(0, |p| p.acked_seq)
                }
            })
            .collect();
        let released = self.reads.acknowledged(acked, self.membership.quorum());
        if let Some((mono, wall)) = released.sent_at {
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
