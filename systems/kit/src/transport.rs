//! Peer transport: one task per peer drains a bounded queue and POSTs batches of messages
//! (`{"from","addr","msgs":[..]}`) to the peer's batch path (e.g. `/raft/batch`). Protocols
//! on the kit tolerate loss, so a full queue or a failed POST drops messages; the protocol
//! retransmits. Proxies are off; connects and requests have timeouts.

use crate::replica::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 4096;
const BATCH: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: DeserializeOwned"))]
pub struct Batch<M> {
    pub from: NodeId,
    /// The sender's own address, so a node that does not know it yet (joining) can answer.
    #[serde(default)]
    pub addr: String,
    pub msgs: Vec<M>,
}

struct Peer<M> {
    addr: String,
    tx: mpsc::Sender<M>,
    task: tokio::task::JoinHandle<()>,
}

/// How big a message is for timeouts: snapshots get longer.
pub type IsLarge<M> = fn(&M) -> bool;

pub struct Transport<M> {
    id: NodeId,
    addr: String,
    path: &'static str,
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
    peers: HashMap<NodeId, Peer<M>>,
    /// Addresses learnt from incoming batches of nodes outside the replica's peers.
    learned: HashMap<NodeId, String>,
    is_large: IsLarge<M>,
}

/// The HTTP client every kit connection uses: no proxy, short connect timeout, no Nagle.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(250))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4)
        .build()
        .expect("http client builds")
}

impl<M: Serialize + Send + 'static> Transport<M> {
    pub fn new(
        id: NodeId,
        addr: String,
        path: &'static str,
        rt: tokio::runtime::Handle,
        is_large: IsLarge<M>,
    ) -> Transport<M> {
        Transport {
            id,
            addr,
            path,
            rt,
            client: http_client(),
            peers: HashMap::new(),
            learned: HashMap::new(),
            is_large,
        }
    }

    /// Starts senders for new peers, stops those no longer wanted.
    pub fn set_peers(&mut self, peers: &[(NodeId, String)]) {
        let mut wanted = self.learned.clone();
        wanted.extend(peers.iter().cloned());
        wanted.remove(&self.id);
        if wanted.len() == self.peers.len()
            && self
                .peers
                .iter()
                .all(|(id, p)| wanted.get(id) == Some(&p.addr))
        {
            return;
        }
        self.peers.retain(|id, p| {
            let keep = wanted.get(id) == Some(&p.addr);
            if !keep {
                p.task.abort();
            }
            keep
        });
        for (id, addr) in &wanted {
            if self.peers.contains_key(id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let url = format!("http://{addr}{}", self.path);
            let me = (self.id.clone(), self.addr.clone());
            let task = self
                .rt
                .spawn(sender(me, url, self.client.clone(), rx, self.is_large));
            self.peers.insert(
                id.clone(),
                Peer {
                    addr: addr.clone(),
                    tx,
                    task,
                },
            );
        }
    }

    /// Remembers the address of a node that contacted us (used if it is not a peer).
    pub fn learn(&mut self, id: &str, addr: &str) {
        if !addr.is_empty() && id != self.id && !self.learned.contains_key(id) {
            self.learned.insert(id.to_string(), addr.to_string());
        }
    }

    /// Queues a message; drops it if the peer is unknown or its queue is full.
    pub fn send(&self, to: &str, msg: M) {
        if let Some(p) = self.peers.get(to) {
            let _ = p.tx.try_send(msg);
        }
    }

    /// Queues `msg` for `to` once `delay` has passed (a failpoint's slow link); the caller
    /// goes on at once.
    pub fn send_after(&self, to: &str, msg: M, delay: Duration) {
        if let Some(p) = self.peers.get(to) {
            let tx = p.tx.clone();
            self.rt.spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.try_send(msg);
            });
        }
    }
}

impl<M> Drop for Transport<M> {
    fn drop(&mut self) {
        for p in self.peers.values() {
            p.task.abort();
        }
    }
}

async fn sender<M: Serialize>(
    (from, addr): (NodeId, String),
    url: String,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<M>,
    is_large: IsLarge<M>,
) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let big = msgs.iter().any(is_large);
        let timeout = Duration::from_millis(if big { 10_000 } else { 1_000 });
        let batch = Batch {
            from: from.clone(),
            addr: addr.clone(),
            msgs,
        };
        let res = client.post(&url).json(&batch).timeout(timeout).send().await;
        if !matches!(&res, Ok(r) if r.status().is_success()) {
            // Peer down or partitioned: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
