//! Lease mode: a candidate asks every node for a lease on a new epoch (`Claim`); a node
//! grants at most one node per epoch, never an epoch older than its own, and never while a
//! lease it granted to another node is live on its timer clock. A majority of grants makes the
//! candidate primary; its lease starts when it sent the round a majority granted (so it ends
//! before any granter's promise does) and it renews every quarter lease. Reads need the lease
//! minus the drift margin; writes need it too, and are fenced by generation at the backups
//! whatever the holder believes (a paused holder cannot know its lease ran out).

use super::store::Core;
use super::{NodeId, Role};

impl Core {
    /// Whether this node grants `from` a lease on epoch `epoch`.
    pub(super) fn lease_grantable(&self, from: &NodeId, epoch: u64) -> bool {
        let epoch_ok =
            epoch > self.epoch || (epoch == self.epoch && self.voted.as_ref() == Some(from));
        let leased_to_other = self.now < self.quiet_until
            || self
                .granted
                .as_ref()
                .is_some_and(|(to, until)| to != from && self.now < *until);
        // BUG grant-while-leased: `|| grant_while_leased` ignores the live lease.
        epoch_ok && (!leased_to_other || self.cfg.bugs.grant_while_leased)
    }

    /// Gives up a candidacy: it will never serve in this epoch, so the leases granted to it
    /// (its own included) can go.
    pub(super) fn release_candidacy(&mut self) {
        if self
            .granted
            .as_ref()
            .is_some_and(|(to, _)| *to == self.cfg.id)
        {
            self.granted = None;
        }
        let msg = super::Message::Release { epoch: self.epoch };
        for p in self.peers() {
            self.send(&p, msg.clone());
        }
        self.next_campaign = self.now + self.backoff();
    }

    pub(super) fn on_release(&mut self, from: NodeId, epoch: u64) {
        if self.epoch == epoch
            && self.voted.as_ref() == Some(&from)
            && self.granted.as_ref().is_some_and(|(to, _)| *to == from)
        {
            self.granted = None;
            self.next_campaign = self.now + self.backoff();
        }
    }

    pub(super) fn lease_tick(&mut self) {
        match self.role {
            Role::Primary => {
                if self.now >= self.last_renew + self.cfg.lease_ms / 4 {
                    self.last_renew = self.now;
                    self.start_claim(false);
                    if self.cfg.bugs.renew_without_quorum {
                        // BUG renew-without-quorum: the lease is extended when the renewal is
                        // sent; correct code extends it only once a majority granted the round.
                        self.lease_start = Some((self.now, self.wall));
                    }
                }
            }
            Role::Candidate => {
                if self.now >= self.claim_started + self.cfg.lease_ms / 2 {
                    self.step_down();
                }
            }
            Role::Follower => {
                let lease_live = self.granted.as_ref().is_some_and(|(_, u)| self.now < *u);
                if self.now >= self.next_campaign && self.now >= self.quiet_until && !lease_live {
                    self.become_candidate();
                    self.last_renew = self.now;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    fn claim(epoch: u64, seq: u64, want_log: bool) -> Message {
        Message::Claim {
            epoch,
            seq,
            commit: 0,
            want_log,
        }
    }

    fn reply(epoch: u64, seq: u64, granted: bool, my_gen: u64) -> Message {
        Message::ClaimReply {
            epoch,
            seq,
            granted,
            my_gen,
            last_gen: 0,
            last_index: 0,
            entries: vec![],
        }
    }

    #[test]
    fn a_node_grants_once_and_refuses_another_while_the_lease_is_live() {
        let mut n3 = core("n3", Mode::Lease, Bugs::default());
        tick(&mut n3, 900); // past the restart quiet period
        let out = recv(&mut n3, "n1", claim(1001, 1, true));
        assert_eq!(
            out,
            vec![
                Command::Persist(Record::Meta {
                    epoch: 1001,
                    voted: Some("n1".into())
                }),
                Command::Sync,
                Command::Send {
                    to: "n1".into(),
                    msg: reply(1001, 1, true, 1001)
                },
            ]
        );
        // n2 asks for a newer epoch 400 ms later: n1's lease (800 ms) is still live.
        tick(&mut n3, 1300);
        let out = recv(&mut n3, "n2", claim(2002, 1, true));
        assert_eq!(
            out,
            vec![Command::Send {
                to: "n2".into(),
                msg: reply(2002, 1, false, 1001)
            }]
        );
        // Once the lease lapsed, it grants.
        tick(&mut n3, 1701);
        let out = recv(&mut n3, "n2", claim(2002, 2, true));
        assert_eq!(
            out[2],
            Command::Send {
                to: "n2".into(),
                msg: reply(2002, 2, true, 2002)
            }
        );
    }

    #[test]
    fn grant_while_leased_grants_over_a_live_lease() {
        let mut n3 = core("n3", Mode::Lease, Bugs::one(Bug::GrantWhileLeased));
        tick(&mut n3, 900);
        recv(&mut n3, "n1", claim(1001, 1, true));
        tick(&mut n3, 1300);
        let out = recv(&mut n3, "n2", claim(2002, 1, true));
        assert_eq!(
            out[2],
            Command::Send {
                to: "n2".into(),
                msg: reply(2002, 1, true, 2002)
            }
        );
    }

    #[test]
    fn a_majority_makes_a_primary_that_reads_only_within_its_lease_minus_the_margin() {
        let mut n1 = core("n1", Mode::Lease, Bugs::default());
        let out = tick(&mut n1, 2000); // past quiet period and backoff
        assert_eq!(
            out,
            vec![
                Command::Persist(Record::Meta {
                    epoch: 1001,
                    voted: Some("n1".into())
                }),
                Command::Sync,
                Command::Send {
                    to: "n2".into(),
                    msg: claim(1001, 1, true)
                },
                Command::Send {
                    to: "n3".into(),
                    msg: claim(1001, 1, true)
                },
            ]
        );
        let out = recv(&mut n1, "n2", reply(1001, 1, true, 1001));
        let noop = Entry {
            epoch: 1001,
            id: "noop-1001".into(),
            data: None,
        };
        let append = |prev| Message::Append {
            epoch: 1001,
            seq: 1,
            prev_index: prev,
            prev_gen: 0,
            entries: vec![noop.clone()],
            commit: 0,
        };
        assert_eq!(
            out,
            vec![
                Command::Persist(Record::Entry {
                    index: 1,
                    entry: noop.clone()
                }),
                Command::Sync,
                Command::Send {
                    to: "n2".into(),
                    msg: append(0)
                },
                Command::Send {
                    to: "n3".into(),
                    msg: append(0)
                },
            ]
        );
        let ack = Message::AppendReply {
            epoch: 1001,
            seq: 1,
            ok: true,
            my_gen: 1001,
            match_index: 1,
        };
        let out = recv(&mut n1, "n2", ack);
        assert_eq!(out, vec![Command::Apply(vec![(1, noop)])]);
        // Lease from 2000 for 800 ms, 200 ms kept back: reads until 2600.
        tick(&mut n1, 2599);
        assert_eq!(
            n1.step(Input::Read { id: 7 }),
            vec![Command::ReadReady { id: 7, index: 1 }]
        );
        // (No renewal got through.) At 2600 the read lease is gone, though the lease is not.
        let mut n1b = n1;
        n1b.lease_start = Some((2000, 0));
        tick(&mut n1b, 2600);
        n1b.lease_start = Some((2000, 0));
        assert_eq!(
            n1b.step(Input::Read { id: 8 }),
            vec![Command::ReadRejected {
                id: 8,
                leader: None
            }]
        );
        assert!(!n1b.serving());
    }

    #[test]
    fn renew_without_quorum_extends_the_lease_on_sending() {
        let mut n1 = primary("n1", Mode::Lease, Bugs::one(Bug::RenewWithoutQuorum), 2000);
        // Nobody answers renewals; the buggy holder still reads at 2000 + 10 s.
        for t in (2200..12_000).step_by(200) {
            tick(&mut n1, t);
        }
        assert_eq!(
            n1.step(Input::Read { id: 1 }),
            vec![Command::ReadReady { id: 1, index: 1 }]
        );
        let mut ok = primary("n1", Mode::Lease, Bugs::default(), 2000);
        for t in (2200..12_000).step_by(200) {
            tick(&mut ok, t);
        }
        assert_eq!(
            ok.step(Input::Read { id: 1 }),
            vec![Command::ReadRejected {
                id: 1,
                leader: None
            }]
        );
    }

    #[test]
    fn read_without_lease_check_reads_past_the_lease() {
        let mut n1 = primary(
            "n1",
            Mode::Lease,
            Bugs::one(Bug::ReadWithoutLeaseCheck),
            2000,
        );
        n1.lease_start = Some((2000, 0));
        tick(&mut n1, 5000);
        assert_eq!(
            n1.step(Input::Read { id: 1 }),
            vec![Command::ReadReady { id: 1, index: 1 }]
        );
    }

    #[test]
    fn lease_no_drift_margin_times_the_lease_on_the_wall_clock() {
        let mut n1 = primary("n1", Mode::Lease, Bugs::one(Bug::LeaseNoDriftMargin), 2000);
        n1.lease_start = Some((2000, 50_000));
        // The wall clock crawls (a fifth of real speed): 3 s later it says 600 ms passed.
        n1.now = 5000;
        n1.wall = 50_600;
        assert_eq!(
            n1.step(Input::Read { id: 1 }),
            vec![Command::ReadReady { id: 1, index: 1 }]
        );
        let mut ok = primary("n1", Mode::Lease, Bugs::default(), 2000);
        ok.lease_start = Some((2000, 50_000));
        ok.now = 5000;
        ok.wall = 50_600;
        assert_eq!(
            ok.step(Input::Read { id: 1 }),
            vec![Command::ReadRejected {
                id: 1,
                leader: None
            }]
        );
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn a_cut_off_primary_is_replaced_and_one_serves_at_a_time() {
        let mut c = Cluster::new(5, Mode::Lease, false, Bugs::default());
        c.run_ms(3000);
        let first = c.serving();
        assert_eq!(first.len(), 1, "{first:?}");
        for round in 0..6 {
            let p = c.serving();
            assert_eq!(p.len(), 1, "round {round}: {p:?}");
            let leader = p[0].clone();
            let others: Vec<String> = c
                .cores
                .iter()
                .map(|x| x.id().clone())
                .filter(|x| *x != leader)
                .collect();
            let o: Vec<&str> = others.iter().map(String::as_str).collect();
            c.isolate(&[leader.as_str()], &o);
            for _ in 0..300 {
                c.step();
                assert!(c.serving().len() <= 1, "two serving: {:?}", c.serving());
            }
            c.cut.clear();
            for _ in 0..300 {
                c.step();
                assert!(c.serving().len() <= 1, "two serving: {:?}", c.serving());
            }
        }
        assert_eq!(c.serving().len(), 1);
    }
}
