//! `faultline-paxos --id n1 --listen ADDR --peers n2=ADDR,n3=ADDR --data-dir DIR [--bug NAME]...`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_node::cli::NodeArgs;
use faultline_paxos::core::{Bug, Bugs, Config};
use faultline_paxos::replica::{PaxosReplica, is_large};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Multi-Paxos key-value node speaking faultline's node protocol",
    after_help = "Planted bugs (--bug): accept-without-promise-check, promise-does-not-raise-on-accept, ignore-promised-values, promise-not-persisted, prepare-only-first-slot, quorum-off-by-one, read-from-local-acceptor, lease-no-drift-margin"
)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    #[arg(long, default_value_t = 150)]
    election_min_ms: u64,
    #[arg(long, default_value_t = 300)]
    election_max_ms: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Serve reads from a leader lease (monotonic clock, drift margin) instead of a quorum round.
    #[arg(long)]
    lease_reads: bool,
}

fn main() -> anyhow::Result<()> {
    faultline_node::init()?;
    let args = Args::parse();
    let id = args.node.id.clone();
    let bug_list = args.node.parse_bugs::<Bug>()?;
    if args.election_min_ms == 0 || args.election_max_ms <= args.election_min_ms {
        bail!("--election-max-ms must exceed --election-min-ms > 0");
    }
    let mut addrs = args.node.peer_list().map_err(anyhow::Error::msg)?;
    addrs.push((id.clone(), args.node.listen.clone()));
    for b in &bug_list {
        faultline_node::log!("[{id}] BUG ACTIVE: {} (symptom: {})", b.name(), b.symptom());
    }
    let seed =
        std::process::id() as u64 ^ (faultline_node::clock::wall_ms() as u64).rotate_left(17);
    let cfg = Config {
        election_min_ms: args.election_min_ms,
        election_max_ms: args.election_max_ms,
        heartbeat_ms: args.heartbeat_ms,
        lease_reads: args.lease_reads,
        bugs: Bugs::from_list(&bug_list),
        seed,
        ..Config::new(&id)
    };
    let storage = faultline_node::open_storage(&id, &args.node.data_dir)
        .with_context(|| format!("opening data dir {}", args.node.data_dir.display()))?;
    faultline_node::log!(
        "[{id}] WAL recovered: {} records, snapshot at {}",
        storage.records.len(),
        storage
            .snapshot
            .as_ref()
            .map_or(0, |s| faultline_node::snapshot_index(&s.meta))
    );
    let replica = PaxosReplica::recover(
        cfg,
        addrs,
        storage.records,
        storage.snapshot.as_ref().map(|s| &s.meta),
    );
    let parts = faultline_node::Parts {
        id: id.clone(),
        listen: args.node.listen.clone(),
        data_dir: args.node.data_dir.clone(),
        replica,
        wal: storage.wal,
        snapshot: storage.snapshot,
        peer_path: "/paxos/batch",
        is_large,
        opts: faultline_node::loop_options(&args.node),
        recovered: Vec::new(),
    };
    let bugs = bug_list.iter().map(|b| b.name().to_string()).collect();
    faultline_node::serve(parts, bugs)
}
