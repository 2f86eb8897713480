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
use faultline_node::read_rounds::ReadRounds;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

mod election;
mod membership;
mod reads;
mod replication;

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

/// A leader lease as `/status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// Milliseconds left on the timer clock.
    Remaining(u64),
    /// A wall-clock deadline (ms since the epoch).
    WallUntil(u64),
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
    reads: ReadRounds,
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
            reads: ReadRounds::default(),
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
