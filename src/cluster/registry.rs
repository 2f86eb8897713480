//! The cleanup registry: one JSON file per live run under `/run/faultline/runs/`, naming its
//! control process (pid + start time), bridge, namespaces, subnet and node processes. A run
//! whose control process is gone is dead, and `faultline cleanup` (and every new run) removes
//! what it left. A machine-wide flock serialises allocation and cleanup.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ClusterError;
use super::procfs;
use super::subnet::Subnet;

/// Override with `FAULTLINE_STATE_DIR` (all runs that should see each other must agree).
pub fn state_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/faultline"))
}

fn runs_dir() -> PathBuf {
    state_dir().join("runs")
}

/// A process by pid and start time (so a reused pid is never mistaken for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start: u64,
}

impl ProcRef {
    pub fn of(pid: i32) -> Option<ProcRef> {
        procfs::start_ticks(pid).map(|start| ProcRef { pid, start })
    }
    pub fn is_alive(&self) -> bool {
        procfs::is_same_process(self.pid, self.start)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Six hex digits; every resource of the run is named `fl-<short_id>-...`.
    pub short_id: String,
    /// The caller's name for the run (e.g. its run directory name).
    pub label: String,
    pub control: ProcRef,
    pub run_dir: PathBuf,
    pub subnet: Subnet,
    pub bridge: String,
    pub namespaces: Vec<String>,
    /// Node id -> its current process.
    pub nodes: BTreeMap<String, ProcRef>,
}

impl RunRecord {
    pub fn path(&self) -> PathBuf {
        runs_dir().join(format!("{}.json", self.short_id))
    }

    pub fn is_live(&self) -> bool {
        self.control.is_alive()
    }

    /// Writes atomically (temp file + rename) so a reader never sees half a record.
    pub fn save(&self) -> Result<(), ClusterError> {
        let dir = runs_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ClusterError::io(&dir, e))?;
        let path = self.path();
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let body = serde_json::to_vec_pretty(self).expect("record serialises");
        std::fs::write(&tmp, body).map_err(|e| ClusterError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ClusterError::io(&path, e))
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// Every record on the machine; unreadable files are returned as paths to remove.
pub fn list() -> (Vec<RunRecord>, Vec<PathBuf>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let Ok(entries) = std::fs::read_dir(runs_dir()) else {
        return (good, bad);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            // A temp file whose writer died mid-write.
            if p.to_string_lossy().contains(".json.tmp") {
                bad.push(p);
            }
            continue;
        }
        match std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
        {
            Some(r) => good.push(r),
            None => bad.push(p),
        }
    }
    (good, bad)
}

/// An exclusive machine-wide lock, released on drop.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub fn acquire() -> Result<StateLock, ClusterError> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ClusterError::io(&dir, e))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ClusterError::io(&path, e))?;
        // SAFETY: flock on a descriptor we own; blocks until granted.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(ClusterError::io(&path, std::io::Error::last_os_error()));
        }
        Ok(StateLock { _file: file })
    }
}

/// Reserves a fresh short id and subnet for a run and records it (under the lock, so two
/// runs starting together never get the same). `used` are the host's current prefixes.
pub fn reserve(
    label: &str,
    run_dir: &Path,
    used: &[super::subnet::Prefix],
    _lock: &StateLock,
) -> Result<RunRecord, ClusterError> {
    let (records, _) = list();
    let taken: Vec<u8> = records.iter().map(|r| r.subnet.octet).collect();
    let mut seed = [0u8; 4];
    rand::fill(&mut seed[..]);
    let subnet = super::subnet::choose(used, &taken, seed[0]).ok_or_else(|| {
        ClusterError::NoSubnet(format!(
            "10.211.0.0/16 ({} runs registered; try `faultline cleanup`)",
            records.len()
        ))
    })?;
    let short_id = loop {
        let mut b = [0u8; 3];
        rand::fill(&mut b[..]);
        let id = format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2]);
        if !records.iter().any(|r| r.short_id == id) && !link_exists(&format!("fl-{id}-br")) {
            break id;
        }
    };
    let me = std::process::id() as i32;
    let record = RunRecord {
        bridge: format!("fl-{short_id}-br"),
        short_id,
        label: label.to_string(),
        control: ProcRef::of(me).expect("own /proc entry"),
        run_dir: run_dir.to_path_buf(),
        subnet,
        namespaces: Vec::new(),
        nodes: BTreeMap::new(),
    };
    record.save()?;
    Ok(record)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}
