//! Removing what dead runs left: their node processes, namespaces (with the nft tables and
//! veth ends inside), bridges and registry records. A run is dead when its control process
//! (pid + start time) is gone; live runs, even in the same process, are never touched.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::ClusterError;
use super::netns;
use super::registry::{self, RunRecord, StateLock};

/// What a cleanup removed (and what it could not).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CleanupReport {
    /// Short ids of the dead runs cleaned.
    pub runs: Vec<String>,
    pub processes: Vec<i32>,
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub errors: Vec<String>,
}

impl CleanupReport {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.links.is_empty()
    }
}

/// Takes the machine-wide lock and cleans every dead run.
pub fn cleanup_dead_runs() -> Result<CleanupReport, ClusterError> {
    let lock = StateLock::acquire()?;
    Ok(cleanup_locked(&lock))
}

pub(crate) fn cleanup_locked(_lock: &StateLock) -> CleanupReport {
    let mut report = CleanupReport::default();
    let (records, unreadable) = registry::list();
    for p in unreadable {
        let _ = std::fs::remove_file(p);
    }
    let live: BTreeSet<String> = records
        .iter()
        .filter(|r| r.is_live())
        .map(|r| r.short_id.clone())
        .collect();
    for r in records.iter().filter(|r| !live.contains(&r.short_id)) {
        remove_run(r, &mut report);
    }
    // Resources named after a run no live record claims (a record lost, or a run that died
    // between deleting its record and its last link).
    let orphan = |name: &String| netns::short_id_of(name).is_some_and(|id| !live.contains(id));
    for ns in netns::list_fl_netns().into_iter().filter(orphan) {
        kill_namespace_procs(&ns, &mut report);
        remove_netns(&ns, &mut report);
    }
    for link in netns::list_fl_links().into_iter().filter(orphan) {
        remove_link(&link, &mut report);
    }
    report
}

/// Tears down everything a (dead) run recorded, then its record.
pub(crate) fn remove_run(r: &RunRecord, report: &mut CleanupReport) {
    report.runs.push(r.short_id.clone());
    for p in r.nodes.values() {
        if p.is_alive() {
            kill_wait(p.pid, report);
        }
    }
    let mut namespaces = r.namespaces.clone();
    namespaces.extend(
        netns::list_fl_netns()
            .into_iter()
            .filter(|n| netns::short_id_of(n) == Some(r.short_id.as_str())),
    );
    namespaces.sort();
    namespaces.dedup();
    for ns in &namespaces {
        kill_namespace_procs(ns, report);
    }
    // Host-side veths first (deleting one deletes its peer), then namespaces, then bridge.
    for link in netns::list_fl_links()
        .into_iter()
        .filter(|n| netns::short_id_of(n) == Some(r.short_id.as_str()) && *n != r.bridge)
    {
        remove_link(&link, report);
    }
    for ns in &namespaces {
        remove_netns(ns, report);
    }
    remove_link(&r.bridge, report);
    r.remove();
}

fn kill_namespace_procs(ns: &str, report: &mut CleanupReport) {
    for pid in netns::pids_in(ns) {
        kill_wait(pid, report);
    }
}

/// SIGKILL, then wait (bounded) until the process is gone or a zombie.
fn kill_wait(pid: i32, report: &mut CleanupReport) {
    // SAFETY: plain kill(2) on a pid we identified as belonging to a dead run.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    report.processes.push(pid);
    let deadline = Instant::now() + Duration::from_secs(2);
    while super::procfs::start_ticks(pid).is_some() {
        if Instant::now() > deadline {
            report
                .errors
                .push(format!("process {pid} did not die within 2 s of SIGKILL"));
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn remove_netns(ns: &str, report: &mut CleanupReport) {
    if !std::path::Path::new("/run/netns").join(ns).exists() {
        return;
    }
    match netns::delete_netns(ns) {
        Ok(()) => report.namespaces.push(ns.to_string()),
        Err(e) => report.errors.push(e.to_string()),
    }
}

fn remove_link(link: &str, report: &mut CleanupReport) {
    if !std::path::Path::new("/sys/class/net").join(link).exists() {
        return;
    }
    match netns::delete_link(link) {
        Ok(()) => report.links.push(link.to_string()),
        Err(e) => report.errors.push(e.to_string()),
    }
}
