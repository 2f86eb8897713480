//! Bully: a node that stops hearing its primary sends ELECTION to every higher node; an ANSWER
//! means a higher node takes over (wait for its COORDINATOR, else start again); no answer
//! within `answer_ms` makes it coordinator: it claims a new generation (`Claim`, the
//! COORDINATOR message) and, ungated, acts as primary `answer_ms` later with whatever logs came
//! back; with `--quorum-gate` only once a majority obeyed. A node that obeys a lower node
//! starts an election itself (the bully), so the highest reachable node ends up primary.

use super::store::{Bully, Core};
use super::{Message, NodeId, Role};

impl Core {
    /// Whether a COORDINATOR (claim) for `epoch` from `from` is obeyed.
    pub(super) fn coordinator_obeyed(&self, from: &NodeId, epoch: u64) -> bool {
        let current =
            epoch > self.epoch || (epoch == self.epoch && self.voted.as_ref() == Some(from));
        // BUG stale-coordinator-accepted: `|| stale_coordinator_accepted` obeys older ones.
        current || self.cfg.bugs.stale_coordinator_accepted
    }

    pub(super) fn start_election(&mut self) {
        let me = self.rank(&self.cfg.id);
        let higher: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| self.rank(n) > me)
            .cloned()
            .collect();
        if higher.is_empty() {
            self.bully = Bully::Idle;
            self.become_candidate();
            return;
        }
        for h in higher {
            self.send(&h, Message::Election { epoch: self.epoch });
        }
        self.bully = Bully::Electing {
            until: self.now + self.cfg.answer_ms,
        };
    }

    pub(super) fn on_election(&mut self, from: NodeId, _gen: u64) {
        if self.rank(&from) >= self.rank(&self.cfg.id) {
            return;
        }
        self.send(&from, Message::Answer { epoch: self.epoch });
        match self.role {
            Role::Primary => {
                // Tell it who leads (its claim round answers are ignored once primary).
                let msg = Message::Claim {
                    epoch: self.epoch,
                    seq: self.claim_seq,
                    commit: self.commit,
                    want_log: false,
                };
                self.send(&from, msg);
            }
            Role::Candidate => {}
            Role::Follower => {
                if self.bully == Bully::Idle {
                    if self.cfg.mode == super::Mode::Ring {
                        return;
                    }
                    self.start_election();
                }
            }
        }
    }

    pub(super) fn on_answer(&mut self, _gen: u64) {
        if let Bully::Electing { .. } = self.bully {
            self.bully = Bully::Waiting {
                until: self.now + self.cfg.election_ms,
            };
        }
    }

    /// Obeyed a claim or an append from `from`: a higher node bullies a lower primary.
    pub(super) fn bully_after_obeying(&mut self, from: &NodeId) {
        if self.role == Role::Follower
            && self.bully == Bully::Idle
            && self.rank(from) < self.rank(&self.cfg.id)
        {
            self.start_election();
        }
    }

    /// Coordinator timers shared by bully and ring.
    pub(super) fn coordinator_tick(&mut self) {
        match self.role {
            Role::Primary => {
                // Keep announcing to nodes that have not obeyed this generation.
                if self.now >= self.last_renew + self.cfg.election_ms {
                    self.last_renew = self.now;
                    let obeyed = self
                        .claims
                        .back()
                        .map(|r| r.grants.clone())
                        .unwrap_or_default();
                    let msg = Message::Claim {
                        epoch: self.epoch,
                        seq: self.claim_seq,
                        commit: self.commit,
                        want_log: false,
                    };
                    for p in self.peers() {
                        if !obeyed.contains(&p) {
                            self.send(&p, msg.clone());
                        }
                    }
                }
            }
            Role::Candidate => {
                let seq = self.claim_seq;
                if !self.cfg.quorum_gate && self.now >= self.claim_started + self.cfg.answer_ms {
                    self.become_primary(seq);
                    self.last_renew = self.now;
                } else if self.now >= self.claim_started + self.cfg.election_ms {
                    self.role = Role::Follower;
                    self.claims.clear();
                    self.next_campaign = self.election_timeout();
                }
            }
            Role::Follower => {}
        }
    }

    pub(super) fn bully_tick(&mut self) {
        self.coordinator_tick();
        if self.role != Role::Follower {
            return;
        }
        match self.bully {
            Bully::Idle => {
                if self.now >= self.next_campaign {
                    self.start_election();
                }
            }
            Bully::Electing { until } => {
                if self.now >= until {
                    self.bully = Bully::Idle;
                    self.become_candidate();
                }
            }
            Bully::Waiting { until } => {
                if self.now >= until {
                    self.start_election();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn silence_sends_election_to_higher_nodes_and_no_answer_makes_a_coordinator() {
        let mut n2 = core("n2", Mode::Bully, Bugs::default());
        let out = tick(&mut n2, 700);
        assert_eq!(
            out,
            vec![Command::Send {
                to: "n3".into(),
                msg: Message::Election { epoch: 0 }
            }]
        );
        let out = tick(&mut n2, 800);
        let claim = Message::Claim {
            epoch: 1002,
            seq: 1,
            commit: 0,
            want_log: true,
        };
        assert_eq!(
            out,
            vec![
                Command::Persist(Record::Meta {
                    epoch: 1002,
                    voted: Some("n2".into())
                }),
                Command::Sync,
                Command::Send {
                    to: "n1".into(),
                    msg: claim.clone()
                },
                Command::Send {
                    to: "n3".into(),
                    msg: claim
                },
            ]
        );
        assert_eq!(n2.role(), Role::Candidate);
    }

    #[test]
    fn an_answer_defers_to_the_higher_node() {
        let mut n2 = core("n2", Mode::Bully, Bugs::default());
        tick(&mut n2, 700);
        recv(&mut n2, "n3", Message::Answer { epoch: 0 });
        assert_eq!(tick(&mut n2, 800), vec![]);
        assert_eq!(n2.role(), Role::Follower);
    }

    #[test]
    fn a_coordinator_of_an_older_generation_is_refused_unless_the_bug_is_on() {
        let stale = Message::Claim {
            epoch: 1001,
            seq: 4,
            commit: 0,
            want_log: true,
        };
        let mut n2 = core("n2", Mode::Bully, Bugs::default());
        recv(
            &mut n2,
            "n3",
            Message::Claim {
                epoch: 2003,
                seq: 1,
                commit: 0,
                want_log: false,
            },
        );
        let out = recv(&mut n2, "n1", stale.clone());
        assert_eq!(
            out,
            vec![Command::Send {
                to: "n1".into(),
                msg: Message::ClaimReply {
                    epoch: 1001,
                    seq: 4,
                    granted: false,
                    my_gen: 2003,
                    last_gen: 0,
                    last_index: 0,
                    entries: vec![]
                }
            }]
        );
        let mut buggy = core("n2", Mode::Bully, Bugs::one(Bug::StaleCoordinatorAccepted));
        recv(
            &mut buggy,
            "n3",
            Message::Claim {
                epoch: 2003,
                seq: 1,
                commit: 0,
                want_log: false,
            },
        );
        let out = recv(&mut buggy, "n1", stale);
        assert_eq!(
            out[0],
            Command::Persist(Record::Meta {
                epoch: 1001,
                voted: Some("n1".into())
            })
        );
        assert_eq!(buggy.generation(), 1001, "the generation went back");
    }

    #[test]
    fn fencing_rejects_an_older_generation_append_and_no_fencing_takes_it() {
        let old = Message::Append {
            epoch: 1001,
            seq: 3,
            prev_index: 0,
            prev_gen: 0,
            entries: vec![Entry {
                epoch: 1001,
                id: "w".into(),
                data: None,
            }],
            commit: 0,
        };
        let mut n2 = core("n2", Mode::Bully, Bugs::default());
        recv(
            &mut n2,
            "n3",
            Message::Claim {
                epoch: 2003,
                seq: 1,
                commit: 0,
                want_log: false,
            },
        );
        assert_eq!(
            recv(&mut n2, "n1", old.clone()),
            vec![Command::Send {
                to: "n1".into(),
                msg: Message::AppendReply {
                    epoch: 1001,
                    seq: 3,
                    ok: false,
                    my_gen: 2003,
                    match_index: 0
                }
            }]
        );
        let mut buggy = core("n2", Mode::Bully, Bugs::one(Bug::NoFencing));
        recv(
            &mut buggy,
            "n3",
            Message::Claim {
                epoch: 2003,
                seq: 1,
                commit: 0,
                want_log: false,
            },
        );
        let out = recv(&mut buggy, "n1", old);
        assert_eq!(
            out.last(),
            Some(&Command::Send {
                to: "n1".into(),
                msg: Message::AppendReply {
                    epoch: 1001,
                    seq: 3,
                    ok: true,
                    my_gen: 1001,
                    match_index: 1
                }
            })
        );
    }

    #[test]
    fn the_highest_node_ends_up_primary_and_a_minority_primary_appears_only_ungated() {
        let mut c = Cluster::new(5, Mode::Bully, false, Bugs::default());
        c.run_ms(3000);
        assert_eq!(c.serving(), vec!["n5".to_string()]);
        c.isolate(&["n4", "n5"], &["n1", "n2", "n3"]);
        c.run_ms(3000);
        assert_eq!(
            c.serving(),
            vec!["n3".to_string(), "n5".to_string()],
            "split brain"
        );
        let mut g = Cluster::new(5, Mode::Bully, true, Bugs::default());
        g.run_ms(3000);
        assert_eq!(g.serving(), vec!["n5".to_string()]);
        g.isolate(&["n4", "n5"], &["n1", "n2", "n3"]);
        g.run_ms(3000);
        // n5 still believes it leads (it cannot know), but it commits nothing and its reads
        // wait for a majority round; n3 leads the majority.
        assert!(g.propose(4, "w1"));
        g.run_ms(500);
        assert_eq!(g.cores[4].commit_index(), 1, "n5 committed nothing new");
        g.cut.clear();
        g.run_ms(3000);
        assert_eq!(g.serving(), vec!["n5".to_string()]);
    }
}
