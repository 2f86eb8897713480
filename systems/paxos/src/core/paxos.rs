//! The pure Multi-Paxos replica: `step(input) -> commands`. No IO, no clock reads, no threads:
//! time arrives in `Input::Tick`, randomness from a seeded generator, and everything the node
//! must do (persist, sync, send, apply, answer) leaves as an ordered list of `Command`s that the
//! shell executes in order. Every replica is proposer, acceptor and learner; the concerns live
//! in `acceptor.rs`, `proposer.rs`, `learner.rs` and `reads.rs`.

use super::bugs::Bugs;
use super::log::SlotLog;
use super::message::Message;
use super::types::{Accepted, Ballot, Durable, Entry, NodeId, Payload, Role, Slot, SnapshotMeta};
use faultline_node::read_rounds::ReadRounds;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Slots per Accept message (and per Learn).
    pub max_batch: usize,
    /// Serve reads from a leader lease (monotonic clock, drift margin) instead of a quorum round.
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
            lease_reads: false,
            bugs: Bugs::default(),
            seed: 1,
        }
    }

    /// The correct lease: a fifth of the minimum election timeout is kept back for clock-rate
    /// drift between the leader and the acceptors that granted it.
    pub(super) fn lease_ms(&self) -> u64 {
        self.election_min_ms - self.election_min_ms / 5
    }

    /// Unchosen proposals are sent again to acceptors that have not answered after this long.
    pub(super) fn retransmit_ms(&self) -> u64 {
        self.heartbeat_ms * 2
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// `now_ms`: the protocol's monotonic clock (timers, the lease); `wall_ms`: its wall clock
    /// (only the buggy lease reads it).
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
    Read {
        id: u64,
    },
    /// The shell wrote a durable snapshot covering every slot up to `meta.slot`.
    SnapshotTaken {
        meta: SnapshotMeta,
    },
    /// End of a batch of inputs: send what was proposed (batching).
    Flush,
    /// Start phase 1 now, as an election timeout would: leadership transfer, and the trigger
    /// a choreographed scenario needs when the timers are set long.
    Campaign,
}

/// Why a request was refused. Every refusal is definite: the request had no effect.
#[derive(Clone, Debug, PartialEq)]
pub enum Reject {
    NotLeader { leader: Option<NodeId> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// The acceptor's promise: durable before any later command.
    PersistPromise(Ballot),
    /// Votes (which also raise the promise to their ballot on recovery).
    PersistAccepted(Vec<Accepted>),
    /// Make every Persist* so far durable before executing any later command.
    Sync,
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Send our latest snapshot to `to` as an InstallSnapshot.
    SendSnapshot {
        to: NodeId,
    },
    /// Replace the state machine with this snapshot and persist it (log already adjusted).
    InstallSnapshot {
        meta: SnapshotMeta,
        data: Value,
    },
    /// The log dropped slots up to `meta.slot`: the WAL may drop them too.
    CompactLog {
        meta: SnapshotMeta,
    },
    /// Chosen values, in slot order with no gaps, to apply to the state machine.
    Apply {
        entries: Vec<Entry>,
    },
    Proposed {
        id: String,
        slot: Slot,
    },
    Rejected {
        id: String,
        reason: Reject,
    },
    /// The read may be served once the state machine has applied `index`.
    ReadReady {
        id: u64,
        index: Slot,
    },
    ReadRejected {
        id: u64,
        reason: Reject,
    },
}

/// The leader's phase-2 state of one slot it proposed in its ballot and has not seen chosen.
#[derive(Clone, Debug)]
pub(super) struct Proposal {
    pub payload: Payload,
    pub acks: BTreeSet<NodeId>,
    pub sent_at: u64,
}

/// What one acceptor said in phase 1.
#[derive(Clone, Debug)]
pub(super) struct PromiseInfo {
    pub accepted: Vec<Accepted>,
    pub snapshot: Slot,
    pub commit: Slot,
}

/// What the leader knows of another replica.
#[derive(Clone, Debug, Default)]
pub(super) struct Peer {
    pub acked_seq: u64,
    pub active: bool,
}

pub struct Paxos {
    pub(super) cfg: Config,
    pub(super) voters: BTreeSet<NodeId>,
    /// The acceptor's promise: no vote for a lower ballot.
    pub(super) promised: Ballot,
    /// Our own ballot while candidate or leader.
    pub(super) ballot: Ballot,
    /// The highest round seen anywhere, so our next ballot outbids it.
    pub(super) max_round: u64,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) log: SlotLog,
    /// Every slot up to `commit` is known chosen (and applied: the core applies at once).
    pub(super) commit: Slot,
    pub(super) applied: Slot,
    pub(super) now: u64,
    pub(super) wall: u64,
    pub(super) started: Option<u64>,
    pub(super) election_deadline: u64,
    pub(super) heartbeat_due: u64,
    pub(super) check_quorum_due: u64,
    pub(super) last_leader_contact: u64,
    pub(super) catch_up_due: u64,
    // phase 1
    pub(super) promises: BTreeMap<NodeId, PromiseInfo>,
    pub(super) phase1_from: Slot,
    // phase 2 (leader)
    pub(super) proposals: BTreeMap<Slot, Proposal>,
    pub(super) unsent: Vec<Entry>,
    pub(super) next_slot: Slot,
    pub(super) commit_sent: Slot,
    /// The last slot phase 1 recovered: reads wait until it is chosen.
    pub(super) recovered_end: Slot,
    pub(super) peers: BTreeMap<NodeId, Peer>,
    // reads
    pub(super) reads: ReadRounds,
    pub(super) reads_waiting: Vec<u64>,
    pub(super) lease_until_mono: u64,
    pub(super) lease_until_wall: u64,
    rng: u64,
    unsynced: bool,
    out: Vec<Command>,
}

impl Paxos {
    /// A replica restored from what it persisted (all empty for a fresh one) among `voters`
    /// (which include `cfg.id`).
    pub fn new(cfg: Config, voters: BTreeSet<NodeId>, durable: Durable) -> Paxos {
        let top_vote = durable.accepted.iter().map(|a| &a.ballot).max().cloned();
        // A vote at a ballot is a promise for it: recover the higher of the two.
        let promised = top_vote.unwrap_or_default().max(durable.promised);
        let applied = durable.snapshot.slot;
        let rng = cfg.seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut px = Paxos {
            ballot: Ballot::default(),
            max_round: promised.round,
            promised,
            role: Role::Follower,
            leader: None,
            log: SlotLog::new(durable.snapshot, durable.accepted),
            commit: applied,
            applied,
            now: 0,
            wall: 0,
            started: None,
            election_deadline: 0,
            heartbeat_due: 0,
            check_quorum_due: 0,
            last_leader_contact: 0,
            catch_up_due: 0,
            promises: BTreeMap::new(),
            phase1_from: 0,
            proposals: BTreeMap::new(),
            unsent: Vec::new(),
            next_slot: 0,
            commit_sent: 0,
            recovered_end: 0,
            peers: BTreeMap::new(),
            reads: ReadRounds::default(),
            reads_waiting: Vec::new(),
            lease_until_mono: 0,
            lease_until_wall: 0,
            rng,
            unsynced: false,
            out: Vec::new(),
            cfg,
            voters,
        };
        px.reset_election_timer();
        px
    }

    // ----- read-only views for the shell and tests -----

    pub fn id(&self) -> &str {
        &self.cfg.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn promised(&self) -> &Ballot {
        &self.promised
    }
    /// The ballot this replica leads in (or tries to), else the one it promised.
    pub fn generation(&self) -> &Ballot {
        if self.role == Role::Follower {
            &self.promised
        } else {
            &self.ballot
        }
    }
    pub fn commit_index(&self) -> Slot {
        self.commit
    }
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }
    pub fn log(&self) -> &SlotLog {
        &self.log
    }
    /// The durable state as the core believes it (for tests and the WAL rewrite).
    pub fn durable(&self) -> Durable {
        Durable {
            promised: self.promised.clone(),
            accepted: self.log.votes(self.log.snapshot().slot + 1, Slot::MAX),
            snapshot: self.log.snapshot().clone(),
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Command> {
        match input {
            Input::Tick { now_ms, wall_ms } => self.tick(now_ms, wall_ms),
            Input::Receive { from, msg } => self.receive(from, msg),
            Input::Propose { id, data } => self.propose(id, data),
            Input::Read { id } => self.read(id),
            Input::SnapshotTaken { meta } => self.snapshot_taken(meta),
            Input::Flush => self.flush(),
            Input::Campaign => self.start_phase1(),
        }
        std::mem::take(&mut self.out)
    }

    // ----- output: persistence first, then a Sync before anything that depends on it -----

    pub(super) fn persist(&mut self, cmd: Command) {
        self.out.push(cmd);
        self.unsynced = true;
    }

    /// Bookkeeping for the shell that depends on nothing durable.
    pub(super) fn note(&mut self, cmd: Command) {
        self.out.push(cmd);
    }

    pub(super) fn output(&mut self, cmd: Command) {
        if self.unsynced {
            self.out.push(Command::Sync);
            self.unsynced = false;
        }
        self.out.push(cmd);
    }

    pub(super) fn send(&mut self, to: &str, msg: Message) {
        self.output(Command::Send {
            to: to.to_string(),
            msg,
        });
    }

    pub(super) fn others(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .filter(|v| **v != self.cfg.id)
            .cloned()
            .collect()
    }

    pub(super) fn broadcast(&mut self, msg: Message) {
        for p in self.others() {
            self.send(&p, msg.clone());
        }
    }

    pub(super) fn quorum(&self) -> usize {
        let n = self.voters.len();
        // BUG quorum-off-by-one: n/2 "is a majority", so two disjoint halves both choose.
        if self.cfg.bugs.quorum_off_by_one {
            (n / 2).max(1)
        } else {
            n / 2 + 1
        }
    }

    // ----- time and roles -----

    fn random(&mut self) -> u64 {
        // splitmix64: deterministic from the seed, good enough to spread election timeouts.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn reset_election_timer(&mut self) {
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
        if self.started.is_none() {
            self.started = Some(self.now);
            self.reset_election_timer();
        }
        match self.role {
            Role::Leader => {
                if self.now >= self.check_quorum_due {
                    self.check_quorum();
                    if self.role != Role::Leader {
                        return;
                    }
                }
                if self.now >= self.heartbeat_due {
                    self.broadcast_heartbeat();
                }
                self.retransmit();
            }
            Role::Candidate if self.now >= self.election_deadline => self.start_phase1(),
            Role::Candidate => {
                if self.now >= self.heartbeat_due {
                    self.resend_prepare();
                }
            }
            Role::Follower => {
                if self.now >= self.election_deadline {
                    self.start_phase1();
                }
            }
        }
    }

    /// A leader that has not heard from a quorum for an election timeout steps down, so clients
    /// are sent elsewhere and `/status` stops claiming leadership.
    fn check_quorum(&mut self) {
        self.check_quorum_due = self.now + self.cfg.election_max_ms;
        let id = self.cfg.id.clone();
        let active = self
            .voters
            .iter()
            .filter(|v| **v == id || self.peers.get(*v).is_some_and(|p| p.active))
            .count();
        for p in self.peers.values_mut() {
            p.active = false;
        }
        if active < self.quorum() {
            self.become_follower(None);
        }
    }

    /// True while the replica must not promise a ballot to anyone but the leader it follows:
    /// it leads, heard from its leader within the minimum election timeout, or (when leases are
    /// in use) started less than that ago, as it may have acknowledged a lease before a restart.
    /// This is what makes a leader's lease safe.
    pub(super) fn in_lease(&self) -> bool {
        let leases = self.cfg.lease_reads || self.cfg.bugs.lease_no_drift_margin;
        let started = self.started.unwrap_or(0);
        self.role == Role::Leader
            || (leases && self.now < started + self.cfg.election_min_ms)
            || (self.leader.is_some()
                && self.now < self.last_leader_contact + self.cfg.election_min_ms)
    }

    pub(super) fn note_round(&mut self, round: u64) {
        self.max_round = self.max_round.max(round);
    }

    pub(super) fn become_follower(&mut self, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.abandon_reads(leader.clone());
            self.proposals.clear();
            self.unsent.clear();
            self.peers.clear();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.promises.clear();
        self.reset_election_timer();
    }

    /// Accepts `ballot`'s owner as the leader we follow (it reached us at or above our promise).
    pub(super) fn follow(&mut self, ballot: &Ballot) {
        if self.role != Role::Follower || self.leader.as_deref() != Some(ballot.node.as_str()) {
            self.become_follower(Some(ballot.node.clone()));
        }
        self.last_leader_contact = self.now;
        self.reset_election_timer();
    }

    fn receive(&mut self, from: NodeId, msg: Message) {
        if !self.voters.contains(&from) {
            return;
        }
        match msg {
            Message::Prepare { ballot, from: slot } => self.handle_prepare(from, ballot, slot),
            Message::Promise {
                ballot,
                accepted,
                snapshot,
                commit,
            } => self.handle_promise(
                from,
                ballot,
                PromiseInfo {
                    accepted,
                    snapshot,
                    commit,
                },
            ),
            Message::Accept {
                ballot,
                entries,
                commit,
            } => self.handle_accept(from, ballot, entries, commit),
            Message::Accepted {
                ballot,
                slots,
                commit,
            } => {
                self.catch_up(&from, commit);
                self.handle_accepted(from, ballot, slots)
            }
            Message::Nack { ballot, promised } => self.handle_nack(ballot, promised),
            Message::Commit { ballot, commit } => self.handle_commit(from, ballot, commit),
            Message::Heartbeat {
                ballot,
                commit,
                seq,
            } => self.handle_heartbeat(from, ballot, commit, seq),
            Message::HeartbeatAck {
                ballot,
                seq,
                commit,
            } => {
                self.catch_up(&from, commit);
                self.handle_heartbeat_ack(from, ballot, seq)
            }
            Message::CatchUp { from: slot } => self.handle_catch_up(from, slot),
            Message::Learn { entries, commit } => self.handle_learn(from, entries, commit),
            Message::InstallSnapshot { meta, data } => self.handle_install_snapshot(meta, data),
        }
    }
}
