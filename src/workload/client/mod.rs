//! Clients over HTTP (reqwest, proxies off, per-request timeouts). An adapter maps an
//! `OpRequest` to a system's API and its answer to a `Reply` with Jepsen's semantics: a
//! definite error is `fail`, a timeout or a connection lost mid-request is `info`.

pub mod etcd;
pub mod native;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::node_choice::NodePicker;
use super::op::{OpRequest, Reply};

/// Redirects followed within one op after `not-leader` answers (each is definitely not
/// done, so retrying is safe).
pub const MAX_REDIRECTS: usize = 3;

/// Which API the nodes speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    /// DESIGN.md's node protocol (`/kv/*`, `/txn`, `/status`, `/log`).
    Native,
    /// etcd's v3 JSON gateway.
    Etcd,
}

impl std::str::FromStr for Adapter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Adapter::Native),
            "etcd" | "etcd-v3" => Ok(Adapter::Etcd),
            other => Err(format!("unknown client adapter {other:?} (native, etcd)")),
        }
    }
}

/// A node as clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    /// `http://ip:port`, no trailing slash.
    pub base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error("the {adapter:?} adapter cannot run {f} operations")]
    Unsupported { adapter: Adapter, f: String },
}

/// Shared by every client task: one connection pool, the nodes, the adapter, the run's key
/// namespace.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    adapter: Adapter,
    nodes: Arc<Vec<Endpoint>>,
    /// The run's key namespace ("" for none): in the set's storage key and request ids.
    prefix: Arc<str>,
    set_key: Arc<str>,
    /// The run's workload is a set: a read with a key reads the set stored there.
    sets: bool,
}

impl Client {
    pub fn new(
        adapter: Adapter,
        nodes: Vec<Endpoint>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Client {
            http,
            adapter,
            nodes: Arc::new(nodes),
            prefix: "".into(),
            set_key: super::generator::SET_KEY.into(),
            sets: false,
        })
    }

    /// Reads with a key read the set stored at that key (a set workload over several keys);
    /// without, only a keyless read is a set read.
    pub fn with_sets(mut self, sets: bool) -> Client {
        self.sets = sets;
        self
    }

    /// Where a set op (an add, or a read of a set) keeps its elements; None for other ops.
    /// A keyless set op addresses the run's one set, [`Client::set_key`].
    fn set_target<'a>(&'a self, op: &'a OpRequest) -> Option<&'a str> {
        match (op.f.as_str(), op.key.as_deref()) {
            ("add", k) => Some(k.unwrap_or(&self.set_key)),
            ("read", None) => Some(&self.set_key),
            ("read", Some(k)) if self.sets => Some(k),
            _ => None,
        }
    }

    /// Puts the run's key namespace `prefix` where the ops do not carry it: the set
    /// workload's storage key (its ops have no key) and every request id (a node remembers
    /// ids to apply each op once, across runs too). The generator prefixes the op keys.
    pub fn with_key_prefix(mut self, prefix: &str) -> Client {
        self.prefix = prefix.into();
        self.set_key = super::generator::set_key(prefix).into();
        self
    }

    /// The run's key namespace ("" for none).
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Where the set workload's elements are stored.
    pub fn set_key(&self) -> &str {
        &self.set_key
    }

    pub fn adapter(&self) -> Adapter {
        self.adapter
    }

    pub fn nodes(&self) -> &[Endpoint] {
        &self.nodes
    }

    /// Refuses workloads an adapter cannot express, before a run starts.
    pub fn supports(&self, f: &str) -> Result<(), ClientError> {
        let ok = match self.adapter {
            Adapter::Native => matches!(f, "read" | "write" | "cas" | "txn" | "add"),
            Adapter::Etcd => matches!(f, "read" | "write" | "cas" | "txn" | "add"),
        };
        ok.then_some(()).ok_or(ClientError::Unsupported {
            adapter: self.adapter,
            f: f.to_string(),
        })
    }

    /// One attempt against one node.
    pub async fn attempt(&self, node: usize, op: &OpRequest) -> Reply {
        let base = &self.nodes[node].base_url;
        let reply = match self.adapter {
            Adapter::Native => native::invoke(&self.http, base, op, self.set_target(op)).await,
            Adapter::Etcd => etcd::invoke(&self.http, base, op, self.set_target(op)).await,
        };
        reply.settle(op)
    }

    /// Invokes `op`, following up to `MAX_REDIRECTS` `not-leader` answers. Returns the
    /// reply and the index of the node that gave it.
    pub async fn invoke(&self, picker: &mut NodePicker, op: &OpRequest) -> (Reply, usize) {
        let mut node = picker.begin();
        for _ in 0..MAX_REDIRECTS {
            match self.attempt(node, op).await {
                Reply::NotLeader(hint) => {
                    let idx = hint.and_then(|h| self.nodes.iter().position(|n| n.id == h));
                    picker.not_leader(idx);
                    node = picker.pick();
                }
                reply => {
                    if matches!(reply, Reply::Info(_)) || is_unreachable(&reply) {
                        picker.unreachable();
                    }
                    return (reply, node);
                }
            }
        }
        match self.attempt(node, op).await {
            Reply::NotLeader(_) => (Reply::Fail("not-leader".into()), node),
            reply => (reply, node),
        }
    }

    /// The node's committed log (`GET /log?from=0`); `None` for systems without one.
    pub async fn log(&self, node: usize) -> Option<Result<Value, String>> {
        self.log_from(node, 0).await
    }

    /// The node's committed entries from index `from` on (`GET /log?from=FROM`); `None`
    /// for systems without a `/log`.
    pub async fn log_from(&self, node: usize, from: u64) -> Option<Result<Value, String>> {
        match self.adapter {
            Adapter::Native => {
                let base = &self.nodes[node].base_url;
                Some(native::get_json(&self.http, &format!("{base}/log?from={from}")).await)
            }
            Adapter::Etcd => None,
        }
    }
}

fn is_unreachable(reply: &Reply) -> bool {
    matches!(reply, Reply::Fail(e) if e.starts_with("connect:"))
}

/// POSTs `body` as JSON and reads the answer's status and JSON body (`null` if the body is
/// not JSON); a transport failure is already the op's reply.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<(reqwest::StatusCode, Value), Reply> {
    let resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| transport_reply(&e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport_reply(&e))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Maps a transport error: a request that never connected definitely did not happen; one
/// that timed out or lost its connection may have.
pub(crate) fn transport_reply(err: &reqwest::Error) -> Reply {
    if err.is_connect() {
        Reply::Fail(format!("connect: {}", root_cause(err)))
    } else if err.is_timeout() {
        Reply::Info("timeout".into())
    } else {
        Reply::Info(format!("connection: {}", root_cause(err)))
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(s) = e.source() {
        e = s;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_prefix_reaches_the_set_key_and_nothing_by_default() {
        let nodes = vec![Endpoint {
            id: "n1".into(),
            base_url: "http://127.0.0.1:9".into(),
        }];
        let c = Client::new(Adapter::Native, nodes, Duration::from_secs(1)).unwrap();
        assert_eq!((c.key_prefix(), c.set_key()), ("", "set"));
        let c = c.with_key_prefix("fl0123456789-");
        assert_eq!(c.key_prefix(), "fl0123456789-");
        assert_eq!(c.set_key(), "fl0123456789-set");
    }

    #[test]
    fn set_ops_address_their_key_or_the_runs_one_set() {
        let nodes = vec![Endpoint {
            id: "n1".into(),
            base_url: "http://127.0.0.1:9".into(),
        }];
        let c = Client::new(Adapter::Native, nodes, Duration::from_secs(1))
            .unwrap()
            .with_key_prefix("p-");
        let op = |f: &str, k: Option<&str>| OpRequest::new(f, k.map(str::to_string), Value::Null);
        let keyed_read = op("read", Some("p-3"));
        // a register workload's keyed read is no set read
        assert_eq!(c.set_target(&keyed_read), None);
        assert_eq!(c.set_target(&op("write", Some("p-3"))), None);
        assert_eq!(c.set_target(&op("read", None)), Some("p-set"));
        assert_eq!(c.set_target(&op("add", None)), Some("p-set"));
        assert_eq!(c.set_target(&op("add", Some("p-3"))), Some("p-3"));
        let c = c.with_sets(true);
        assert_eq!(c.set_target(&keyed_read), Some("p-3"));
        assert_eq!(c.set_target(&op("read", None)), Some("p-set"));
    }
}
