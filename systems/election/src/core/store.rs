//! The replicated log every mode shares, and the dispatch of inputs to the election modes.
//!
//! A primary appends at `last + 1` and replicates `Append { epoch, prev_index, prev_gen,
//! entries, commit }`; an entry commits once a majority (or every live backup, with
//! `Replicate::AllLive`) holds it and it is of the primary's generation (earlier entries commit
//! with it). A backup rejects an `Append` of a generation older than its own: the generation is
//! the fencing token. Backups apply only up to the commit index they are told, so a deposed
//! primary's uncommitted suffix can be cut.

use super::{Command, Config, Entry, Index, Input, Message, Mode, NodeId, Record, Replicate, Role};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One round of claims (a lease request or renewal, a coordinator's announcement).
#[derive(Clone, Debug)]
pub(super) struct ClaimRound {
    pub seq: u64,
    pub sent_now: u64,
    pub sent_wall: u64,
    pub want_log: bool,
    /// The claimant's commit index when it sent the round: replies' entries follow it.
    pub commit: Index,
    pub grants: BTreeSet<NodeId>,
    /// The most up-to-date log among the grants: (last_gen, last_index, entries after commit).
    pub best: Option<(u64, Index, Vec<Entry>)>,
}

/// Bully's election state at a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bully {
    Idle,
    /// ELECTION sent to the higher nodes; no ANSWER yet.
    Electing {
        until: u64,
    },
    /// A higher node answered; waiting for its COORDINATOR.
    Waiting {
        until: u64,
    },
}

pub struct Core {
    pub(super) cfg: Config,
    /// Every node, this one included, sorted: the rank order of bully and the ring.
    pub(super) nodes: Vec<NodeId>,
    // Durable.
    pub(super) epoch: u64,
    pub(super) voted: Option<NodeId>,
    pub(super) log: Vec<Entry>,
    // Volatile.
    pub(super) commit: Index,
    pub(super) applied: Index,
    pub(super) now: u64,
    pub(super) wall: u64,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    rng: u64,
    out: Vec<Command>,
    unsynced: bool,
    // Primary.
    pub(super) match_index: BTreeMap<NodeId, Index>,
    pub(super) next_index: BTreeMap<NodeId, Index>,
    pub(super) last_ack: BTreeMap<NodeId, u64>,
    /// The index of this reign's noop: nothing is served before it commits.
    pub(super) gen_start: Index,
    pub(super) last_heartbeat: u64,
    pub(super) append_seq: u64,
    pub(super) append_acked: BTreeMap<NodeId, u64>,
    /// Gated reads: (read id, heartbeat round that must be acknowledged, index).
    quorum_reads: VecDeque<(u64, u64, Index)>,
    need_round: bool,
    // Claims.
    pub(super) claim_seq: u64,
    pub(super) claims: VecDeque<ClaimRound>,
    pub(super) claim_started: u64,
    pub(super) last_renew: u64,
    /// Lease mode: where the holder's lease starts (timer clock, wall clock).
    pub(super) lease_start: Option<(u64, u64)>,
    // Granter (lease mode).
    pub(super) granted: Option<(NodeId, u64)>,
    pub(super) quiet_until: u64,
    // Followers.
    pub(super) next_campaign: u64,
    pub(super) bully: Bully,
    pub(super) last_heard: BTreeMap<NodeId, u64>,
    pub(super) ring_wait_until: Option<u64>,
    pub(super) last_ping: u64,
}

impl Core {
    /// A core over `nodes` (this one included) with durable state from the WAL.
    pub fn new(
        cfg: Config,
        nodes: Vec<NodeId>,
        epoch: u64,
        voted: Option<NodeId>,
        log: Vec<Entry>,
    ) -> Core {
        let mut nodes = nodes;
        nodes.sort();
        nodes.dedup();
        let rng = cfg.seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut core = Core {
            cfg,
            nodes,
            epoch,
            voted,
            log,
            commit: 0,
            applied: 0,
            now: 0,
            wall: 0,
            role: Role::Follower,
            leader: None,
            rng,
            out: Vec::new(),
            unsynced: false,
            match_index: BTreeMap::new(),
            next_index: BTreeMap::new(),
            last_ack: BTreeMap::new(),
            gen_start: 0,
            last_heartbeat: 0,
            append_seq: 0,
            append_acked: BTreeMap::new(),
            quorum_reads: VecDeque::new(),
            need_round: false,
            claim_seq: 0,
            claims: VecDeque::new(),
            claim_started: 0,
            last_renew: 0,
            lease_start: None,
            granted: None,
            quiet_until: 0,
            next_campaign: 0,
            bully: Bully::Idle,
            last_heard: BTreeMap::new(),
            ring_wait_until: None,
            last_ping: 0,
        };
        // A node may have granted a lease just before it crashed: it grants nothing for a lease
        // length after it starts (lease mode), and every mode waits before its first election.
        core.quiet_until = core.cfg.lease_ms;
        core.next_campaign = match core.cfg.mode {
            Mode::Lease => core.cfg.lease_ms + core.backoff(),
            Mode::Bully | Mode::Ring => core.election_timeout(),
        };
        core
    }

    /// Rebuilds the durable state from WAL records.
    pub fn recover(records: Vec<Record>) -> (u64, Option<NodeId>, Vec<Entry>) {
        let (mut epoch, mut voted, mut log) = (0, None, Vec::<Entry>::new());
        for r in records {
            match r {
                Record::Meta { epoch: g, voted: v } => {
                    epoch = g;
                    voted = v;
                }
                Record::Entry { index, entry } => {
                    log.truncate(index.saturating_sub(1) as usize);
                    if log.len() as u64 + 1 == index {
                        log.push(entry);
                    }
                }
            }
        }
        (epoch, voted, log)
    }

    pub fn step(&mut self, input: Input) -> Vec<Command> {
        match input {
            Input::Tick { now_ms, wall_ms } => {
                self.now = self.now.max(now_ms);
                self.wall = wall_ms;
                self.tick();
            }
            Input::Receive { from, msg } => {
                self.last_heard.insert(from.clone(), self.now);
                self.receive(from, msg);
            }
            Input::Propose { id, data } => self.propose(id, data),
            Input::Read { id } => self.read(id),
            Input::Flush => self.flush(),
        }
        std::mem::take(&mut self.out)
    }

    // ---- accessors -------------------------------------------------------------------

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }
    pub fn generation(&self) -> u64 {
        self.epoch
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    pub fn last_index(&self) -> Index {
        self.log.len() as Index
    }
    pub fn log(&self) -> &[Entry] {
        &self.log
    }
    pub fn voted(&self) -> Option<&NodeId> {
        self.voted.as_ref()
    }
    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }

    /// Whether the node acts as the primary right now (what `/status` calls leader): it
    /// committed its reign's noop and, in lease mode, holds a valid read lease.
    pub fn serving(&self) -> bool {
        self.role == Role::Primary
            && self.commit >= self.gen_start
            && (self.cfg.mode != Mode::Lease || self.read_lease_valid())
    }

    /// The primary this node follows (itself while serving).
    pub fn leader(&self) -> Option<&NodeId> {
        match self.role {
            Role::Primary if self.serving() => Some(&self.cfg.id),
            Role::Follower => self.leader.as_ref(),
            _ => None,
        }
    }

    // ---- helpers ---------------------------------------------------------------------

    pub(super) fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Lease mode: a random wait before campaigning, up to half a lease.
    pub(super) fn backoff(&mut self) -> u64 {
        self.random() % (self.cfg.lease_ms / 2).max(1)
    }

    /// Bully/ring: when silence from the primary starts an election.
    pub(super) fn election_timeout(&mut self) -> u64 {
        self.now + self.cfg.election_ms + self.random() % self.cfg.election_ms.max(1)
    }

    pub(super) fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    pub(super) fn peers(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| **n != self.cfg.id)
            .cloned()
            .collect()
    }

    pub(super) fn rank(&self, id: &str) -> usize {
        self.nodes.iter().position(|n| n == id).unwrap_or(0)
    }

    pub(super) fn last_gen(&self) -> u64 {
        self.log.last().map_or(0, |e| e.epoch)
    }

    fn gen_at(&self, index: Index) -> u64 {
        if index == 0 {
            0
        } else {
            self.log.get(index as usize - 1).map_or(0, |e| e.epoch)
        }
    }

    pub(super) fn persist(&mut self, r: Record) {
        self.out.push(Command::Persist(r));
        self.unsynced = true;
    }

    pub(super) fn persist_meta(&mut self) {
        self.persist(Record::Meta {
            epoch: self.epoch,
            voted: self.voted.clone(),
        });
    }

    /// Anything that leaves the node waits for what was persisted before it.
    fn leave(&mut self, cmd: Command) {
        if self.unsynced {
            self.out.push(Command::Sync);
            self.unsynced = false;
        }
        self.out.push(cmd);
    }

    pub(super) fn send(&mut self, to: &str, msg: Message) {
        self.leave(Command::Send {
            to: to.to_string(),
            msg,
        });
    }

    fn push_entry(&mut self, entry: Entry) {
        self.log.push(entry.clone());
        let index = self.log.len() as Index;
        self.persist(Record::Entry { index, entry });
    }

    /// The next generation this node can claim: a higher round than any it has seen, tagged
    /// with its rank so that no two nodes claim the same one.
    pub(super) fn next_gen(&self) -> u64 {
        (self.epoch / 1000 + 1) * 1000 + self.rank(&self.cfg.id) as u64 + 1
    }

    /// A higher generation exists: adopt it and stop leading.
    pub(super) fn observe_gen(&mut self, epoch: u64) {
        if epoch > self.epoch {
            self.step_down();
            self.epoch = epoch;
            self.voted = None;
            self.persist_meta();
            self.leader = None;
        }
    }

    pub(super) fn step_down(&mut self) {
        if self.role == Role::Follower {
            return;
        }
        if self.role == Role::Candidate && self.cfg.mode == Mode::Lease {
            self.release_candidacy();
        }
        self.role = Role::Follower;
        self.lease_start = None;
        self.claims.clear();
        let leader = self.leader.clone();
        for (id, _, _) in std::mem::take(&mut self.quorum_reads) {
            self.leave(Command::ReadRejected {
                id,
                leader: leader.clone(),
            });
        }
        self.heard_primary();
    }

    /// Heard from (or obeyed) a primary: bully and ring wait a full timeout again.
    pub(super) fn heard_primary(&mut self) {
        if self.cfg.mode != Mode::Lease {
            self.next_campaign = self.election_timeout();
            self.bully = super::store::Bully::Idle;
            self.ring_wait_until = None;
        }
    }

    fn tick(&mut self) {
        match self.cfg.mode {
            Mode::Lease => self.lease_tick(),
            Mode::Bully => self.bully_tick(),
            Mode::Ring => self.ring_tick(),
        }
        if self.role == Role::Primary && self.now >= self.last_heartbeat + self.cfg.heartbeat_ms {
            self.heartbeat();
        }
    }

    fn receive(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Claim {
                epoch,
                seq,
                commit,
                want_log,
            } => self.on_claim(from, epoch, seq, commit, want_log),
            Message::ClaimReply {
                epoch,
                seq,
                granted,
                my_gen,
                last_gen,
                last_index,
                entries,
            } => self.on_claim_reply(
                from,
                epoch,
                seq,
                granted,
                my_gen,
                (last_gen, last_index),
                entries,
            ),
            Message::Append {
                epoch,
                seq,
                prev_index,
                prev_gen,
                entries,
                commit,
            } => self.on_append(from, epoch, seq, (prev_index, prev_gen), entries, commit),
            Message::AppendReply {
                epoch,
                seq,
                ok,
                my_gen,
                match_index,
            } => self.on_append_reply(from, epoch, seq, ok, my_gen, match_index),
            Message::Election { epoch } => self.on_election(from, epoch),
            Message::Answer { epoch } => self.on_answer(epoch),
            Message::Ring {
                initiator,
                candidates,
            } => self.on_ring(initiator, candidates),
            Message::Elected { initiator, winner } => self.on_elected(initiator, winner),
            Message::Release { epoch } => self.on_release(from, epoch),
            Message::Ping => {}
        }
    }

    // ---- claims ----------------------------------------------------------------------

    /// Becomes a candidate for a new generation and asks every node to obey it.
    pub(super) fn become_candidate(&mut self) {
        self.epoch = self.next_gen();
        self.voted = Some(self.cfg.id.clone());
        self.persist_meta();
        self.role = Role::Candidate;
        self.leader = None;
        self.claim_started = self.now;
        self.claims.clear();
        if self.cfg.mode == Mode::Lease {
            self.granted = Some((self.cfg.id.clone(), self.now + self.cfg.lease_ms));
        }
        self.start_claim(true);
    }

    /// Sends one round of claims for the current generation to every peer.
    pub(super) fn start_claim(&mut self, want_log: bool) {
        self.claim_seq += 1;
        let seq = self.claim_seq;
        let mut grants = BTreeSet::new();
        grants.insert(self.cfg.id.clone());
        self.claims.push_back(ClaimRound {
            seq,
            sent_now: self.now,
            sent_wall: self.wall,
            want_log,
            commit: self.commit,
            grants,
            best: None,
        });
        while self.claims.len() > 8 {
            self.claims.pop_front();
        }
        let msg = Message::Claim {
            epoch: self.epoch,
            seq,
            commit: self.commit,
            want_log,
        };
        for p in self.peers() {
            self.send(&p, msg.clone());
        }
    }

    fn on_claim(&mut self, from: NodeId, epoch: u64, seq: u64, commit: Index, want_log: bool) {
        let ok = match self.cfg.mode {
            Mode::Lease => self.lease_grantable(&from, epoch),
            Mode::Bully | Mode::Ring => self.coordinator_obeyed(&from, epoch),
        };
        if ok {
            if self.epoch != epoch || self.voted.as_ref() != Some(&from) {
                self.step_down();
                self.epoch = epoch;
                self.voted = Some(from.clone());
                self.persist_meta();
            }
            self.step_down();
            self.leader = Some(from.clone());
            self.heard_primary();
            if self.cfg.mode == Mode::Lease {
                self.granted = Some((from.clone(), self.now + self.cfg.lease_ms));
                self.next_campaign = self.now + self.cfg.lease_ms + self.backoff();
            }
        }
        let entries = if ok && want_log {
            self.log.iter().skip(commit as usize).cloned().collect()
        } else {
            Vec::new()
        };
        let reply = Message::ClaimReply {
            epoch,
            seq,
            granted: ok,
            my_gen: self.epoch,
            last_gen: self.last_gen(),
            last_index: self.last_index(),
            entries,
        };
        self.send(&from, reply);
        if ok && self.cfg.mode == Mode::Bully {
            self.bully_after_obeying(&from);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_claim_reply(
        &mut self,
        from: NodeId,
        epoch: u64,
        seq: u64,
        granted: bool,
        my_gen: u64,
        last: (u64, Index),
        entries: Vec<Entry>,
    ) {
        if my_gen > self.epoch && !granted {
            self.observe_gen(my_gen);
            return;
        }
        if epoch != self.epoch || self.role == Role::Follower || !granted {
            return;
        }
        let Some(round) = self.claims.iter_mut().find(|r| r.seq == seq) else {
            return;
        };
        round.grants.insert(from);
        if round.want_log && last.1 >= round.commit {
            let better = round.best.as_ref().is_none_or(|(g, i, _)| last > (*g, *i));
            if better {
                round.best = Some((last.0, last.1, entries));
            }
        }
        let granted_by = round.grants.len();
        let (sent_now, sent_wall) = (round.sent_now, round.sent_wall);
        match self.cfg.mode {
            Mode::Lease => {
                if granted_by >= self.quorum() {
                    if self.role == Role::Candidate {
                        self.become_primary(seq);
                    }
                    let start = (sent_now, sent_wall);
                    if self.lease_start.is_none_or(|s| s.0 < start.0) {
                        self.lease_start = Some(start);
                    }
                }
            }
            Mode::Bully | Mode::Ring => {
                let enough = if self.cfg.quorum_gate {
                    granted_by >= self.quorum()
                } else {
                    granted_by == self.nodes.len()
                };
                if enough && self.role == Role::Candidate {
                    self.become_primary(seq);
                }
            }
        }
    }

    /// The claim round `seq` was obeyed: adopt the most up-to-date log among the obeying nodes,
    /// append this reign's noop and start replicating.
    pub(super) fn become_primary(&mut self, seq: u64) {
        let round = self.claims.iter().find(|r| r.seq == seq).cloned();
        if let Some(ClaimRound {
            commit,
            best: Some((g, i, entries)),
            ..
        }) = round
            && (g, i) > (self.last_gen(), self.last_index())
            && commit <= self.last_index()
        {
            self.log.truncate(commit as usize);
            for e in entries {
                self.push_entry(e);
            }
        }
        self.role = Role::Primary;
        self.leader = Some(self.cfg.id.clone());
        self.match_index.clear();
        self.next_index.clear();
        self.append_acked.clear();
        self.last_ack.clear();
        self.append_seq = 0;
        let next = self.last_index() + 1;
        for p in self.peers() {
            self.match_index.insert(p.clone(), 0);
            self.next_index.insert(p, next);
        }
        let epoch = self.epoch;
        self.push_entry(Entry {
            epoch,
            id: format!("noop-{epoch}"),
            data: None,
        });
        self.gen_start = self.last_index();
        self.advance_commit();
        self.heartbeat();
    }

    // ---- replication -----------------------------------------------------------------

    fn propose(&mut self, id: String, data: serde_json::Value) {
        let writable = self.role == Role::Primary
            && (self.cfg.mode != Mode::Lease
                || self
                    .lease_start
                    .is_some_and(|(s, _)| self.now < s + self.cfg.lease_ms));
        if !writable {
            let leader = self.leader().cloned();
            self.leave(Command::Rejected { id, leader });
            return;
        }
        let epoch = self.epoch;
        self.push_entry(Entry {
            epoch,
            id: id.clone(),
            data: Some(data),
        });
        let index = self.last_index();
        self.out.push(Command::Proposed { id, index });
        self.advance_commit();
    }

    fn flush(&mut self) {
        if self.role != Role::Primary {
            return;
        }
        if self.need_round {
            self.heartbeat();
            return;
        }
        let last = self.last_index();
        for p in self.peers() {
            if self.next_index.get(&p).is_some_and(|n| *n <= last) {
                self.send_append(&p);
            }
        }
    }

    /// One replication round to every backup (empty where it is up to date): heartbeat,
    /// retransmission, and the round gated reads wait for.
    pub(super) fn heartbeat(&mut self) {
        self.last_heartbeat = self.now;
        self.need_round = false;
        self.append_seq += 1;
        for p in self.peers() {
            let m = self.match_index.get(&p).copied().unwrap_or(0);
            self.next_index.insert(p.clone(), m + 1);
            self.send_append(&p);
        }
    }

    fn send_append(&mut self, to: &str) {
        let next = self.next_index.get(to).copied().unwrap_or(1).max(1);
        let prev_index = (next - 1).min(self.last_index());
        let end = (prev_index as usize + self.cfg.max_batch).min(self.log.len());
        let entries = self.log[prev_index as usize..end].to_vec();
        self.next_index.insert(to.to_string(), end as Index + 1);
        let msg = Message::Append {
            epoch: self.epoch,
            seq: self.append_seq,
            prev_index,
            prev_gen: self.gen_at(prev_index),
            entries,
            commit: self.commit,
        };
        self.send(to, msg);
    }

    fn on_append(
        &mut self,
        from: NodeId,
        epoch: u64,
        seq: u64,
        prev: (Index, u64),
        entries: Vec<Entry>,
        commit: Index,
    ) {
        let refuse = |core: &mut Core, match_index| {
            let msg = Message::AppendReply {
                epoch,
                seq,
                ok: false,
                my_gen: core.epoch,
                match_index,
            };
            core.send(&from, msg);
        };
        // Fencing: a backup takes replication only from its own generation or a newer one.
        if epoch < self.epoch && !self.cfg.bugs.no_fencing {
            // BUG no-fencing: `&& !no_fencing` lets any generation through.
            return refuse(self, 0);
        }
        // BUG no-fencing, second half: the backup takes the writer's generation as its own,
        // whatever it was (no token to compare), so it answers the writer as its backup.
        let adopt = epoch > self.epoch || (self.cfg.bugs.no_fencing && epoch != self.epoch);
        if adopt && from != self.cfg.id {
            self.step_down();
        }
        if adopt {
            self.epoch = epoch;
            self.voted = Some(from.clone());
            self.persist_meta();
        }
        if epoch == self.epoch {
            if from != self.cfg.id {
                self.step_down();
            }
            self.leader = Some(from.clone());
            self.heard_primary();
            if self.cfg.mode == Mode::Bully {
                self.bully_after_obeying(&from);
            }
        }
        let (prev_index, prev_gen) = prev;
        if prev_index > self.last_index() {
            let last = self.last_index();
            return refuse(self, last);
        }
        if self.gen_at(prev_index) != prev_gen {
            let hint = self.commit.min(prev_index.saturating_sub(1));
            return refuse(self, hint);
        }
        let n = entries.len() as Index;
        for (k, e) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + k as Index;
            if index <= self.last_index() {
                if self.gen_at(index) == e.epoch {
                    continue;
                }
                self.log.truncate(index as usize - 1);
            }
            self.push_entry(e);
        }
        let new_commit = commit.min(prev_index + n);
        if new_commit > self.commit {
            self.commit = new_commit;
            self.apply();
        }
        let msg = Message::AppendReply {
            epoch,
            seq,
            ok: true,
            my_gen: self.epoch,
            match_index: prev_index + n,
        };
        self.send(&from, msg);
    }

    fn on_append_reply(
        &mut self,
        from: NodeId,
        epoch: u64,
        seq: u64,
        ok: bool,
        my_gen: u64,
        m: Index,
    ) {
        if my_gen > self.epoch {
            self.observe_gen(my_gen);
            return;
        }
        if self.role != Role::Primary || epoch != self.epoch {
            return;
        }
        self.last_ack.insert(from.clone(), self.now);
        if ok {
            let cur = self.match_index.entry(from.clone()).or_insert(0);
            *cur = (*cur).max(m);
            let acked = self.append_acked.entry(from).or_insert(0);
            *acked = (*acked).max(seq);
            self.advance_commit();
            self.release_quorum_reads();
        } else {
            self.next_index.insert(from, m + 1);
        }
    }

    fn advance_commit(&mut self) {
        let last = self.last_index();
        let candidate = match (self.cfg.replicate, self.cfg.quorum_gate) {
            (Replicate::AllLive, false) => {
                let live = self.cfg.live_ms();
                self.match_index
                    .iter()
                    .filter(|(p, _)| self.last_ack.get(*p).is_some_and(|t| self.now < t + live))
                    .map(|(_, m)| *m)
                    .fold(last, Index::min)
            }
            _ => {
                let mut v: Vec<Index> = self.match_index.values().copied().collect();
                v.push(last);
                v.sort_unstable_by(|a, b| b.cmp(a));
                v[self.quorum() - 1]
            }
        };
        if candidate > self.commit && self.gen_at(candidate) == self.epoch {
            self.commit = candidate;
            self.apply();
        }
    }

    fn apply(&mut self) {
        let upto = self.commit.min(self.last_index());
        if upto <= self.applied {
            return;
        }
        let entries = (self.applied + 1..=upto)
            .map(|i| (i, self.log[i as usize - 1].clone()))
            .collect();
        self.applied = upto;
        self.leave(Command::Apply(entries));
    }

    // ---- reads -----------------------------------------------------------------------

    /// Lease mode: the holder's read lease, with the drift margin kept back.
    pub(super) fn read_lease_valid(&self) -> bool {
        let Some((start, start_wall)) = self.lease_start else {
            return false;
        };
        if self.cfg.bugs.lease_no_drift_margin {
            // BUG lease-no-drift-margin: timed on the wall clock, nothing kept back.
            self.wall < start_wall + self.cfg.lease_ms
        } else {
            self.now + self.cfg.drift_ms < start + self.cfg.lease_ms
        }
    }

    /// Until when (protocol wall clock) the read lease holds, for `/status`.
    pub fn lease_until_wall_ms(&self) -> Option<u64> {
        let (start, start_wall) = self.lease_start?;
        if self.role != Role::Primary || self.cfg.mode != Mode::Lease {
            return None;
        }
        if self.cfg.bugs.lease_no_drift_margin {
            Some(start_wall + self.cfg.lease_ms)
        } else {
            let left = (start + self.cfg.lease_ms).saturating_sub(self.now + self.cfg.drift_ms);
            Some(self.wall + left)
        }
    }

    fn read(&mut self, id: u64) {
        if self.role != Role::Primary || self.commit < self.gen_start {
            let leader = self.leader().cloned();
            self.leave(Command::ReadRejected { id, leader });
            return;
        }
        let index = self.commit;
        match self.cfg.mode {
            Mode::Lease => {
                // Reads only within the lease (minus the drift margin).
                if self.read_lease_valid() || self.cfg.bugs.read_without_lease_check {
                    // BUG read-without-lease-check: `|| read_without_lease_check`.
                    self.leave(Command::ReadReady { id, index });
                } else {
                    self.leave(Command::ReadRejected { id, leader: None });
                }
            }
            Mode::Bully | Mode::Ring if self.cfg.quorum_gate => {
                self.quorum_reads
                    .push_back((id, self.append_seq + 1, index));
                self.need_round = true;
            }
            Mode::Bully | Mode::Ring => self.leave(Command::ReadReady { id, index }),
        }
    }

    fn release_quorum_reads(&mut self) {
        if self.quorum_reads.is_empty() {
            return;
        }
        let mut acked: Vec<u64> = self.append_acked.values().copied().collect();
        acked.push(self.append_seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&q) = acked.get(self.quorum() - 1) else {
            return;
        };
        while self.quorum_reads.front().is_some_and(|(_, s, _)| *s <= q) {
            let (id, _, index) = self.quorum_reads.pop_front().expect("front checked");
            self.leave(Command::ReadReady { id, index });
        }
    }
}
