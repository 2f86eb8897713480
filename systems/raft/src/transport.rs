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
}

impl Transport {
    pub fn new(id: NodeId, rt: tokio::runtime::Handle) -> Transport {
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
        }
    }

    /// Starts senders for new peers, stops those no longer in the membership.
    pub fn set_peers(&mut self, membership: &Membership) {
        self.peers.retain(|id, p| {
            let keep = membership.voters.get(id) == Some(&p.addr);
            if !keep {
                p.task.abort();
            }
            keep
        });
        for (id, addr) in &membership.voters {
            if *id == self.id || self.peers.contains_key(id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let url = format!("http://{addr}/raft/batch");
            let task = self
                .rt
                .spawn(sender(self.id.clone(), url, self.client.clone(), rx));
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
    from: NodeId,
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
            msgs,
        };
        let res = client.post(&url).json(&batch).timeout(timeout).send().await;
        if !matches!(&res, Ok(r) if r.status().is_success()) {
            // Peer down or partitioned: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
