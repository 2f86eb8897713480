//! `faultline-raft --id n1 --listen ADDR --peers n2=ADDR,n3=ADDR --data-dir DIR [--bug NAME]...`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_raft::core::{Bug, Bugs, Config, Membership};
use faultline_raft::http::{Shared, router};
use faultline_raft::node::{Node, NodeOptions, Status};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Raft key-value node speaking faultline's node protocol"
)]
struct Args {
    /// This node's id.
    #[arg(long)]
    id: String,
    /// Address to serve HTTP on (clients and peers), ip:port.
    #[arg(long)]
    listen: String,
    /// The other voters, `n2=ip:port,n3=ip:port` ('' for a single node).
    #[arg(long, default_value = "")]
    peers: String,
    /// Where the WAL and snapshots live.
    #[arg(long)]
    data_dir: PathBuf,
    /// Switch on a planted bug (repeatable): vote-without-log-check, vote-twice-per-term,
    /// commit-prior-term, ack-before-fsync, stale-local-read, lease-no-drift-margin,
    /// accept-stale-term-append.
    #[arg(long = "bug")]
    bugs: Vec<String>,
    #[arg(long, default_value_t = 150)]
    election_min_ms: u64,
    #[arg(long, default_value_t = 300)]
    election_max_ms: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Take a snapshot every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_threshold: u64,
    /// How long a client request may wait for commit before an indefinite 504.
    #[arg(long, default_value_t = 2_000)]
    request_timeout_ms: u64,
    /// Serve reads from a leader lease (monotonic clock, drift margin) instead of ReadIndex.
    #[arg(long)]
    lease_reads: bool,
    /// Start with no membership and wait to be added by the leader (`/admin/membership`).
    #[arg(long)]
    join: bool,
}

fn parse_peers(peers: &str) -> anyhow::Result<Vec<(String, String)>> {
    peers
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((id, addr)) if !id.is_empty() && addr.parse::<std::net::SocketAddr>().is_ok() => {
                Ok((id.to_string(), addr.to_string()))
            }
            _ => bail!("--peers: {p:?} is not ID=IP:PORT"),
        })
        .collect()
}

/// Under libfaketime (LD_PRELOAD) only the wall clock may be faked: a faked monotonic clock
/// breaks timed waits (tokio timers fire at once, futex deadlines hang). Re-exec ourselves once
/// with FAKETIME_DONT_FAKE_MONOTONIC=1, which libfaketime reads at load time.
fn keep_monotonic_clock_real() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let preloaded = std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("faketime"));
    if !preloaded || std::env::var_os("FAKETIME_DONT_FAKE_MONOTONIC").is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .exec();
    Err(err).context("re-exec with FAKETIME_DONT_FAKE_MONOTONIC=1")
}

fn main() -> anyhow::Result<()> {
    keep_monotonic_clock_real()?;
    let args = Args::parse();
    // A panic anywhere (e.g. the node thread) must end the process, not leave a zombie server.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let bug_list = args
        .bugs
        .iter()
        .map(|b| b.parse::<Bug>())
        .collect::<Result<Vec<_>, _>>()?;
    let peers = parse_peers(&args.peers)?;
    let peer_addrs = peers.iter().cloned().collect();
    if args.election_min_ms == 0 || args.election_max_ms <= args.election_min_ms {
        bail!("--election-max-ms must exceed --election-min-ms > 0");
    }
    let mut initial = Membership::default();
    if !args.join {
        initial.voters.insert(args.id.clone(), args.listen.clone());
        initial.voters.extend(peers);
    }
    if std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("faketime")) {
        faultline_raft::log!(
            "[{}] libfaketime preloaded: wall clock faked, monotonic clock kept real",
            args.id
        );
    }
    for b in &bug_list {
        faultline_raft::log!(
            "[{}] BUG ACTIVE: {} (symptom: {})",
            args.id,
            b.name(),
            b.symptom()
        );
    }
    let seed = std::process::id() as u64 ^ (args.id.len() as u64) << 32 ^ {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        t.as_nanos() as u64
    };
    let core = Config {
        id: args.id.clone(),
        election_min_ms: args.election_min_ms,
        election_max_ms: args.election_max_ms,
        heartbeat_ms: args.heartbeat_ms,
        lease_reads: args.lease_reads,
        bugs: Bugs::from_list(&bug_list),
        seed,
        ..Config::new(&args.id)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let request_timeout = Duration::from_millis(args.request_timeout_ms);
    let status = Arc::new(Mutex::new(Status::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = NodeOptions {
        core,
        events: tx.clone(),
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        initial,
        snapshot_threshold: args.snapshot_threshold.max(1),
        request_timeout,
        tick: Duration::from_millis(10),
    };
    let node = Node::open(opts, rt.handle().clone(), status.clone())
        .with_context(|| format!("opening data dir {}", args.data_dir.display()))?;
    let shared = Arc::new(Shared {
        id: args.id.clone(),
        bugs: bug_list.iter().map(|b| b.name().to_string()).collect(),
        events: tx,
        status,
        request_timeout,
        inflight: AtomicUsize::new(0),
        max_inflight: 20_000,
        peers: peer_addrs,
        http: Shared::forward_client(),
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&args.listen))
        .with_context(|| format!("binding {}", args.listen))?;
    faultline_raft::log!("[{}] listening on {}", args.id, args.listen);
    let id = args.id.clone();
    std::thread::Builder::new()
        .name("raft-node".into())
        .spawn(move || {
            if let Err(e) = node.run(rx) {
                faultline_raft::log!("[{id}] fatal storage error: {e}");
                std::process::exit(1);
            }
        })?;
    rt.block_on(async move { axum::serve(listener, router(shared)).await })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_reject_garbage() {
        assert_eq!(parse_peers("").unwrap(), vec![]);
        let p = parse_peers("n2=127.0.0.1:1,n3=127.0.0.1:2").unwrap();
        assert_eq!(p[1], ("n3".to_string(), "127.0.0.1:2".to_string()));
        assert!(parse_peers("n2").is_err());
        assert!(parse_peers("n2=localhost").is_err());
    }
}
