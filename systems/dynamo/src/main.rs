//! `faultline-dynamo --id n1 --listen ADDR --peers n2=ADDR,... --data-dir DIR
//!  [--mode abd|lww] [--n 3 --r 2 --w 2] [--vnodes 16] [--anti-entropy-ms 1000]
//!  [--repair-every-ms 100] [--read-repair off|async|blocking] [--quorum strict|sloppy]
//!  [--handoff-ms 500] [--probe-ms 200] [--bug NAME]...`
//!
//! A leaderless quorum store: any node coordinates a request for any key over the key's
//! preference list on a consistent-hash ring. The kit's `Replica` trait orders a log behind a
//! leader, which a leaderless coordinator does not have, so this shell serves the node
//! protocol's routes itself and takes from the kit what is not protocol: the command line,
//! `init` (libfaketime, panic hook), the protocol clock (LWW stamps, so clock faults matter),
//! the WAL, the peer HTTP client and stamped logging.
//!
//! Routes: `POST /kv/read`, `POST /kv/write`, `GET /status`, `GET /log` (this node's replica
//! dump for every key it holds: the Dynamo shape of `/log`, DESIGN.md), `GET
//! /replica/dump?key=K`, and `POST /dynamo/peer` (one `Msg`, answered by an `Answer`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use faultline_dynamo::core::{
    Action, Answer, Bug, Bugs, Config, Coordinator, Done, Entry, Held, Mode, Msg, ReadRepair,
    Record, Request, Store, lww_ts,
};
use faultline_dynamo::ring::Ring;
use faultline_dynamo::version::Version;
use faultline_node::cli::NodeArgs;
use faultline_node::log;
use faultline_node::wal::Wal;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Dynamo-style leaderless quorum KV node (ABD or last-write-wins) speaking faultline's node protocol",
    after_help = "Planted bugs (--bug): abd-skip-writeback (abd), acks-counted-twice, read-repair-overwrites-newer (lww), vclock-merge-drops-sibling (vclock), merkle-skips-last-range, hints-dropped-on-restart (sloppy)"
)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// abd: writes read a quorum first, reads write back (linearizable); lww: wall-clock
    /// last-write-wins with asynchronous read repair; vclock: sets whose concurrent adds stay
    /// siblings under vector clocks (`/txn` append and r).
    #[arg(long, default_value = "abd")]
    mode: Mode,
    /// Replicas per key.
    #[arg(long, default_value_t = 3)]
    n: usize,
    /// Replies a read (and an ABD write's first phase) waits for.
    #[arg(long, default_value_t = 2)]
    r: usize,
    /// Acknowledgements a write (and an ABD read's write-back) waits for.
    #[arg(long, default_value_t = 2)]
    w: usize,
    /// Tokens per node on the ring.
    #[arg(long, default_value_t = 16)]
    vnodes: usize,
    /// Every this many ms each node compares Merkle trees with each peer over the keys they
    /// share and exchanges the entries where they differ (0: no anti-entropy).
    #[arg(long, default_value_t = 1000)]
    anti_entropy_ms: u64,
    /// LWW's asynchronous read repair: the coordinator answers at R and queues a repair for
    /// each stale replica (late replies too); a background repairer sends the queue every
    /// this many ms (as Cassandra's background read repair runs off the read path).
    #[arg(long, default_value_t = 100)]
    repair_every_ms: u64,
    /// LWW reads: off (stale replicas wait for anti-entropy), async (answer at R, repair in
    /// the background) or blocking (repair the stale repliers before answering). ABD always
    /// writes back.
    #[arg(long, default_value = "async")]
    read_repair: ReadRepair,
    /// strict: a key's requests go to its N home replicas only; sloppy: to the first N
    /// reachable nodes of its ring walk, stand-ins holding hints for the unreachable homes
    /// (Dynamo §4.6), handed off when a home answers again.
    #[arg(long, default_value = "strict", value_parser = ["strict", "sloppy"])]
    quorum: String,
    /// Every this many ms hints are handed off to home replicas that answer again.
    #[arg(long, default_value_t = 500)]
    handoff_ms: u64,
    /// Sloppy quorum's failure detector: every this many ms each peer is probed, and
    /// suspected if it does not answer within twice that.
    #[arg(long, default_value_t = 200)]
    probe_ms: u64,
}

struct Node {
    cfg: Config,
    ring: Ring,
    addrs: HashMap<String, String>,
    /// The replica's entries and the WAL they are logged to (synced before any answer).
    store: Mutex<(Store, Wal<Record>)>,
    http: reqwest::Client,
    seq: AtomicU64,
    timeout: Duration,
    bugs: Vec<String>,
    /// When each peer last answered anything, and how recent counts as reachable.
    heard: Mutex<HashMap<String, Instant>>,
    /// When each peer last failed to answer: a peer that failed since it last answered is
    /// suspected down (sloppy quorums skip it; the failure detector probes every peer).
    failed: Mutex<HashMap<String, Instant>>,
    sloppy: bool,
    reach_window: Duration,
    /// Vector clocks: per key, the last version this actor issued, behind a lock that
    /// serialises this node's adds to the key.
    own: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Version>>>>>,
    /// Read repairs waiting for the background repairer (LWW).
    repairs: Mutex<Vec<(String, Msg)>>,
    /// Read repairs queued here, received here, and received carrying an older stamp than
    /// the one held (stored only under the planted bug), shown in /status.
    counts: [AtomicU64; 3],
}

impl Node {
    /// Applies `msg` to the local replica, durably.
    fn local(&self, msg: Msg) -> anyhow::Result<Answer> {
        let mut g = self.store.lock().expect("store lock");
        let (store, wal) = &mut *g;
        if let Msg::Put {
            key,
            entry,
            repair: true,
            ..
        } = &msg
        {
            self.counts[1].fetch_add(1, Ordering::Relaxed);
            if store.get(key).is_some_and(|cur| cur.stamp > entry.stamp) {
                self.counts[2].fetch_add(1, Ordering::Relaxed);
            }
        }
        let (answer, stored) = store.handle(msg, &self.cfg.bugs, &|p, k| self.shares(p, k));
        if !stored.is_empty() {
            for r in &stored {
                wal.append(r);
            }
            wal.sync().context("syncing the WAL")?;
        }
        Ok(answer)
    }

    /// Sends `msg` to `to` (ourselves: the local replica) and returns its answer.
    async fn send(self: &Arc<Self>, to: &str, msg: Msg) -> Option<Answer> {
        self.send_within(to, msg, self.timeout).await
    }

    async fn send_within(
        self: &Arc<Self>,
        to: &str,
        msg: Msg,
        timeout: Duration,
    ) -> Option<Answer> {
        if to == self.cfg.me {
            let me = self.clone();
            return match tokio::task::spawn_blocking(move || me.local(msg)).await {
                Ok(Ok(a)) => Some(a),
                Ok(Err(e)) => {
                    log!("[{}] fatal storage error: {e:#}", self.cfg.me);
                    std::process::exit(1);
                }
                Err(_) => None,
            };
        }
        let addr = self.addrs.get(to)?;
        let answer = async {
            let resp = self
                .http
                .post(format!("http://{addr}/dynamo/peer"))
                .timeout(timeout)
                .json(&msg)
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json::<Answer>().await.ok()
        };
        let Some(a) = answer.await else {
            self.failed
                .lock()
                .expect("failed lock")
                .insert(to.to_string(), Instant::now());
            return None;
        };
        self.heard
            .lock()
            .expect("heard lock")
            .insert(to.to_string(), Instant::now());
        Some(a)
    }

    /// Runs one client request to its answer; a finished LWW read keeps repairing late
    /// replies in the background until the request's time is up.
    async fn coordinate(self: &Arc<Self>, req: Request) -> Done {
        let key = req.key().to_string();
        let targets = if self.sloppy {
            self.ring
                .sloppy_targets(&key, self.cfg.n, |n| !self.suspected(n))
        } else {
            let home = self.ring.preference_list(&key, self.cfg.n);
            home.into_iter().map(|n| (n, None)).collect()
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let ts = lww_ts(faultline_node::clock::wall_ms(), seq);
        let is_add = matches!(req, Request::Add { .. });
        let (mut c, actions) = Coordinator::start(&self.cfg, targets, req, ts, seq);
        // Vector clocks: one add per key at a time from this actor, each containing the
        // last one it issued (Coordinator::include_own).
        let mut own = None;
        if is_add {
            let slot = self
                .own
                .lock()
                .expect("own lock")
                .entry(key.clone())
                .or_default()
                .clone();
            let guard = slot.lock_owned().await;
            if let Some(v) = guard.as_ref() {
                c.include_own(v.clone());
            }
            own = Some(guard);
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Answer)>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + me.timeout;
            let mut done_tx = Some(done_tx);
            let mut pending = actions;
            loop {
                for a in std::mem::take(&mut pending) {
                    match a {
                        Action::Send { to, msg }
                            if me.cfg.read_repair == ReadRepair::Async
                                && matches!(msg, Msg::Put { repair: true, .. }) =>
                        {
                            // Asynchronous read repair: queued for the background repairer.
                            me.counts[0].fetch_add(1, Ordering::Relaxed);
                            me.repairs.lock().expect("repairs lock").push((to, msg));
                        }
                        Action::Send { to, msg } => {
                            let (node, tx) = (me.clone(), tx.clone());
                            tokio::spawn(async move {
                                if let Some(ans) = node.send(&to, msg).await {
                                    let _ = tx.send((to, ans));
                                }
                            });
                        }
                        Action::Finish(d) => {
                            if let Some(t) = done_tx.take() {
                                let _ = t.send(d);
                            }
                        }
                    }
                }
                if c.phase() == faultline_dynamo::core::Phase::Finished {
                    if let (Some(guard), Some(v)) = (own.as_mut(), c.issued()) {
                        **guard = Some(v.clone());
                    }
                    return;
                }
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((from, ans))) => pending = c.on_answer(&from, ans),
                    Ok(None) | Err(_) => pending = c.on_timeout(),
                }
            }
        });
        done_rx.await.unwrap_or(Done::Unavailable)
    }

    /// This node's dump of `key` (the convergence checker's input).
    fn dump(&self, key: &str, entry: Option<&Entry>) -> Value {
        let home = self.ring.preference_list(key, self.cfg.n);
        json!({
            "node": self.cfg.me,
            "key": key,
            "replica": home.contains(&self.cfg.me),
            "siblings": entry.map(|e| vec![e.value.clone()]).unwrap_or_default(),
            "stamp": entry.map(|e| json!(e.stamp)),
        })
    }

    /// This node's dump of a vector-clock key: one sibling value per concurrent version.
    fn dump_siblings(&self, key: &str, versions: &[Version]) -> Value {
        let home = self.ring.preference_list(key, self.cfg.n);
        json!({
            "node": self.cfg.me,
            "key": key,
            "replica": home.contains(&self.cfg.me),
            "siblings": versions.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
            "clocks": versions.iter().map(|v| json!(v.clock)).collect::<Vec<_>>(),
        })
    }

    /// Every key this node holds, in the dump shape.
    fn dump_all(&self) -> Vec<Value> {
        let g = self.store.lock().expect("store lock");
        g.0.iter()
            .map(|(k, e)| self.dump(k, Some(e)))
            .chain(g.0.iter_siblings().map(|(k, v)| self.dump_siblings(k, v)))
            .collect()
    }

    /// Whether `peer` and this node both replicate `key`.
    fn shares(&self, peer: &str, key: &str) -> bool {
        let home = self.ring.preference_list(key, self.cfg.n);
        home.iter().any(|n| n == peer) && home.contains(&self.cfg.me)
    }

    /// One anti-entropy round, with each peer: send our Merkle trees over the keys we share;
    /// the peer answers with its entries where the trees differ, which we merge, and we send
    /// ours of those segments back. Replicas in agreement exchange only the trees.
    async fn anti_entropy(self: &Arc<Self>) {
        for peer in self.addrs.keys() {
            let tree = {
                let g = self.store.lock().expect("store lock");
                g.0.tree(|k| self.shares(peer, k))
            };
            let (me, peer) = (self.clone(), peer.clone());
            tokio::spawn(async move {
                let digest = Msg::Digest {
                    from: me.cfg.me.clone(),
                    tree,
                };
                let Some(Answer::Diff {
                    segments,
                    entries,
                    siblings,
                }) = me.send(&peer, digest).await
                else {
                    return;
                };
                if segments.is_empty() {
                    return;
                }
                if !entries.is_empty() || !siblings.is_empty() {
                    let own = me.cfg.me.clone();
                    me.send(&own, Msg::Sync { entries, siblings }).await;
                }
                let (entries, siblings) = {
                    let g = me.store.lock().expect("store lock");
                    g.0.in_segments(&segments, |k| me.shares(&peer, k))
                };
                if !entries.is_empty() || !siblings.is_empty() {
                    me.send(&peer, Msg::Sync { entries, siblings }).await;
                }
            });
        }
    }

    /// Whether `peer` failed to answer since it last answered (never ourselves).
    fn suspected(&self, peer: &str) -> bool {
        if peer == self.cfg.me {
            return false;
        }
        let failed = self.failed.lock().expect("failed lock").get(peer).copied();
        let heard = self.heard.lock().expect("heard lock").get(peer).copied();
        match (failed, heard) {
            (Some(f), Some(h)) => f > h,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The failure detector's round: every peer gets a cheap request with a short timeout,
    /// so a partitioned or dead peer is suspected within a round or two (and cleared once it
    /// answers), not only after a client request timed out on it.
    fn probe_peers(self: &Arc<Self>, within: Duration) {
        for peer in self.addrs.keys() {
            let (me, peer) = (self.clone(), peer.clone());
            tokio::spawn(async move {
                me.send_within(&peer, Msg::Get { key: String::new() }, within)
                    .await;
            });
        }
    }

    /// One handoff round: each hint whose home is not suspected is sent to it, and dropped
    /// once stored there.
    async fn handoff(self: &Arc<Self>) {
        let hints = self.store.lock().expect("store lock").0.hints();
        for (home, key, held) in hints {
            if self.suspected(&home) {
                continue;
            }
            let msg = match &held {
                Held::Entry(entry) => Msg::Put {
                    key: key.clone(),
                    entry: entry.clone(),
                    repair: false,
                    hint: None,
                },
                Held::Siblings(versions) => Msg::SibPut {
                    key: key.clone(),
                    versions: versions.clone(),
                    hint: None,
                },
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Some(Answer::Stored { .. }) = me.send(&home, msg).await {
                    let mut g = me.store.lock().expect("store lock");
                    let (store, wal) = &mut *g;
                    if let Some(r) = store.hint_delivered(&home, &key, &held) {
                        wal.append(&r);
                        if let Err(e) = wal.sync() {
                            log!("[{}] fatal storage error: {e:#}", me.cfg.me);
                            std::process::exit(1);
                        }
                    }
                }
            });
        }
    }

    /// Peers heard from within `within`.
    fn reachable(&self, within: Duration) -> usize {
        let g = self.heard.lock().expect("heard lock");
        g.values().filter(|t| t.elapsed() <= within).count()
    }
}

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn bad(detail: impl Into<String>) -> Response {
    reply(
        400,
        json!({"error":"bad-request","detail":detail.into(),"definite":true}),
    )
}

/// The body's `key` (a string or number) and the whole object.
fn parse(body: &Bytes) -> Result<(String, serde_json::Map<String, Value>), String> {
    let m = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err("body must be a JSON object".into()),
        Err(e) => return Err(format!("body is not JSON: {e}")),
    };
    let key = match m.get("key") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("field \"key\": expected a string or number".into()),
        None => return Err("missing field \"key\"".into()),
    };
    Ok((key, m))
}

fn answer(d: Done) -> Response {
    match d {
        Done::Read(v) => reply(200, json!({ "value": v })),
        Done::Written => reply(200, json!({})),
        Done::Unavailable => reply(503, json!({"error":"quorum-unavailable","definite":true})),
        Done::Indefinite => reply(504, json!({"error":"timeout","definite":false})),
    }
}

async fn kv_read(State(n): State<Arc<Node>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok((key, _)) => answer(n.coordinate(Request::Read { key }).await),
        Err(e) => bad(e),
    }
}

async fn kv_write(State(n): State<Arc<Node>>, body: Bytes) -> Response {
    if n.cfg.mode == Mode::Vclock {
        return unsupported().await;
    }
    match parse(&body) {
        Ok((key, m)) => match m.get("value") {
            Some(value) => answer(
                n.coordinate(Request::Write {
                    key,
                    value: value.clone(),
                })
                .await,
            ),
            None => bad("missing field \"value\""),
        },
        Err(e) => bad(e),
    }
}

/// `/txn` with one micro-op (the set workload's shape): `["append", k, v]` adds `v` to the
/// set at `k` (vector clocks), `["r", k, null]` reads the union of its siblings.
async fn txn(State(n): State<Arc<Node>>, body: Bytes) -> Response {
    let ops = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("ops").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let [op] = ops.as_slice() else {
        return bad("expected {\"ops\": [one micro-op]}");
    };
    let (f, key) = match (op.get(0).and_then(Value::as_str), op.get(1)) {
        (Some(f), Some(Value::String(k))) => (f, k.clone()),
        (Some(f), Some(Value::Number(k))) => (f, k.to_string()),
        _ => return bad("a micro-op is [f, key, value]"),
    };
    let arg = op.get(2).cloned().unwrap_or(Value::Null);
    match (f, n.cfg.mode) {
        ("append", Mode::Vclock) => {
            let add = Request::Add {
                key: key.clone(),
                element: arg.clone(),
            };
            match n.coordinate(add).await {
                Done::Written => reply(200, json!({"ops": [["append", key, arg]]})),
                other => answer(other),
            }
        }
        ("r", _) => match n.coordinate(Request::Read { key: key.clone() }).await {
            Done::Read(v) => reply(200, json!({"ops": [["r", key, v]]})),
            other => answer(other),
        },
        _ => unsupported().await,
    }
}

async fn unsupported() -> Response {
    reply(
        400,
        json!({"error":"unsupported","detail":"this store has only /kv/read and /kv/write","definite":true}),
    )
}

async fn peer(State(n): State<Arc<Node>>, body: Bytes) -> Response {
    let msg: Msg = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("not a peer message: {e}")),
    };
    let me = n.clone();
    match tokio::task::spawn_blocking(move || me.local(msg)).await {
        Ok(Ok(a)) => reply(200, json!(a)),
        Ok(Err(e)) => {
            log!("[{}] fatal storage error: {e:#}", n.cfg.me);
            std::process::exit(1);
        }
        Err(_) => reply(500, json!({"error":"node-stopped","definite":false})),
    }
}

async fn status(State(n): State<Arc<Node>>) -> Response {
    let peers = n.reachable(n.reach_window);
    // Leaderless: "leader" (protocol v2: able to commit) means this node has heard from
    // enough peers lately to gather W acknowledgements, itself included.
    let able = peers + 1 >= n.cfg.w.max(n.cfg.r);
    let (keys, hints) = {
        let g = n.store.lock().expect("store lock");
        (
            g.0.iter().count() + g.0.iter_siblings().count(),
            g.0.hints().len(),
        )
    };
    reply(
        200,
        json!({
            "id": n.cfg.me,
            "role": if able { "leader" } else { "follower" },
            "term": 0,
            "generation": 0,
            "leader": Value::Null,
            "commit_index": 0,
            "applied_index": 0,
            "clock_ms": faultline_node::clock::wall_ms(),
            "bugs": n.bugs,
            "mode": n.cfg.mode.as_str(),
            "read_repair": n.cfg.read_repair.as_str(),
            "quorum": if n.sloppy { "sloppy" } else { "strict" },
            "hints": hints,
            "n": n.cfg.n, "r": n.cfg.r, "w": n.cfg.w,
            "peers_reachable": peers,
            "keys": keys,
            "repairs_queued": n.counts[0].load(Ordering::Relaxed),
            "repairs_received": n.counts[1].load(Ordering::Relaxed),
            "repairs_older_than_held": n.counts[2].load(Ordering::Relaxed),
        }),
    )
}

async fn full_dump(State(n): State<Arc<Node>>) -> Response {
    reply(200, Value::Array(n.dump_all()))
}

async fn key_dump(
    State(n): State<Arc<Node>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(key) = q.get("key") else {
        return bad("missing query parameter key");
    };
    let g = n.store.lock().expect("store lock");
    let d = match g.0.siblings(key) {
        Some(v) => n.dump_siblings(key, v),
        None => n.dump(key, g.0.get(key)),
    };
    reply(200, json!([d]))
}

/// Runs `tick` every `period`, forever, in the background (the node's periodic tasks).
fn every<F, Fut>(period: Duration, mut tick: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            tick().await;
        }
    });
}

fn main() -> anyhow::Result<()> {
    faultline_node::init()?;
    let args = Args::parse();
    let id = args.node.id.clone();
    let bug_list = args.node.parse_bugs::<Bug>().map_err(anyhow::Error::msg)?;
    if args.r == 0 || args.w == 0 || args.n == 0 || args.r > args.n || args.w > args.n {
        bail!("need 0 < --r, --w <= --n");
    }
    let peers = args.node.peer_list().map_err(anyhow::Error::msg)?;
    let mut members: Vec<String> = peers.iter().map(|(p, _)| p.clone()).collect();
    members.push(id.clone());
    if members.len() < args.n {
        bail!("--n {} but only {} nodes", args.n, members.len());
    }
    for b in &bug_list {
        log!("[{id}] BUG ACTIVE: {} (symptom: {})", b.name(), b.symptom());
    }
    std::fs::create_dir_all(&args.node.data_dir)
        .with_context(|| format!("creating {}", args.node.data_dir.display()))?;
    let (wal, recovered) = Wal::<Record>::open(&args.node.data_dir)?;
    let mut store = Store::default();
    for r in recovered.records {
        store.replay(r, &Bugs::from_list(&bug_list));
    }
    log!(
        "[{id}] {:?} N={} R={} W={}, recovered {} keys",
        args.mode,
        args.n,
        args.r,
        args.w,
        store.iter().count() + store.iter_siblings().count()
    );
    // The vector-clock actor: this incarnation, so a restart never reissues a clock.
    let incarnation =
        (std::process::id() as u64) ^ (faultline_node::clock::wall_ms() as u64).rotate_left(21);
    let request_timeout = Duration::from_millis(args.node.request_timeout_ms.clamp(100, 10_000));
    let node = Arc::new(Node {
        cfg: Config {
            me: id.clone(),
            actor: format!("{id}.{:x}", incarnation & 0xffff_ffff),
            mode: args.mode,
            read_repair: args.read_repair,
            n: args.n,
            r: args.r,
            w: args.w,
            bugs: Bugs::from_list(&bug_list),
        },
        ring: Ring::new(&members, args.vnodes),
        addrs: peers.into_iter().collect(),
        store: Mutex::new((store, wal)),
        http: faultline_node::transport::http_client(),
        seq: AtomicU64::new(0),
        // The request's whole budget, both phases: under the harness's client timeout.
        timeout: request_timeout / 2,
        bugs: bug_list.iter().map(|b| b.name().to_string()).collect(),
        heard: Mutex::new(HashMap::new()),
        failed: Mutex::new(HashMap::new()),
        sloppy: args.quorum == "sloppy",
        reach_window: Duration::from_millis((2 * args.anti_entropy_ms).max(2000)),
        repairs: Mutex::new(Vec::new()),
        own: Mutex::new(HashMap::new()),
        counts: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.node.listen)
            .await
            .with_context(|| format!("binding {}", args.node.listen))?;
        log!("[{id}] listening on {}", listener.local_addr()?);
        if node.sloppy {
            let n = node.clone();
            every(Duration::from_millis(args.handoff_ms.max(1)), move || {
                let n = n.clone();
                async move { n.handoff().await }
            });
            let n = node.clone();
            let probe = Duration::from_millis(args.probe_ms.max(10));
            every(probe, move || {
                n.probe_peers(probe * 2);
                async {}
            });
        }
        if args.anti_entropy_ms > 0 {
            let n = node.clone();
            every(Duration::from_millis(args.anti_entropy_ms), move || {
                let n = n.clone();
                async move { n.anti_entropy().await }
            });
        }
        let n = node.clone();
        every(
            Duration::from_millis(args.repair_every_ms.max(1)),
            move || {
                let batch = std::mem::take(&mut *n.repairs.lock().expect("repairs lock"));
                for (to, msg) in batch {
                    let n = n.clone();
                    tokio::spawn(async move { n.send(&to, msg).await });
                }
                async {}
            },
        );
        let app = Router::new()
            .route("/kv/read", post(kv_read))
            .route("/kv/write", post(kv_write))
            .route("/kv/cas", post(unsupported))
            .route("/kv/append", post(unsupported))
            .route("/txn", post(txn))
            .route("/status", get(status))
            .route("/log", get(full_dump))
            .route("/replica/dump", get(key_dump))
            .route("/dynamo/peer", post(peer))
            .with_state(node);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
