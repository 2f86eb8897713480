//! Membership: single-server changes (effective when appended) and leadership transfer
//! (TimeoutNow).

use super::*;

impl Raft {
    pub(super) fn refresh_membership(&mut self) {
        let (index, membership) = self.log.membership_at(self.log.last_index());
        self.membership_index = index;
        self.membership = membership;
        if self.role == Role::Leader {
            self.sync_progress();
        }
    }

    pub(super) fn change_membership(&mut self, id: String, membership: Membership) {
        if self.role == Role::Leader {
            if self.membership_index > self.commit || self.commit < self.term_start {
                self.out.push(Command::Rejected {
                    id,
                    reason: Reject::ConfigChangeInProgress,
                });
                return;
            }
            let old = &self.membership.voters;
            let new = &membership.voters;
            let changed = old.keys().filter(|k| !new.contains_key(*k)).count()
                + new.keys().filter(|k| !old.contains_key(*k)).count();
            let same_addrs = old.iter().all(|(k, a)| new.get(k).is_none_or(|b| a == b));
            if changed != 1 || !same_addrs || new.is_empty() {
                self.out.push(Command::Rejected {
                    id,
                    reason: Reject::InvalidConfigChange,
                });
                return;
            }
        }
        let payload = Payload::Config {
            id: id.clone(),
            membership,
        };
        self.propose(id, payload);
    }

    pub(super) fn transfer_leader(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.cfg.id || !self.progress.contains_key(&to) {
            return;
        }
        self.transfer = Some((to.clone(), self.now + self.cfg.election_max_ms));
        self.lease_until_mono = 0;
        self.lease_until_wall = 0;
        let caught_up = self.progress[&to].matched == self.log.last_index();
        if caught_up {
            let msg = Message::TimeoutNow { term: self.hs.term };
            self.send(&to, msg);
        } else {
            self.send_append(&to, true);
        }
    }
}
