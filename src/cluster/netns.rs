//! Network plumbing through `ip`: one bridge per run in the host namespace, one namespace per
//! node joined to it by a veth pair. Names: bridge `fl-<id>-br`, host veth `fl-<id>-v<i>`,
//! namespace `fl-<id>-<node>`; inside, the node's interface is `eth0`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::error::ClusterError;

/// Runs `ip ARGS` (feeding `stdin` to `-batch -` if given); errors carry ip's stderr.
pub fn ip(args: &[&str], stdin: Option<&str>) -> Result<String, ClusterError> {
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        ClusterError::Missing(format!("cannot run `ip` ({e}); apt-get install iproute2"))
    })?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ClusterError::io("ip", e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Command {
            command: format!(
                "ip {}{}",
                args.join(" "),
                stdin.map(|s| format!(" <<< {s:?}")).unwrap_or_default()
            ),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

pub fn bridge_name(short: &str) -> String {
    format!("fl-{short}-br")
}
pub fn veth_name(short: &str, index: usize) -> String {
    format!("fl-{short}-v{index}")
}
pub fn netns_name(short: &str, node: &str) -> String {
    format!("fl-{short}-{node}")
}

/// Creates the run's bridge with the host-side address `.1/24`, up.
pub fn create_bridge(name: &str, addr: Ipv4Addr) -> Result<(), ClusterError> {
    ip(
        &["-batch", "-"],
        Some(&format!(
            "link add {name} type bridge\naddr add {addr}/24 dev {name}\nlink set {name} up\n"
        )),
    )?;
    Ok(())
}

/// Adds host addresses (`/32`) to the run's bridge: the peer proxy's, one per node.
pub fn add_bridge_addrs(bridge: &str, addrs: &[Ipv4Addr]) -> Result<(), ClusterError> {
    if addrs.is_empty() {
        return Ok(());
    }
    let batch: String = addrs
        .iter()
        .map(|a| format!("addr add {a}/32 dev {bridge}\n"))
        .collect();
    ip(&["-batch", "-"], Some(&batch))?;
    Ok(())
}

/// Creates namespace `ns`, a veth from it to `bridge`, and gives the inside `addr/24`.
pub fn create_node_net(
    ns: &str,
    veth: &str,
    bridge: &str,
    addr: Ipv4Addr,
) -> Result<(), ClusterError> {
    ip(&["netns", "add", ns], None)?;
    ip(
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
        None,
    )?;
    ip(&["link", "set", veth, "master", bridge, "up"], None)?;
    ip(
        &["-n", ns, "-batch", "-"],
        Some(&format!(
            "addr add {addr}/24 dev eth0\nlink set eth0 up\nlink set lo up\n"
        )),
    )?;
    Ok(())
}

/// Pids of processes whose network namespace is `ns`.
pub fn pids_in(ns: &str) -> Vec<i32> {
    ip(&["netns", "pids", ns], None)
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes a namespace (its veth end and nft tables go with it). Missing is fine.
pub fn delete_netns(ns: &str) -> Result<(), ClusterError> {
    if !std::path::Path::new("/run/netns").join(ns).exists() {
        return Ok(());
    }
    match ip(&["netns", "delete", ns], None) {
        Err(ClusterError::Command { stderr, .. }) if stderr.contains("No such file") => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Deletes a link (bridge or veth). Missing is fine.
pub fn delete_link(name: &str) -> Result<(), ClusterError> {
    if !std::path::Path::new("/sys/class/net").join(name).exists() {
        return Ok(());
    }
    match ip(&["link", "delete", name], None) {
        // A veth goes away by itself when its peer's namespace is destroyed (asynchronously).
        Err(ClusterError::Command { stderr, .. }) if stderr.contains("Cannot find device") => {
            Ok(())
        }
        r => r.map(|_| ()),
    }
}

/// Names of `fl-*` namespaces on the machine.
pub fn list_fl_netns() -> Vec<String> {
    list_dir_fl("/run/netns")
}

/// Names of `fl-*` links in the host namespace.
pub fn list_fl_links() -> Vec<String> {
    list_dir_fl("/sys/class/net")
}

fn list_dir_fl(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("fl-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The run short id in an `fl-<id>-...` name.
pub fn short_id_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("fl-")?;
    let (id, _) = rest.split_once('-')?;
    (id.len() == 6 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_link_limit_and_parse_back() {
        let s = "a1b2c3";
        for n in [bridge_name(s), veth_name(s, 200)] {
            assert!(n.len() <= 15, "{n}");
            assert_eq!(short_id_of(&n), Some(s));
        }
        assert_eq!(short_id_of(&netns_name(s, "n12")), Some(s));
        assert_eq!(short_id_of("fl-probe-br"), None);
        assert_eq!(short_id_of("eth0"), None);
    }
}
