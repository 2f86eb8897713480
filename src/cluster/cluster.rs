//! A running local cluster: a bridge, one namespace and process per node, the faults in
//! force, and teardown that runs exactly once (explicitly, on drop, or on a signal).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::cleanup;
use super::clock::{self, ClockSupport};
use super::descriptor::{ClientAdapter, NodeSlot, SystemDescriptor};
use super::error::ClusterError;
use super::firewall::{self, NetFaults};
use super::netns;
use super::node::{self, LaunchSpec};
use super::procfs;
use super::registry::{self, ProcRef, RunRecord, StateLock};
use super::status;
use super::subnet::{self, MAX_NODES, MAX_PROXIED_NODES, Subnet};
use crate::faults::proxy::{PeerProxy, ProxyConfig, ProxyMode, ProxyNode, Tracer};

/// `nodes/<id>/launch.json`: the binary, arguments and added environment a node runs with.
pub const LAUNCH: &str = "launch.json";

/// How long `pause` waits for a SIGSTOPped node's threads to stop before it reports failure.
const PAUSE_SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// What to start.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: usize,
    /// `nodes/<id>/{stdout.log,stderr.log,data/}` go here.
    pub run_dir: PathBuf,
    /// Free text recorded in the cleanup registry (e.g. the run directory's name).
    pub label: String,
    /// Planted bugs, passed through the descriptor's `bug_args`.
    pub bugs: Vec<String>,
    /// Seeds the peer proxy's per-message draws.
    pub seed: u64,
    /// Where the peer proxy writes every message's fate (`messages.jsonl`), if anywhere.
    pub trace_messages: Option<PathBuf>,
    /// Preload libfaketime into the nodes (where it can reach them) so clock faults can be
    /// injected. `faultline run` sets it only when the schedule has clock faults: a preloaded
    /// libfaketime changes how a node's clock calls behave even at offset 0 (see README).
    pub clock_faults: bool,
}

impl ClusterConfig {
    pub fn new(nodes: usize, run_dir: impl Into<PathBuf>) -> Self {
        let run_dir = run_dir.into();
        ClusterConfig {
            nodes,
            label: run_dir.display().to_string(),
            run_dir,
            bugs: Vec::new(),
            seed: 0,
            trace_messages: None,
            clock_faults: true,
        }
    }
}

/// A node as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// `n1`, `n2`, ...
    pub id: String,
    pub addr: Ipv4Addr,
    /// Base URL reachable from the host, e.g. `http://10.211.7.11:8000`.
    pub url: String,
    pub netns: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    /// SIGSTOPped.
    Paused,
    /// SIGKILLed (by a fault); `restart` or `heal` brings it back on the same data dir.
    Killed,
    /// Stopped gracefully.
    Stopped,
}

struct NodeRt {
    info: NodeInfo,
    spec: LaunchSpec,
    child: Option<Child>,
    state: NodeState,
    net: NetFaults,
    clock_ms: i64,
    /// The protocol clock's (offset ms, rate), where the node reads a clock file.
    protocol_clock: (i64, f64),
}

struct Inner {
    desc: SystemDescriptor,
    short_id: String,
    subnet: Subnet,
    run_dir: PathBuf,
    clock: ClockSupport,
    /// Whether the nodes read a protocol-clock file (and if not, why).
    protocol_clock: Result<(), String>,
    http: reqwest::Client,
    nodes: Mutex<Vec<NodeRt>>,
    /// One persistent `nft -i` per node namespace (see `firewall::NftShell`).
    nft: Vec<Mutex<Option<firewall::NftShell>>>,
    record: Mutex<RunRecord>,
    torn_down: AtomicBool,
    /// The peer proxy, when the descriptor proxies peer links.
    proxy: Mutex<Option<PeerProxy>>,
    /// Told each restarted node's first status (see `on_restart_status`).
    restart_status: Mutex<Option<StatusSink>>,
}

/// Receives a node's status (node id, the status adapter's JSON).
/// Told a node's status and when it was asked for (a status describes the node at some moment
/// between the asking and the telling).
pub type StatusSink = Arc<dyn Fn(&str, Value, Instant) + Send + Sync>;

/// Every cluster alive in this process, for signal-time teardown.
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// A handle to a running cluster; clones share it. The last handle dropped tears it down.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClusterError> + Send + 'static,
) -> Result<T, ClusterError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ClusterError::Missing(format!("blocking task failed: {e}"))))
}

/// A node's `{data_dir}`, inside its directory in the run: kept across restarts, emptied by
/// a wiping kill.
fn data_dir_of(node_dir: &Path) -> PathBuf {
    node_dir.join("data")
}
impl Cluster {
    /// Checks the machine, removes dead runs' leftovers, reserves a subnet, builds the
    /// network, starts every node and waits until all answer their readiness probe. On any
    /// failure everything built so far is torn down before the error returns.
    pub async fn start(
        desc: SystemDescriptor,
        cfg: ClusterConfig,
    ) -> Result<Cluster, ClusterError> {
        super::caps::check()?;
        if cfg.nodes == 0 || cfg.nodes > MAX_NODES {
            return Err(ClusterError::Descriptor {
                file: "cluster config".into(),
                field: "nodes".into(),
                message: format!("must be 1..={MAX_NODES}, got {}", cfg.nodes),
            });
        }
        let proxied = desc.peers.proxy != ProxyMode::Off;
        if proxied && cfg.nodes > MAX_PROXIED_NODES {
            return Err(ClusterError::Descriptor {
                file: desc.origin.clone(),
                field: "peers.proxy".into(),
                message: format!(
                    "the peer proxy takes at most {MAX_PROXIED_NODES} nodes, got {}; set \
                     `proxy = \"off\"` for bigger clusters",
                    cfg.nodes
                ),
            });
        }
        let binary = desc.resolve_binary()?;
        let protocol_clock = match (&desc.clock_file_env, cfg.clock_faults) {
            (Some(_), true) => Ok(()),
            (None, _) => Err(format!(
                "system `{}` names no `clock_file_env`, so its protocol clock cannot be moved \
                 (`clock = \"wall\"` moves the wall clock through libfaketime)",
                desc.name
            )),
            (Some(_), false) => {
                Err("the cluster was started without clock faults being asked for".into())
            }
        };
        let clock = if cfg.clock_faults {
            clock::support_for(desc.clock, &binary)
        } else {
            ClockSupport::Unsupported(
                "the cluster was started without libfaketime (no clock faults were asked for)"
                    .into(),
            )
        };
        std::fs::create_dir_all(&cfg.run_dir).map_err(|e| ClusterError::io(&cfg.run_dir, e))?;
        let run_dir =
            std::fs::canonicalize(&cfg.run_dir).map_err(|e| ClusterError::io(&cfg.run_dir, e))?;

        let (record, _cleaned) = {
            let run_dir = run_dir.clone();
            let label = cfg.label.clone();
            blocking(move || {
                let lock = StateLock::acquire()?;
                let cleaned = cleanup::cleanup_locked(&lock);
                let used = subnet::used_prefixes()?;
                let rec = registry::reserve(&label, &run_dir, &used, &lock)?;
                Ok((rec, cleaned))
            })
            .await?
        };
        let short_id = record.short_id.clone();
        let sub = record.subnet;
        let slots: Vec<NodeSlot> = (1..=cfg.nodes)
            .map(|i| NodeSlot {
                id: format!("n{i}"),
                index: i,
                addr: sub.node_addr(i).to_string(),
                peer_addr: if proxied {
                    sub.proxy_addr(i).to_string()
                } else {
                    sub.node_addr(i).to_string()
                },
            })
            .collect();
        let token = format!("fl-{short_id}");
        let mut nodes = Vec::with_capacity(cfg.nodes);
        for (i, slot) in slots.iter().enumerate() {
            let node_dir = run_dir.join("nodes").join(&slot.id);
            let data_dir = data_dir_of(&node_dir);
            std::fs::create_dir_all(&data_dir).map_err(|e| ClusterError::io(&data_dir, e))?;
            let args = desc
                .command_args(&slots, i, &data_dir, &token, &cfg.bugs)
                .map_err(|(field, message)| ClusterError::Descriptor {
                    file: desc.origin.clone(),
                    field,
                    message,
                })?;
            let mut env: Vec<(String, String)> = desc
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if clock.is_supported() {
                let f = clock::offset_file(&node_dir);
                clock::write_offset(&f, 0)?;
                env.extend(clock::env(&f, desc.fake_monotonic));
            }
            if protocol_clock.is_ok()
                && let Some(var) = &desc.clock_file_env
            {
                let f = clock::protocol_file(&node_dir);
                clock::write_protocol(&f, 0, 1.0)?;
                env.push((var.clone(), f.display().to_string()));
            }
            let url = desc
                .client_url_for(slot)
                .map_err(|m| ClusterError::Descriptor {
                    file: desc.origin.clone(),
                    field: "client_url".into(),
                    message: m,
                })?;
            // What the node is started with, for the user (and for reproducing it by hand).
            let launch = serde_json::json!({
                "binary": binary,
                "args": args,
                "env": env.iter().cloned().collect::<BTreeMap<String, String>>(),
            });
            let lpath = node_dir.join(LAUNCH);
            std::fs::write(&lpath, format!("{launch:#}\n"))
                .map_err(|e| ClusterError::io(&lpath, e))?;
            let ns = netns::netns_name(&short_id, &slot.id);
            nodes.push(NodeRt {
                info: NodeInfo {
                    id: slot.id.clone(),
                    addr: sub.node_addr(i + 1),
                    url,
                    netns: ns.clone(),
                },
                spec: LaunchSpec {
                    id: slot.id.clone(),
                    netns: ns,
                    binary: binary.clone(),
                    args,
                    env,
                    node_dir,
                },
                child: None,
                state: NodeState::Stopped,
                net: NetFaults::default(),
                clock_ms: 0,
                protocol_clock: (0, 1.0),
            });
        }
        let mut record = record;
        record.namespaces = nodes.iter().map(|n| n.info.netns.clone()).collect();
        record.save()?;

        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .build()
            .map_err(|e| ClusterError::Missing(format!("http client: {e}")))?;
        let inner = Arc::new(Inner {
            desc,
            short_id,
            subnet: sub,
            run_dir,
            clock,
            protocol_clock,
            http,
            nft: (0..cfg.nodes).map(|_| Mutex::new(None)).collect(),
            nodes: Mutex::new(nodes),
            record: Mutex::new(record),
            torn_down: AtomicBool::new(false),
            proxy: Mutex::new(None),
            restart_status: Mutex::new(None),
        });
        lock(&LIVE).push(Arc::downgrade(&inner));
        // From here on, dropping `cluster` on an error path tears everything down.
        let cluster = Cluster { inner };
        cluster.build_network().await?;
        if proxied {
            cluster.start_proxy(&cfg).await?;
        }
        // Start the nft shells now (they initialise while the nodes boot) so the first fault
        // is as fast as the rest.
        for (i, ns) in cluster.nodes().iter().map(|n| n.netns.clone()).enumerate() {
            *lock(&cluster.inner.nft[i]) = firewall::NftShell::spawn(&ns).ok();
        }
        for i in 0..cfg.nodes {
            cluster.spawn_node(i)?;
        }
        cluster.save_record()?;
        let waits = (0..cfg.nodes).map(|i| cluster.wait_ready(i));
        for r in join_all(waits).await {
            r?;
        }
        Ok(cluster)
    }

    async fn build_network(&self) -> Result<(), ClusterError> {
        let bridge = netns::bridge_name(&self.inner.short_id);
        let baddr = self.inner.subnet.bridge_addr();
        blocking(move || netns::create_bridge(&bridge, baddr)).await?;
        let jobs: Vec<(String, String, Ipv4Addr)> = {
            let nodes = lock(&self.inner.nodes);
            nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        n.info.netns.clone(),
                        netns::veth_name(&self.inner.short_id, i + 1),
                        n.info.addr,
                    )
                })
                .collect()
        };
        let bridge = netns::bridge_name(&self.inner.short_id);
        blocking(move || {
            std::thread::scope(|s| {
                let hs: Vec<_> = jobs
                    .iter()
                    .map(|(ns, veth, addr)| {
                        s.spawn(|| netns::create_node_net(ns, veth, &bridge, *addr))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("netns thread"))
                    .collect::<Result<Vec<()>, _>>()
            })
            .map(|_| ())
        })
        .await
    }

    /// Gives the bridge every node's proxy address and starts the peer proxy on them.
    async fn start_proxy(&self, cfg: &ClusterConfig) -> Result<(), ClusterError> {
        let sub = self.inner.subnet;
        let n = cfg.nodes;
        let addrs: Vec<Ipv4Addr> = (1..=n).map(|i| sub.proxy_addr(i)).collect();
        let bridge = netns::bridge_name(&self.inner.short_id);
        blocking(move || netns::add_bridge_addrs(&bridge, &addrs)).await?;
        let trace = match &cfg.trace_messages {
            Some(p) => Some(Tracer::create(p).map_err(|e| ClusterError::io(p, e))?),
            None => None,
        };
        let desc = &self.inner.desc;
        let pcfg = ProxyConfig {
            mode: desc.peers.proxy,
            nodes: (1..=n)
                .map(|i| ProxyNode {
                    id: format!("n{i}"),
                    addr: sub.node_addr(i).into(),
                    proxy_addr: sub.proxy_addr(i).into(),
                    port: desc.peer_port_number(),
                })
                .collect(),
            batch_field: desc.peers.batch.clone(),
            seed: cfg.seed,
            unknown_as: None,
            trace,
        };
        let p = PeerProxy::start(pcfg)
            .await
            .map_err(|e| ClusterError::Missing(format!("starting the peer proxy: {e}")))?;
        *lock(&self.inner.proxy) = Some(p);
        Ok(())
    }

    /// The run's peer proxy (None when the descriptor says `[peers] proxy = "off"`).
    pub fn peer_proxy(&self) -> Option<PeerProxy> {
        lock(&self.inner.proxy).clone()
    }

    fn spawn_node(&self, i: usize) -> Result<(), ClusterError> {
        let mut nodes = lock(&self.inner.nodes);
        let n = &mut nodes[i];
        let child = node::spawn(&n.spec)?;
        n.child = Some(child);
        n.state = NodeState::Running;
        Ok(())
    }

    fn save_record(&self) -> Result<(), ClusterError> {
        let pids: BTreeMap<String, ProcRef> = lock(&self.inner.nodes)
            .iter()
            .filter_map(|n| {
                let pid = n.child.as_ref()?.id() as i32;
                Some((n.info.id.clone(), ProcRef::of(pid)?))
            })
            .collect();
        let mut rec = lock(&self.inner.record);
        rec.nodes = pids;
        rec.save()
    }

    fn index_of(&self, id: &str) -> Result<usize, ClusterError> {
        lock(&self.inner.nodes)
            .iter()
            .position(|n| n.info.id == id)
            .ok_or_else(|| ClusterError::NoSuchNode(id.to_string()))
    }

    async fn wait_ready(&self, i: usize) -> Result<(), ClusterError> {
        let d = &self.inner.desc;
        let timeout = Duration::from_secs_f64(d.ready.timeout_s);
        let (id, url, node_dir) = {
            let n = &lock(&self.inner.nodes)[i];
            (
                n.info.id.clone(),
                n.info.url.clone(),
                n.spec.node_dir.clone(),
            )
        };
        let probe_url = format!("{url}{}", d.ready.path);
        let start = Instant::now();
        let mut refused_since: Option<Instant> = None;
        let mut last_answer: Option<(String, String)> = None;
        loop {
            if self.inner.torn_down.load(Ordering::SeqCst) {
                return Err(ClusterError::TornDown);
            }
            if let Some(status) = self.reap_if_exited(i) {
                return Err(ClusterError::Node {
                    node: id,
                    message: format!(
                        "exited ({status}) before it was ready; stderr ends:\n{}",
                        node::stderr_tail(&node_dir, 15)
                    ),
                });
            }
            match d
                .ready
                .request(&self.inner.http, &url)
                .timeout(Duration::from_millis(300))
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    let answer = (status.to_string(), body_excerpt(&body));
                    if refuses(status) {
                        let since = *refused_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= REFUSAL_GRACE.min(timeout) {
                            return Err(ClusterError::ReadyRefused {
                                file: d.origin.clone(),
                                answer: format!(
                                    "node {id} answered the readiness probe {} {probe_url} \
                                     with {} ({})",
                                    d.ready.method, answer.0, answer.1
                                ),
                            });
                        }
                    } else {
                        refused_since = None;
                    }
                    last_answer = Some(answer);
                }
                Err(_) => refused_since = None,
            }
            if start.elapsed() > timeout {
                let last = match &last_answer {
                    Some((status, body)) => format!(" (it last answered {status}, {body})"),
                    None => " (it never answered)".into(),
                };
                return Err(ClusterError::Timeout {
                    what: format!("node {id} readiness probe {probe_url}{last}"),
                    ms: timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// If node i's process has exited, reaps it and returns how.
    fn reap_if_exited(&self, i: usize) -> Option<String> {
        let mut nodes = lock(&self.inner.nodes);
        let n = &mut nodes[i];
        let child = n.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(st)) => {
                n.child = None;
                n.state = NodeState::Stopped;
                Some(st.to_string())
            }
            _ => None,
        }
    }

    // ----- inspection -----

    /// Six hex digits naming every resource of this run (`fl-<short_id>-...`).
    pub fn short_id(&self) -> &str {
        &self.inner.short_id
    }
    pub fn subnet(&self) -> Subnet {
        self.inner.subnet
    }
    pub fn run_dir(&self) -> &Path {
        &self.inner.run_dir
    }
    pub fn descriptor(&self) -> &SystemDescriptor {
        &self.inner.desc
    }
    /// Which client the workload must use.
    pub fn client_adapter(&self) -> ClientAdapter {
        self.inner.desc.client
    }
    /// Whether clock faults can be injected (and if not, why).
    pub fn clock_support(&self) -> &ClockSupport {
        &self.inner.clock
    }
    pub fn nodes(&self) -> Vec<NodeInfo> {
        lock(&self.inner.nodes)
            .iter()
            .map(|n| n.info.clone())
            .collect()
    }
    pub fn node_ids(&self) -> Vec<String> {
        lock(&self.inner.nodes)
            .iter()
            .map(|n| n.info.id.clone())
            .collect()
    }
    pub fn node(&self, id: &str) -> Result<NodeInfo, ClusterError> {
        let i = self.index_of(id)?;
        Ok(lock(&self.inner.nodes)[i].info.clone())
    }
    /// The node's current pid, if its process runs (or is paused).
    pub fn pid(&self, id: &str) -> Option<u32> {
        let i = self.index_of(id).ok()?;
        lock(&self.inner.nodes)[i].child.as_ref().map(|c| c.id())
    }
    pub fn node_state(&self, id: &str) -> Result<NodeState, ClusterError> {
        let i = self.index_of(id)?;
        Ok(lock(&self.inner.nodes)[i].state)
    }
    /// `nodes/<id>/` in the run directory.
    pub fn node_dir(&self, id: &str) -> Result<PathBuf, ClusterError> {
        let i = self.index_of(id)?;
        Ok(lock(&self.inner.nodes)[i].spec.node_dir.clone())
    }
    /// The clock offset currently injected into the node, in ms.
    pub fn clock_offset_ms(&self, id: &str) -> Result<i64, ClusterError> {
        let i = self.index_of(id)?;
        Ok(lock(&self.inner.nodes)[i].clock_ms)
    }

    /// The node's status in the node protocol's `/status` shape (etcd's is translated;
    /// `clock_ms` is null where the system does not report its clock).
    pub async fn status(&self, id: &str) -> Result<Value, ClusterError> {
        let info = self.node(id)?;
        status::fetch(
            &self.inner.http,
            self.inner.desc.status,
            id,
            &info.url,
            Duration::from_millis(500),
        )
        .await
        .map_err(|message| ClusterError::Node {
            node: id.to_string(),
            message: format!("status: {message}"),
        })
    }

    /// Every node's status, queried concurrently, in node order.
    pub async fn statuses(&self) -> Vec<(String, Result<Value, ClusterError>)> {
        let ids = self.node_ids();
        let futs = ids.iter().map(|id| self.status(id));
        ids.iter().cloned().zip(join_all(futs).await).collect()
    }

    /// The node that claims leadership in the highest term among those answering.
    pub async fn leader(&self) -> Option<String> {
        status::leader_of(self.statuses().await.into_iter().map(|(_, r)| r))
    }

    /// Polls until some node reports itself leader, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<String, ClusterError> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if start.elapsed() > timeout {
                return Err(ClusterError::Timeout {
                    what: "waiting for a leader".into(),
                    ms: timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ----- process faults -----

    fn live_pid(&self, id: &str, want: &[NodeState]) -> Result<(usize, u32), ClusterError> {
        let i = self.index_of(id)?;
        let nodes = lock(&self.inner.nodes);
        let n = &nodes[i];
        match (&n.child, want.contains(&n.state)) {
            (Some(c), true) => Ok((i, c.id())),
            _ => Err(ClusterError::Node {
                node: id.to_string(),
                message: format!("is {:?}, expected one of {want:?}", n.state),
            }),
        }
    }

    fn set_state(&self, i: usize, s: NodeState) {
        lock(&self.inner.nodes)[i].state = s;
    }

    /// SIGSTOP.
    pub async fn pause(&self, id: &str) -> Result<(), ClusterError> {
        let (i, pid) = self.live_pid(id, &[NodeState::Running, NodeState::Paused])?;
        node::signal(pid, libc::SIGSTOP).map_err(|e| ClusterError::Node {
            node: id.into(),
            message: format!("SIGSTOP: {e}"),
        })?;
        self.set_state(i, NodeState::Paused);
        // The fault is in force only once every thread has stopped; until then the node
        // may still answer.
        let deadline = Instant::now() + PAUSE_SETTLE_LIMIT;
        while !procfs::is_stopped(pid as i32) {
            if Instant::now() >= deadline {
                return Err(ClusterError::Node {
                    node: id.into(),
                    message: format!(
                        "SIGSTOP sent but the process was not stopped within {PAUSE_SETTLE_LIMIT:?}"
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// SIGCONT.
    pub async fn resume(&self, id: &str) -> Result<(), ClusterError> {
        let (i, pid) = self.live_pid(id, &[NodeState::Running, NodeState::Paused])?;
        node::signal(pid, libc::SIGCONT).map_err(|e| ClusterError::Node {
            node: id.into(),
            message: format!("SIGCONT: {e}"),
        })?;
        self.set_state(i, NodeState::Running);
        Ok(())
    }

    /// SIGKILL and reap; the data dir stays for `restart`.
    pub async fn kill(&self, id: &str) -> Result<(), ClusterError> {
        self.end_process(id, false, NodeState::Killed).await
    }

    /// Empties a down node's data dir (a lost disk), for `restart` to start it blank.
    pub fn wipe_data(&self, id: &str) -> Result<(), ClusterError> {
        let i = self.index_of(id)?;
        if lock(&self.inner.nodes)[i].child.is_some() {
            return Err(ClusterError::Node {
                node: id.into(),
                message: "is still running; kill it before wiping its data dir".into(),
            });
        }
        let data = data_dir_of(&self.node_dir(id)?);
        std::fs::remove_dir_all(&data).map_err(|e| ClusterError::io(&data, e))?;
        std::fs::create_dir_all(&data).map_err(|e| ClusterError::io(&data, e))
    }

    /// SIGTERM, then SIGKILL after the descriptor's stop timeout.
    pub async fn stop(&self, id: &str) -> Result<(), ClusterError> {
        self.end_process(id, true, NodeState::Stopped).await
    }

    async fn end_process(
        &self,
        id: &str,
        graceful: bool,
        then: NodeState,
    ) -> Result<(), ClusterError> {
        let i = self.index_of(id)?;
        let child = lock(&self.inner.nodes)[i].child.take();
        let Some(mut child) = child else {
            return Ok(()); // already down
        };
        let pid = child.id();
        let grace = self.inner.desc.stop_timeout;
        let status = blocking(move || {
            if graceful {
                let _ = node::signal(pid, libc::SIGCONT);
                let _ = node::signal(pid, libc::SIGTERM);
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline {
                    if let Ok(Some(st)) = child.try_wait() {
                        return Ok(st);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            child.wait().map_err(|e| ClusterError::io("wait", e))
        })
        .await;
        self.set_state(i, then);
        status.map(|_| ())
    }

    /// Starts a stopped or killed node again on the same data dir and waits until ready.
    pub async fn restart(&self, id: &str) -> Result<(), ClusterError> {
        let i = self.index_of(id)?;
        if lock(&self.inner.nodes)[i].child.is_some() {
            return Err(ClusterError::Node {
                node: id.into(),
                message: "is still running; kill or stop it first".into(),
            });
        }
        self.check_live()?;
        self.spawn_node(i)?;
        self.save_record()?;
        self.wait_ready(i).await?;
        let sink = lock(&self.inner.restart_status).clone();
        let asked = Instant::now();
        if let Some(sink) = sink
            && let Ok(v) = self.status(id).await
        {
            sink(id, v, asked);
        }
        Ok(())
    }

    /// Sends every restarted node's status, asked the moment it is ready, to `sink`. That
    /// is when state a node forgot over the restart (a term, a promise) shows, before the
    /// protocol raises it again; a periodic probe mostly misses that window.
    pub fn on_restart_status(&self, sink: StatusSink) {
        *lock(&self.inner.restart_status) = Some(sink);
    }

    /// Gracefully stops every node (in parallel).
    pub async fn stop_all(&self) -> Result<(), ClusterError> {
        let ids = self.node_ids();
        let results = join_all(ids.iter().map(|id| self.stop(id))).await;
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    // ----- network faults -----

    fn check_live(&self) -> Result<(), ClusterError> {
        if self.inner.torn_down.load(Ordering::SeqCst) {
            Err(ClusterError::TornDown)
        } else {
            Ok(())
        }
    }

    /// Applies new per-node network fault sets, only to nodes whose set changed, all nodes in
    /// parallel. Returns once every rule is loaded in the kernel.
    async fn update_net(
        &self,
        f: impl Fn(&NodeInfo, &NetFaults) -> NetFaults,
    ) -> Result<(), ClusterError> {
        self.check_live()?;
        let jobs: Vec<(usize, String, String)> = {
            let mut nodes = lock(&self.inner.nodes);
            let mut jobs = Vec::new();
            for (i, n) in nodes.iter_mut().enumerate() {
                let new = f(&n.info, &n.net);
                if new != n.net {
                    jobs.push((i, n.info.netns.clone(), firewall::render(&new)));
                    n.net = new;
                }
            }
            jobs
        };
        apply_parallel(self.inner.clone(), jobs).await
    }

    /// Drops, on each node of `grudge`, every packet coming from the listed nodes (one-way:
    /// make it symmetric by listing both directions). Nodes not in `grudge` hear everyone.
    /// Replaces the previous partition; packet loss stays.
    pub async fn partition(
        &self,
        grudge: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), ClusterError> {
        let addrs: BTreeMap<String, Ipv4Addr> =
            self.nodes().into_iter().map(|n| (n.id, n.addr)).collect();
        // Through the proxy a peer's packets come from its proxy address: cut both.
        let proxied = lock(&self.inner.proxy).is_some();
        let sub = self.inner.subnet;
        let from = |id: &String| -> Vec<Ipv4Addr> {
            let a = addrs[id];
            let i = (a.octets()[3] - 10) as usize;
            if proxied {
                vec![a, sub.proxy_addr(i)]
            } else {
                vec![a]
            }
        };
        for (k, vs) in grudge {
            for id in std::iter::once(k).chain(vs) {
                if !addrs.contains_key(id) {
                    return Err(ClusterError::NoSuchNode(id.clone()));
                }
            }
        }
        self.update_net(|info, old| NetFaults {
            drop_from: grudge
                .get(&info.id)
                .map(|vs| vs.iter().flat_map(from).collect())
                .unwrap_or_default(),
            loss_percent: old.loss_percent,
        })
        .await
    }

    /// Drops `percent` of inbound packets at random on `targets` (0 on every other node).
    pub async fn set_loss(&self, targets: &[String], percent: u8) -> Result<(), ClusterError> {
        for t in targets {
            self.index_of(t)?;
        }
        let percent = percent.min(100);
        self.update_net(|info, old| NetFaults {
            drop_from: old.drop_from.clone(),
            loss_percent: if targets.contains(&info.id) {
                percent
            } else {
                0
            },
        })
        .await
    }

    /// Removes every partition and loss rule.
    pub async fn heal_network(&self) -> Result<(), ClusterError> {
        self.update_net(|_, _| NetFaults::default()).await
    }

    // ----- clock faults -----

    /// Sets the node's wall-clock offset (ms, relative to the real clock), effective on the
    /// node's next clock read.
    pub async fn set_clock_offset(&self, id: &str, offset_ms: i64) -> Result<(), ClusterError> {
        if let ClockSupport::Unsupported(why) = &self.inner.clock {
            return Err(ClusterError::ClockUnsupported(why.clone()));
        }
        let i = self.index_of(id)?;
        let file = clock::offset_file(&lock(&self.inner.nodes)[i].spec.node_dir);
        clock::write_offset(&file, offset_ms)?;
        lock(&self.inner.nodes)[i].clock_ms = offset_ms;
        Ok(())
    }

    /// Whether the nodes' protocol clocks can be moved (and if not, why).
    pub fn protocol_clock_support(&self) -> Result<(), String> {
        self.inner.protocol_clock.clone()
    }

    /// Sets the node's protocol clock (wall and monotonic): `offset_ms` plus real time run at
    /// `rate`. The node's clock stays continuous across rate changes, so the skew a rate
    /// built up stays when the rate goes back to 1.
    pub async fn set_protocol_clock(
        &self,
        id: &str,
        offset_ms: i64,
        rate: f64,
    ) -> Result<(), ClusterError> {
        if let Err(why) = &self.inner.protocol_clock {
            return Err(ClusterError::ClockUnsupported(why.clone()));
        }
        let i = self.index_of(id)?;
        let file = clock::protocol_file(&lock(&self.inner.nodes)[i].spec.node_dir);
        clock::write_protocol(&file, offset_ms, rate)?;
        lock(&self.inner.nodes)[i].protocol_clock = (offset_ms, rate);
        Ok(())
    }

    /// The node's protocol clock setting (offset ms, rate).
    pub fn protocol_clock(&self, id: &str) -> Result<(i64, f64), ClusterError> {
        let i = self.index_of(id)?;
        Ok(lock(&self.inner.nodes)[i].protocol_clock)
    }

    /// Puts every node's clock back to the real time (no-op where clocks are unsupported).
    pub async fn reset_clocks(&self) -> Result<(), ClusterError> {
        for id in self.node_ids() {
            if self.inner.clock.is_supported() && self.clock_offset_ms(&id)? != 0 {
                self.set_clock_offset(&id, 0).await?;
            }
            if self.inner.protocol_clock.is_ok() && self.protocol_clock(&id)? != (0, 1.0) {
                self.set_protocol_clock(&id, 0, 1.0).await?;
            }
        }
        Ok(())
    }

    // ----- heal and teardown -----

    /// Undoes every fault: network rules removed, paused nodes resumed, clocks reset,
    /// killed nodes restarted (waiting until ready). A node ended with `stop` was taken down
    /// on purpose, not by a fault, and stays down. Tries everything, reports the first error.
    pub async fn heal(&self) -> Result<(), ClusterError> {
        self.check_live()?;
        let mut first: Option<ClusterError> = None;
        let mut keep = |r: Result<(), ClusterError>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        keep(self.heal_network().await);
        keep(self.reset_clocks().await);
        for id in self.node_ids() {
            match self.node_state(&id) {
                Ok(NodeState::Paused) => keep(self.resume(&id).await),
                Ok(NodeState::Killed) => keep(self.restart(&id).await),
                _ => {}
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Kills every node, deletes namespaces, veths and the bridge, removes the registry
    /// record. Idempotent; also runs on drop of the last handle and on SIGINT/SIGTERM (see
    /// `signals`).
    pub async fn teardown(&self) -> Result<(), ClusterError> {
        let inner = self.inner.clone();
        blocking(move || inner.teardown_sync()).await
    }

    /// The blocking form of `teardown`, for non-async callers.
    pub fn teardown_blocking(&self) -> Result<(), ClusterError> {
        self.inner.teardown_sync()
    }
}

impl Inner {
    fn teardown_sync(&self) -> Result<(), ClusterError> {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let mut errors = Vec::new();
        let namespaces: Vec<String> = {
            let mut nodes = lock(&self.nodes);
            for n in nodes.iter_mut() {
                if let Some(mut c) = n.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                n.state = NodeState::Stopped;
            }
            nodes.iter().map(|n| n.info.netns.clone()).collect()
        };
        for shell in &self.nft {
            lock(shell).take();
        }
        if let Some(p) = lock(&self.proxy).take() {
            p.stop();
        }
        let record = lock(&self.record).clone();
        let mut report = cleanup::CleanupReport::default();
        // Anything else that entered our namespaces (a node's children) goes too.
        cleanup::remove_run(
            &RunRecord {
                namespaces,
                nodes: BTreeMap::new(),
                ..record
            },
            &mut report,
        );
        errors.extend(report.errors);
        lock(&LIVE).retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), self));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::Missing(format!(
                "teardown of run fl-{} left: {}",
                self.short_id,
                errors.join("; ")
            )))
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_sync() {
            eprintln!("faultline: {e}");
        }
    }
}

/// Tears down every cluster alive in this process (for signal handlers). Blocking.
pub fn teardown_all_live() {
    let live: Vec<Arc<Inner>> = lock(&LIVE).iter().filter_map(|w| w.upgrade()).collect();
    for inner in live {
        if let Err(e) = inner.teardown_sync() {
            eprintln!("faultline: {e}");
        }
    }
}

async fn apply_parallel(
    inner: Arc<Inner>,
    jobs: Vec<(usize, String, String)>,
) -> Result<(), ClusterError> {
    let n = jobs.len();
    let run = move || {
        // Jobs come in node order, so shells are always locked in the same order.
        let mut guards: Vec<_> = jobs.iter().map(|(i, _, _)| lock(&inner.nft[*i])).collect();
        let mut batch: Vec<(&mut Option<firewall::NftShell>, &str, &str)> = guards
            .iter_mut()
            .zip(&jobs)
            .map(|(g, (_, ns, script))| (&mut **g, ns.as_str(), script.as_str()))
            .collect();
        firewall::apply_many(&mut batch)
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    };
    match n {
        0 => Ok(()),
        // One node: apply on this thread, skipping a thread hop (this is the latency path).
        1 => run(),
        _ => blocking(run).await,
    }
}

/// How long a node may keep refusing its readiness probe (a 4xx: no such path, wrong
/// method) before that is taken as the descriptor's mistake rather than a slow start.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// Whether an answer says the probe itself is wrong (4xx) rather than "not ready yet"
/// (5xx, 408 timeout, 425 too early, 429 slow down).
fn refuses(status: reqwest::StatusCode) -> bool {
    status.is_client_error() && ![408, 425, 429].contains(&status.as_u16())
}

/// An answer's body for a message: whitespace collapsed, at most 120 characters, quoted.
fn body_excerpt(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "empty body".into();
    }
    let cut: String = flat.chars().take(120).collect();
    let more = if cut.len() < flat.len() { "..." } else { "" };
    format!("body {:?}", format!("{cut}{more}"))
}

/// Awaits all futures concurrently, outputs in order (no extra dependency for one helper).
pub async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut futs: Vec<Option<std::pin::Pin<Box<F>>>> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("all done")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_4xx_other_than_wait_answers_refuses_the_probe() {
        for (code, refused) in [(404, true), (405, true), (400, true), (503, false)] {
            assert_eq!(
                refuses(reqwest::StatusCode::from_u16(code).unwrap()),
                refused,
                "{code}"
            );
        }
        assert!(!refuses(reqwest::StatusCode::TOO_MANY_REQUESTS));
        assert!(!refuses(reqwest::StatusCode::OK));
    }

    #[test]
    fn body_excerpts_are_short_single_lines() {
        assert_eq!(body_excerpt(" \n"), "empty body");
        assert_eq!(body_excerpt("no such\n  path"), "body \"no such path\"");
        let long = body_excerpt(&"x".repeat(500));
        assert_eq!(long.len(), "body \"\"".len() + 120 + 3);
    }
}
