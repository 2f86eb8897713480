//! Testing a cluster someone already runs (`faultline run --cluster FILE.toml`): the
//! [`inventory`] names its nodes; clients, checkers and reports work against the given
//! client URLs; faults are made over SSH by [`crate::faults::ssh`] where the inventory gives
//! access, and refused up front, naming what is missing, where it does not. The harness
//! sends nothing to an address the inventory does not name (client URLs, SSH hosts).

pub mod cleanup;
pub mod inventory;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::descriptor::Ready;
use crate::cluster::status;
use crate::cluster::{ClientAdapter, StatusAdapter, SystemDescriptor};
use crate::faults::ssh::remote::{Remote, RemoteLog};
use crate::faults::ssh::{self, Capabilities, HostFacts, SshFaults, join_all};
use crate::faults::{BoxFuture, Faults};
use crate::nemesis::{Roster, Schedule};
use crate::runner::nemesis_task::{Nemesis, NemesisTask};
use crate::runner::target::{FaultSink, StatusFn, Target};
use crate::workload::{Adapter, Endpoint};
pub use inventory::{Inventory, InventoryError, NodeSpec};

/// The system behind an inventory's `system`: how to talk to it and what it promises.
#[derive(Clone, Debug)]
pub struct System {
    pub name: String,
    pub client: Adapter,
    pub status: StatusAdapter,
    pub descriptor: Option<SystemDescriptor>,
}

impl System {
    /// How to tell a node serves: the descriptor's `[ready]`, else the node protocol's
    /// `GET /status`.
    pub fn ready(&self) -> Ready {
        match &self.descriptor {
            Some(d) => d.ready.clone(),
            None => Ready {
                path: "/status".into(),
                method: "GET".into(),
                body: None,
                timeout_s: 20.0,
            },
        }
    }

    /// `native` (the node protocol, nothing else known), `etcd`, or a descriptor name or
    /// path (relative to the inventory's directory).
    pub fn resolve(inv: &Inventory) -> Result<System, String> {
        if inv.system == "native" {
            return Ok(System {
                name: "native".into(),
                client: Adapter::Native,
                status: StatusAdapter::Native,
                descriptor: None,
            });
        }
        let name = if inv.system.contains('/') || inv.system.ends_with(".toml") {
            inv.file
                .parent()
                .unwrap_or(Path::new("."))
                .join(&inv.system)
                .display()
                .to_string()
        } else {
            inv.system.clone()
        };
        let d = SystemDescriptor::load(&name)
            .map_err(|e| format!("{}: `system`: {e}", inv.file.display()))?;
        Ok(System {
            name: d.name.clone(),
            client: match d.client {
                ClientAdapter::Native => Adapter::Native,
                ClientAdapter::Etcd => Adapter::Etcd,
            },
            status: d.status,
            descriptor: Some(d),
        })
    }
}

/// The nodes of an inventory and their status, as the nemesis and the runner ask for it.
#[derive(Clone)]
pub struct ExternalRoster {
    nodes: Arc<Vec<Endpoint>>,
    status: StatusAdapter,
    http: reqwest::Client,
}

impl ExternalRoster {
    pub fn new(inv: &Inventory, status: StatusAdapter) -> ExternalRoster {
        ExternalRoster {
            nodes: Arc::new(endpoints(inv)),
            status,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub async fn statuses(&self) -> Vec<(String, Result<Value, String>)> {
        let futs = self.nodes.iter().map(|e| {
            status::fetch(
                &self.http,
                self.status,
                &e.id,
                &e.base_url,
                Duration::from_millis(500),
            )
        });
        self.nodes
            .iter()
            .map(|e| e.id.clone())
            .zip(join_all(futs).await)
            .collect()
    }

    /// The node claiming leadership in the highest term among those answering.
    pub async fn leader(&self) -> Option<String> {
        status::leader_of(self.statuses().await.into_iter().map(|(_, r)| r))
    }

    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<String> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Some(l) = self.leader().await {
                return Some(l);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Roster for ExternalRoster {
    fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|e| e.id.clone()).collect()
    }
    fn leader(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(ExternalRoster::leader(self))
    }
}

pub fn endpoints(inv: &Inventory) -> Vec<Endpoint> {
    inv.nodes
        .iter()
        .map(|n| Endpoint {
            id: n.id.clone(),
            base_url: n.client_url.clone(),
        })
        .collect()
}

/// A run id for names on the hosts (`fl-<run>` tables, `<run>.journal`): 10 hex digits.
pub fn new_run_id(seed: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(seed);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// The key namespace of run `run` (`fl<run>-`): an external cluster keeps the data of
/// earlier runs, so every key a run sends (op keys, the set's storage key, request ids)
/// starts with this, and a run reads only what it wrote.
pub fn key_prefix(run: &str) -> String {
    format!("fl{run}-")
}

/// Probes every host of `inv` (none for endpoints-only nodes) and builds the backend.
pub struct Probed {
    pub facts: std::collections::BTreeMap<String, HostFacts>,
    pub faults: Arc<SshFaults>,
    /// Why a `faketime = true` node could not be started (the others are stopped on close).
    pub launch_error: Option<String>,
}

/// Where the ControlMaster sockets of a run live: short, private.
pub fn control_dir(run: &str) -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("fl-ssh-{run}"));
    std::fs::create_dir_all(&d)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
    Ok(d)
}

/// `ready`: how a node the backend restarts is known to serve again.
pub async fn probe(
    inv: &Inventory,
    run: &str,
    control: &Path,
    log: &RemoteLog,
    ready: Ready,
) -> Probed {
    let remotes = ssh::remotes(inv, control, log);
    let mut facts = ssh::probe(inv, &remotes).await;
    let mut faults = SshFaults::new(inv, run, remotes.clone(), &facts).waiting_until(ready);
    let mut launch_error = None;
    if faults.launches() {
        // the nodes faultline starts itself, then the probe again: now they have pids
        launch_error = faults.launch().await.err();
        facts = ssh::probe(inv, &remotes).await;
        faults.rejudge(inv, &facts);
    }
    Probed {
        facts,
        faults: Arc::new(faults),
        launch_error,
    }
}

/// The backend an external run applies faults through: the hosts', then the client path's.
pub fn backend(
    faults: &Arc<SshFaults>,
    client_path: Option<&Arc<crate::faults::client_path::ClientPath>>,
) -> Arc<dyn Faults> {
    match client_path {
        Some(cp) => Arc::new(crate::faults::Stack(vec![faults.clone(), cp.clone()])),
        None => faults.clone(),
    }
}

/// An external cluster as the runner's `Target`. Stopping it stops nothing of the
/// cluster's: it heals what this run did, collects the node logs the inventory names, and
/// closes the SSH connections.
pub struct ExternalTarget {
    inv: Inventory,
    roster: ExternalRoster,
    client: Adapter,
    schedule: Nemesis,
    faults: Arc<SshFaults>,
    /// What the nemesis applies faults through: `faults`, with the client-path proxy when
    /// there is one.
    backend: Arc<dyn Faults>,
    client_path: Option<Arc<crate::faults::client_path::ClientPath>>,
    dir: PathBuf,
    nemesis: Option<NemesisTask>,
    stopped: bool,
}

impl ExternalTarget {
    pub fn new(
        inv: Inventory,
        system: &System,
        schedule: Schedule,
        faults: Arc<SshFaults>,
        dir: &Path,
    ) -> ExternalTarget {
        ExternalTarget {
            roster: ExternalRoster::new(&inv, system.status),
            inv,
            client: system.client,
            schedule: Nemesis::Planned(schedule),
            backend: faults.clone(),
            faults,
            client_path: None,
            dir: dir.to_path_buf(),
            nemesis: None,
            stopped: false,
        }
    }

    /// Sends every client request through `cp` (which must have been started for this
    /// inventory), and puts the faults no host can have on it.
    pub fn through(mut self, cp: Arc<crate::faults::client_path::ClientPath>) -> ExternalTarget {
        self.inv = cp.rewrite(&self.inv);
        self.backend = backend(&self.faults, Some(&cp));
        self.client_path = Some(cp);
        self
    }

    /// Replays another run's realised faults instead of drawing from the schedule.
    pub fn replaying(mut self, replay: crate::nemesis::Replay) -> ExternalTarget {
        self.schedule = Nemesis::Replayed(replay);
        self
    }

    pub fn capabilities(&self) -> &Capabilities {
        self.faults.capabilities()
    }

    /// Copies each node's `logs` into `nodes/<id>/` over SSH, all hosts at once, within
    /// `bound`.
    pub async fn collect_logs(&self, bound: Duration) -> Vec<String> {
        let remotes: Vec<Option<Arc<Remote>>> = self.faults_remotes();
        let futs = self
            .inv
            .nodes
            .iter()
            .zip(remotes)
            .flat_map(|(n, r)| {
                n.logs.iter().filter_map(move |l| {
                    let r = r.clone()?;
                    let dir = self.dir.join("nodes").join(&n.id);
                    Some(async move {
                        let name = Path::new(l)
                            .file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_else(|| "log".into());
                        let out = r
                            .run_for(
                                &format!("tail -c 20000000 {}", inventory::sh_quote(l)),
                                bound,
                            )
                            .await
                            .map_err(|e| format!("{}: log {l}: {e}", n.id))?;
                        if out.code != 0 {
                            return Err(format!("{}: log {l}: {}", n.id, out.stderr.trim()));
                        }
                        std::fs::create_dir_all(&dir)
                            .and_then(|()| std::fs::write(dir.join(name), out.stdout))
                            .map_err(|e| format!("{}: saving log {l}: {e}", n.id))
                    })
                })
            })
            .collect::<Vec<_>>();
        join_all(futs)
            .await
            .into_iter()
            .filter_map(|r| r.err())
            .collect()
    }

    fn faults_remotes(&self) -> Vec<Option<Arc<Remote>>> {
        self.faults.remotes()
    }
}

impl Target for ExternalTarget {
    fn endpoints(&self) -> Vec<Endpoint> {
        endpoints(&self.inv)
    }

    fn adapter(&self) -> Adapter {
        self.client
    }

    fn status_fn(&self) -> StatusFn {
        let r = self.roster.clone();
        Arc::new(move || {
            let r = r.clone();
            Box::pin(async move { r.statuses().await })
        })
    }

    async fn start_faults(
        &mut self,
        seed: u64,
        run_start: Instant,
        sink: FaultSink,
    ) -> Result<(), String> {
        if let Some(cp) = &self.client_path {
            cp.set_epoch(run_start);
        }
        self.nemesis = Some(NemesisTask::start(
            self.backend.clone(),
            Arc::new(self.roster.clone()),
            &self.schedule,
            seed,
            run_start,
            sink,
        )?);
        Ok(())
    }

    async fn heal(&mut self) -> Result<(), String> {
        match self.nemesis.take() {
            Some(task) => task.stop_and_heal().await,
            None => self.backend.heal().await.map_err(|e| e.to_string()),
        }
    }

    async fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut errors = Vec::new();
        if let Err(e) = self.heal().await {
            errors.push(format!("heal: {e}"));
        }
        errors.extend(self.collect_logs(Duration::from_secs(20)).await);
        errors.extend(self.faults.close().await);
        if let Some(cp) = &self.client_path {
            cp.stop();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_its_own_key_prefix() {
        let (a, b) = (new_run_id(7), new_run_id(7));
        assert_ne!(key_prefix(&a), key_prefix(&b), "same seed, two runs");
        let p = key_prefix(&a);
        assert!(
            p.starts_with("fl") && p.ends_with('-') && p.len() == 13,
            "{p}"
        );
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
