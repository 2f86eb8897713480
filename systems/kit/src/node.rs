//! The node loop: one thread owns the replica, the WAL, the state machine and the waiting
//! clients. It drains a batch of events, steps the replica, persists what the effects say
//! (one fsync per batch, before anything leaves: group commit), then sends, applies and
//! answers.

use crate::clock::{self, TimerClock};
use crate::failpoint::{Failpoints, Hit};
use crate::kv::{Kv, Outcome};
use crate::replica::snapshot_index;
use crate::replica::{
    Committed, Effect, Index, Input, NodeId, Reject, Replica, ReplicaStatus, Role,
};
use crate::transport::Transport;
use crate::wal::{self, Snapshot, StorageError, Wal};
use faultline_proto::ErrorBody;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
            body: ErrorBody::new(error, definite).to_value(),
        }
    }

    pub fn rejected(reason: &Reject) -> Reply {
        match reason {
            Reject::NotLeader { leader } => Reply {
                status: 503,
                body: ErrorBody::not_leader(leader.clone()).to_value(),
            },
            Reject::Refused { status, error } => Reply::error(*status, error, true),
        }
    }

    fn outcome(outcome: Outcome) -> Reply {
        match outcome {
            Outcome::Ok(v) => Reply::ok(v),
            Outcome::Failed { error, status } => Reply::error(status, &error, true),
        }
    }
}

pub type Responder = oneshot::Sender<Reply>;

pub enum Event<M> {
    /// From the ticker thread, every tick interval.
    Tick,
    /// A client command (a `kv::Command` as JSON).
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
        msg: M,
    },
    Log {
        from: Index,
        reply: Responder,
    },
    Admin {
        name: String,
        body: Value,
        reply: Responder,
    },
    /// A snapshot written by the background writer (or its error).
    SnapshotWritten {
        snap: Snapshot,
        tmp: Result<PathBuf, String>,
    },
}

/// What `/status` shows, refreshed after every batch.
#[derive(Clone, Debug)]
pub struct View {
    pub status: ReplicaStatus,
    pub applied_index: Index,
    pub snapshot_index: Index,
    /// Peer id -> address (client requests are forwarded there).
    pub peers: HashMap<NodeId, String>,
}

impl Default for View {
    fn default() -> View {
        View {
            status: ReplicaStatus {
                role: Role::Follower,
                generation: 0,
                leader: None,
                commit_index: 0,
                last_index: 0,
                lease_until_ms: None,
                extra: serde_json::Map::new(),
            },
            applied_index: 0,
            snapshot_index: 0,
            peers: HashMap::new(),
        }
    }
}

/// The WAL is rewritten (dropping compacted entries) only past this size: a rewrite costs
/// several fsyncs on the node thread.
const WAL_REWRITE_BYTES: u64 = 64 << 20;

/// Settings of the node loop.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    pub snapshot_threshold: u64,
    pub request_timeout: Duration,
    pub tick: Duration,
    /// Planted bug `ack-before-fsync`: the WAL reaches the file only in 1 MiB chunks.
    pub lazy_wal: bool,
    /// Off only for a planted bug: duplicate request ids are applied again.
    pub dedupe_requests: bool,
}

struct Waiter {
    reply: Responder,
    index: Option<Index>,
}

#[derive(Clone, Debug)]
enum Pending {
    Proposal(String),
    Read(u64),
}

pub struct Node<R: Replica> {
    id: NodeId,
    replica: R,
    wal: Wal<R::Record>,
    kv: Kv,
    data_dir: PathBuf,
    transport: Transport<R::Msg>,
    view: Arc<Mutex<View>>,
    failpoints: Arc<Failpoints>,
    snapshot: Option<Snapshot>,
    snapshot_in_progress: bool,
    events: Sender<Event<R::Msg>>,
    opts: LoopOptions,
    boot: i64,
    next_id: u64,
    proposals: HashMap<String, Waiter>,
    by_index: BTreeMap<Index, String>,
    reads: HashMap<u64, (String, Responder)>,
    ready_reads: BTreeMap<Index, Vec<u64>>,
    /// Request deadlines on the timer clock, oldest first.
    expiry: VecDeque<(Duration, Pending)>,
    timer: TimerClock,
    pending: Vec<Effect<R::Msg, R::Record>>,
    last_commit_log: (Instant, Index),
}

/// The node's storage as found at start.
pub struct Storage<R> {
    pub wal: Wal<R>,
    pub records: Vec<R>,
    pub snapshot: Option<Snapshot>,
}

/// Opens `data_dir`: the latest snapshot and the WAL (a torn tail is cut off and logged).
pub fn open_storage<R: serde::Serialize + serde::de::DeserializeOwned>(
    id: &str,
    data_dir: &std::path::Path,
) -> Result<Storage<R>, StorageError> {
    std::fs::create_dir_all(data_dir).map_err(wal::io_err(data_dir))?;
    let snapshot = wal::load_snapshot(data_dir)?;
    let (wal, rec) = Wal::open(data_dir)?;
    if let Some((offset, dropped)) = rec.truncated {
        crate::log!(
            "[{id}] WAL recovered: torn tail truncated at offset {offset} ({dropped} bytes dropped)"
        );
    }
    Ok(Storage {
        wal,
        records: rec.records,
        snapshot,
    })
}

/// What the node loop is built from.
pub struct Parts<R: Replica> {
    pub id: NodeId,
    pub listen: String,
    pub data_dir: PathBuf,
    pub replica: R,
    pub wal: Wal<R::Record>,
    pub snapshot: Option<Snapshot>,
    /// The URL path peers POST batches to, e.g. `/raft/batch`.
    pub peer_path: &'static str,
    pub is_large: crate::transport::IsLarge<R::Msg>,
    pub opts: LoopOptions,
    /// Entries the replica knows are committed but the snapshot does not cover, applied to
    /// the state machine at start (a replica that re-learns its commit point leaves it empty).
    pub recovered: Vec<Committed>,
}

impl<R: Replica> Node<R> {
    /// Builds the loop; the state machine comes from the snapshot, if any.
    pub fn new(
        parts: Parts<R>,
        events: Sender<Event<R::Msg>>,
        rt: tokio::runtime::Handle,
        view: Arc<Mutex<View>>,
        failpoints: Arc<Failpoints>,
    ) -> Result<Node<R>, StorageError> {
        let mut kv = match &parts.snapshot {
            Some(s) => Kv::restore(s.data.clone()).map_err(|e| StorageError::Corrupt {
                path: parts.data_dir.join("snapshot.json"),
                detail: e.to_string(),
            })?,
            None => Kv::default(),
        };
        kv.set_dedupe(parts.opts.dedupe_requests);
        for c in &parts.recovered {
            kv.apply(c);
        }
        let mut transport = Transport::new(
            parts.id.clone(),
            parts.listen.clone(),
            parts.peer_path,
            rt,
            parts.is_large,
        );
        transport.set_peers(&parts.replica.peers());
        let tick = parts.opts.tick;
        let mut node = Node {
            id: parts.id,
            replica: parts.replica,
            wal: parts.wal,
            kv,
            data_dir: parts.data_dir,
            transport,
            view,
            failpoints,
            snapshot: parts.snapshot,
            snapshot_in_progress: false,
            events,
            opts: parts.opts,
            boot: clock::wall_ms(),
            next_id: 0,
            proposals: HashMap::new(),
            by_index: BTreeMap::new(),
            reads: HashMap::new(),
            ready_reads: BTreeMap::new(),
            expiry: VecDeque::new(),
            timer: TimerClock::new(tick),
            pending: Vec::new(),
            last_commit_log: (Instant::now(), 0),
        };
        // `/status` must show the recovered generation from the first request on (a probe
        // seeing 0 after a restart would read as a generation going back).
        node.publish();
        Ok(node)
    }

    fn snapshot_index(&self) -> Index {
        self.snapshot
            .as_ref()
            .map_or(0, |s| snapshot_index(&s.meta))
    }

    fn step(&mut self, input: Input<R::Msg>) {
        let effects = self.replica.step(input);
        self.pending.extend(effects);
    }

    fn tick_input(&mut self) -> Input<R::Msg> {
        let now = self.timer.update();
        Input::Tick {
            now_ms: now.as_millis() as u64,
            wall_ms: clock::wall_ms().max(0) as u64,
        }
    }

    /// Runs until every event sender is gone (or storage fails).
    pub fn run(mut self, rx: Receiver<Event<R::Msg>>) -> Result<(), StorageError> {
        self.publish();
        let ticker = self.events.clone();
        let tick = self.timer.tick_interval();
        std::thread::Builder::new()
            .name("node-ticker".into())
            .spawn(move || {
                while ticker.send(Event::Tick).is_ok() {
                    std::thread::sleep(tick);
                }
            })
            .map_err(wal::io_err(&self.data_dir))?;
        let mut next_tick = Duration::ZERO;
        loop {
            match rx.recv() {
                Ok(Event::Tick) => self.timer.ticked(),
                Ok(ev) => self.handle(ev),
                Err(_) => return Ok(()),
            }
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(Event::Tick) => self.timer.ticked(),
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
            }
            let elapsed = self.timer.update();
            if elapsed >= next_tick {
                let input = self.tick_input();
                self.step(input);
                next_tick = elapsed + tick;
                self.expire(elapsed);
            }
            self.step(Input::Flush);
            self.execute()?;
            self.maybe_snapshot();
            self.publish();
            if Arc::strong_count(&self.view) == 1 {
                return Ok(()); // the server is gone (an in-process node was stopped)
            }
        }
    }

    fn new_proposal(&mut self, reply: Responder) -> String {
        self.next_id += 1;
        let id = format!("{}-{}-{}", self.id, self.boot, self.next_id);
        self.proposals
            .insert(id.clone(), Waiter { reply, index: None });
        self.expiry.push_back((
            self.timer.now() + self.opts.request_timeout,
            Pending::Proposal(id.clone()),
        ));
        id
    }

    fn handle(&mut self, ev: Event<R::Msg>) {
        match ev {
            Event::Tick => {}
            Event::Peer { from, addr, msg } => {
                self.transport.learn(&from, &addr);
                // A received message cannot be held: `hold` at a recv point lets it through.
                if self.failpoints.hit_message("recv", &msg) == Hit::Drop {
                    return;
                }
                self.step(Input::Receive { from, msg })
            }
            Event::Propose { data, reply } => {
                let id = self.new_proposal(reply);
                if self.failpoints.hit("propose") == Hit::Drop {
                    return; // lost: the request times out with an unknown outcome
                }
                self.step(Input::Propose { id, data });
            }
            Event::Read { key, reply } => {
                // A lease must be judged when the read is handled, not at the last tick (the
                // process may have been paused in between).
                let input = self.tick_input();
                self.step(input);
                self.next_id += 1;
                let id = self.next_id;
                self.reads.insert(id, (key, reply));
                self.expiry.push_back((
                    self.timer.now() + self.opts.request_timeout,
                    Pending::Read(id),
                ));
                self.step(Input::Read { id });
            }
            Event::Admin { name, body, reply } => {
                let id = self.new_proposal(reply);
                self.step(Input::Admin { id, name, body });
            }
            Event::SnapshotWritten { snap, tmp } => {
                self.snapshot_in_progress = false;
                let index = snapshot_index(&snap.meta);
                match tmp {
                    Ok(tmp) if index > self.snapshot_index() => {
                        if let Err(e) = wal::publish_snapshot(&self.data_dir, &tmp) {
                            crate::log!("[{}] snapshot not published: {e}", self.id);
                            return;
                        }
                        crate::log!("[{}] snapshot taken at index {index}", self.id);
                        let meta = snap.meta.clone();
                        self.snapshot = Some(snap);
                        self.step(Input::SnapshotTaken { meta });
                    }
                    Ok(tmp) => {
                        let _ = std::fs::remove_file(tmp);
                    }
                    Err(e) => crate::log!("[{}] snapshot failed: {e}", self.id),
                }
            }
            Event::Log { from, reply } => {
                let entries = serde_json::to_value(self.kv.log_from(from)).unwrap_or(Value::Null);
                let _ = reply.send(Reply::ok(entries));
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
        let effects = std::mem::take(&mut self.pending);
        let mut outputs = Vec::new();
        let mut need_sync = false;
        for e in effects {
            match e {
                Effect::Persist(r) => self.wal.append(&r),
                Effect::Sync => need_sync = true,
                Effect::InstallSnapshot { meta, data } => self.install_snapshot(meta, data)?,
                Effect::CompactLog { .. } => {
                    if self.wal.size() > WAL_REWRITE_BYTES {
                        self.rewrite_wal()?;
                    }
                }
                other => outputs.push(other),
            }
        }
        if need_sync {
            if self.failpoints.hit("sync") == Hit::Drop {
                return Ok(()); // nothing leaves this batch: as if the node stalled
            }
            self.wal.sync()?;
        } else if self.opts.lazy_wal && self.wal.buffered() > (1 << 20) {
            // BUG ack-before-fsync: records reach the file only in large, unsynced chunks.
            self.wal.write_out()?;
        }
        for e in outputs {
            self.output(e);
        }
        Ok(())
    }

    fn send(&self, to: &str, msg: R::Msg) {
        match self.failpoints.hit_message("send", &msg) {
            Hit::Go => self.transport.send(to, msg),
            Hit::Drop => {}
            Hit::Later(ms) => self
                .transport
                .send_after(to, msg, Duration::from_millis(ms)),
        }
    }

    fn output(&mut self, e: Effect<R::Msg, R::Record>) {
        match e {
            Effect::Send { to, msg } => self.send(&to, msg),
            Effect::SendSnapshot { to, generation } => {
                if let Some(s) = &self.snapshot {
                    let msg =
                        self.replica
                            .snapshot_message(generation, s.meta.clone(), s.data.clone());
                    self.send(&to, msg);
                }
            }
            Effect::Apply(entries) => {
                if self.failpoints.hit("apply") == Hit::Drop {
                    crate::log!("[{}] failpoint apply: entries not applied", self.id);
                }
                for c in &entries {
                    self.apply(c);
                }
                self.serve_reads();
            }
            Effect::Proposed { id, index } => {
                if let Some(w) = self.proposals.get_mut(&id) {
                    w.index = Some(index);
                    self.by_index.insert(index, id);
                }
            }
            Effect::Rejected { id, reason } => {
                if let Some(w) = self.proposals.remove(&id) {
                    let _ = w.reply.send(Reply::rejected(&reason));
                }
            }
            Effect::Answer { id, status, body } => {
                if let Some(w) = self.proposals.remove(&id) {
                    let _ = w.reply.send(Reply { status, body });
                }
            }
            Effect::ReadReady { id, index } => {
                self.ready_reads.entry(index).or_default().push(id);
                self.serve_reads();
            }
            Effect::ReadRejected { id, reason } => {
                if let Some((_, reply)) = self.reads.remove(&id) {
                    let _ = reply.send(Reply::rejected(&reason));
                }
            }
            Effect::Persist(_)
            | Effect::Sync
            | Effect::InstallSnapshot { .. }
            | Effect::CompactLog { .. } => unreachable!("handled before outputs"),
        }
    }

    fn apply(&mut self, c: &Committed) {
        let outcome = self.kv.apply(c);
        let Some(id) = self.by_index.remove(&c.index) else {
            return;
        };
        let Some(w) = self.proposals.remove(&id) else {
            return;
        };
        let reply = if c.id != id {
            // Another leader's entry won this index: ours can never commit.
            Reply::error(503, "superseded", true)
        } else {
            outcome.map_or_else(|| Reply::ok(json!({})), Reply::outcome)
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

    fn install_snapshot(&mut self, meta: Value, data: Value) -> Result<(), StorageError> {
        let mut kv = Kv::restore(data.clone()).map_err(|e| StorageError::Corrupt {
            path: self.data_dir.join("snapshot.json"),
            detail: format!("snapshot from another node: {e}"),
        })?;
        kv.set_dedupe(self.opts.dedupe_requests);
        let snap = Snapshot { meta, data };
        wal::save_snapshot(&self.data_dir, &snap)?;
        self.kv = kv;
        let index = snapshot_index(&snap.meta);
        crate::log!(
            "[{}] snapshot installed from leader at index {index}",
            self.id
        );
        // Proposals at covered indexes were decided elsewhere: their outcome is unknown here.
        let covered: Vec<Index> = self.by_index.range(..=index).map(|(i, _)| *i).collect();
        for i in covered {
            if let Some(id) = self.by_index.remove(&i)
                && let Some(w) = self.proposals.remove(&id)
            {
                let _ = w.reply.send(Reply::error(504, "outcome-unknown", false));
            }
        }
        self.snapshot = Some(snap);
        self.rewrite_wal()
    }

    fn rewrite_wal(&mut self) -> Result<(), StorageError> {
        let records = self.replica.wal_records();
        self.wal.rewrite(&records)
    }

    /// Starts a background snapshot once enough entries were applied since the last one.
    fn maybe_snapshot(&mut self) {
        let applied = self.kv.applied();
        if self.snapshot_in_progress
            || applied < self.snapshot_index() + self.opts.snapshot_threshold
        {
            return;
        }
        let Some(meta) = self.replica.snapshot_meta(applied) else {
            return;
        };
        self.snapshot_in_progress = true;
        let kv = self.kv.clone();
        let dir = self.data_dir.clone();
        let events = self.events.clone();
        std::thread::spawn(move || {
            let snap = Snapshot {
                meta,
                data: kv.snapshot(),
            };
            let tmp = wal::write_snapshot_tmp(&dir, &snap).map_err(|e| e.to_string());
            let _ = events.send(Event::SnapshotWritten { snap, tmp });
        });
    }

    fn publish(&mut self) {
        let peers = self.replica.peers();
        self.transport.set_peers(&peers);
        let status = self.replica.status();
        let commit = status.commit_index;
        let now = Instant::now();
        if commit != self.last_commit_log.1 && now - self.last_commit_log.0 > Duration::from_secs(5)
        {
            crate::log!(
                "[{}] commit index {commit}, applied {}",
                self.id,
                self.kv.applied()
            );
            self.last_commit_log = (now, commit);
        }
        let view = View {
            status,
            applied_index: self.kv.applied(),
            snapshot_index: self.snapshot_index(),
            peers: peers.into_iter().collect(),
        };
        *self.view.lock().expect("view lock") = view;
    }
}
