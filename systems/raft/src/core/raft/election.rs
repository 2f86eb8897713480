//! Leader election: pre-vote, votes (one per term, log up-to-date check), check-quorum and
//! leader stickiness, stepping down.

use super::*;

impl Raft {
    pub(super) fn check_quorum(&mut self) {
        self.check_quorum_due = self.now + self.cfg.election_max_ms;
        let id = self.cfg.id.clone();
        let active = self
            .membership
            .voters
            .keys()
            .filter(|v| **v == id || self.progress.get(*v).is_some_and(|p| p.active))
            .count();
        for p in self.progress.values_mut() {
            p.active = false;
        }
        if active < self.membership.quorum() {
            let term = self.hs.term;
            self.become_follower(term, None);
        }
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.hs.term {
            self.hs.term = term;
            self.hs.vote = None;
            self.persist_hard_state();
        }
        if self.role == Role::Leader {
            self.abandon_reads(leader.clone());
            self.progress.clear();
            self.transfer = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election_timer();
    }

    pub(super) fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.cfg.id.clone()]);
        self.reset_election_timer();
        if self.votes.len() >= self.membership.quorum() {
            self.start_election(false);
            return;
        }
        let msg = Message::RequestVote {
            term: self.hs.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: true,
            transfer: false,
        };
        self.broadcast(msg);
    }

    pub(super) fn start_election(&mut self, transfer: bool) {
        self.role = Role::Candidate;
        self.leader = None;
        self.hs.term += 1;
        self.hs.vote = Some(self.cfg.id.clone());
        self.persist_hard_state();
        self.votes = BTreeSet::from([self.cfg.id.clone()]);
        self.reset_election_timer();
        if self.votes.len() >= self.membership.quorum() {
            self.become_leader();
            return;
        }
        let msg = Message::RequestVote {
            term: self.hs.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: false,
            transfer,
        };
        self.broadcast(msg);
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.votes.clear();
        self.progress.clear();
        self.sync_progress();
        self.reads.restart();
        self.check_quorum_due = self.now + self.cfg.election_max_ms;
        let index = self.log.last_index() + 1;
        self.term_start = index;
        // BUG commit-prior-term (second half): as in Raft's figure 8, no no-op is appended, so
        // entries of earlier terms get committed by counting alone.
        if !self.cfg.bugs.commit_prior_term {
            self.append_noop(index);
        }
        self.flush();
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
    }

    /// True while a leader we know of has been heard from within the minimum election timeout.
    pub(super) fn in_lease(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some()
                && self.now < self.last_leader_contact + self.cfg.election_min_ms)
    }

    /// Accepts `from` as the leader of the current term.
    pub(super) fn follow(&mut self, from: &str) {
        if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
            let term = self.hs.term;
            self.become_follower(term, Some(from.to_string()));
        }
        self.last_leader_contact = self.now;
        self.reset_election_timer();
    }

    pub(super) fn log_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let ours = (self.log.last_term(), self.log.last_index());
        // BUG vote-without-log-check: grant whatever the candidate's log looks like.
        self.cfg.bugs.vote_without_log_check || (last_term, last_index) >= ours
    }

    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
        pre_vote: bool,
    ) {
        let granted = if pre_vote {
            term > self.hs.term && self.log_up_to_date(last_index, last_term)
        } else {
            // BUG vote-twice-per-term: a second candidate in the same term gets our vote too.
            let can_vote = self.cfg.bugs.vote_twice_per_term
                || self.hs.vote.is_none()
                || self.hs.vote.as_deref() == Some(from.as_str());
            term == self.hs.term && can_vote && self.log_up_to_date(last_index, last_term)
        };
        if granted && !pre_vote {
            self.hs.vote = Some(from.clone());
            self.persist_hard_state();
            self.reset_election_timer();
        }
        let reply = Message::VoteResponse {
            term: if granted && pre_vote {
                term
            } else {
                self.hs.term
            },
            granted,
            pre_vote,
        };
        self.send(&from, reply);
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
    ) {
        if !granted || !self.membership.contains(&from) {
            return;
        }
        if pre_vote && self.role == Role::PreCandidate && term == self.hs.term + 1 {
            self.votes.insert(from);
            if self.votes.len() >= self.membership.quorum() {
                self.start_election(false);
            }
        } else if !pre_vote && self.role == Role::Candidate && term == self.hs.term {
            self.votes.insert(from);
            if self.votes.len() >= self.membership.quorum() {
                self.become_leader();
            }
        }
    }
}
