//! One node process: spawned inside its namespace with stdout/stderr appended to the run
//! directory, signalled by exact pid, reaped by us.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::error::ClusterError;

/// Where a node lives and how to (re)start it.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    pub id: String,
    pub netns: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `nodes/<id>/` in the run directory; the process's working directory.
    pub node_dir: PathBuf,
}

fn append(path: &Path) -> Result<File, ClusterError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ClusterError::io(path, e))
}

/// Starts the node in its namespace, in its own process group, stdin closed.
pub fn spawn(spec: &LaunchSpec) -> Result<Child, ClusterError> {
    let stdout = append(&spec.node_dir.join("stdout.log"))?;
    let stderr = append(&spec.node_dir.join("stderr.log"))?;
    let ns_path = format!("/run/netns/{}", spec.netns);
    let nsfile = File::open(&ns_path).map_err(|e| ClusterError::io(&ns_path, e))?;
    let fd = nsfile.as_raw_fd();
    let mut cmd = Command::new(&spec.binary);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.node_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own group, so a terminal's ^C reaches only the control process, which then
        // tears the cluster down in order.
        .process_group(0);
    // SAFETY: setns is async-signal-safe; it moves only the child into the node's namespace.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| ClusterError::Node {
        node: spec.id.clone(),
        message: format!("cannot start {}: {e}", spec.binary.display()),
    })?;
    drop(nsfile);
    Ok(child)
}

/// Sends `sig` to exactly `pid`.
pub fn signal(pid: u32, sig: libc::c_int) -> Result<(), std::io::Error> {
    // SAFETY: kill(2) with a pid of a child we spawned and have not reaped.
    if unsafe { libc::kill(pid as i32, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The last `n` lines of a node's stderr, for error messages.
pub fn stderr_tail(node_dir: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(node_dir.join("stderr.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
