//! Log replication: proposals, pipelined batched AppendEntries, fast backtracking by term,
//! snapshots to followers that are too far behind, the current-term commit rule, applying.

use super::*;

impl Raft {
    /// Appends and persists this term's no-op at `index`.
    pub(super) fn append_noop(&mut self, index: Index) {
        let entry = Entry::noop(index, self.hs.term);
        self.log.put(entry.clone());
        self.persist(Command::PersistEntries(vec![entry]));
    }

    /// Keeps one Progress per voter other than us, new ones starting at the end of our log.
    pub(super) fn sync_progress(&mut self) {
        let next = self.log.last_index() + 1;
        let id = self.cfg.id.clone();
        self.progress
            .retain(|p, _| self.membership.voters.contains_key(p));
        for v in self.membership.voters.keys() {
            if *v != id && !self.progress.contains_key(v) {
                self.progress.insert(
                    v.clone(),
                    Progress {
                        next,
                        probing: true,
                        active: true,
                        ..Progress::default()
                    },
                );
            }
        }
    }

    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) {
        // BUG accept-stale-term-append: entries from a deposed leader are taken as current.
        if term < self.hs.term && !self.cfg.bugs.accept_stale_term_append {
            let reply = Message::AppendResponse {
                term: self.hs.term,
                success: false,
                match_index: 0,
                reject_index: prev_index,
                conflict_index: 0,
                conflict_term: None,
            };
            self.send(&from, reply);
            return;
        }
        if term == self.hs.term {
            self.follow(&from);
        }
        let snap = self.log.snapshot().clone();
        let (mut prev_index, mut prev_term, mut entries) = (prev_index, prev_term, entries);
        if prev_index < snap.index {
            // Everything up to the snapshot is committed and so already matches.
            entries.retain(|e| e.index > snap.index);
            prev_index = snap.index;
            prev_term = snap.term;
        }
        if self.log.term(prev_index) != Some(prev_term) {
            let (conflict_index, conflict_term) = if prev_index > self.log.last_index() {
                (self.log.last_index() + 1, None)
            } else {
                let t = self.log.term(prev_index).unwrap_or(0);
                (self.log.first_index_of_term(prev_index, t), Some(t))
            };
            let reply = Message::AppendResponse {
                term: self.hs.term,
                success: false,
                match_index: 0,
                reject_index: prev_index,
                conflict_index,
                conflict_term,
            };
            self.send(&from, reply);
            return;
        }
        let match_index = prev_index + entries.len() as Index;
        let first_new = entries
            .iter()
            .position(|e| self.log.term(e.index) != Some(e.term))
            .unwrap_or(entries.len());
        if first_new < entries.len() {
            let new: Vec<Entry> = entries.split_off(first_new);
            for e in &new {
                self.log.put(e.clone());
            }
            self.persist(Command::PersistEntries(new));
            self.refresh_membership();
        }
        let commit = commit.min(match_index);
        if commit > self.commit {
            self.commit = commit;
            self.apply();
        }
        let reply = Message::AppendResponse {
            term: self.hs.term,
            success: true,
            match_index,
            reject_index: 0,
            conflict_index: 0,
            conflict_term: None,
        };
        self.send(&from, reply);
    }

    pub(super) fn handle_append_success(&mut self, from: &str, match_index: Index) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.active = true;
        pr.inflight = pr.inflight.saturating_sub(1);
        if match_index > pr.matched {
            pr.matched = match_index;
        }
        pr.next = pr.next.max(pr.matched + 1);
        if pr.probing || pr.snapshot_pending {
            pr.probing = false;
            pr.snapshot_pending = false;
            pr.inflight = 0;
        }
        let caught_up = pr.matched == last;
        self.advance_commit();
        if self.role != Role::Leader {
            return;
        }
        if caught_up
            && let Some((to, _)) = &self.transfer
            && to == from
        {
            let msg = Message::TimeoutNow { term: self.hs.term };
            self.send(from, msg);
        }
        self.send_append(from, false);
    }

    pub(super) fn handle_append_reject(
        &mut self,
        from: &str,
        reject_index: Index,
        conflict_index: Index,
        conflict_term: Option<Term>,
    ) {
        let hint = conflict_term.and_then(|t| self.log.last_index_of_term(t).map(|i| i + 1));
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.active = true;
        if reject_index < pr.matched || pr.snapshot_pending {
            return; // stale: answered before the follower's position was known
        }
        let next = hint.unwrap_or(conflict_index).min(reject_index).max(1);
        pr.next = next.max(pr.matched + 1);
        pr.probing = true;
        pr.inflight = 0;
        self.send_append(from, true);
    }

    pub(super) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        data: Value,
    ) {
        if term < self.hs.term {
            let reply = Message::AppendResponse {
                term: self.hs.term,
                success: false,
                match_index: 0,
                reject_index: meta.index,
                conflict_index: 0,
                conflict_term: None,
            };
            self.send(&from, reply);
            return;
        }
        self.follow(&from);
        let index = meta.index;
        if index > self.commit {
            self.log.install(meta.clone());
            self.commit = index;
            self.applied = index;
            self.refresh_membership();
            self.persist(Command::InstallSnapshot { meta, data });
        }
        let reply = Message::AppendResponse {
            term: self.hs.term,
            success: true,
            match_index: index,
            reject_index: 0,
            conflict_index: 0,
            conflict_term: None,
        };
        self.send(&from, reply);
    }

    pub(super) fn flush(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        for p in self.peers() {
            self.send_append(&p, false);
        }
        self.advance_commit();
    }

    /// Sends what `to` is missing: pipelined batches, one probe, or the snapshot.
    pub(super) fn send_append(&mut self, to: &str, allow_empty: bool) {
        let last = self.log.last_index();
        let snap_index = self.log.snapshot().index;
        let (term, commit, now) = (self.hs.term, self.commit, self.now);
        let (max_batch, max_inflight) = (self.cfg.max_batch, self.cfg.max_inflight);
        let mut msgs = Vec::new();
        let mut snapshot = false;
        {
            let Some(pr) = self.progress.get_mut(to) else {
                return;
            };
            if pr.snapshot_pending {
                return;
            }
            if pr.next <= snap_index {
                pr.snapshot_pending = true;
                pr.inflight = 1;
                pr.last_sent = now;
                snapshot = true;
            } else {
                loop {
                    let limit = if pr.probing { 1 } else { max_inflight };
                    // An idle probe goes out even when empty: it is how a follower's position
                    // (e.g. a new voter's) is learnt.
                    let empty_ok = (allow_empty || pr.probing) && msgs.is_empty();
                    if pr.inflight >= limit || (pr.next > last && !empty_ok) {
                        break;
                    }
                    let prev_index = pr.next - 1;
                    let entries = self.log.slice(pr.next, last, max_batch);
                    let n = entries.len() as Index;
                    msgs.push(Message::AppendEntries {
                        term,
                        prev_index,
                        prev_term: self.log.term(prev_index).unwrap_or(0),
                        entries,
                        commit,
                    });
                    pr.inflight += 1;
                    pr.last_sent = now;
                    if !pr.probing {
                        pr.next += n;
                    }
                    if n == 0 || pr.probing {
                        break;
                    }
                }
            }
        }
        if snapshot {
            self.output(Command::SendSnapshot {
                to: to.to_string(),
                term,
            });
        }
        for m in msgs {
            self.send(to, m);
        }
    }

    pub(super) fn advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let mut matched: Vec<Index> = self
            .membership
            .voters
            .keys()
            .map(|v| {
                if *v == self.cfg.id {
                    last
                } else {
                    self.progress.get(v).map_or(0, |p| p.matched)
                }
            })
            .collect();
        if matched.is_empty() {
            return;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[self.membership.quorum() - 1];
        // BUG commit-prior-term: count replicas for entries of earlier terms too (figure 8).
        let countable = self.cfg.bugs.commit_prior_term || self.log.term(n) == Some(self.hs.term);
        if n > self.commit && countable {
            self.commit = n;
            self.apply();
            if self.commit >= self.term_start {
                let waiting = std::mem::take(&mut self.reads_waiting_for_term);
                for id in waiting {
                    self.read(id);
                }
            }
            if self.membership_index <= self.commit && !self.membership.contains(&self.cfg.id) {
                let term = self.hs.term;
                self.become_follower(term, None);
            }
        }
    }

    pub(super) fn apply(&mut self) {
        if self.commit <= self.applied {
            return;
        }
        let entries = self.log.slice(self.applied + 1, self.commit, usize::MAX);
        self.applied = self.commit;
        if !entries.is_empty() {
            self.output(Command::Apply { entries });
        }
    }

    pub(super) fn propose(&mut self, id: String, payload: Payload) {
        let payload = match payload {
            Payload::Data { data, .. } => Payload::Data {
                id: id.clone(),
                data,
            },
            other => other,
        };
        if self.role != Role::Leader {
            let reason = Reject::NotLeader {
                leader: self.leader.clone(),
            };
            self.out.push(Command::Rejected { id, reason });
            return;
        }
        if self.transfer.is_some() {
            self.out.push(Command::Rejected {
                id,
                reason: Reject::Transferring,
            });
            return;
        }
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.hs.term,
            payload,
        };
        let index = entry.index;
        self.log.put(entry.clone());
        self.persist(Command::PersistEntries(vec![entry]));
        self.out.push(Command::Proposed { id, index });
        if matches!(
            self.log.get(index).map(|e| &e.payload),
            Some(Payload::Config { .. })
        ) {
            self.refresh_membership();
        }
    }
}
