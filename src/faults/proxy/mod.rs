//! The peer proxy: every peer link of a local run passes through the harness, so faults can
//! act on single messages (delay, duplicate, drop by type, hold and release shuffled) and on
//! connections (reset, bandwidth), per directed link.
//!
//! Each node `j` gets a listener on its own proxy address (on the host side of the run's
//! bridge). `{peers}` names these addresses, so node `i` reaching peer `j` connects to j's
//! listener; the proxy tells `i` by the connection's source address and forwards to `j` from
//! i's proxy address. Nodes thus see each peer at one stable address, and a partition that
//! drops a peer's real and proxy addresses still cuts the link.
//!
//! `l7` speaks HTTP/1.1 and sees each request's path and JSON `type`; with a batch field
//! (the bundled Raft's `msgs`) a request carries several one-way messages, which the proxy
//! acknowledges at once (204) and delivers itself, each with its own fate. `l4` forwards
//! opaque TCP (etcd's peer port): delay, bandwidth, reset and blackhole only.

mod l4;
mod l7;
pub mod rules;
pub mod trace;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub use rules::{Dist, Fate, Link, MsgAction, MsgInfo, MsgRule};
pub use trace::Tracer;

/// How peer traffic is proxied (a descriptor's `[peers] proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// HTTP/1.1 requests, seen by path and JSON `type`.
    L7,
    /// Opaque TCP.
    L4,
    /// Peers talk directly; no message faults.
    Off,
}

/// One node as the proxy sees it.
#[derive(Clone, Debug)]
pub struct ProxyNode {
    pub id: String,
    /// Where the node's own peer connections come from (its real address).
    pub addr: IpAddr,
    /// The node's proxy address: peers connect here to reach it, and the proxy connects out
    /// from here when forwarding this node's traffic.
    pub proxy_addr: IpAddr,
    /// The node's real peer port (the proxy listens on the same port at `proxy_addr`).
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub mode: ProxyMode,
    pub nodes: Vec<ProxyNode>,
    /// L7: the JSON field of a request body holding a batch of one-way messages.
    pub batch_field: Option<String>,
    /// Seeds every per-message draw.
    pub seed: u64,
    /// The name of a connection from an address no node has (else the address itself): the
    /// client-path proxy calls its clients one party.
    pub unknown_as: Option<String>,
    pub trace: Option<Tracer>,
}

/// A held message or request, waiting for its rule to be removed.
enum Held {
    /// L7 batch mode: one message with its envelope, for the link's delivery queue.
    Message { link: Link, item: l7::Item },
    /// L7 request mode: a request waiting to be let through.
    Request(tokio::sync::oneshot::Sender<()>),
}

struct Shared {
    cfg: ProxyConfig,
    by_addr: BTreeMap<IpAddr, String>,
    rules: Mutex<Vec<MsgRule>>,
    rng: Mutex<ChaCha8Rng>,
    held: Mutex<Vec<(u64, Held)>>,
    /// Live connections by directed link (the connecting node first), for resets.
    conns: Mutex<Vec<(Link, tokio::task::AbortHandle)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    queues: Mutex<BTreeMap<Link, l7::LinkQueue>>,
    /// Trace times count from here; nothing is traced before it is set.
    epoch: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running proxy; clones share it. `stop` (or dropping the cluster) ends every task.
#[derive(Clone)]
pub struct PeerProxy {
    shared: Arc<Shared>,
}

impl PeerProxy {
    /// Binds one listener per node and starts accepting. Must run inside a tokio runtime.
    pub async fn start(cfg: ProxyConfig) -> std::io::Result<PeerProxy> {
        let by_addr = cfg.nodes.iter().map(|n| (n.addr, n.id.clone())).collect();
        let shared = Arc::new(Shared {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7072_6f78_7921)),
            by_addr,
            rules: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            queues: Mutex::new(BTreeMap::new()),
            epoch: Mutex::new(None),
            cfg,
        });
        let mut listeners = Vec::new();
        for n in &shared.cfg.nodes {
            let l = TcpListener::bind(SocketAddr::new(n.proxy_addr, n.port))
                .await
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "peer proxy for {} on {}:{}: {e}",
                            n.id, n.proxy_addr, n.port
                        ),
                    )
                })?;
            listeners.push((n.id.clone(), l));
        }
        let proxy = PeerProxy { shared };
        for (to, l) in listeners {
            let p = proxy.clone();
            let t = tokio::spawn(async move { p.accept_loop(to, l).await });
            lock(&proxy.shared.tasks).push(t);
        }
        Ok(proxy)
    }

    pub fn mode(&self) -> ProxyMode {
        self.shared.cfg.mode
    }

    /// Trace times count from here (the run's start); tracing begins now.
    pub fn set_epoch(&self, t: Instant) {
        *lock(&self.shared.epoch) = Some(t);
    }

    /// Puts a rule in force (resets act at once on the link's live connections).
    pub fn add_rule(&self, rule: MsgRule) {
        if matches!(rule.action, MsgAction::Reset) {
            let mut conns = lock(&self.shared.conns);
            conns.retain(|(link, h)| {
                let hit = rule.links.contains(link)
                    || rule.links.contains(&(link.1.clone(), link.0.clone()));
                if hit {
                    h.abort();
                }
                !hit
            });
        }
        lock(&self.shared.rules).push(rule);
    }

    /// Removes a rule; what it held is released together, in a shuffled order. Returns how
    /// many messages were released.
    pub fn remove_rule(&self, id: u64) -> usize {
        lock(&self.shared.rules).retain(|r| r.id != id);
        let mut mine: Vec<Held> = {
            let mut held = lock(&self.shared.held);
            let (m, keep): (Vec<_>, Vec<_>) = held.drain(..).partition(|(r, _)| *r == id);
            *held = keep;
            m.into_iter().map(|(_, h)| h).collect()
        };
        {
            let mut rng = lock(&self.shared.rng);
            for i in (1..mine.len()).rev() {
                let j = rand::RngExt::random_range(&mut *rng, 0..=i);
                mine.swap(i, j);
            }
        }
        let n = mine.len();
        let now = Instant::now();
        for h in mine {
            match h {
                Held::Message { link, mut item } => {
                    self.trace(&link, item.kind.as_deref(), item.bytes, "released", None);
                    item.due = now;
                    self.enqueue(link, item);
                }
                Held::Request(tx) => {
                    let _ = tx.send(());
                }
            }
        }
        n
    }

    /// Removes every rule, releasing everything held.
    pub fn clear(&self) {
        let ids: Vec<u64> = lock(&self.shared.rules).iter().map(|r| r.id).collect();
        for id in ids {
            self.remove_rule(id);
        }
    }

    pub fn rules(&self) -> Vec<MsgRule> {
        lock(&self.shared.rules).clone()
    }

    /// Ends every listener, connection and queue.
    pub fn stop(&self) {
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
        for (_, h) in lock(&self.shared.conns).drain(..) {
            h.abort();
        }
        for (_, q) in std::mem::take(&mut *lock(&self.shared.queues)) {
            q.task.abort();
        }
        lock(&self.shared.held).clear();
        if let Some(t) = &self.shared.cfg.trace {
            t.flush();
        }
    }

    async fn accept_loop(self, to: String, l: TcpListener) {
        loop {
            let Ok((stream, peer)) = l.accept().await else {
                continue;
            };
            let from = self
                .shared
                .by_addr
                .get(&peer.ip())
                .cloned()
                .or_else(|| self.shared.cfg.unknown_as.clone())
                .unwrap_or_else(|| peer.ip().to_string());
            if rules::resets(&lock(&self.shared.rules), &from, &to) {
                reset(stream);
                self.trace(&(from, to.clone()), None, 0, "reset", None);
                continue;
            }
            let p = self.clone();
            let link = (from.clone(), to.clone());
            let to = to.clone();
            let t = tokio::spawn(async move {
                match p.shared.cfg.mode {
                    ProxyMode::L4 => l4::serve(p, from, to, stream).await,
                    _ => l7::serve(p, from, to, stream).await,
                }
            });
            let mut conns = lock(&self.shared.conns);
            conns.retain(|(_, h)| !h.is_finished());
            conns.push((link, t.abort_handle()));
        }
    }

    fn node(&self, id: &str) -> Option<&ProxyNode> {
        self.shared.cfg.nodes.iter().find(|n| n.id == id)
    }

    /// Opens the forwarding connection for link (from, to): from `from`'s proxy address to
    /// `to`'s real one, giving up after `limit` (a partitioned peer never answers a SYN).
    async fn connect(&self, from: &str, to: &str, limit: Duration) -> std::io::Result<TcpStream> {
        let dst = self
            .node(to)
            .ok_or_else(|| std::io::Error::other(format!("unknown node {to}")))?;
        let target = SocketAddr::new(dst.addr, dst.port);
        let sock = match target {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(src) = self.node(from) {
            sock.bind(SocketAddr::new(src.proxy_addr, 0))?;
        }
        let s = tokio::time::timeout(limit, sock.connect(target))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting to {to} at {target}: no answer in {limit:?}"),
                )
            })??;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn decide(&self, m: &MsgInfo) -> (Fate, Vec<MsgRule>) {
        let rules = lock(&self.shared.rules).clone();
        let f = rules::decide(&rules, m, &mut *lock(&self.shared.rng));
        (f, rules)
    }

    fn trace(&self, link: &Link, kind: Option<&str>, bytes: usize, fate: &str, delay: Option<f64>) {
        if let Some(t) = &self.shared.cfg.trace
            && let Some(epoch) = *lock(&self.shared.epoch)
        {
            t.record(epoch.elapsed(), link, kind, bytes, fate, delay);
        }
    }

    fn hold(&self, rule: u64, h: Held) {
        lock(&self.shared.held).push((rule, h));
    }

    fn enqueue(&self, link: Link, item: l7::Item) {
        let mut qs = lock(&self.shared.queues);
        let q = qs
            .entry(link.clone())
            .or_insert_with(|| l7::LinkQueue::spawn(self.clone(), link));
        q.push(item);
    }
}

/// Closes a connection with a TCP reset (linger 0), as a crashed peer or middlebox would.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

#[cfg(test)]
mod tests;

/// The `proxy` backend: message and connection faults as rules on a run's peer proxy.
pub struct ProxyFaults {
    proxy: Option<PeerProxy>,
    system: String,
}

/// Whether a peer proxy in `mode` can do `need` for `system` (no running proxy needed, so a
/// schedule can be judged from its descriptor); else why not.
pub fn mode_supports(mode: ProxyMode, system: &str, need: super::Need) -> Result<(), String> {
    use super::FaultKind as K;
    if !matches!(
        need.kind,
        K::MsgDelay | K::MsgDup | K::MsgDrop | K::MsgHold | K::ConnReset | K::Bandwidth
    ) {
        return Err(format!("{} is not a message fault", need.kind.as_str()));
    }
    match mode {
        ProxyMode::Off => Err(format!(
            "system `{system}` has no peer proxy (its descriptor says `[peers] proxy = \"off\"`)"
        )),
        ProxyMode::L4 if need.sees_messages => Err(format!(
            "{} needs to see single messages (a type or path filter, a duplicate, a hold), \
             but system `{system}`'s peers are proxied at l4 (opaque TCP)",
            need.kind.as_str()
        )),
        _ => Ok(()),
    }
}

impl ProxyFaults {
    /// `proxy` is None when the system's peers are not proxied (`[peers] proxy = "off"`).
    pub fn new(proxy: Option<PeerProxy>, system: String) -> ProxyFaults {
        ProxyFaults { proxy, system }
    }

    fn proxy(&self) -> Result<&PeerProxy, super::FaultsError> {
        self.proxy
            .as_ref()
            .ok_or_else(|| super::FaultsError::Unsupported {
                backend: "proxy",
                kind: "message",
                why: "no peer proxy in this run".into(),
            })
    }
}

impl super::Faults for ProxyFaults {
    fn name(&self) -> &'static str {
        "proxy"
    }

    fn supports(&self, need: super::Need) -> Result<(), String> {
        let mode = self.proxy.as_ref().map_or(ProxyMode::Off, |p| p.mode());
        mode_supports(mode, &self.system, need)
    }

    fn apply<'a>(
        &'a self,
        fault: &'a super::Fault,
    ) -> super::BoxFuture<'a, Result<(), super::FaultsError>> {
        Box::pin(async move {
            if let super::Fault::Message { rule } = fault {
                self.proxy()?.add_rule(rule.clone());
            }
            Ok(())
        })
    }

    fn undo<'a>(
        &'a self,
        fault: &'a super::Fault,
    ) -> super::BoxFuture<'a, Result<serde_json::Value, super::FaultsError>> {
        Box::pin(async move {
            let mut detail = serde_json::json!({});
            if let super::Fault::Message { rule } = fault {
                let released = self.proxy()?.remove_rule(rule.id);
                if matches!(rule.action, MsgAction::Hold) {
                    detail = serde_json::json!({ "released": released });
                }
            }
            Ok(detail)
        })
    }

    fn heal(&self) -> super::BoxFuture<'_, Result<(), super::FaultsError>> {
        Box::pin(async move {
            if let Some(p) = &self.proxy {
                p.clear();
            }
            Ok(())
        })
    }
}
