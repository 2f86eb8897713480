//! What the machine must offer before a local cluster can start; each miss names its fix.

use std::path::Path;

use super::error::ClusterError;

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(cmd).is_file())
}

/// Root (namespaces, nft), `ip` and `nft` are required; libfaketime only for clock faults
/// (see `clock::support_for`).
pub fn check() -> Result<(), ClusterError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ClusterError::Missing(
            "a local cluster needs root (network namespaces, nftables): run as root or with \
             CAP_NET_ADMIN + CAP_SYS_ADMIN"
                .into(),
        ));
    }
    if !on_path("ip") {
        return Err(ClusterError::Missing(
            "`ip` not found: apt-get install iproute2".into(),
        ));
    }
    if !on_path("nft") {
        return Err(ClusterError::Missing(
            "`nft` not found: apt-get install nftables libfaketime".into(),
        ));
    }
    Ok(())
}
