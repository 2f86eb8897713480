//! Ring (Chang-Roberts with skipping): nodes sit on the logical ring in id order and beacon a
//! `Ping` every heartbeat, so each knows which successors are alive. A node that stops hearing
//! its primary sends the ELECTION token (`Ring`) to its first live successor; each node adds
//! itself and passes it on, skipping dead successors. Back at the initiator, the highest id in
//! the token wins and ELECTED travels once around; the winner claims a new generation as
//! bully's coordinator does (`coordinator_tick`).

use super::store::Core;
use super::{Message, NodeId, Role};

impl Core {
    fn alive(&self, id: &NodeId) -> bool {
        *id == self.cfg.id
            || self
                .last_heard
                .get(id)
                .is_some_and(|t| self.now < t + self.cfg.live_ms())
    }

    /// The first live successor on the ring; `None` if none is alive or the token is lost.
    fn next_hop(&self) -> Option<NodeId> {
        let me = self.rank(&self.cfg.id);
        let n = self.nodes.len();
        for k in 1..n {
            let succ = &self.nodes[(me + k) % n];
            if self.alive(succ) {
                return Some(succ.clone());
            }
            if self.cfg.bugs.ring_token_lost_on_skip {
                // BUG ring-token-lost-on-skip: the token dies at a dead successor; correct
                // code skips to the next live one.
                return None;
            }
        }
        None
    }

    fn start_ring(&mut self) {
        self.ring_wait_until = Some(self.now + 2 * self.cfg.election_ms);
        let me = self.cfg.id.clone();
        if self.nodes.iter().all(|n| *n == me || !self.alive(n)) {
            self.become_candidate();
            return;
        }
        if let Some(next) = self.next_hop() {
            let msg = Message::Ring {
                initiator: me.clone(),
                candidates: vec![me],
            };
            self.send(&next, msg);
        }
    }

    pub(super) fn on_ring(&mut self, initiator: NodeId, mut candidates: Vec<NodeId>) {
        if initiator == self.cfg.id {
            let Some(winner) = candidates.iter().max_by_key(|c| self.rank(c)).cloned() else {
                return;
            };
            self.announce(initiator, winner);
            return;
        }
        if !candidates.contains(&self.cfg.id) {
            candidates.push(self.cfg.id.clone());
        }
        if let Some(next) = self.next_hop() {
            self.send(
                &next,
                Message::Ring {
                    initiator,
                    candidates,
                },
            );
        }
    }

    fn announce(&mut self, initiator: NodeId, winner: NodeId) {
        if winner == self.cfg.id {
            if self.role == Role::Follower {
                self.become_candidate();
            }
        } else {
            self.ring_wait_until = Some(self.now + 2 * self.cfg.election_ms);
        }
        if let Some(next) = self.next_hop()
            && next != initiator
        {
            self.send(&next, Message::Elected { initiator, winner });
        }
    }

    pub(super) fn on_elected(&mut self, initiator: NodeId, winner: NodeId) {
        if initiator == self.cfg.id {
            return;
        }
        self.announce(initiator, winner);
    }

    pub(super) fn ring_tick(&mut self) {
        if self.now >= self.last_ping + self.cfg.heartbeat_ms {
            self.last_ping = self.now;
            for p in self.peers() {
                self.send(&p, Message::Ping);
            }
        }
        self.coordinator_tick();
        if self.role != Role::Follower {
            return;
        }
        let due = match self.ring_wait_until {
            Some(t) => self.now >= t,
            None => self.now >= self.next_campaign,
        };
        if due {
            self.start_ring();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    fn heard(c: &mut Core, from: &[&str], t: u64) {
        tick(c, t);
        for f in from {
            recv(c, f, Message::Ping);
        }
    }

    #[test]
    fn the_token_skips_a_dead_successor_unless_the_bug_drops_it() {
        let token = Message::Ring {
            initiator: "n3".into(),
            candidates: vec!["n3".into()],
        };
        // n1's successor n2 is dead (never heard); n3 is alive.
        let mut n1 = core("n1", Mode::Ring, Bugs::default());
        heard(&mut n1, &["n3"], 100);
        assert_eq!(
            recv(&mut n1, "n3", token.clone()),
            vec![Command::Send {
                to: "n3".into(),
                msg: Message::Ring {
                    initiator: "n3".into(),
                    candidates: vec!["n3".into(), "n1".into()]
                }
            }]
        );
        let mut buggy = core("n1", Mode::Ring, Bugs::one(Bug::RingTokenLostOnSkip));
        heard(&mut buggy, &["n3"], 100);
        assert_eq!(recv(&mut buggy, "n3", token), vec![]);
    }

    #[test]
    fn back_at_the_initiator_the_highest_id_wins_and_elected_goes_round() {
        let mut n1 = core("n1", Mode::Ring, Bugs::default());
        heard(&mut n1, &["n2", "n3"], 100);
        let back = Message::Ring {
            initiator: "n1".into(),
            candidates: vec!["n1".into(), "n2".into(), "n3".into()],
        };
        assert_eq!(
            recv(&mut n1, "n3", back),
            vec![Command::Send {
                to: "n2".into(),
                msg: Message::Elected {
                    initiator: "n1".into(),
                    winner: "n3".into()
                }
            }]
        );
    }

    #[test]
    fn a_ring_cluster_elects_the_highest_live_node() {
        let mut c = Cluster::new(5, Mode::Ring, true, Bugs::default());
        c.run_ms(3000);
        assert_eq!(c.serving(), vec!["n5".to_string()]);
        c.isolate(&["n5"], &["n1", "n2", "n3", "n4"]);
        c.run_ms(3000);
        assert!(c.serving().contains(&"n4".to_string()), "{:?}", c.serving());
        let mut lost = Cluster::new(5, Mode::Ring, true, Bugs::one(Bug::RingTokenLostOnSkip));
        lost.run_ms(3000);
        lost.isolate(&["n5"], &["n1", "n2", "n3", "n4"]);
        lost.run_ms(3000);
        assert!(
            !lost.serving().contains(&"n4".to_string()),
            "token lost at n4"
        );
    }
}
