//! The pure Raft state machine: `step(input) -> commands`. No IO, no clock reads, no threads:
//! time arrives in `Input::Tick`, randomness from a seeded generator, and everything the node
//! must do (persist, sync, send, apply, answer) leaves as an ordered list of `Command`s that the
//! shell executes in order.

use super::bugs::Bugs;
use super::log::RaftLog;
use super::message::Message;
use super::types::{
    Entry, HardState, Index, Membership, NodeId, Payload, Role, SnapshotMeta, Term,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Entries per AppendEntries message.
    pub max_batch: usize,
    /// Unacknowledged AppendEntries per follower while pipelining.
    pub max_inflight: usize,
    /// Serve reads from a leader lease (monotonic clock, drift margin) instead of ReadIndex.
    pub lease_reads: bool,
    pub bugs: Bugs,
    pub seed: u64,
}

impl Config {
    pub fn new(id: &str) -> Config {
        Config {
            id: id.to_string(),
            election_min_ms: 150,
            election_max_ms: 300,
            heartbeat_ms: 50,
            max_batch: 512,
            max_inflight: 16,
            lease_reads: false,
            bugs: Bugs::default(),
            seed: 1,
        }
    }

    /// The correct lease: a fifth of the minimum election timeout is kept back for clock-rate
    /// drift between leader and followers.
    fn lease_ms(&self) -> u64 {
        self.election_min_ms - self.election_min_ms / 5
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// `now_ms`: monotonic milliseconds (timers); `wall_ms`: the wall clock (only the buggy lease).
    Tick {
        now_ms: u64,
        wall_ms: u64,
    },
    Receive {
        from: NodeId,
        msg: Message,
    },
    Propose {
        id: String,
        data: Value,
    },
    ChangeMembership {
        id: String,
        membership: Membership,
    },
    Read {
        id: u64,
    },
    TransferLeader {
        to: NodeId,
    },
    /// The shell wrote a durable snapshot covering everything up to `meta.index`.
    SnapshotTaken {
        meta: SnapshotMeta,
    },
    /// End of a batch of inputs: send what was proposed (batching).
    Flush,
}

/// Why a request was refused. Every refusal is definite: the request had no effect.
#[derive(Clone, Debug, PartialEq)]
pub enum Reject {
    NotLeader { leader: Option<NodeId> },
    Transferring,
    ConfigChangeInProgress,
    InvalidConfigChange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    PersistHardState(HardState),
    /// Write these entries at their indexes, dropping anything the log held from the first one on.
    PersistEntries(Vec<Entry>),
    /// Make every Persist* so far durable before executing any later command.
    Sync,
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Send our latest snapshot to `to` as an InstallSnapshot at `term`.
    SendSnapshot {
        to: NodeId,
        term: Term,
    },
    /// Replace the state machine with this snapshot and persist it (log already adjusted).
    InstallSnapshot {
        meta: SnapshotMeta,
        data: Value,
    },
    /// The log dropped entries up to `meta.index`: the WAL may drop them too.
    CompactLog {
        meta: SnapshotMeta,
    },
    /// Committed entries, in order, to apply to the state machine.
    Apply {
        entries: Vec<Entry>,
    },
    Proposed {
        id: String,
        index: Index,
    },
    Rejected {
        id: String,
        reason: Reject,
    },
    /// The read may be served once the state machine has applied `index`.
    ReadReady {
        id: u64,
        index: Index,
    },
    ReadRejected {
        id: u64,
        reason: Reject,
    },
}

#[derive(Clone, Debug, Default)]
struct Progress {
    next: Index,
    matched: Index,
    inflight: usize,
    /// One message at a time until the follower's position is known.
    probing: bool,
    snapshot_pending: bool,
    last_sent: u64,
    acked_seq: u64,
    active: bool,
}

#[derive(Clone, Debug)]
struct PendingRead {
    id: u64,
    seq: u64,
    index: Index,
}

pub struct Raft {
    cfg: Config,
    hs: HardState,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    commit: Index,
    applied: Index,
    membership: Membership,
    membership_index: Index,
    now: u64,
    wall: u64,
    election_deadline: u64,
    heartbeat_due: u64,
    check_quorum_due: u64,
    last_leader_contact: u64,
    votes: BTreeSet<NodeId>,
    progress: BTreeMap<NodeId, Progress>,
    term_start: Index,
    read_seq_sent: u64,
    read_seq_acked: u64,
    rounds: VecDeque<(u64, u64, u64)>,
    reads: VecDeque<PendingRead>,
    reads_waiting_for_term: Vec<u64>,
    lease_until_mono: u64,
    lease_until_wall: u64,
    transfer: Option<(NodeId, u64)>,
    rng: u64,
    unsynced: bool,
    out: Vec<Command>,
}

impl Raft {
    /// A node restored from its persisted state (all empty for a fresh node). `initial` is the
    /// membership used when neither the snapshot nor the log holds one.
    pub fn new(
        cfg: Config,
        hs: HardState,
        snapshot: SnapshotMeta,
        entries: Vec<Entry>,
        initial: Membership,
    ) -> Raft {
        let mut snapshot = snapshot;
        if snapshot.index == 0 && snapshot.membership.voters.is_empty() {
            snapshot.membership = initial;
        }
        let applied = snapshot.index;
        let log = RaftLog::new(snapshot, entries);
        let (membership_index, membership) = log.membership_at(log.last_index());
        let rng = cfg.seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut raft = Raft {
            cfg,
            hs,
            role: Role::Follower,
            leader: None,
            log,
            commit: applied,
            applied,
            membership,
            membership_index,
            now: 0,
            wall: 0,
            election_deadline: 0,
            heartbeat_due: 0,
            check_quorum_due: 0,
            last_leader_contact: 0,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            term_start: 0,
            read_seq_sent: 0,
            read_seq_acked: 0,
            rounds: VecDeque::new(),
            reads: VecDeque::new(),
            reads_waiting_for_term: Vec::new(),
            lease_until_mono: 0,
            lease_until_wall: 0,
            transfer: None,
            rng,
            unsynced: false,
            out: Vec::new(),
        };
        raft.reset_election_timer();
        raft
    }

    // ----- accessors (read-only views for the shell and tests) -----

    pub fn id(&self) -> &str {
        &self.cfg.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.hs.term
    }
    pub fn hard_state(&self) -> &HardState {
        &self.hs
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The snapshot metadata describing the state after applying `index` (for the shell).
    pub fn snapshot_meta_at(&self, index: Index) -> Option<SnapshotMeta> {
        let term = self.log.term(index)?;
        Some(SnapshotMeta {
            index,
            term,
            membership: self.log.membership_at(index).1,
        })
    }

    pub fn step(&mut self, input: Input) -> Vec<Command> {
        match input {
            Input::Tick { now_ms, wall_ms } => self.tick(now_ms, wall_ms),
            Input::Receive { from, msg } => self.receive(from, msg),
            Input::Propose { id, data } => self.propose(
                id,
                Payload::Data {
                    id: String::new(),
                    data,
                },
            ),
            Input::ChangeMembership { id, membership } => self.change_membership(id, membership),
            Input::Read { id } => self.read(id),
            Input::TransferLeader { to } => self.transfer_leader(to),
            Input::SnapshotTaken { meta } => {
                if meta.index > self.log.snapshot().index && meta.index <= self.applied {
                    self.log.compact(meta.clone());
                    self.out.push(Command::CompactLog { meta });
                }
            }
            Input::Flush => self.flush(),
        }
        std::mem::take(&mut self.out)
    }

    // ----- output helpers: persistence first, then a Sync before anything that depends on it -----

    fn persist(&mut self, cmd: Command) {
        self.out.push(cmd);
        self.unsynced = true;
    }

    fn output(&mut self, cmd: Command) {
        // BUG ack-before-fsync: messages and acknowledgements leave before the WAL is synced.
        if self.unsynced && !self.cfg.bugs.ack_before_fsync {
            self.out.push(Command::Sync);
            self.unsynced = false;
        }
        self.out.push(cmd);
    }

    fn send(&mut self, to: &str, msg: Message) {
        self.output(Command::Send {
            to: to.to_string(),
            msg,
        });
    }

    fn persist_hard_state(&mut self) {
        let hs = self.hs.clone();
        self.persist(Command::PersistHardState(hs));
    }

    // ----- time -----

    fn random(&mut self) -> u64 {
        // splitmix64: deterministic from the seed, good enough to spread election timeouts.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn reset_election_timer(&mut self) {
        let span = self
            .cfg
            .election_max_ms
            .saturating_sub(self.cfg.election_min_ms)
            .max(1);
        self.election_deadline = self.now + self.cfg.election_min_ms + self.random() % span;
    }

    fn tick(&mut self, now: u64, wall: u64) {
        self.now = self.now.max(now);
        self.wall = wall;
        if self.role == Role::Leader {
            if let Some((_, deadline)) = &self.transfer
                && self.now >= *deadline
            {
                self.transfer = None;
            }
            if self.now >= self.check_quorum_due {
                self.check_quorum();
                if self.role != Role::Leader {
                    return;
                }
            }
            if self.now >= self.heartbeat_due {
                self.broadcast_heartbeat();
            }
        } else if self.now >= self.election_deadline {
            if self.membership.contains(&self.cfg.id) {
                self.start_pre_vote();
            } else {
                self.reset_election_timer();
            }
        }
    }

    fn check_quorum(&mut self) {
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

    // ----- roles -----

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
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

    fn abandon_reads(&mut self, leader: Option<NodeId>) {
        let ids: Vec<u64> = self
            .reads
            .drain(..)
            .map(|r| r.id)
            .chain(self.reads_waiting_for_term.drain(..))
            .collect();
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

    fn start_pre_vote(&mut self) {
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

    fn start_election(&mut self, transfer: bool) {
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

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.votes.clear();
        self.progress.clear();
        self.sync_progress();
        self.read_seq_sent = 0;
        self.read_seq_acked = 0;
        self.rounds.clear();
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

    /// Appends and persists this term's no-op at `index`.
    fn append_noop(&mut self, index: Index) {
        let entry = Entry::noop(index, self.hs.term);
        self.log.put(entry.clone());
        self.persist(Command::PersistEntries(vec![entry]));
    }

    /// Keeps one Progress per voter other than us, new ones starting at the end of our log.
    fn sync_progress(&mut self) {
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

    fn peers(&self) -> Vec<NodeId> {
        self.membership
            .voters
            .keys()
            .filter(|v| **v != self.cfg.id)
            .cloned()
            .collect()
    }

    fn broadcast(&mut self, msg: Message) {
        for p in self.peers() {
            self.send(&p, msg.clone());
        }
    }

    // ----- messages -----

    fn receive(&mut self, from: NodeId, msg: Message) {
        let term = msg.term();
        if term > self.hs.term {
            match &msg {
                Message::RequestVote { transfer, .. } if !transfer && self.in_lease() => {
                    // A leader we heard from recently is alive: ignore disruptive campaigns.
                    let pre_vote = matches!(msg, Message::RequestVote { pre_vote: true, .. });
                    let reply = Message::VoteResponse {
                        term: self.hs.term,
                        granted: false,
                        pre_vote,
                    };
                    self.send(&from, reply);
                    return;
                }
                Message::RequestVote { pre_vote: true, .. } => {}
                Message::VoteResponse {
                    pre_vote: true,
                    granted: true,
                    ..
                } => {}
                Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. } => self.become_follower(term, Some(from.clone())),
                _ => self.become_follower(term, None),
            }
        }
        let from_leader = matches!(
            msg,
            Message::AppendEntries { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshot { .. }
        );
        if from_leader && self.role == Role::Leader && term == self.hs.term {
            // A second leader in our term: impossible in correct Raft (only vote-twice-per-term
            // gets here). Like etcd, the leader ignores it, so the split brain is observable.
            return;
        }
        match msg {
            Message::RequestVote {
                term,
                last_index,
                last_term,
                pre_vote,
                ..
            } => self.handle_vote_request(from, term, last_index, last_term, pre_vote),
            Message::VoteResponse {
                term,
                granted,
                pre_vote,
            } => self.handle_vote_response(from, term, granted, pre_vote),
            Message::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(from, term, prev_index, prev_term, entries, commit),
            Message::AppendResponse {
                term,
                success,
                match_index,
                reject_index,
                conflict_index,
                conflict_term,
            } => {
                if term == self.hs.term && self.role == Role::Leader {
                    if success {
                        self.handle_append_success(&from, match_index);
                    } else {
                        self.handle_append_reject(
                            &from,
                            reject_index,
                            conflict_index,
                            conflict_term,
                        );
                    }
                }
            }
            Message::Heartbeat { term, commit, seq } => {
                if term < self.hs.term {
                    let reply = Message::HeartbeatResponse {
                        term: self.hs.term,
                        seq: 0,
                    };
                    self.send(&from, reply);
                    return;
                }
                self.follow(&from);
                let commit = commit.min(self.log.last_index());
                if commit > self.commit {
                    self.commit = commit;
                    self.apply();
                }
                let reply = Message::HeartbeatResponse {
                    term: self.hs.term,
                    seq,
                };
                self.send(&from, reply);
            }
            Message::HeartbeatResponse { term, seq } => {
                if term == self.hs.term && self.role == Role::Leader {
                    self.handle_heartbeat_response(&from, seq);
                }
            }
            Message::InstallSnapshot { term, meta, data } => {
                self.handle_install_snapshot(from, term, meta, data)
            }
            Message::TimeoutNow { term } => {
                if term == self.hs.term
                    && self.role != Role::Leader
                    && self.membership.contains(&self.cfg.id)
                {
                    self.start_election(true);
                }
            }
        }
    }

    /// True while a leader we know of has been heard from within the minimum election timeout.
    fn in_lease(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some()
                && self.now < self.last_leader_contact + self.cfg.election_min_ms)
    }

    /// Accepts `from` as the leader of the current term.
    fn follow(&mut self, from: &str) {
        if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
            let term = self.hs.term;
            self.become_follower(term, Some(from.to_string()));
        }
        self.last_leader_contact = self.now;
        self.reset_election_timer();
    }

    fn log_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let ours = (self.log.last_term(), self.log.last_index());
        // BUG vote-without-log-check: grant whatever the candidate's log looks like.
        self.cfg.bugs.vote_without_log_check || (last_term, last_index) >= ours
    }

    fn handle_vote_request(
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

    fn handle_vote_response(&mut self, from: NodeId, term: Term, granted: bool, pre_vote: bool) {
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

    fn handle_append(
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

    fn handle_append_success(&mut self, from: &str, match_index: Index) {
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

    fn handle_append_reject(
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

    fn handle_heartbeat_response(&mut self, from: &str, seq: u64) {
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

    fn handle_install_snapshot(
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

    fn refresh_membership(&mut self) {
        let (index, membership) = self.log.membership_at(self.log.last_index());
        self.membership_index = index;
        self.membership = membership;
        if self.role == Role::Leader {
            self.sync_progress();
        }
    }

    // ----- replication -----

    fn flush(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        for p in self.peers() {
            self.send_append(&p, false);
        }
        self.advance_commit();
    }

    /// Sends what `to` is missing: pipelined batches, one probe, or the snapshot.
    fn send_append(&mut self, to: &str, allow_empty: bool) {
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

    fn advance_commit(&mut self) {
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

    fn apply(&mut self) {
        if self.commit <= self.applied {
            return;
        }
        let entries = self.log.slice(self.applied + 1, self.commit, usize::MAX);
        self.applied = self.commit;
        if !entries.is_empty() {
            self.output(Command::Apply { entries });
        }
    }

    // ----- heartbeats and reads -----

    fn broadcast_heartbeat(&mut self) {
        self.heartbeat_due = self.now + self.cfg.heartbeat_ms;
        self.read_seq_sent += 1;
        let seq = self.read_seq_sent;
        self.rounds.push_back((seq, self.now, self.wall));
        while self.rounds.len() > 256 {
            self.rounds.pop_front();
        }
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

    fn lease_valid(&self) -> bool {
        if self.transfer.is_some() {
            return false;
        }
        if self.cfg.bugs.lease_no_drift_margin {
            // BUG lease-no-drift-margin: trust the wall clock, no margin kept back.
            return self.wall < self.lease_until_wall;
        }
        self.cfg.lease_reads && self.now < self.lease_until_mono
    }

    fn read(&mut self, id: u64) {
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
        let seq = self.read_seq_sent + 1;
        self.reads.push_back(PendingRead { id, seq, index });
        if self.read_seq_acked == self.read_seq_sent {
            self.broadcast_heartbeat();
        }
    }

    /// Serves reads whose round a quorum has acknowledged; starts the next round if needed.
    fn advance_reads(&mut self) {
        let quorum = self.membership.quorum();
        let mut acked: Vec<u64> = self
            .membership
            .voters
            .keys()
            .map(|v| {
                if *v == self.cfg.id {
                    self.read_seq_sent
                } else {
                    self.progress.get(v).map_or(0, |p| p.acked_seq)
                }
            })
            .collect();
        if acked.len() < quorum {
            return;
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let seq = acked[quorum - 1];
        if seq <= self.read_seq_acked {
            return;
        }
        self.read_seq_acked = seq;
        while let Some(&(s, mono, wall)) = self.rounds.front() {
            if s > seq {
                break;
            }
            if s == seq {
                self.lease_until_mono = mono + self.cfg.lease_ms();
                self.lease_until_wall = wall + self.cfg.election_min_ms;
            }
            self.rounds.pop_front();
        }
        while self.reads.front().is_some_and(|r| r.seq <= seq) {
            let r = self.reads.pop_front().expect("front checked");
            self.output(Command::ReadReady {
                id: r.id,
                index: r.index,
            });
        }
        if self
            .reads
            .front()
            .is_some_and(|r| r.seq > self.read_seq_sent)
        {
            self.broadcast_heartbeat();
        }
    }

    // ----- client requests -----

    fn propose(&mut self, id: String, payload: Payload) {
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

    fn change_membership(&mut self, id: String, membership: Membership) {
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

    fn transfer_leader(&mut self, to: NodeId) {
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

#[cfg(test)]
mod tests {
    //! openraft-style: build a node, feed it inputs, assert the exact commands it emits.
    use super::*;
    use crate::core::bugs::Bugs;
    use serde_json::json;

    const N3: [&str; 3] = ["n1", "n2", "n3"];

    fn members(ids: &[&str]) -> Membership {
        Membership {
            voters: ids
                .iter()
                .map(|i| (i.to_string(), format!("addr-{i}")))
                .collect(),
        }
    }

    fn node_with(id: &str, bugs: Bugs, hs: HardState, entries: Vec<Entry>) -> Raft {
        let cfg = Config {
            bugs,
            seed: 7,
            ..Config::new(id)
        };
        Raft::new(cfg, hs, SnapshotMeta::default(), entries, members(&N3))
    }

    fn node(id: &str) -> Raft {
        node_with(id, Bugs::default(), HardState::default(), vec![])
    }

    fn hs(term: Term, vote: Option<&str>) -> HardState {
        HardState {
            term,
            vote: vote.map(str::to_string),
        }
    }

    fn noop(index: Index, term: Term) -> Entry {
        Entry::noop(index, term)
    }

    fn data(index: Index, term: Term, id: &str) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Data {
                id: id.into(),
                data: json!(id),
            },
        }
    }

    fn send(to: &str, msg: Message) -> Command {
        Command::Send { to: to.into(), msg }
    }

    fn tick(r: &mut Raft, now: u64) -> Vec<Command> {
        r.step(Input::Tick {
            now_ms: now,
            wall_ms: now,
        })
    }

    fn recv(r: &mut Raft, from: &str, msg: Message) -> Vec<Command> {
        r.step(Input::Receive {
            from: from.into(),
            msg,
        })
    }

    fn vote_req(term: Term, last_index: Index, last_term: Term, pre_vote: bool) -> Message {
        Message::RequestVote {
            term,
            last_index,
            last_term,
            pre_vote,
            transfer: false,
        }
    }

    fn vote_resp(term: Term, granted: bool, pre_vote: bool) -> Message {
        Message::VoteResponse {
            term,
            granted,
            pre_vote,
        }
    }

    fn append(term: Term, prev: (Index, Term), entries: Vec<Entry>, commit: Index) -> Message {
        Message::AppendEntries {
            term,
            prev_index: prev.0,
            prev_term: prev.1,
            entries,
            commit,
        }
    }

    fn ok(term: Term, match_index: Index) -> Message {
        Message::AppendResponse {
            term,
            success: true,
            match_index,
            reject_index: 0,
            conflict_index: 0,
            conflict_term: None,
        }
    }

    fn reject(term: Term, reject_index: Index, ci: Index, ct: Option<Term>) -> Message {
        Message::AppendResponse {
            term,
            success: false,
            match_index: 0,
            reject_index,
            conflict_index: ci,
            conflict_term: ct,
        }
    }

    /// Drives `r` (n1) through pre-vote and election with n2's votes; returns it as leader.
    fn elect(mut r: Raft, now: u64) -> Raft {
        tick(&mut r, now);
        let t = r.term() + 1;
        recv(&mut r, "n2", vote_resp(t, true, true));
        recv(&mut r, "n2", vote_resp(t, true, false));
        assert_eq!(r.role(), Role::Leader);
        r
    }

    /// A leader of term 1 whose noop (index 1) is committed through n2.
    fn leader() -> Raft {
        let mut r = elect(node("n1"), 1000);
        recv(&mut r, "n2", ok(1, 1));
        recv(&mut r, "n3", ok(1, 1));
        assert_eq!(r.commit_index(), 1);
        r
    }

    #[test]
    fn election_runs_pre_vote_then_vote_then_appends_a_noop() {
        let mut r = node("n1");
        assert_eq!(
            tick(&mut r, 100),
            vec![],
            "no election before the minimum timeout"
        );
        let pv = vote_req(1, 0, 0, true);
        assert_eq!(
            tick(&mut r, 1000),
            vec![send("n2", pv.clone()), send("n3", pv)]
        );
        assert_eq!(
            (r.role(), r.term()),
            (Role::PreCandidate, 0),
            "pre-vote persists nothing"
        );
        let rv = vote_req(1, 0, 0, false);
        assert_eq!(
            recv(&mut r, "n2", vote_resp(1, true, true)),
            vec![
                Command::PersistHardState(hs(1, Some("n1"))),
                Command::Sync,
                send("n2", rv.clone()),
                send("n3", rv),
            ]
        );
        let ae = append(1, (0, 0), vec![noop(1, 1)], 0);
        assert_eq!(
            recv(&mut r, "n3", vote_resp(1, true, false)),
            vec![
                Command::PersistEntries(vec![noop(1, 1)]),
                Command::Sync,
                send("n2", ae.clone()),
                send("n3", ae),
            ]
        );
        assert_eq!(r.role(), Role::Leader);
        assert_eq!(r.leader().map(String::as_str), Some("n1"));
    }

    #[test]
    fn one_vote_per_term_unless_vote_twice_per_term() {
        let mut r = node("n2");
        assert_eq!(
            recv(&mut r, "n1", vote_req(1, 0, 0, false)),
            vec![
                Command::PersistHardState(hs(1, None)),
                Command::PersistHardState(hs(1, Some("n1"))),
                Command::Sync,
                send("n1", vote_resp(1, true, false)),
            ]
        );
        assert_eq!(
            recv(&mut r, "n3", vote_req(1, 0, 0, false)),
            vec![send("n3", vote_resp(1, false, false))]
        );
        // the deviation: a second candidate in the same term is granted too (two leaders)
        let bugs = Bugs {
            vote_twice_per_term: true,
            ..Bugs::default()
        };
        let mut r = node_with("n2", bugs, hs(1, Some("n1")), vec![]);
        assert_eq!(
            recv(&mut r, "n3", vote_req(1, 0, 0, false)),
            vec![
                Command::PersistHardState(hs(1, Some("n3"))),
                Command::Sync,
                send("n3", vote_resp(1, true, false)),
            ]
        );
    }

    #[test]
    fn votes_check_the_log_unless_vote_without_log_check() {
        let log = vec![noop(1, 1), noop(2, 2)];
        let mut r = node_with("n2", Bugs::default(), hs(2, None), log.clone());
        assert_eq!(
            recv(&mut r, "n1", vote_req(3, 5, 1, true)),
            vec![send("n1", vote_resp(2, false, true))],
            "pre-vote: stale log refused, term untouched"
        );
        assert_eq!(
            recv(&mut r, "n1", vote_req(3, 5, 1, false)),
            vec![
                Command::PersistHardState(hs(3, None)),
                Command::Sync,
                send("n1", vote_resp(3, false, false)),
            ]
        );
        let bugs = Bugs {
            vote_without_log_check: true,
            ..Bugs::default()
        };
        let mut r = node_with("n2", bugs, hs(2, None), log);
        assert_eq!(
            recv(&mut r, "n1", vote_req(3, 5, 1, false)),
            vec![
                Command::PersistHardState(hs(3, None)),
                Command::PersistHardState(hs(3, Some("n1"))),
                Command::Sync,
                send("n1", vote_resp(3, true, false)),
            ]
        );
    }

    #[test]
    fn followers_ignore_campaigns_while_their_leader_is_alive_except_transfers() {
        let mut r = node("n2");
        tick(&mut r, 100);
        let hb = Message::Heartbeat {
            term: 1,
            commit: 0,
            seq: 1,
        };
        let out = recv(&mut r, "n1", hb);
        assert_eq!(
            out.last(),
            Some(&send("n1", Message::HeartbeatResponse { term: 1, seq: 1 }))
        );
        tick(&mut r, 150);
        assert_eq!(
            recv(&mut r, "n3", vote_req(2, 9, 9, false)),
            vec![send("n3", vote_resp(1, false, false))]
        );
        assert_eq!(r.term(), 1);
        let forced = Message::RequestVote {
            term: 2,
            last_index: 9,
            last_term: 9,
            pre_vote: false,
            transfer: true,
        };
        let out = recv(&mut r, "n3", forced);
        assert_eq!(out.last(), Some(&send("n3", vote_resp(2, true, false))));
    }

    #[test]
    fn log_matching_rejects_with_conflict_term_then_truncates_and_commits() {
        let log = vec![noop(1, 1), noop(2, 1), noop(3, 2), noop(4, 2)];
        let mut r = node_with("n2", Bugs::default(), hs(2, None), log);
        assert_eq!(
            recv(&mut r, "n1", append(3, (4, 3), vec![], 0)),
            vec![
                Command::PersistHardState(hs(3, None)),
                Command::Sync,
                send("n1", reject(3, 4, 3, Some(2))),
            ]
        );
        assert_eq!(
            recv(&mut r, "n1", append(3, (2, 1), vec![data(3, 3, "x")], 3)),
            vec![
                Command::PersistEntries(vec![data(3, 3, "x")]),
                Command::Sync,
                Command::Apply {
                    entries: vec![noop(1, 1), noop(2, 1), data(3, 3, "x")]
                },
                send("n1", ok(3, 3)),
            ]
        );
        assert_eq!(r.log().last_index(), 3, "the conflicting suffix is gone");
        // a duplicate of what we hold is acknowledged without rewriting anything
        assert_eq!(
            recv(&mut r, "n1", append(3, (2, 1), vec![data(3, 3, "x")], 3)),
            vec![send("n1", ok(3, 3))]
        );
    }

    #[test]
    fn leader_backtracks_a_whole_term_at_once() {
        let log = vec![noop(1, 1), noop(2, 1), noop(3, 3)];
        let r = node_with("n1", Bugs::default(), hs(3, None), log);
        let mut r = elect(r, 1000);
        // n2 holds only index 1: it says so and the leader jumps straight there
        let out = recv(&mut r, "n2", reject(4, 3, 2, None));
        let entries = vec![noop(2, 1), noop(3, 3), noop(4, 4)];
        assert_eq!(out, vec![send("n2", append(4, (1, 1), entries, 0))]);
        // n3 has term 1 at index 3 (first term-1 index 1): the leader skips to its own last
        // term-1 entry instead of walking back one index at a time
        let out = recv(&mut r, "n3", reject(4, 3, 1, Some(1)));
        let entries = vec![noop(3, 3), noop(4, 4)];
        assert_eq!(out, vec![send("n3", append(4, (2, 1), entries, 0))]);
        // a rejection older than what n2 has since acknowledged is ignored
        recv(&mut r, "n2", ok(4, 4));
        assert_eq!(recv(&mut r, "n2", reject(4, 1, 1, None)), vec![]);
    }

    #[test]
    fn commit_counts_only_current_term_entries_unless_commit_prior_term() {
        let r = node_with("n1", Bugs::default(), hs(1, None), vec![data(1, 1, "a")]);
        let mut r = elect(r, 1000);
        let out = recv(&mut r, "n2", ok(2, 1));
        assert_eq!(
            out,
            vec![send("n2", append(2, (1, 1), vec![noop(2, 2)], 0))]
        );
        assert_eq!(
            r.commit_index(),
            0,
            "a term-1 entry on a majority is not committed by term 2"
        );
        let out = recv(&mut r, "n2", ok(2, 2));
        assert_eq!(
            out,
            vec![Command::Apply {
                entries: vec![data(1, 1, "a"), noop(2, 2)]
            }]
        );
        // the deviation: figure 8's mistake commits the old entry by counting (and, as in
        // figure 8, the new leader appends no no-op first)
        let bugs = Bugs {
            commit_prior_term: true,
            ..Bugs::default()
        };
        let r = node_with("n1", bugs, hs(1, None), vec![data(1, 1, "a")]);
        let mut r = elect(r, 1000);
        assert_eq!(r.log().last_index(), 1, "no no-op");
        let out = recv(&mut r, "n2", ok(2, 1));
        assert_eq!(
            out,
            vec![Command::Apply {
                entries: vec![data(1, 1, "a")]
            }]
        );
        // a read then forces the no-op, so reads do not wait for a client write
        assert_eq!(
            r.step(Input::Read { id: 1 }),
            vec![Command::PersistEntries(vec![noop(2, 2)])]
        );
    }

    #[test]
    fn stale_term_appends_are_refused_unless_accept_stale_term_append() {
        let mut r = node_with("n2", Bugs::default(), hs(3, None), vec![noop(1, 1)]);
        assert_eq!(
            recv(&mut r, "n1", append(2, (1, 1), vec![noop(2, 2)], 0)),
            vec![send("n1", reject(3, 1, 0, None))]
        );
        let bugs = Bugs {
            accept_stale_term_append: true,
            ..Bugs::default()
        };
        let mut r = node_with("n2", bugs, hs(3, None), vec![noop(1, 1)]);
        assert_eq!(
            recv(&mut r, "n1", append(2, (1, 1), vec![noop(2, 2)], 0)),
            vec![
                Command::PersistEntries(vec![noop(2, 2)]),
                Command::Sync,
                send("n1", ok(3, 2)),
            ]
        );
    }

    #[test]
    fn acknowledgements_wait_for_sync_unless_ack_before_fsync() {
        let mut r = node_with("n2", Bugs::default(), hs(1, None), vec![]);
        assert_eq!(
            recv(&mut r, "n1", append(1, (0, 0), vec![noop(1, 1)], 0)),
            vec![
                Command::PersistEntries(vec![noop(1, 1)]),
                Command::Sync,
                send("n1", ok(1, 1)),
            ]
        );
        let bugs = Bugs {
            ack_before_fsync: true,
            ..Bugs::default()
        };
        let mut r = node_with("n2", bugs, hs(1, None), vec![]);
        assert_eq!(
            recv(&mut r, "n1", append(1, (0, 0), vec![noop(1, 1)], 0)),
            vec![
                Command::PersistEntries(vec![noop(1, 1)]),
                send("n1", ok(1, 1))
            ]
        );
    }

    #[test]
    fn reads_go_through_read_index_unless_stale_local_read() {
        let mut r = node_with("n2", Bugs::default(), hs(1, None), vec![]);
        recv(&mut r, "n1", append(1, (0, 0), vec![noop(1, 1)], 1));
        assert_eq!(
            r.step(Input::Read { id: 7 }),
            vec![Command::ReadRejected {
                id: 7,
                reason: Reject::NotLeader {
                    leader: Some("n1".into())
                }
            }]
        );
        let bugs = Bugs {
            stale_local_read: true,
            ..Bugs::default()
        };
        let mut r = node_with("n2", bugs, hs(1, None), vec![]);
        recv(&mut r, "n1", append(1, (0, 0), vec![noop(1, 1)], 1));
        assert_eq!(
            r.step(Input::Read { id: 7 }),
            vec![Command::ReadReady { id: 7, index: 1 }]
        );

        // the leader confirms leadership with a heartbeat round before answering
        let mut l = leader();
        let hb = |commit| Message::Heartbeat {
            term: 1,
            commit,
            seq: 1,
        };
        assert_eq!(
            l.step(Input::Read { id: 9 }),
            vec![send("n2", hb(1)), send("n3", hb(1))]
        );
        let resp = Message::HeartbeatResponse { term: 1, seq: 1 };
        assert_eq!(
            recv(&mut l, "n2", resp),
            vec![Command::ReadReady { id: 9, index: 1 }]
        );
    }

    #[test]
    fn reads_wait_for_the_leaders_first_commit() {
        let mut r = elect(node("n1"), 1000);
        assert_eq!(r.step(Input::Read { id: 1 }), vec![]);
        let out = recv(&mut r, "n2", ok(1, 1));
        let hb = Message::Heartbeat {
            term: 1,
            commit: 1,
            seq: 1,
        };
        assert_eq!(
            out,
            vec![
                Command::Apply {
                    entries: vec![noop(1, 1)]
                },
                send("n2", hb.clone()),
                send(
                    "n3",
                    Message::Heartbeat {
                        term: 1,
                        commit: 0,
                        seq: 1
                    }
                ),
            ]
        );
    }

    #[test]
    fn leases_use_the_monotonic_clock_with_margin_unless_lease_no_drift_margin() {
        for (bugged, lease_reads) in [(false, true), (true, false)] {
            let bugs = Bugs {
                lease_no_drift_margin: bugged,
                ..Bugs::default()
            };
            let cfg = Config {
                bugs,
                lease_reads,
                seed: 7,
                ..Config::new("n1")
            };
            let r = Raft::new(
                cfg,
                hs(0, None),
                SnapshotMeta::default(),
                vec![],
                members(&N3),
            );
            let mut r = elect(r, 1000);
            recv(&mut r, "n2", ok(1, 1));
            r.step(Input::Read { id: 1 });
            recv(&mut r, "n2", Message::HeartbeatResponse { term: 1, seq: 1 });
            // within the lease (1000 + 120 ms) a read is answered at once
            r.step(Input::Tick {
                now_ms: 1100,
                wall_ms: 1100,
            });
            assert_eq!(
                r.step(Input::Read { id: 2 }),
                vec![Command::ReadReady { id: 2, index: 1 }]
            );
            // 140 ms later on the monotonic clock while the wall clock was set back: only the
            // buggy lease (wall clock, no margin) still trusts itself
            r.step(Input::Tick {
                now_ms: 1140,
                wall_ms: 1000,
            });
            let out = r.step(Input::Read { id: 3 });
            if bugged {
                assert_eq!(out, vec![Command::ReadReady { id: 3, index: 1 }]);
            } else {
                let served = out.iter().any(|c| matches!(c, Command::ReadReady { .. }));
                assert!(
                    !served,
                    "expired lease: the read waits for a heartbeat round"
                );
            }
        }
    }

    #[test]
    fn snapshots_compact_the_log_and_are_sent_to_followers_that_are_too_far_behind() {
        let mut l = leader();
        l.step(Input::Propose {
            id: "p".into(),
            data: json!(1),
        });
        l.step(Input::Flush);
        recv(&mut l, "n2", ok(1, 2));
        let meta = l.snapshot_meta_at(2).unwrap();
        assert_eq!(meta.membership, members(&N3));
        assert_eq!(
            l.step(Input::SnapshotTaken { meta: meta.clone() }),
            vec![Command::CompactLog { meta: meta.clone() }]
        );
        // n3 rejects (it lost its log): the entries it needs are gone, so it gets the snapshot
        let out = recv(&mut l, "n3", reject(1, 2, 1, None));
        assert_eq!(
            out,
            vec![Command::SendSnapshot {
                to: "n3".into(),
                term: 1
            }]
        );
        assert_eq!(recv(&mut l, "n3", ok(1, 2)), vec![]);

        let mut f = node("n3");
        let msg = Message::InstallSnapshot {
            term: 1,
            meta: meta.clone(),
            data: json!({"k": 1}),
        };
        assert_eq!(
            recv(&mut f, "n1", msg),
            vec![
                Command::PersistHardState(hs(1, None)),
                Command::InstallSnapshot {
                    meta,
                    data: json!({"k": 1})
                },
                Command::Sync,
                send("n1", ok(1, 2)),
            ]
        );
        assert_eq!((f.commit_index(), f.log().last_index()), (2, 2));
    }

    #[test]
    fn membership_changes_one_server_at_a_time() {
        let mut l = leader();
        let two = members(&["n1", "n2", "n3", "n4", "n5"]);
        assert_eq!(
            l.step(Input::ChangeMembership {
                id: "c1".into(),
                membership: two
            }),
            vec![Command::Rejected {
                id: "c1".into(),
                reason: Reject::InvalidConfigChange
            }]
        );
        let four = members(&["n1", "n2", "n3", "n4"]);
        let entry = Entry {
            index: 2,
            term: 1,
            payload: Payload::Config {
                id: "c2".into(),
                membership: four.clone(),
            },
        };
        assert_eq!(
            l.step(Input::ChangeMembership {
                id: "c2".into(),
                membership: four.clone()
            }),
            vec![
                Command::PersistEntries(vec![entry.clone()]),
                Command::Proposed {
                    id: "c2".into(),
                    index: 2
                }
            ]
        );
        assert_eq!(l.membership(), &four, "effective once appended");
        assert_eq!(
            l.step(Input::ChangeMembership {
                id: "c3".into(),
                membership: members(&N3)
            }),
            vec![Command::Rejected {
                id: "c3".into(),
                reason: Reject::ConfigChangeInProgress
            }]
        );
        let out = l.step(Input::Flush);
        let to: Vec<&str> = out
            .iter()
            .filter_map(|c| match c {
                Command::Send { to, .. } => Some(to.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(to, vec!["n2", "n3", "n4"]);
        // with four voters, n1 + n2 are no longer a quorum
        recv(&mut l, "n2", ok(1, 2));
        assert_eq!(l.commit_index(), 1);
        recv(&mut l, "n4", ok(1, 2));
        assert_eq!(l.commit_index(), 2);
    }

    #[test]
    fn leadership_transfer_sends_timeout_now_and_the_target_campaigns_at_once() {
        let mut l = leader();
        assert_eq!(
            l.step(Input::TransferLeader { to: "n2".into() }),
            vec![send("n2", Message::TimeoutNow { term: 1 })]
        );
        assert_eq!(
            l.step(Input::Propose {
                id: "p".into(),
                data: json!(1)
            }),
            vec![Command::Rejected {
                id: "p".into(),
                reason: Reject::Transferring
            }]
        );
        let mut f = node_with("n2", Bugs::default(), hs(1, None), vec![noop(1, 1)]);
        let rv = Message::RequestVote {
            term: 2,
            last_index: 1,
            last_term: 1,
            pre_vote: false,
            transfer: true,
        };
        assert_eq!(
            recv(&mut f, "n1", Message::TimeoutNow { term: 1 }),
            vec![
                Command::PersistHardState(hs(2, Some("n2"))),
                Command::Sync,
                send("n1", rv.clone()),
                send("n3", rv),
            ]
        );
    }

    #[test]
    fn a_leader_ignores_another_leader_of_its_own_term() {
        let mut l = leader();
        let hb = Message::Heartbeat {
            term: 1,
            commit: 0,
            seq: 1,
        };
        assert_eq!(recv(&mut l, "n2", hb), vec![]);
        assert_eq!(
            recv(&mut l, "n2", append(1, (1, 1), vec![noop(2, 1)], 1)),
            vec![]
        );
        assert_eq!(l.role(), Role::Leader);
    }

    #[test]
    fn a_leader_that_loses_its_quorum_steps_down() {
        let mut l = leader();
        tick(&mut l, 1200);
        assert_eq!(l.role(), Role::Leader);
        tick(&mut l, 1700);
        assert_eq!(
            l.role(),
            Role::Leader,
            "n2 and n3 answered during the first period"
        );
        tick(&mut l, 2100);
        assert_eq!(l.role(), Role::Follower);
        assert_eq!(l.leader(), None);
    }
}
