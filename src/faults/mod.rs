//! The fault seam. The nemesis plans (which fault, when, on whom, from the seed) and records;
//! a [`Faults`] backend applies and undoes. A [`Fault`] is one typed value, resolved from the
//! TOML schedule, handed to the backend as is. Each backend says up front which fault
//! classes it can do here ([`Faults::supports`]), so a schedule needing one it cannot do is
//! refused before the first op, with the reason.
//!
//! Backends: [`local::LocalFaults`] (namespaces, nft, signals, libfaketime of a local
//! cluster), [`proxy::ProxyFaults`] (message and connection faults on the peer proxy),
//! [`ssh::SshFaults`] (hosts of an external cluster) and [`client_path::ClientPath`] (a
//! proxy between clients and an endpoints-only cluster); [`Stack`] routes each fault to the
//! first backend that can do it.

pub mod client_path;
pub mod local;
pub mod proxy;
pub mod ssh;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
pub use crate::nemesis::FaultKind;
use proxy::MsgRule;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One fault, resolved to concrete targets: what a backend applies and later undoes.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Each key drops everything from the listed nodes (one-way unless listed both ways).
    Partition {
        grudge: BTreeMap<String, Vec<String>>,
    },
    Loss {
        targets: Vec<String>,
        percent: u8,
    },
    Pause {
        targets: Vec<String>,
    },
    /// SIGKILL; undo restarts. With `wipe` the data dir is emptied before the restart.
    Kill {
        targets: Vec<String>,
        wipe: bool,
    },
    /// Clock offsets (ms) per node, on the clock `domain` names; undo puts them back to 0
    /// (and a protocol clock's rate back to 1).
    Clock {
        offsets: BTreeMap<String, i64>,
        domain: ClockDomain,
    },
    /// A message or connection rule on the peer proxy.
    Message {
        rule: MsgRule,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        use proxy::MsgAction as A;
        match self {
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Clock { .. } => FaultKind::Clock,
            Fault::Message { rule } => match rule.action {
                A::Delay { .. } => FaultKind::MsgDelay,
                A::Dup { .. } => FaultKind::MsgDup,
                A::Drop => FaultKind::MsgDrop,
                A::Hold => FaultKind::MsgHold,
                A::Reset => FaultKind::ConnReset,
                A::Bandwidth { .. } => FaultKind::Bandwidth,
            },
        }
    }
}

impl Fault {
    /// The same fault with every node id passed through `name` (a replay aiming a fault at
    /// another node).
    pub fn renamed(&self, name: &dyn Fn(&str) -> String) -> Fault {
        let all = |v: &[String]| v.iter().map(|n| name(n)).collect::<Vec<_>>();
        match self {
            Fault::Partition { grudge } => Fault::Partition {
                grudge: grudge.iter().map(|(k, v)| (name(k), all(v))).collect(),
            },
            Fault::Loss { targets, percent } => Fault::Loss {
                targets: all(targets),
                percent: *percent,
            },
            Fault::Pause { targets } => Fault::Pause {
                targets: all(targets),
            },
            Fault::Kill { targets, wipe } => Fault::Kill {
                targets: all(targets),
                wipe: *wipe,
            },
            Fault::Clock { offsets, domain } => Fault::Clock {
                offsets: offsets.iter().map(|(k, v)| (name(k), *v)).collect(),
                domain: *domain,
            },
            Fault::Message { rule } => {
                let mut rule = rule.clone();
                rule.links = rule.links.iter().map(|(a, b)| (name(a), name(b))).collect();
                Fault::Message { rule }
            }
        }
    }
}

impl Fault {
    /// What applying it needs from a backend.
    pub fn need(&self) -> Need {
        Need {
            kind: self.kind(),
            sees_messages: matches!(self, Fault::Message { rule } if rule.needs_l7()),
            protocol_clock: matches!(
                self,
                Fault::Clock {
                    domain: ClockDomain::Protocol { .. },
                    ..
                }
            ),
            wipe: matches!(self, Fault::Kill { wipe: true, .. }),
        }
    }
}

/// The clock a clock fault moves, as the backend applies it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum ClockDomain {
    /// The wall clock (libfaketime's offset file).
    #[default]
    Wall,
    /// The node's protocol clock (wall and monotonic), running at `rate` (1.0 = real time)
    /// plus the offset.
    Protocol { rate: f64 },
}

/// What a schedule's fault needs from a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub kind: FaultKind,
    /// It must see inside messages (type or path filters, duplicates, holds): L7 only.
    pub sees_messages: bool,
    /// A clock fault on the node's protocol clock (its clock file), not libfaketime's.
    pub protocol_clock: bool,
    /// A kill that empties the node's data dir before the restart.
    pub wipe: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultsError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{backend} cannot do {kind} faults here: {why}")]
    Unsupported {
        backend: &'static str,
        kind: &'static str,
        why: String,
    },
}

/// A fault backend.
pub trait Faults: Send + Sync {
    fn name(&self) -> &'static str;
    /// Ok if this backend can apply such faults here; else why not.
    fn supports(&self, need: Need) -> Result<(), String>;
    /// Puts the fault in force; returns once it is.
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<(), FaultsError>>;
    /// Undoes a fault this backend applied; returns detail worth recording (JSON object).
    fn undo<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<Value, FaultsError>>;
    /// Undoes everything this backend may have in force.
    fn heal(&self) -> BoxFuture<'_, Result<(), FaultsError>>;
}

/// Backends in order; each fault goes to the first that supports it.
pub struct Stack(pub Vec<Arc<dyn Faults>>);

impl Stack {
    fn route(&self, fault: &Fault) -> Result<&Arc<dyn Faults>, FaultsError> {
        let need = fault.need();
        self.0
            .iter()
            .find(|b| b.supports(need).is_ok())
            .ok_or_else(|| FaultsError::Unsupported {
                backend: "no backend",
                kind: need.kind.as_str(),
                why: self.supports(need).err().unwrap_or_default(),
            })
    }
}

impl Faults for Stack {
    fn name(&self) -> &'static str {
        "stack"
    }
    fn supports(&self, need: Need) -> Result<(), String> {
        let mut why = Vec::new();
        for b in &self.0 {
            match b.supports(need) {
                Ok(()) => return Ok(()),
                Err(w) => why.push(format!("{}: {w}", b.name())),
            }
        }
        Err(why.join("; "))
    }
    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<(), FaultsError>> {
        Box::pin(async move { self.route(fault)?.apply(fault).await })
    }
    fn undo<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<Value, FaultsError>> {
        Box::pin(async move { self.route(fault)?.undo(fault).await })
    }
    fn heal(&self) -> BoxFuture<'_, Result<(), FaultsError>> {
        Box::pin(async move {
            let mut first = None;
            for b in &self.0 {
                if let Err(e) = b.heal().await {
                    first.get_or_insert(e);
                }
            }
            first.map_or(Ok(()), Err)
        })
    }
}

/// The backends of a local cluster: its own (local) and, if its peers are proxied, the proxy.
pub fn for_cluster(cluster: &Cluster) -> Arc<dyn Faults> {
    let mut v: Vec<Arc<dyn Faults>> = vec![Arc::new(local::LocalFaults::new(cluster.clone()))];
    v.push(Arc::new(proxy::ProxyFaults::new(
        cluster.peer_proxy(),
        cluster.descriptor().name.clone(),
    )));
    Arc::new(Stack(v))
}
