//! Network faults as one nft table per node namespace, replaced atomically: drop packets from
//! grudged peers (partitions, one-way too) and a random share of all inbound packets (loss,
//! via `numgen random`). Healing deletes the table. Rendering is pure.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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

/// An `nft -f` script that replaces the node's table with `faults` in one transaction (or
/// just removes it when there are none).
pub fn render(faults: &NetFaults) -> String {
    // `add table` makes the following delete succeed whether or not the table existed.
    let mut s = format!("add table inet {TABLE}\ndelete table inet {TABLE}\n");
    if faults.is_clear() {
        return s;
    }
    s.push_str(&format!(
        "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n"
    ));
    if !faults.drop_from.is_empty() {
        let mut addrs: Vec<String> = faults.drop_from.iter().map(|a| a.to_string()).collect();
        addrs.sort();
        addrs.dedup();
        s.push_str(&format!("    ip saddr {{ {} }} drop\n", addrs.join(", ")));
    }
    if faults.loss_percent > 0 {
        s.push_str(&format!(
            "    iifname \"eth0\" numgen random mod 100 < {} drop\n",
            faults.loss_percent.min(100)
        ));
    }
    s.push_str("  }\n}\n");
    s
}

/// Loads `script` with `nft -f -` inside the namespace at `/run/netns/<ns>`.
pub fn apply(ns: &str, script: &str) -> Result<(), ClusterError> {
    let path = format!("/run/netns/{ns}");
    let nsfile = std::fs::File::open(&path).map_err(|e| ClusterError::io(&path, e))?;
    let fd = nsfile.as_raw_fd();
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe; it only moves the child into the node's namespace.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        ClusterError::Missing(format!("cannot run `nft` ({e}); apt-get install nftables"))
    })?;
    drop(nsfile);
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
            "add table inet faultline\ndelete table inet faultline\n"
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
        assert!(s.starts_with("add table inet faultline\ndelete table inet faultline\n"));
    }
}
