//! Peer transport: one task per peer drains a bounded queue and POSTs batches of messages to
//! the peer's `/raft/batch`. Raft tolerates loss, so a full queue or a failed POST drops
//! messages; the protocol retransmits.

use crate::core::{Membership, Message, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 4096;
const BATCH: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Batch {
    pub from: NodeId,
    /// The sender's own address, so a node that does not know it yet (joining) can answer.
    #[serde(default)]
    pub addr: String,
    pub msgs: Vec<Message>,
}

struct Peer {
    addr: String,
    tx: mpsc::Sender<Message>,
    task: tokio::task::JoinHandle<()>,
}

pub struct Transport {
    id: NodeId,
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
    peers: HashMap<NodeId, Peer>,
    /// Addresses learnt from incoming batches of nodes outside our membership.
    learned: HashMap<NodeId, String>,
    addr: String,
}

impl Transport {
    pub fn new(id: NodeId, addr: String, rt: tokio::runtime::Handle) -> Transport {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(250))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4)
            .build()
            .expect("http client builds");
        Transport {
            id,
            rt,
            client,
            peers: HashMap::new(),
            learned: HashMap::new(),
            addr,
        }
    }

    /// Starts senders for new peers, stops those no longer in the membership.
    pub fn set_peers(&mut self, membership: &Membership) {
        let mut wanted = self.learned.clone();
        wanted.extend(membership.voters.clone());
        if wanted.len() == self.peers.len() + 1
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
            if *id == self.id || self.peers.contains_key(id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let url = format!("http://{addr}/raft/batch");
            let me = (self.id.clone(), self.addr.clone());
            let task = self.rt.spawn(sender(me, url, self.client.clone(), rx));
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

    /// Remembers the address of a node that contacted us (used if it is not a member).
    pub fn learn(&mut self, id: &str, addr: &str) {
        if !addr.is_empty() && id != self.id && !self.learned.contains_key(id) {
            self.learned.insert(id.to_string(), addr.to_string());
        }
    }

    /// Queues a message; drops it if the peer is unknown or its queue is full.
    pub fn send(&self, to: &str, msg: Message) {
        if let Some(p) = self.peers.get(to) {
            let _ = p.tx.try_send(msg);
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for p in self.peers.values() {
            p.task.abort();
        }
    }
}

async fn sender(
    (from, addr): (NodeId, String),
    url: String,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Message>,
) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let big = msgs
            .iter()
            .any(|m| matches!(m, Message::InstallSnapshot { .. }));
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
