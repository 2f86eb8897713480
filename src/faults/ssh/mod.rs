//! The `ssh` backend: the faults of an external cluster, made on its hosts over OpenSSH.
//!
//! - Partitions and loss: one run-named nft table per host (`inet fl-<run>`), a `part` chain
//!   dropping packets from the grudged peers' addresses and a `loss` chain dropping a random
//!   share of packets from every peer; no other table is ever read or written.
//! - Pause and kill: signals to the node's pid (from its `pid_file`, `pid_cmd` or systemd
//!   unit), checked against the process start time so a reused pid is never hit; never by
//!   name. A killed node comes back through the inventory's `restart` (else `start`) command.
//! - Clock faults: unavailable (faultline did not start these processes under libfaketime,
//!   and the host clock is never moved). Message faults: unavailable (no peer proxy).
//!
//! Before a fault is applied its undo script is appended to the host's journal in the same
//! remote command ([`journal`]), so `faultline cleanup --cluster` can undo exactly what a
//! dead controller left in force.

pub mod journal;
pub mod remote;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{BoxFuture, Fault, FaultKind, Faults, FaultsError, Need};
use crate::cluster::descriptor::Ready;
use crate::external::inventory::{Inventory, NodeSpec, sh_quote};
use journal::Controller;
use remote::{Remote, RemoteLog};

/// The fault classes the probe reports on, per node.
pub const CLASSES: [&str; 7] = [
    "partition",
    "loss",
    "pause",
    "kill",
    "wipe",
    "clock",
    "message",
];

fn class_of(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition => "partition",
        FaultKind::Loss => "loss",
        FaultKind::Pause => "pause",
        FaultKind::Kill => "kill",
        FaultKind::Clock => "clock",
        _ => "message",
    }
}

/// What the probe found on one node's host.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostFacts {
    /// Why the host could not be reached (None: it answered).
    pub unreachable: Option<String>,
    /// "root", "sudo" or "none".
    pub privilege: String,
    pub nft: bool,
    pub nft_usable: bool,
    pub journal_writable: bool,
    pub pid: Option<u32>,
    pub start_ticks: Option<u64>,
    pub can_signal: bool,
    /// Where libfaketime is on the host, if it is.
    pub faketime_lib: Option<String>,
}

/// Per node, per fault class: available, or why not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capabilities(pub BTreeMap<String, BTreeMap<&'static str, Result<(), String>>>);

impl Capabilities {
    /// Pure: what each node can have done to it, from the facts of every node's host.
    pub fn judge(inv: &Inventory, facts: &BTreeMap<String, HostFacts>) -> Capabilities {
        let mut out = BTreeMap::new();
        for n in &inv.nodes {
            let mut m: BTreeMap<&'static str, Result<(), String>> = BTreeMap::new();
            let f = facts.get(&n.id);
            let host_ok = || -> Result<(), String> {
                if n.ssh.is_none() {
                    return Err("no `ssh` in the inventory (endpoints only)".into());
                }
                let f = f.ok_or("not probed")?;
                if let Some(e) = &f.unreachable {
                    return Err(format!("unreachable: {e}"));
                }
                if f.privilege == "none" {
                    return Err("not root and no passwordless sudo".into());
                }
                if !f.journal_writable {
                    return Err(format!("journal dir {} not writable", inv.journal_dir));
                }
                Ok(())
            };
            let net = host_ok().and_then(|()| {
                let f = f.expect("probed");
                if !f.nft {
                    return Err("no `nft` on the host (apt-get install nftables)".into());
                }
                if !f.nft_usable {
                    return Err("`nft list tables` refused (no CAP_NET_ADMIN)".into());
                }
                let blind: Vec<&str> = inv
                    .nodes
                    .iter()
                    .filter(|p| p.id != n.id && p.peer_addrs.is_empty())
                    .map(|p| p.id.as_str())
                    .collect();
                if !blind.is_empty() {
                    return Err(format!(
                        "no peer address known for {} (give `peer_addrs`)",
                        blind.join(", ")
                    ));
                }
                Ok(())
            });
            let proc_ok = host_ok().and_then(|()| {
                let f = f.expect("probed");
                if n.pid.is_none() {
                    return Err("no `pid_file`, `pid_cmd` or `unit` names the process".into());
                }
                let pid = f.pid.ok_or("the pid source printed no live pid")?;
                if !f.can_signal {
                    return Err(format!("cannot signal pid {pid} (not permitted)"));
                }
                Ok(())
            });
            m.insert("partition", net.clone());
            m.insert("loss", net);
            m.insert("pause", proc_ok.clone());
            let kill = proc_ok.clone().and_then(|()| {
                n.restart_cmd()
                    .map(|_| ())
                    .ok_or_else(|| "no `restart` or `start` command to bring it back".into())
            });
            m.insert(
                "wipe",
                kill.clone().and_then(|()| match n.data_dir.as_deref() {
                    None => Err("no `data_dir` to empty".into()),
                    Some(d) if !wipeable(d) => Err(format!(
                        "data_dir {d:?} is not an absolute path below /: faultline will not \
                         empty it"
                    )),
                    Some(_) => Ok(()),
                }),
            );
            m.insert("kill", kill);
            let clock = proc_ok.clone().and_then(|()| {
                if !n.faketime {
                    return Err(
                        "faultline did not start this process under libfaketime (give \
                                `faketime = true` and it will), and it never moves a host's \
                                clock"
                            .into(),
                    );
                }
                match f.and_then(|f| f.faketime_lib.as_ref()) {
                    Some(_) => Ok(()),
                    None => Err("no libfaketime on the host (apt-get install libfaketime)".into()),
                }
            });
            m.insert(
                "clock",
                match (&n.ssh, clock) {
                    (None, _) => Err("no `ssh` in the inventory (endpoints only)".into()),
                    (_, c) => c,
                },
            );
            m.insert(
                "message",
                Err("message faults need the peer proxy, which an external cluster has not".into()),
            );
            out.insert(n.id.clone(), m);
        }
        Capabilities(out)
    }

    /// Ok if every node can have `class` done to it, else each node's reason.
    pub fn all(&self, class: &str) -> Result<(), String> {
        let why: Vec<String> = self
            .0
            .iter()
            .filter_map(|(id, m)| match m.get(class) {
                Some(Ok(())) => None,
                Some(Err(w)) => Some(format!("{id}: {w}")),
                None => Some(format!("{id}: not probed")),
            })
            .collect();
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("; "))
        }
    }

    pub fn to_json(&self) -> Value {
        let m: serde_json::Map<String, Value> = self
            .0
            .iter()
            .map(|(id, classes)| {
                let c: serde_json::Map<String, Value> = classes
                    .iter()
                    .map(|(k, r)| {
                        (
                            k.to_string(),
                            match r {
                                Ok(()) => json!({"available": true}),
                                Err(w) => json!({"available": false, "why": w}),
                            },
                        )
                    })
                    .collect();
                (id.clone(), Value::Object(c))
            })
            .collect();
        Value::Object(m)
    }

    /// A table for the terminal: one line per node.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (id, classes) in &self.0 {
            let ok: Vec<&str> = classes
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(k, _)| *k)
                .collect();
            s.push_str(&format!(
                "  {id}: can {}",
                if ok.is_empty() {
                    "nothing".to_string()
                } else {
                    ok.join(", ")
                }
            ));
            for (k, r) in classes {
                if let Err(w) = r {
                    s.push_str(&format!("\n      no {k}: {w}"));
                }
            }
            s.push('\n');
        }
        s
    }
}

/// Shell: true while `pid` is a live process (a zombie is dead: nothing reaps here).
fn alive_shell(pid: &str) -> String {
    format!(
        "S=$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -d' ' -f1) && [ -n \"$S\" ] \
         && [ \"$S\" != Z ] && [ \"$S\" != X ]"
    )
}

/// Shell: waits up to 5 s for `pid` to be gone.
fn wait_gone_shell(pid: &str) -> String {
    format!(
        "for _ in $(seq 100); do if ! {{ {}; }}; then break; fi; sleep 0.05; done",
        alive_shell(pid)
    )
}

/// A data dir faultline may empty: absolute, normalised, and not the root itself.
fn wipeable(dir: &str) -> bool {
    let p = Path::new(dir);
    p.is_absolute()
        && p.components().count() >= 2
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

/// The probe's script for one node: `key=value` lines.
pub fn probe_script(n: &NodeSpec, journal_dir: &str) -> String {
    let mut s = String::from(
        "if [ \"$(id -u)\" = 0 ]; then P=; echo priv=root; \
         elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then P='sudo -n'; \
         echo priv=sudo; else P=; echo priv=none; fi\n\
         if command -v nft >/dev/null 2>&1; then echo nft=yes; \
         if $P nft list tables >/dev/null 2>&1; then echo nftok=yes; fi; fi\n",
    );
    s.push_str(&format!(
        "mkdir -p {d} 2>/dev/null && [ -w {d} ] && echo journal=yes\n",
        d = sh_quote(journal_dir)
    ));
    if let Some(p) = &n.pid {
        s.push_str(&format!(
            "PID=$({} | head -n1 | tr -dc 0-9)\n\
             if [ -n \"$PID\" ] && [ -e /proc/$PID/stat ]; then echo pid=$PID; \
             echo ticks=$({}); if $P kill -0 $PID 2>/dev/null; then echo signal=yes; fi; fi\n",
            p.shell(),
            journal::start_ticks_shell("$PID")
        ));
    }
    s.push_str(&format!(
        "for F in {}; do if [ -f \"$F\" ]; then echo faketime=$F; break; fi; done\n",
        FAKETIME_PATHS.join(" ")
    ));
    s
}

/// Where Debian and a source build put libfaketime.
const FAKETIME_PATHS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

pub fn parse_probe(out: &str) -> HostFacts {
    let mut f = HostFacts {
        privilege: "none".into(),
        ..Default::default()
    };
    for l in out.lines() {
        match l.trim().split_once('=') {
            Some(("priv", v)) => f.privilege = v.to_string(),
            Some(("nft", "yes")) => f.nft = true,
            Some(("nftok", "yes")) => f.nft_usable = true,
            Some(("journal", "yes")) => f.journal_writable = true,
            Some(("pid", v)) => f.pid = v.parse().ok(),
            Some(("ticks", v)) => f.start_ticks = v.parse().ok(),
            Some(("signal", "yes")) => f.can_signal = true,
            Some(("faketime", v)) => f.faketime_lib = Some(v.to_string()),
            _ => {}
        }
    }
    f
}

pub use crate::cluster::join_all;

/// One node as the backend sees it.
struct Node {
    spec: NodeSpec,
    remote: Option<Arc<Remote>>,
    /// `""` or `"sudo -n "`, from the probe.
    privilege: String,
    /// The node's pid and its start ticks, while known to be current.
    pid: Mutex<Option<(u32, u64)>>,
    /// libfaketime on its host, from the probe.
    faketime_lib: Option<String>,
}

/// One journaled change on one node's host.
#[derive(Clone, Debug)]
struct Change {
    node: usize,
    id: u64,
    undo: String,
    /// This change restarts the node: its pid is stale afterwards.
    restarts: bool,
}

pub struct SshFaults {
    run: String,
    table: String,
    journal_dir: String,
    nodes: Vec<Node>,
    caps: Capabilities,
    next_id: AtomicU64,
    in_force: Mutex<Vec<(Fault, Vec<Change>)>>,
    /// Per node index, the journal entry of its nft table, once made.
    tables: Mutex<BTreeMap<usize, u64>>,
    /// Per node index: the journal's header is written.
    opened: Mutex<BTreeMap<usize, bool>>,
    controller: Controller,
    /// How a restarted node is known to serve again (None: the restart command returning).
    ready: Option<Ready>,
    http: reqwest::Client,
    /// The nodes faultline started under libfaketime: stopped (and their files removed) by
    /// `close`.
    launched: Mutex<Vec<Change>>,
    /// Per node index, the journal entry that puts its clock offset back to 0, while an
    /// offset is set (a strobe or drift rewrites the offset without a new entry).
    clocks: Mutex<BTreeMap<usize, Change>>,
}

/// The nft table of `run` on every host.
pub fn table_name(run: &str) -> String {
    format!("fl-{run}")
}

/// The remotes of an inventory: one per distinct SSH destination, shared by its nodes.
pub fn remotes(inv: &Inventory, control_dir: &Path, log: &RemoteLog) -> Vec<Option<Arc<Remote>>> {
    let mut by_dest: BTreeMap<String, Arc<Remote>> = BTreeMap::new();
    inv.nodes
        .iter()
        .map(|n| {
            n.ssh.as_ref().map(|d| {
                by_dest
                    .entry(d.to_string())
                    .or_insert_with(|| {
                        Arc::new(Remote::new(
                            d.clone(),
                            inv.ssh_config.clone(),
                            control_dir,
                            log.clone(),
                            Duration::from_secs_f64(inv.ssh_timeout_s),
                        ))
                    })
                    .clone()
            })
        })
        .collect()
}

/// Probes every node's host (in parallel): facts per node id.
pub async fn probe(
    inv: &Inventory,
    remotes: &[Option<Arc<Remote>>],
) -> BTreeMap<String, HostFacts> {
    let futs = inv.nodes.iter().zip(remotes).map(|(n, r)| async move {
        let Some(r) = r else {
            return (n.id.clone(), None);
        };
        let facts = match r.connect().await {
            Err(e) => HostFacts {
                unreachable: Some(e.to_string()),
                ..Default::default()
            },
            Ok(()) => match r.run(&probe_script(n, &inv.journal_dir)).await {
                Ok(o) => parse_probe(&o.stdout),
                Err(e) => HostFacts {
                    unreachable: Some(e.to_string()),
                    ..Default::default()
                },
            },
        };
        (n.id.clone(), Some(facts))
    });
    join_all(futs)
        .await
        .into_iter()
        .filter_map(|(id, f)| f.map(|f| (id, f)))
        .collect()
}

fn err(kind: FaultKind, why: String) -> FaultsError {
    FaultsError::Unsupported {
        backend: "ssh",
        kind: kind.as_str(),
        why,
    }
}

impl SshFaults {
    pub fn new(
        inv: &Inventory,
        run: &str,
        remotes: Vec<Option<Arc<Remote>>>,
        facts: &BTreeMap<String, HostFacts>,
    ) -> SshFaults {
        let caps = Capabilities::judge(inv, facts);
        let nodes = inv
            .nodes
            .iter()
            .zip(remotes)
            .map(|(spec, remote)| {
                let f = facts.get(&spec.id);
                Node {
                    privilege: match f.map(|f| f.privilege.as_str()) {
                        Some("sudo") => "sudo -n ".into(),
                        _ => String::new(),
                    },
                    pid: Mutex::new(f.and_then(|f| Some((f.pid?, f.start_ticks?)))),
                    faketime_lib: f.and_then(|f| f.faketime_lib.clone()),
                    spec: spec.clone(),
                    remote,
                }
            })
            .collect();
        SshFaults {
            run: run.to_string(),
            table: table_name(run),
            journal_dir: inv.journal_dir.clone(),
            nodes,
            caps,
            next_id: AtomicU64::new(1),
            in_force: Mutex::new(Vec::new()),
            tables: Mutex::new(BTreeMap::new()),
            opened: Mutex::new(BTreeMap::new()),
            controller: Controller::this_process(),
            ready: None,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            launched: Mutex::new(Vec::new()),
            clocks: Mutex::new(BTreeMap::new()),
        }
    }

    /// Judges again from a new probe (after `launch`: the launched nodes have pids now).
    pub fn rejudge(&mut self, inv: &Inventory, facts: &BTreeMap<String, HostFacts>) {
        self.caps = Capabilities::judge(inv, facts);
        for n in &mut self.nodes {
            let f = facts.get(&n.spec.id);
            *n.pid.get_mut().unwrap() = f.and_then(|f| Some((f.pid?, f.start_ticks?)));
        }
    }

    /// Whether any node is one faultline starts itself (`faketime = true`).
    pub fn launches(&self) -> bool {
        self.nodes.iter().any(|n| n.spec.faketime)
    }

    /// Starts every `faketime = true` node with its `start` command under libfaketime
    /// (uploading its binary first when asked), each journaled with the undo that stops it
    /// and removes what was placed. Returns once each has a live pid.
    pub async fn launch(&self) -> Result<(), String> {
        let jobs = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].spec.faketime)
            .map(|i| self.launch_one(i));
        let errors: Vec<String> = join_all(jobs)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn launch_one(&self, i: usize) -> Result<(), String> {
        let n = &self.nodes[i];
        let id = &n.spec.id;
        let kind = FaultKind::Clock;
        let r = self.remote(i, kind).map_err(|e| e.to_string())?;
        if n.faketime_lib.is_none() {
            return Err(format!(
                "{id}: no libfaketime on {} (apt-get install libfaketime) to start it under",
                r.host()
            ));
        }
        let (Some(start), Some(src)) = (&n.spec.start, &n.spec.pid) else {
            return Err(format!("{id}: `faketime` needs `start` and a pid source"));
        };
        let (p, src) = (&n.privilege, src.shell());
        let off = self.offset_file(i);
        let mut undo = format!(
            "PID=$({src} | head -n1 | tr -dc 0-9); if [ -n \"$PID\" ] && {alive}; then \
             {p}kill -CONT $PID; {p}kill -TERM $PID; {gone}; {p}kill -KILL $PID 2>/dev/null; \
             fi; rm -f {o}",
            alive = alive_shell("$PID"),
            gone = wait_gone_shell("$PID"),
            o = sh_quote(&off)
        );
        if let Some(u) = &n.spec.upload {
            undo.push_str(&format!("; rm -f {}", sh_quote(&u.to)));
        }
        let guard = format!(
            "PID=$({src} | head -n1 | tr -dc 0-9); if [ -n \"$PID\" ] && {}; then \
             echo \"{id} is already running (pid $PID); with faketime = true faultline starts \
             it itself\" >&2; false; fi",
            alive_shell("$PID")
        );
        let entry = self
            .change(
                i,
                kind,
                Some(&guard),
                &[],
                &format!("printf '+0.000\\n' > {}", sh_quote(&off)),
                &undo,
                &format!("launch {id} under libfaketime"),
            )
            .await
            .map_err(|e| e.to_string())?;
        self.launched.lock().unwrap().push(Change {
            node: i,
            id: entry,
            undo,
            restarts: false,
        });
        if let Some(u) = &n.spec.upload {
            r.upload(&u.from, &u.to)
                .await
                .map_err(|e| format!("{id}: uploading {}: {e}", u.from.display()))?;
        }
        let log = self.restart_log(i);
        r.check(&format!(
            "{} </dev/null >{l} 2>&1 || {{ cat {l} >&2; exit 1; }}",
            self.under_faketime(i, start),
            l = sh_quote(&log)
        ))
        .await
        .map_err(|e| format!("{id}: starting it: {e}"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.pid_of(i, kind).await {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(format!("{id}: started, but no live pid within 10 s: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The libfaketime offset file of node `i` on its host.
    fn offset_file(&self, i: usize) -> String {
        format!(
            "{}/{}-{}.faketime",
            self.journal_dir, self.run, self.nodes[i].spec.id
        )
    }

    /// `cmd` as a shell command, run under libfaketime for a node faultline launched.
    fn under_faketime(&self, i: usize, cmd: &str) -> String {
        let n = &self.nodes[i];
        match (&n.faketime_lib, n.spec.faketime) {
            // assignments before one command: the host's long-lived shell keeps its own env
            (Some(lib), true) => format!(
                "LD_PRELOAD={} FAKETIME_TIMESTAMP_FILE={} FAKETIME_NO_CACHE=1 sh -c {}",
                sh_quote(lib),
                sh_quote(&self.offset_file(i)),
                sh_quote(cmd)
            ),
            _ => format!("sh -c {}", sh_quote(cmd)),
        }
    }

    /// Sets node offsets (ms) on their libfaketime offset files; the first offset of a node
    /// journals the reset to 0.
    async fn set_clocks(&self, offsets: &BTreeMap<String, i64>) -> Result<(), FaultsError> {
        let kind = FaultKind::Clock;
        let results = join_all(offsets.iter().map(|(id, off)| async move {
            let i = self.index(id)?;
            if let Some(Err(why)) = self.caps.0.get(id).and_then(|m| m.get("clock")) {
                return Err(err(kind, format!("{id}: {why}")));
            }
            let f = self.offset_file(i);
            let write = |ms: i64| {
                format!(
                    "printf '%s\\n' {} > {t} && mv -f {t} {f}",
                    sh_quote(crate::cluster::clock::offset_text(ms).trim()),
                    t = sh_quote(&format!("{f}.tmp")),
                    f = sh_quote(&f)
                )
            };
            let journaled = self.clocks.lock().unwrap().contains_key(&i);
            if journaled {
                let r = self.remote(i, kind)?;
                r.check(&write(*off))
                    .await
                    .map_err(|e| err(kind, e.to_string()))?;
                return Ok(());
            }
            let undo = write(0);
            let entry = self
                .change(
                    i,
                    kind,
                    None,
                    &[],
                    &write(*off),
                    &undo,
                    &format!("clock {id} {off} ms"),
                )
                .await?;
            self.clocks.lock().unwrap().insert(
                i,
                Change {
                    node: i,
                    id: entry,
                    undo,
                    restarts: false,
                },
            );
            Ok(())
        }))
        .await;
        split(results).1.map_or(Ok(()), Err)
    }

    /// Puts the clocks of `ids` (all, if None) back to offset 0.
    async fn reset_clocks(&self, ids: Option<&[String]>) -> Result<(), FaultsError> {
        let changes: Vec<Change> = {
            let mut c = self.clocks.lock().unwrap();
            let keys: Vec<usize> = c
                .keys()
                .copied()
                .filter(|i| ids.is_none_or(|ids| ids.contains(&self.nodes[*i].spec.id)))
                .collect();
            keys.iter().filter_map(|i| c.remove(i)).collect()
        };
        let results = join_all(changes.iter().map(|c| self.run_undo(c))).await;
        let mut why = Vec::new();
        for (c, r) in changes.into_iter().zip(results) {
            if let Err(e) = r {
                why.push(e);
                // still set: heal tries again, and the journal stays for cleanup
                self.clocks.lock().unwrap().insert(c.node, c);
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(err(FaultKind::Clock, why.join("; ")))
        }
    }

    /// A kill's undo returns once each node it restarted answers `ready` on its client URL
    /// (or its timeout passed), as a local cluster's restart does: the fault's stop event
    /// then means the node serves again, which is what liveness is judged from.
    pub fn waiting_until(mut self, ready: Ready) -> SshFaults {
        self.ready = Some(ready);
        self
    }

    /// Waits until node `i` answers the readiness probe; the wait in ms, or why not.
    async fn until_ready(&self, ready: &Ready, i: usize) -> Result<u64, String> {
        let start = std::time::Instant::now();
        let limit = Duration::from_secs_f64(ready.timeout_s);
        let base = &self.nodes[i].spec.client_url;
        let mut last = "it never answered".to_string();
        loop {
            match ready
                .request(&self.http, base)
                .timeout(Duration::from_millis(300))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(start.elapsed().as_millis() as u64),
                Ok(r) => last = format!("it last answered {}", r.status()),
                Err(_) => {}
            }
            if start.elapsed() >= limit {
                return Err(format!(
                    "restarted, but no 2xx from {} {base}{} within {} s ({last})",
                    ready.method, ready.path, ready.timeout_s
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Each node's remote (None: no ssh), in inventory order.
    pub fn remotes(&self) -> Vec<Option<Arc<Remote>>> {
        self.nodes.iter().map(|n| n.remote.clone()).collect()
    }

    fn index(&self, id: &str) -> Result<usize, FaultsError> {
        self.nodes
            .iter()
            .position(|n| n.spec.id == id)
            .ok_or_else(|| {
                err(
                    FaultKind::Partition,
                    format!("no node `{id}` in the inventory"),
                )
            })
    }

    fn remote(&self, i: usize, kind: FaultKind) -> Result<&Arc<Remote>, FaultsError> {
        self.nodes[i]
            .remote
            .as_ref()
            .ok_or_else(|| err(kind, format!("{} has no ssh", self.nodes[i].spec.id)))
    }

    /// Node `i`'s host's journal file (None: no ssh).
    fn journal_file(&self, i: usize) -> String {
        let key = self.nodes[i]
            .remote
            .as_ref()
            .map(|r| r.key())
            .unwrap_or_default();
        journal::path(&self.journal_dir, &self.run, &key)
    }

    fn restart_log(&self, i: usize) -> String {
        let j = self.journal_file(i);
        format!("{}.restart.log", j.trim_end_matches(".journal"))
    }

    /// The journal line prefix for a change: the header first, the first time on a host.
    fn journal_prefix(&self, i: usize) -> String {
        let mut opened = self.opened.lock().unwrap();
        let mut s = String::new();
        if !opened.get(&i).copied().unwrap_or(false) {
            s.push_str(&journal::append(
                &self.journal_dir,
                &self.journal_file(i),
                &journal::header(&self.run, &self.controller),
            ));
            s.push_str(" && ");
            opened.insert(i, true);
        }
        s
    }

    /// Journals `undo` and runs `apply` on node `i`'s host, in one remote command (the
    /// journal lines first: nothing is in force that the journal does not name). `guard`
    /// runs before both and must succeed; `also` are journal lines to write first.
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &self,
        i: usize,
        kind: FaultKind,
        guard: Option<&str>,
        also: &[String],
        apply: &str,
        undo: &str,
        what: &str,
    ) -> Result<u64, FaultsError> {
        let r = self.remote(i, kind)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut script = String::new();
        if let Some(g) = guard {
            script.push_str(&format!("{g} && "));
        }
        script.push_str(&self.journal_prefix(i));
        for line in also
            .iter()
            .cloned()
            .chain([journal::apply_line(id, undo, what)])
        {
            script.push_str(&journal::append(
                &self.journal_dir,
                &self.journal_file(i),
                &line,
            ));
            script.push_str(" && ");
        }
        script.push_str(&format!("{{ {apply}; }}"));
        r.check(&script)
            .await
            .map_err(|e| err(kind, e.to_string()))?;
        Ok(id)
    }

    async fn run_undo(&self, c: &Change) -> Result<(), String> {
        let r = self.nodes[c.node]
            .remote
            .as_ref()
            .ok_or("node has no ssh")?;
        let script = format!(
            "{{ {}; }} && {}",
            c.undo,
            journal::append(
                &self.journal_dir,
                &self.journal_file(c.node),
                &journal::undone_line(c.id)
            )
        );
        r.check(&script).await.map_err(|e| e.to_string())?;
        if c.restarts {
            *self.nodes[c.node].pid.lock().unwrap() = None;
        }
        Ok(())
    }

    fn table_undo(&self, i: usize) -> String {
        let p = &self.nodes[i].privilege;
        let t = &self.table;
        format!(
            "if {p}nft list table inet {t} >/dev/null 2>&1; then {p}nft delete table inet {t}; fi"
        )
    }

    /// Replaces chain `chain` on node `i`'s host with rules `rules`, atomically.
    async fn set_chain(
        &self,
        i: usize,
        kind: FaultKind,
        chain: &str,
        rules: &[String],
        what: &str,
    ) -> Result<Change, FaultsError> {
        // the table is made (and journaled, once per host) in the same command
        let table_entry = {
            let mut tables = self.tables.lock().unwrap();
            match tables.entry(i) {
                std::collections::btree_map::Entry::Occupied(_) => None,
                std::collections::btree_map::Entry::Vacant(v) => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    v.insert(id);
                    Some(id)
                }
            }
        };
        let also: Vec<String> = table_entry
            .map(|id| {
                journal::apply_line(
                    id,
                    &self.table_undo(i),
                    &format!("nft table inet {}", self.table),
                )
            })
            .into_iter()
            .collect();
        let p = &self.nodes[i].privilege;
        let t = &self.table;
        let mut tx = format!(
            "add table inet {t}; add chain inet {t} {chain} {{ type filter hook input priority -10 ; policy accept ; }}; \
             flush chain inet {t} {chain}"
        );
        for r in rules {
            tx.push_str(&format!("; add rule inet {t} {chain} {r}"));
        }
        let undo = format!(
            "if {p}nft list chain inet {t} {chain} >/dev/null 2>&1; then \
             {p}nft {}; fi",
            sh_quote(&format!(
                "flush chain inet {t} {chain}; delete chain inet {t} {chain}"
            ))
        );
        let id = match self
            .change(
                i,
                kind,
                None,
                &also,
                &format!("{p}nft {}", sh_quote(&tx)),
                &undo,
                what,
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                if table_entry.is_some() {
                    self.tables.lock().unwrap().remove(&i);
                }
                return Err(e);
            }
        };
        Ok(Change {
            node: i,
            id,
            undo,
            restarts: false,
        })
    }

    fn addrs_of<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<Ipv4Addr>, FaultsError> {
        let mut v = Vec::new();
        for id in ids {
            v.extend(self.nodes[self.index(id)?].spec.peer_addrs.iter().copied());
        }
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// The node's pid and start ticks: cached, else asked for.
    async fn pid_of(&self, i: usize, kind: FaultKind) -> Result<(u32, u64), FaultsError> {
        if let Some(p) = *self.nodes[i].pid.lock().unwrap() {
            return Ok(p);
        }
        let n = &self.nodes[i];
        let src = n
            .spec
            .pid
            .as_ref()
            .ok_or_else(|| err(kind, format!("{}: no pid source", n.spec.id)))?;
        let out = self
            .remote(i, kind)?
            .check(&format!(
                "PID=$({} | head -n1 | tr -dc 0-9); [ -n \"$PID\" ] && echo $PID $({})",
                src.shell(),
                journal::start_ticks_shell("$PID")
            ))
            .await
            .map_err(|e| err(kind, format!("{}: finding its pid: {e}", n.spec.id)))?;
        let mut it = out.split_whitespace().map(|w| w.parse::<u64>().ok());
        match (it.next().flatten(), it.next().flatten()) {
            (Some(pid), Some(ticks)) => {
                let p = (pid as u32, ticks);
                *n.pid.lock().unwrap() = Some(p);
                Ok(p)
            }
            _ => Err(err(kind, format!("{}: no live pid ({out:?})", n.spec.id))),
        }
    }

    async fn signal(&self, id: &str, kind: FaultKind, wipe: bool) -> Result<Change, FaultsError> {
        let i = self.index(id)?;
        let (pid, ticks) = self.pid_of(i, kind).await?;
        let n = &self.nodes[i];
        let p = &n.privilege;
        let same = format!(
            "[ \"$({})\" = {ticks} ]",
            journal::start_ticks_shell(&pid.to_string())
        );
        let (sig, undo, restarts) = match kind {
            FaultKind::Pause => (
                "STOP",
                format!("if {same}; then {p}kill -CONT {pid}; fi"),
                false,
            ),
            _ => {
                let restart = n
                    .spec
                    .restart_cmd()
                    .ok_or_else(|| err(kind, format!("{id}: no restart or start command")))?;
                let src = n.spec.pid.as_ref().expect("a pid was found").shell();
                let log = self.restart_log(i);
                (
                    "KILL",
                    format!(
                        "PID=$({src} | head -n1 | tr -dc 0-9); \
                         if ! {{ [ -n \"$PID\" ] && {}; }}; then \
                         {} </dev/null >{l} 2>&1 || {{ cat {l} >&2; exit 1; }}; fi",
                        alive_shell("$PID"),
                        self.under_faketime(i, restart),
                        l = sh_quote(&log)
                    ),
                    true,
                )
            }
        };
        let mut apply = format!("{p}kill -{sig} {pid}");
        let mut what = format!("{} {id} pid {pid}", kind.as_str());
        if wipe {
            let dir = n.spec.data_dir.as_deref().filter(|d| wipeable(d));
            let dir = dir.ok_or_else(|| err(kind, format!("{id}: no data_dir to wipe")))?;
            // the data dir is emptied only once the process is gone (or a zombie), so
            // nothing it still writes lands in the blank dir
            apply.push_str(&format!(
                " && {} && {p}find {d} -mindepth 1 -delete",
                wait_gone_shell(&pid.to_string()),
                d = sh_quote(dir)
            ));
            what.push_str(&format!(", wiped {dir}"));
        }
        let r = self
            .change(i, kind, Some(&same), &[], &apply, &undo, &what)
            .await;
        if r.is_err() {
            // the pid may have gone stale (restarted by someone else): look again next time
            *n.pid.lock().unwrap() = None;
        }
        if kind == FaultKind::Kill {
            *n.pid.lock().unwrap() = None;
        }
        Ok(Change {
            node: i,
            id: r?,
            undo,
            restarts,
        })
    }

    async fn apply_all(&self, fault: &Fault) -> (Vec<Change>, Option<FaultsError>) {
        let kind = fault.kind();
        let jobs: Vec<(String, Vec<String>, String)> = match fault {
            Fault::Partition { grudge } => grudge
                .iter()
                .filter(|(_, from)| !from.is_empty())
                .map(|(id, from)| {
                    let addrs = self.addrs_of(from).unwrap_or_default();
                    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    (
                        id.clone(),
                        vec![format!("ip saddr {{ {} }} drop", list.join(", "))],
                        format!("partition: {id} drops {}", from.join(",")),
                    )
                })
                .collect(),
            Fault::Loss { targets, percent } => targets
                .iter()
                .map(|id| {
                    let others: Vec<String> = self
                        .nodes
                        .iter()
                        .filter(|n| &n.spec.id != id)
                        .map(|n| n.spec.id.clone())
                        .collect();
                    let addrs = self.addrs_of(&others).unwrap_or_default();
                    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    (
                        id.clone(),
                        vec![format!(
                            "ip saddr {{ {} }} numgen random mod 100 < {} drop",
                            list.join(", "),
                            (*percent).min(100)
                        )],
                        format!("loss {percent}% on {id}"),
                    )
                })
                .collect(),
            Fault::Pause { targets } | Fault::Kill { targets, .. } => {
                let wipe = fault.need().wipe;
                let results = join_all(targets.iter().map(|t| self.signal(t, kind, wipe))).await;
                return split(results);
            }
            Fault::Clock { .. } => unreachable!("clock faults are set by set_clocks"),
            Fault::Message { .. } => {
                return (
                    Vec::new(),
                    Some(err(
                        kind,
                        self.supports_kind(kind).err().unwrap_or_default(),
                    )),
                );
            }
        };
        let chain = if kind == FaultKind::Partition {
            "part"
        } else {
            "loss"
        };
        let results = join_all(jobs.iter().map(|(id, rules, what)| async move {
            let i = self.index(id)?;
            self.set_chain(i, kind, chain, rules, what).await
        }))
        .await;
        split(results)
    }

    fn supports_kind(&self, kind: FaultKind) -> Result<(), String> {
        self.caps.all(class_of(kind))
    }

    /// Removes the journal files of this run from every host whose journal has nothing
    /// pending, and stops the ControlMasters.
    pub async fn close(&self) -> Vec<String> {
        let mut errors = Vec::new();
        // the nodes faultline started itself end with the run
        let launched: Vec<Change> = std::mem::take(&mut *self.launched.lock().unwrap());
        for (c, r) in launched
            .iter()
            .zip(join_all(launched.iter().map(|c| self.run_undo(c))).await)
        {
            if let Err(e) = r {
                errors.push(format!("stopping {}: {e}", self.nodes[c.node].spec.id));
                self.launched.lock().unwrap().push(c.clone());
            }
        }
        let pending = !self.in_force.lock().unwrap().is_empty()
            || !self.clocks.lock().unwrap().is_empty()
            || !self.launched.lock().unwrap().is_empty();
        let mut seen = std::collections::BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(r) = &n.remote else { continue };
            if !seen.insert(r.host()) {
                continue;
            }
            let table_left = self.tables.lock().unwrap().contains_key(&i);
            if !pending && !table_left {
                let (j, log) = (self.journal_file(i), self.restart_log(i));
                if let Err(e) = r
                    .check(&format!("rm -f {} {}", sh_quote(&j), sh_quote(&log)))
                    .await
                {
                    errors.push(e.to_string());
                }
            }
            r.close().await;
        }
        errors
    }
}

fn split<T>(results: Vec<Result<T, FaultsError>>) -> (Vec<T>, Option<FaultsError>) {
    let mut ok = Vec::new();
    let mut first = None;
    for r in results {
        match r {
            Ok(c) => ok.push(c),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    (ok, first)
}

impl Faults for SshFaults {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn supports(&self, need: Need) -> Result<(), String> {
        if need.protocol_clock {
            Err(
                "protocol clocks are files of nodes faultline runs locally; over ssh only \
                 the wall clock (libfaketime) moves"
                    .into(),
            )
        } else if need.wipe {
            self.caps.all("wipe")
        } else {
            self.supports_kind(need.kind)
        }
    }

    fn apply<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<(), FaultsError>> {
        Box::pin(async move {
            if let Fault::Clock { offsets, .. } = fault {
                return self.set_clocks(offsets).await;
            }
            let (changes, error) = self.apply_all(fault).await;
            // whatever did happen stays recorded, so the undo (or heal) finds it
            self.in_force.lock().unwrap().push((fault.clone(), changes));
            error.map_or(Ok(()), Err)
        })
    }

    fn undo<'a>(&'a self, fault: &'a Fault) -> BoxFuture<'a, Result<Value, FaultsError>> {
        Box::pin(async move {
            if let Fault::Clock { offsets, .. } = fault {
                let ids: Vec<String> = offsets.keys().cloned().collect();
                return self.reset_clocks(Some(&ids)).await.map(|()| json!({}));
            }
            let changes = {
                let mut f = self.in_force.lock().unwrap();
                match f.iter().position(|(x, _)| x == fault) {
                    Some(i) => f.remove(i).1,
                    None => return Ok(json!({})),
                }
            };
            let results = join_all(changes.iter().map(|c| self.run_undo(c))).await;
            let mut failed = Vec::new();
            let mut why = Vec::new();
            let mut restarted = Vec::new();
            for (c, r) in changes.into_iter().zip(results) {
                match r {
                    Err(e) => {
                        why.push(e);
                        failed.push(c);
                    }
                    Ok(()) if c.restarts => restarted.push(c.node),
                    Ok(()) => {}
                }
            }
            // without a readiness probe the restart command returning is all there is
            let waits = match &self.ready {
                Some(r) => join_all(restarted.iter().map(|&i| self.until_ready(r, i))).await,
                None => Vec::new(),
            };
            let (mut ready_ms, mut not_ready) = (serde_json::Map::new(), serde_json::Map::new());
            for (&i, w) in restarted.iter().zip(waits) {
                let id = self.nodes[i].spec.id.clone();
                match w {
                    Ok(ms) => ready_ms.insert(id, json!(ms)),
                    Err(e) => not_ready.insert(id, json!(e)),
                };
            }
            if failed.is_empty() {
                let mut detail = serde_json::Map::new();
                if !ready_ms.is_empty() {
                    detail.insert("ready_ms".into(), Value::Object(ready_ms));
                }
                if !not_ready.is_empty() {
                    detail.insert("not_ready".into(), Value::Object(not_ready));
                }
                return Ok(Value::Object(detail));
            }
            self.in_force.lock().unwrap().push((fault.clone(), failed));
            Err(err(
                fault.kind(),
                format!("undo failed: {}", why.join("; ")),
            ))
        })
    }

    fn heal(&self) -> BoxFuture<'_, Result<(), FaultsError>> {
        Box::pin(async move {
            let all: Vec<Fault> = self
                .in_force
                .lock()
                .unwrap()
                .iter()
                .map(|(f, _)| f.clone())
                .collect();
            let mut first = self.reset_clocks(None).await.err();
            for f in all.iter().rev() {
                if let Err(e) = self.undo(f).await {
                    first.get_or_insert(e);
                }
            }
            let tables: Vec<(usize, u64)> = self
                .tables
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect();
            for (i, id) in tables {
                let c = Change {
                    node: i,
                    id,
                    undo: self.table_undo(i),
                    restarts: false,
                };
                match self.run_undo(&c).await {
                    Ok(()) => {
                        self.tables.lock().unwrap().remove(&i);
                    }
                    Err(e) => {
                        first.get_or_insert(err(FaultKind::Partition, e));
                    }
                }
            }
            first.map_or(Ok(()), Err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inv(text: &str) -> Inventory {
        Inventory::parse(text, Path::new("c.toml")).unwrap()
    }

    /// What the probe prints on a host where everything is possible.
    const ROOT_PROBE: &str =
        "priv=root\nnft=yes\nnftok=yes\njournal=yes\npid=42\nticks=7\nsignal=yes\n";

    const TWO: &str = "system = \"raft\"\n\
        [[node]]\nid = \"n1\"\nclient_url = \"http://10.0.0.1:8000\"\nssh = \"root@10.0.0.1\"\n\
        pid_file = \"/p1\"\nrestart = \"r\"\n\
        [[node]]\nid = \"n2\"\nclient_url = \"http://10.0.0.2:8000\"\nssh = \"u@10.0.0.2\"\n";

    #[test]
    fn probe_output_parses() {
        let f = parse_probe(
            "priv=sudo\nnft=yes\nnftok=yes\njournal=yes\npid=42\nticks=7\nsignal=yes\n",
        );
        assert_eq!(f.privilege, "sudo");
        assert!(f.nft && f.nft_usable && f.journal_writable && f.can_signal);
        assert_eq!((f.pid, f.start_ticks), (Some(42), Some(7)));
    }

    #[test]
    fn judged_per_node_and_class() {
        let i = inv(TWO);
        let mut facts = BTreeMap::new();
        facts.insert("n1".to_string(), parse_probe(ROOT_PROBE));
        facts.insert(
            "n2".to_string(),
            parse_probe("priv=none\nnft=no\njournal=yes\n"),
        );
        let c = Capabilities::judge(&i, &facts);
        let n1 = &c.0["n1"];
        assert_eq!(n1["partition"], Ok(()));
        assert_eq!(n1["kill"], Ok(()));
        assert!(n1["clock"].as_ref().unwrap_err().contains("libfaketime"));
        let n2 = &c.0["n2"];
        assert!(n2["partition"].as_ref().unwrap_err().contains("sudo"));
        assert!(n2["pause"].as_ref().unwrap_err().contains("sudo"));
        let why = c.all("partition").unwrap_err();
        assert!(why.starts_with("n2: not root"), "{why}");
        facts.insert("n2".to_string(), parse_probe("priv=root\njournal=yes\n"));
        let c = Capabilities::judge(&i, &facts);
        assert!(
            c.0["n2"]["partition"]
                .as_ref()
                .unwrap_err()
                .contains("no `nft`")
        );
        assert!(
            c.0["n2"]["pause"]
                .as_ref()
                .unwrap_err()
                .contains("pid_file")
        );
        assert!(c.render().contains("n1: can kill, loss, partition, pause"));
    }

    #[test]
    fn wipe_needs_a_kill_and_an_absolute_data_dir() {
        let facts = |i: &Inventory| {
            let f = parse_probe(ROOT_PROBE);
            i.nodes.iter().map(|n| (n.id.clone(), f.clone())).collect()
        };
        let i = inv(TWO);
        let c = Capabilities::judge(&i, &facts(&i));
        assert!(
            c.0["n1"]["wipe"]
                .as_ref()
                .unwrap_err()
                .contains("no `data_dir`")
        );
        let with = TWO.replace(
            "restart = \"r\"\n",
            "restart = \"r\"\ndata_dir = \"/var/lib/kv\"\n",
        );
        let i = inv(&with);
        let c = Capabilities::judge(&i, &facts(&i));
        assert_eq!(c.0["n1"]["wipe"], Ok(()));
        // n2 names no process and no restart: no kill, so no wipe
        assert!(c.0["n2"]["wipe"].is_err());
        for (dir, ok) in [
            ("/var/lib/kv", true),
            ("/", false),
            ("data", false),
            ("/a/../b", false),
        ] {
            assert_eq!(wipeable(dir), ok, "{dir}");
        }
    }

    #[test]
    fn clock_only_on_nodes_faultline_starts_under_libfaketime() {
        let ft = TWO.replace("restart = \"r\"\n", "start = \"s\"\nfaketime = true\n");
        let i = inv(&ft);
        let probe = "priv=root\njournal=yes\npid=42\nticks=7\nsignal=yes\n";
        let mut facts = BTreeMap::new();
        facts.insert(
            "n1".to_string(),
            parse_probe(&format!("{probe}faketime={}\n", FAKETIME_PATHS[0])),
        );
        facts.insert("n2".to_string(), parse_probe(probe));
        let c = Capabilities::judge(&i, &facts);
        assert_eq!(c.0["n1"]["clock"], Ok(()));
        // n2 is neither a faketime node nor has a pid source
        assert!(c.0["n2"]["clock"].is_err());
        facts.insert("n1".to_string(), parse_probe(probe));
        let c = Capabilities::judge(&i, &facts);
        assert!(
            c.0["n1"]["clock"]
                .as_ref()
                .unwrap_err()
                .contains("no libfaketime")
        );
        assert!(probe_script(&i.nodes[0], "/j").contains(FAKETIME_PATHS[0]));
    }

    #[test]
    fn endpoints_only_can_nothing() {
        let i = inv(
            "system = \"etcd\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://10.0.0.1:2379\"\n",
        );
        let c = Capabilities::judge(&i, &BTreeMap::new());
        for class in CLASSES.iter().filter(|c| **c != "message") {
            assert!(
                c.all(class).unwrap_err().contains("endpoints only"),
                "{class}"
            );
        }
        assert!(c.all("message").unwrap_err().contains("peer proxy"));
        assert_eq!(c.to_json()["n1"]["pause"]["available"], json!(false));
    }
}
