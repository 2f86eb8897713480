//! Network faults as one nft table per node namespace, replaced atomically: drop packets from
//! grudged peers (partitions, one-way too) and a random share of all inbound packets (loss,
//! via `numgen random`). Healing deletes the table. Rendering is pure.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::ClusterError;

/// The table every fault rule of a node lives in (inside the node's own namespace).
pub const TABLE: &str = "faultline";

/// The network faults in force on one node's inbound traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetFaults {
    /// Packets from these addresses are dropped.
    pub drop_from: Vec<Ipv4Addr>,
    /// Percent (0..=100) of all packets arriving on eth0 dropped at random.
    pub loss_percent: u8,
}

impl NetFaults {
    pub fn is_clear(&self) -> bool {
        self.drop_from.is_empty() && self.loss_percent == 0
    }
}

/// One nft transaction (a single line, so the persistent `nft -i` shell commits it
/// atomically too) that replaces the node's table with `faults`, or just removes it.
pub fn render(faults: &NetFaults) -> String {
    // `add table` first makes the delete succeed whether or not the table existed.
    let mut s = format!("add table inet {TABLE}; delete table inet {TABLE}");
    if faults.is_clear() {
        return s;
    }
    s.push_str(&format!(
        "; add table inet {TABLE}; add chain inet {TABLE} input {{ type filter hook input \
         priority -10 ; policy accept ; }}"
    ));
    if !faults.drop_from.is_empty() {
        let mut addrs: Vec<String> = faults.drop_from.iter().map(|a| a.to_string()).collect();
        addrs.sort();
        addrs.dedup();
        s.push_str(&format!(
            "; add rule inet {TABLE} input ip saddr {{ {} }} drop",
            addrs.join(", ")
        ));
    }
    if faults.loss_percent > 0 {
        s.push_str(&format!(
            "; add rule inet {TABLE} input iifname \"eth0\" numgen random mod 100 < {} drop",
            faults.loss_percent.min(100)
        ));
    }
    s
}

/// A long-lived `nft -i -e` inside a node's namespace. Loading a rule through it skips a
/// fork/exec and libnftables start-up per fault; `-e` echoes a `# new generation` line once
/// the kernel has committed the transaction, which is our "rule in place" signal.
pub struct NftShell {
    child: Child,
    stdin: ChildStdin,
    lines: crossbeam_channel::Receiver<String>,
}

impl NftShell {
    pub fn spawn(ns: &str) -> Result<NftShell, ClusterError> {
        let (reader, writer) = std::io::pipe().map_err(|e| ClusterError::io("pipe", e))?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| ClusterError::io("pipe", e))?;
        let mut cmd = in_netns(ns, &["-i", "-e"])?;
        cmd.stdin(Stdio::piped()).stdout(writer).stderr(writer2);
        let mut child = cmd.spawn().map_err(|e| {
            ClusterError::Missing(format!("cannot run `nft` ({e}); apt-get install nftables"))
        })?;
        drop(cmd); // closes our copies of the pipe's write end, so EOF ends the reader
        let stdin = child.stdin.take().expect("piped");
        let (tx, rx) = crossbeam_channel::bounded(1024);
        std::thread::Builder::new()
            .name(format!("nft-{ns}"))
            .spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ClusterError::io("nft reader thread", e))?;
        Ok(NftShell {
            child,
            stdin,
            lines: rx,
        })
    }

    /// Commits one single-line transaction; Err on an nft error or after `timeout`.
    pub fn apply(&mut self, line: &str, timeout: Duration) -> Result<(), String> {
        self.send(line)?;
        self.wait(timeout)
    }

    /// Sends a transaction without waiting (so several namespaces commit in parallel).
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        debug_assert!(!line.contains('\n'));
        // Output left from an earlier command is not ours.
        while self.lines.try_recv().is_ok() {}
        writeln!(self.stdin, "{line}").map_err(|e| format!("nft shell: {e}"))?;
        self.stdin.flush().map_err(|e| format!("nft shell: {e}"))
    }

    /// Waits for the commit of the transaction last sent.
    pub fn wait(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with("# new generation") => return Ok(()),
                Ok(l) if l.starts_with("Error:") => return Err(l),
                Ok(_) => {} // the echoed commands
                Err(_) => return Err(format!("nft shell: no commit within {timeout:?}")),
            }
        }
    }
}

impl Drop for NftShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `nft ARGS` command that will run inside the namespace at `/run/netns/<ns>`.
fn in_netns(ns: &str, args: &[&str]) -> Result<Command, ClusterError> {
    let path = format!("/run/netns/{ns}");
    let nsfile = std::fs::File::open(&path).map_err(|e| ClusterError::io(&path, e))?;
    let mut cmd = Command::new("nft");
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; it only moves the child into the node's namespace.
    // The closure owns the namespace file, so its descriptor stays open until the Command
    // is dropped (after spawn).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(nsfile.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

const SHELL_TIMEOUT: Duration = Duration::from_secs(2);

/// Applies through the node's shell (spawning it if needed); on any shell failure drops the
/// shell and falls back to a one-shot `nft -f -`, whose error message is the one reported.
pub fn apply_via(shell: &mut Option<NftShell>, ns: &str, script: &str) -> Result<(), ClusterError> {
    apply_many(&mut [(shell, ns, script)])
        .pop()
        .expect("one result")
}

/// `apply_via` for several namespaces at once: every transaction is sent before any commit
/// is awaited, so the kernel work overlaps. One result per job, in order.
pub fn apply_many(
    jobs: &mut [(&mut Option<NftShell>, &str, &str)],
) -> Vec<Result<(), ClusterError>> {
    let mut sent = Vec::with_capacity(jobs.len());
    for (shell, ns, script) in jobs.iter_mut() {
        if shell.is_none() {
            **shell = NftShell::spawn(ns).ok();
        }
        let ok = match shell.as_mut() {
            Some(sh) => sh.send(script).is_ok(),
            None => false,
        };
        if !ok {
            **shell = None;
        }
        sent.push(ok);
    }
    jobs.iter_mut()
        .zip(sent)
        .map(|((shell, ns, script), ok)| {
            if ok
                && let Some(sh) = shell.as_mut()
                && sh.wait(SHELL_TIMEOUT).is_ok()
            {
                return Ok(());
            }
            **shell = None;
            apply(ns, script)
        })
        .collect()
}

/// Loads `script` with `nft -f -` inside the namespace at `/run/netns/<ns>`.
pub fn apply(ns: &str, script: &str) -> Result<(), ClusterError> {
    let mut cmd = in_netns(ns, &["-f", "-"])?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        ClusterError::Missing(format!("cannot run `nft` ({e}); apt-get install nftables"))
    })?;
    drop(cmd);
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| ClusterError::io("nft stdin", e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| ClusterError::io("nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Command {
            command: format!("ip netns exec {ns} nft -f - <<< {script:?}"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_just_removes() {
        assert_eq!(
            render(&NetFaults::default()),
            "add table inet faultline; delete table inet faultline"
        );
    }

    #[test]
    fn partition_and_loss() {
        let f = NetFaults {
            drop_from: vec![
                "10.211.1.13".parse().unwrap(),
                "10.211.1.12".parse().unwrap(),
                "10.211.1.12".parse().unwrap(),
            ],
            loss_percent: 20,
        };
        let s = render(&f);
        assert!(
            s.contains("ip saddr { 10.211.1.12, 10.211.1.13 } drop"),
            "{s}"
        );
        assert!(s.contains("numgen random mod 100 < 20 drop"), "{s}");
        assert!(s.starts_with("add table inet faultline; delete table inet faultline; "));
        assert!(!s.contains('\n'), "one line, one transaction: {s}");
    }
}
