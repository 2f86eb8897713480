//! The IO shell around the protocol core: one thread owns the `Raft`, the WAL, the state
//! machine and the waiting clients. It drains a batch of events, steps the core, persists what
//! the commands say (one fsync per batch), then sends, applies and answers.

use crate::core::{
    Command, Config, Entry, HardState, Index, Input, Membership, Message, NodeId, Payload, Raft,
    Reject, Role, SnapshotMeta,
};
use crate::kv::{Kv, Outcome};
use crate::transport::Transport;
use crate::wal::{self, Record, StorageError, Wal};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// An answer for an HTTP client: a status code and a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body }
    }
    pub fn error(status: u16, error: &str, definite: bool) -> Reply {
        Reply {
            status,
            body: json!({"error": error, "definite": definite}),
        }
    }
    fn rejected(reason: &Reject) -> Reply {
        match reason {
            Reject::NotLeader { leader } => Reply {
                status: 503,
                body: json!({"error":"not-leader","leader":leader,"definite":true}),
            },
            Reject::Transferring => Reply::error(503, "leadership-transfer", true),
            Reject::ConfigChangeInProgress => Reply::error(409, "config-change-in-progress", true),
            Reject::InvalidConfigChange => Reply::error(400, "invalid-config-change", true),
        }
    }
}

pub type Responder = oneshot::Sender<Reply>;

pub enum Event {
    /// From the ticker thread, every tick interval.
    Tick,
    Propose {
        data: Value,
        reply: Responder,
    },
    Read {
        key: String,
        reply: Responder,
    },
    Peer {
        from: NodeId,
        addr: String,
        msg: Message,
    },
    Log {
        from: Index,
        reply: Responder,
    },
    Transfer {
        to: NodeId,
        reply: Responder,
    },
    /// A snapshot written by the background writer (or its error).
    SnapshotWritten {
        meta: SnapshotMeta,
        data: Value,
        tmp: Result<PathBuf, String>,
    },
    /// Add (`Some(addr)`) or remove (`None`) a voter.
    Membership {
        id: NodeId,
        addr: Option<String>,
        reply: Responder,
    },
}

/// What `/status` shows, refreshed after every batch.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub last_index: Index,
    pub snapshot_index: Index,
    pub voters: Vec<NodeId>,
}

/// The WAL is rewritten (dropping compacted entries) only past this size: a rewrite costs
/// several fsyncs on the node thread.
const WAL_REWRITE_BYTES: u64 = 64 << 20;

pub struct NodeOptions {
    pub core: Config,
    /// The node's own event channel, for results of background work.
    pub events: std::sync::mpsc::Sender<Event>,
    pub listen: String,
    pub data_dir: PathBuf,
    pub initial: Membership,
    pub snapshot_threshold: u64,
    pub request_timeout: Duration,
    pub tick: Duration,
}

struct Waiter {
    reply: Responder,
    index: Option<Index>,
}

pub struct Node {
    raft: Raft,
    wal: Wal,
    kv: Kv,
    data_dir: PathBuf,
    transport: Transport,
    status: Arc<Mutex<Status>>,
    snapshot: Option<(SnapshotMeta, Value)>,
    snapshot_threshold: u64,
    snapshot_in_progress: bool,
    events: std::sync::mpsc::Sender<Event>,
    request_timeout: Duration,
    tick: Duration,
    ack_before_fsync: bool,
    boot: u64,
    next_id: u64,
    proposals: HashMap<String, Waiter>,
    by_index: BTreeMap<Index, String>,
    reads: HashMap<u64, (String, Responder)>,
    ready_reads: BTreeMap<Index, Vec<u64>>,
    /// Request deadlines on the loop's own timer clock (see `run`), oldest first.
    expiry: VecDeque<(Duration, Pending)>,
    clock: Duration,
    mono_clock: Duration,
    mono_last: Instant,
    tick_clock: Duration,
    pending: Vec<Command>,
    last_role: (Role, u64, Option<NodeId>),
    last_commit_log: (Instant, Index),
}

#[derive(Clone, Debug)]
enum Pending {
    Proposal(String),
    Read(u64),
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Node {
    /// Recovers state from `data_dir` (snapshot, then WAL) and builds the node.
    pub fn open(
        opts: NodeOptions,
        rt: tokio::runtime::Handle,
        status: Arc<Mutex<Status>>,
    ) -> Result<Node, StorageError> {
        std::fs::create_dir_all(&opts.data_dir).map_err(|source| StorageError::Io {
            path: opts.data_dir.clone(),
            source,
        })?;
        let id = opts.core.id.clone();
        let snapshot = wal::load_snapshot(&opts.data_dir)?;
        let (wal, rec) = Wal::open(&opts.data_dir)?;
        if let Some((offset, dropped)) = rec.truncated {
            crate::log!(
                "[{id}] WAL recovered: torn tail truncated at offset {offset} ({dropped} bytes dropped)"
            );
        }
        crate::log!(
            "[{id}] WAL recovered: {} records, term {}, vote {:?}, {} entries after index {}",
            rec.records,
            rec.hard_state.term,
            rec.hard_state.vote,
            rec.entries.len(),
            rec.base
        );
        let (meta, kv) = match &snapshot {
            Some((meta, data)) => {
                let kv = Kv::restore(data.clone()).map_err(|e| StorageError::Corrupt {
                    path: opts.data_dir.join("snapshot.json"),
                    detail: e.to_string(),
                })?;
                crate::log!(
                    "[{id}] snapshot loaded at index {} term {}",
                    meta.index,
                    meta.term
                );
                (meta.clone(), kv)
            }
            None => (SnapshotMeta::default(), Kv::default()),
        };
        let bugs = opts.core.bugs;
        let raft = Raft::new(opts.core, rec.hard_state, meta, rec.entries, opts.initial);
        let mut transport = Transport::new(id.clone(), opts.listen.clone(), rt);
        transport.set_peers(raft.membership());
        let now = Instant::now();
        Ok(Node {
            last_role: (raft.role(), raft.term(), None),
            raft,
            wal,
            kv,
            data_dir: opts.data_dir,
            transport,
            status,
            snapshot,
            snapshot_threshold: opts.snapshot_threshold,
            snapshot_in_progress: false,
            events: opts.events,
            request_timeout: opts.request_timeout,
            tick: opts.tick,
            ack_before_fsync: bugs.ack_before_fsync,
            boot: wall_ms(),
            next_id: 0,
            proposals: HashMap::new(),
            by_index: BTreeMap::new(),
            reads: HashMap::new(),
            ready_reads: BTreeMap::new(),
            expiry: VecDeque::new(),
            clock: Duration::ZERO,
            mono_clock: Duration::ZERO,
            mono_last: now,
            tick_clock: Duration::ZERO,
            pending: Vec::new(),
            last_commit_log: (now, 0),
        })
    }

    fn id(&self) -> &str {
        self.raft.id()
    }

    fn step(&mut self, input: Input) {
        let cmds = self.raft.step(input);
        self.pending.extend(cmds);
    }

    /// Runs until every event sender is gone.
    ///
    /// Wake-ups come from a ticker thread (relative sleeps), never from timed waits on an
    /// absolute monotonic deadline: under libfaketime the process's monotonic clock can differ
    /// from the kernel's, and such waits then hang. Timer time is the larger of the ticks
    /// counted and the forward steps of the monotonic clock (jumps back are ignored; a pause
    /// or a jump forward counts).
    pub fn run(mut self, rx: Receiver<Event>) -> Result<(), StorageError> {
        self.publish_status();
        let ticker = self.events.clone();
        let tick = self.tick;
        std::thread::Builder::new()
            .name("raft-ticker".into())
            .spawn(move || {
                while ticker.send(Event::Tick).is_ok() {
                    std::thread::sleep(tick);
                }
            })
            .map_err(|source| StorageError::Io {
                path: self.data_dir.clone(),
                source,
            })?;
        let mut next_tick = Duration::ZERO;
        loop {
            match rx.recv() {
                Ok(Event::Tick) => self.tick_clock += self.tick,
                Ok(ev) => self.handle(ev),
                Err(_) => return Ok(()),
            }
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(Event::Tick) => self.tick_clock += self.tick,
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
            }
            let elapsed = self.update_clock();
            if elapsed >= next_tick {
                self.step(Input::Tick {
                    now_ms: elapsed.as_millis() as u64,
                    wall_ms: wall_ms(),
                });
                next_tick = elapsed + self.tick;
                self.expire(elapsed);
            }
            self.step(Input::Flush);
            self.execute()?;
            self.maybe_snapshot()?;
            self.publish_status();
        }
    }

    /// Advances the timer clock: the larger of ticks counted and forward monotonic steps.
    fn update_clock(&mut self) -> Duration {
        let now = Instant::now();
        self.mono_clock += now.saturating_duration_since(self.mono_last);
        self.mono_last = now;
        self.clock = self.clock.max(self.mono_clock.max(self.tick_clock));
        self.clock
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Tick => {}
            Event::Peer { from, addr, msg } => {
                self.transport.learn(&from, &addr);
                self.step(Input::Receive { from, msg })
            }
            Event::Propose { data, reply } => {
                self.next_id += 1;
                let id = format!("{}-{}-{}", self.id(), self.boot, self.next_id);
                self.proposals
                    .insert(id.clone(), Waiter { reply, index: None });
                self.expiry.push_back((
                    self.clock + self.request_timeout,
                    Pending::Proposal(id.clone()),
                ));
                self.step(Input::Propose { id, data });
            }
            Event::Read { key, reply } => {
                // The core must judge a lease at the time the read is handled, not at the last
                // tick (the process may have been paused in between).
                let now = self.update_clock();
                self.step(Input::Tick {
                    now_ms: now.as_millis() as u64,
                    wall_ms: wall_ms(),
                });
                self.next_id += 1;
                let id = self.next_id;
                self.reads.insert(id, (key, reply));
                self.expiry
                    .push_back((self.clock + self.request_timeout, Pending::Read(id)));
                self.step(Input::Read { id });
            }
            Event::SnapshotWritten { meta, data, tmp } => {
                self.snapshot_in_progress = false;
                match tmp {
                    Ok(tmp) if meta.index > self.raft.log().snapshot().index => {
                        if let Err(e) = wal::publish_snapshot(&self.data_dir, &tmp) {
                            crate::log!("[{}] snapshot not published: {e}", self.id());
                            return;
                        }
                        crate::log!(
                            "[{}] snapshot taken at index {} term {}",
                            self.id(),
                            meta.index,
                            meta.term
                        );
                        self.snapshot = Some((meta.clone(), data));
                        self.step(Input::SnapshotTaken { meta });
                    }
                    Ok(tmp) => {
                        let _ = std::fs::remove_file(tmp);
                    }
                    Err(e) => crate::log!("[{}] snapshot failed: {e}", self.id()),
                }
            }
            Event::Log { from, reply } => {
                let entries = serde_json::to_value(self.kv.log_from(from)).unwrap_or(Value::Null);
                let _ = reply.send(Reply::ok(entries));
            }
            Event::Transfer { to, reply } => {
                if self.raft.role() != Role::Leader {
                    let leader = self.raft.leader().cloned();
                    let _ = reply.send(Reply::rejected(&Reject::NotLeader { leader }));
                } else if !self.raft.membership().contains(&to) || to == self.id() {
                    let _ = reply.send(Reply::error(400, "unknown-target", true));
                } else {
                    self.step(Input::TransferLeader { to });
                    let _ = reply.send(Reply::ok(json!({"started": true})));
                }
            }
            Event::Membership { id, addr, reply } => {
                let mut membership = self.raft.membership().clone();
                match addr {
                    Some(a) => membership.voters.insert(id, a),
                    None => membership.voters.remove(&id),
                };
                self.next_id += 1;
                let pid = format!("{}-{}-{}", self.id(), self.boot, self.next_id);
                self.proposals
                    .insert(pid.clone(), Waiter { reply, index: None });
                self.expiry.push_back((
                    self.clock + self.request_timeout,
                    Pending::Proposal(pid.clone()),
                ));
                self.step(Input::ChangeMembership {
                    id: pid,
                    membership,
                });
            }
        }
    }

    /// Answers requests that waited longer than the request timeout.
    fn expire(&mut self, now: Duration) {
        while self.expiry.front().is_some_and(|(t, _)| *t <= now) {
            let (_, p) = self.expiry.pop_front().expect("front checked");
            match p {
                Pending::Proposal(id) => {
                    if let Some(w) = self.proposals.remove(&id) {
                        if let Some(i) = w.index {
                            self.by_index.remove(&i);
                        }
                        let _ = w.reply.send(Reply::error(504, "timeout", false));
                    }
                }
                Pending::Read(id) => {
                    if let Some((_, reply)) = self.reads.remove(&id) {
                        // A read has no effect: failing it is always safe.
                        let _ = reply.send(Reply::error(504, "timeout", true));
                    }
                }
            }
        }
    }

    fn execute(&mut self) -> Result<(), StorageError> {
        let cmds = std::mem::take(&mut self.pending);
        let mut outputs = Vec::new();
        let mut need_sync = false;
        for cmd in cmds {
            match cmd {
                Command::PersistHardState(hs) => self.wal.append(&Record::HardState(hs)),
                Command::PersistEntries(entries) => {
                    for e in entries {
                        self.wal.append(&Record::Entry(e));
                    }
                }
                Command::Sync => need_sync = true,
                Command::InstallSnapshot { meta, data } => self.install_snapshot(meta, data)?,
                Command::CompactLog { meta } => {
                    if self.wal.size() > WAL_REWRITE_BYTES {
                        self.rewrite_wal(&meta)?;
                    }
                }
                other => outputs.push(other),
            }
        }
        if need_sync {
            self.wal.sync()?;
        } else if self.ack_before_fsync && self.wal.buffered() > (1 << 20) {
            // BUG ack-before-fsync: records reach the file only in large, unsynced chunks.
            self.wal.write_out()?;
        }
        for cmd in outputs {
            self.output(cmd);
        }
        Ok(())
    }

    fn output(&mut self, cmd: Command) {
        match cmd {
            Command::Send { to, msg } => self.transport.send(&to, msg),
            Command::SendSnapshot { to, term } => {
                if let Some((meta, data)) = &self.snapshot {
                    let msg = Message::InstallSnapshot {
                        term,
                        meta: meta.clone(),
                        data: data.clone(),
                    };
                    self.transport.send(&to, msg);
                }
            }
            Command::Apply { entries } => {
                for e in &entries {
                    self.apply(e);
                }
                self.serve_reads();
            }
            Command::Proposed { id, index } => {
                if let Some(w) = self.proposals.get_mut(&id) {
                    w.index = Some(index);
                    self.by_index.insert(index, id);
                }
            }
            Command::Rejected { id, reason } => {
                if let Some(w) = self.proposals.remove(&id) {
                    let _ = w.reply.send(Reply::rejected(&reason));
                }
            }
            Command::ReadReady { id, index } => {
                self.ready_reads.entry(index).or_default().push(id);
                self.serve_reads();
            }
            Command::ReadRejected { id, reason } => {
                if let Some((_, reply)) = self.reads.remove(&id) {
                    let _ = reply.send(Reply::rejected(&reason));
                }
            }
            Command::PersistHardState(_)
            | Command::PersistEntries(_)
            | Command::Sync
            | Command::InstallSnapshot { .. }
            | Command::CompactLog { .. } => unreachable!("handled before outputs"),
        }
    }

    fn apply(&mut self, e: &Entry) {
        let outcome = self.kv.apply(e);
        if let Payload::Config { membership, .. } = &e.payload {
            let voters: Vec<&String> = membership.voters.keys().collect();
            crate::log!(
                "[{}] membership committed at index {}: {voters:?}",
                self.id(),
                e.index
            );
        }
        let Some(id) = self.by_index.remove(&e.index) else {
            return;
        };
        let Some(w) = self.proposals.remove(&id) else {
            return;
        };
        let reply = if e.payload.id() != id {
            // Another leader's entry won this index: ours can never commit.
            Reply::error(503, "superseded", true)
        } else {
            match outcome {
                Some(Outcome::Ok(v)) => Reply::ok(v),
                Some(Outcome::Failed { error, status }) => Reply::error(status, error, true),
                None => Reply::ok(json!({})),
            }
        };
        let _ = w.reply.send(reply);
    }

    fn serve_reads(&mut self) {
        let applied = self.kv.applied();
        while let Some((&index, _)) = self.ready_reads.first_key_value() {
            if index > applied {
                break;
            }
            let (_, ids) = self.ready_reads.pop_first().expect("first checked");
            for id in ids {
                if let Some((key, reply)) = self.reads.remove(&id) {
                    let _ = reply.send(Reply::ok(json!({"value": self.kv.read(&key)})));
                }
            }
        }
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Value) -> Result<(), StorageError> {
        let kv = Kv::restore(data.clone()).map_err(|e| StorageError::Corrupt {
            path: self.data_dir.join("snapshot.json"),
            detail: format!("snapshot from leader: {e}"),
        })?;
        wal::save_snapshot(&self.data_dir, &meta, &data)?;
        self.kv = kv;
        crate::log!(
            "[{}] snapshot installed from leader at index {} term {}",
            self.id(),
            meta.index,
            meta.term
        );
        // Proposals at covered indexes were decided elsewhere: their outcome is unknown here.
        let covered: Vec<Index> = self
            .by_index
            .range(..=meta.index)
            .map(|(i, _)| *i)
            .collect();
        for i in covered {
            if let Some(id) = self.by_index.remove(&i)
                && let Some(w) = self.proposals.remove(&id)
            {
                let _ = w.reply.send(Reply::error(504, "outcome-unknown", false));
            }
        }
        self.snapshot = Some((meta.clone(), data));
        self.rewrite_wal(&meta)
    }

    fn rewrite_wal(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        let hs: HardState = self.raft.hard_state().clone();
        let snap = self.raft.log().snapshot().clone();
        let base = if snap.index >= meta.index {
            (snap.index, snap.term)
        } else {
            (meta.index, meta.term)
        };
        let entries: Vec<Entry> = self
            .raft
            .log()
            .entries()
            .iter()
            .filter(|e| e.index > base.0)
            .cloned()
            .collect();
        self.wal.rewrite(&hs, base, &entries)
    }

    /// Starts a background snapshot once enough entries were applied since the last one.
    fn maybe_snapshot(&mut self) -> Result<(), StorageError> {
        let applied = self.kv.applied();
        let base = self.raft.log().snapshot().index;
        if self.snapshot_in_progress || applied < base + self.snapshot_threshold {
            return Ok(());
        }
        let Some(meta) = self.raft.snapshot_meta_at(applied) else {
            return Ok(());
        };
        self.snapshot_in_progress = true;
        let kv = self.kv.clone();
        let dir = self.data_dir.clone();
        let events = self.events.clone();
        std::thread::spawn(move || {
            let data = kv.snapshot();
            let tmp = wal::write_snapshot_tmp(&dir, &meta, &data).map_err(|e| e.to_string());
            let _ = events.send(Event::SnapshotWritten { meta, data, tmp });
        });
        Ok(())
    }

    fn publish_status(&mut self) {
        let role = self.raft.role();
        let term = self.raft.term();
        let leader = self.raft.leader().cloned();
        let current = (role, term, leader.clone());
        if current != self.last_role {
            let id = self.id().to_string();
            match role {
                Role::Leader => crate::log!("[{id}] became leader in term {term}"),
                Role::Candidate => crate::log!("[{id}] became candidate in term {term}"),
                Role::PreCandidate => crate::log!("[{id}] became pre-candidate (term {term})"),
                Role::Follower => {
                    crate::log!("[{id}] became follower in term {term}, leader {leader:?}")
                }
            }
            self.last_role = current;
        }
        self.transport.set_peers(self.raft.membership());
        let commit = self.raft.commit_index();
        let now = Instant::now();
        if commit != self.last_commit_log.1 && now - self.last_commit_log.0 > Duration::from_secs(5)
        {
            crate::log!(
                "[{}] commit index {commit}, applied {}",
                self.id(),
                self.kv.applied()
            );
            self.last_commit_log = (now, commit);
        }
        let mut s = self.status.lock().expect("status lock");
        *s = Status {
            role: role.protocol_name(),
            term,
            leader,
            commit_index: commit,
            applied_index: self.kv.applied(),
            last_index: self.raft.log().last_index(),
            snapshot_index: self.raft.log().snapshot().index,
            voters: self.raft.membership().voters.keys().cloned().collect(),
        };
    }
}
