//! The command line every bundled node shares: `--id --listen --peers --data-dir --bug`,
//! plus the kit's own knobs. A system flattens `NodeArgs` into its own `clap::Parser`.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's id.
    #[arg(long)]
    pub id: String,
    /// Address to serve HTTP on (clients and peers), ip:port.
    #[arg(long)]
    pub listen: String,
    /// The other nodes, `n2=ip:port,n3=ip:port` ('' for a single node).
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Where the WAL and snapshots live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Switch on a planted bug (repeatable; the system's --help lists them).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Take a snapshot every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_threshold: u64,
    /// How long a client request may wait for commit before an indefinite 504.
    #[arg(long, default_value_t = 2_000)]
    pub request_timeout_ms: u64,
}

impl NodeArgs {
    /// The planted bugs `--bug` names, parsed by the system's own bug type.
    pub fn parse_bugs<B: std::str::FromStr>(&self) -> Result<Vec<B>, B::Err> {
        self.bugs.iter().map(|b| b.parse()).collect()
    }

    pub fn peer_list(&self) -> Result<Vec<(String, String)>, String> {
        parse_peers(&self.peers)
    }
}

/// Parses `n2=ip:port,n3=ip:port`, naming the bad item.
pub fn parse_peers(peers: &str) -> Result<Vec<(String, String)>, String> {
    peers
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((id, addr)) if !id.is_empty() && addr.parse::<std::net::SocketAddr>().is_ok() => {
                Ok((id.to_string(), addr.to_string()))
            }
            _ => Err(format!("--peers: {p:?} is not ID=IP:PORT")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject_garbage() {
        assert_eq!(parse_peers("").unwrap(), vec![]);
        let p = parse_peers("n2=127.0.0.1:1,n3=127.0.0.1:2").unwrap();
        assert_eq!(p[1], ("n3".to_string(), "127.0.0.1:2".to_string()));
        assert!(parse_peers("n2").unwrap_err().contains("\"n2\""));
        assert!(parse_peers("n2=localhost").is_err());
    }
}
