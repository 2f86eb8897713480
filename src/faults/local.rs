//! The `local` backend: a local cluster's own fault primitives (nft tables in each node's
//! namespace, SIGSTOP/SIGKILL, libfaketime offset files), as `Faults`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{BoxFuture, ClockDomain, Fault, FaultKind, Faults, FaultsError, Need};
use crate::cluster::{ClockSupport, Cluster, ClusterError};

pub struct LocalFaults {
    cluster: Cluster,
}

impl LocalFaults {
    pub fn new(cluster: Cluster) -> LocalFaults {
        LocalFaults { cluster }
    }
}

/// Runs `f` on every target, trying all, keeping the first error.
async fn each<'a, F, Fut>(targets: &'a [String], f: F) -> Result<(), ClusterError>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClusterError>>,
{
    let mut first = None;
    for t in targets {
        if let Err(e) = f(t).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

impl Faults for LocalFaults {
    fn name(&self) -> &'static str {
        "local"
    }

    fn supports(&self, need: Need) -> Result<(), String> {
        match need.kind {
            FaultKind::Partition | FaultKind::Loss | FaultKind::Pause | FaultKind::Kill => Ok(()),
            FaultKind::Clock if need.protocol_clock => {
                self.cluster.protocol_clock_support().map_err(|why| {
                    format!(
                        "protocol clock faults unsupported for this system ({}): {why}",
                        self.cluster.descriptor().name
                    )
                })
            }
            FaultKind::Clock => match self.cluster.clock_support() {
                ClockSupport::Unsupported(why) => Err(format!(
                    "clock faults unsupported for this system ({}): {why}",
                    self.cluster.descriptor().name
                )),
                _ => Ok(()),
            },
            k => Err(format!(
                "{} acts on single messages, which only the peer proxy sees",
                k.as_str()
            )),
        }
    }

    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<(), FaultsError>> {
        let c = &self.cluster;
        Box::pin(async move {
            match fault {
                Fault::Partition { grudge } => c.partition(grudge).await?,
                Fault::Loss { targets, percent } => c.set_loss(targets, *percent).await?,
                Fault::Pause { targets } => each(targets, |id| c.pause(id)).await?,
                Fault::Kill { targets, wipe } => {
                    each(targets, |id| async move {
                        c.kill(id).await?;
                        if *wipe { c.wipe_data(id) } else { Ok(()) }
                    })
                    .await?
                }
                Fault::Clock { offsets, domain } => {
                    let mut first = None;
                    for (id, off) in offsets {
                        let r = match domain {
                            ClockDomain::Wall => c.set_clock_offset(id, *off).await,
                            ClockDomain::Protocol { rate } => {
                                c.set_protocol_clock(id, *off, *rate).await
                            }
                        };
                        if let Err(e) = r {
                            first.get_or_insert(e);
                        }
                    }
                    first.map_or(Ok(()), Err)?
                }
                Fault::Message { .. } => {
                    return Err(FaultsError::Unsupported {
                        backend: "local",
                        kind: fault.kind().as_str(),
                        why: "message faults need the peer proxy".into(),
                    });
                }
            }
            Ok(())
        })
    }

    fn undo<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<Value, FaultsError>> {
        let c = &self.cluster;
        Box::pin(async move {
            let mut detail = json!({});
            match fault {
                Fault::Partition { .. } => c.partition(&BTreeMap::new()).await?,
                Fault::Loss { .. } => c.set_loss(&[], 0).await?,
                Fault::Pause { targets } => each(targets, |id| c.resume(id)).await?,
                Fault::Kill { targets, .. } => each(targets, |id| c.restart(id)).await?,
                Fault::Clock {
                    offsets,
                    domain: ClockDomain::Wall,
                } => {
                    let before: BTreeMap<&String, i64> = offsets
                        .keys()
                        .map(|id| (id, c.clock_offset_ms(id).unwrap_or(0)))
                        .collect();
                    detail = json!({ "offset_ms_before": before });
                    let ids: Vec<String> = offsets.keys().cloned().collect();
                    each(&ids, |id| c.set_clock_offset(id, 0)).await?;
                }
                Fault::Clock { offsets, .. } => {
                    let before: BTreeMap<&String, (i64, f64)> = offsets
                        .keys()
                        .map(|id| (id, c.protocol_clock(id).unwrap_or((0, 1.0))))
                        .collect();
                    detail = json!({ "protocol_clock_before": before });
                    let ids: Vec<String> = offsets.keys().cloned().collect();
                    each(&ids, |id| c.set_protocol_clock(id, 0, 1.0)).await?;
                }
                Fault::Message { .. } => {}
            }
            Ok(detail)
        })
    }

    fn heal(&self) -> BoxFuture<'_, Result<(), FaultsError>> {
        Box::pin(async move { Ok(self.cluster.heal().await?) })
    }
}
