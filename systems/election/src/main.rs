//! `faultline-election --id n1 --listen ADDR --peers n2=ADDR,... --data-dir DIR
//!  [--election bully|ring|lease] [--replicate majority|all-live] [--quorum-gate] [--bug NAME]...`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_election::core::{Bug, Bugs, Config, Mode, Replicate};
use faultline_election::replica::{ElectionReplica, is_large};
use faultline_node::cli::NodeArgs;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A primary-backup key-value node (bully, ring or lease election, generation fencing) speaking faultline's node protocol",
    after_help = "Planted bugs (--bug): no-fencing, renew-without-quorum, grant-while-leased, lease-no-drift-margin, read-without-lease-check (lease); stale-coordinator-accepted (bully, ring); ring-token-lost-on-skip (ring)"
)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// How the primary is chosen.
    #[arg(long, default_value = "lease")]
    election: Mode,
    /// Commit a write once a majority holds it, or once every live backup does (`all-live`:
    /// a primary alone commits by itself).
    #[arg(long, default_value = "majority")]
    replicate: String,
    /// Bully and ring: a coordinator acts only once a majority obeyed it, writes commit on a
    /// majority, reads are confirmed by a majority round.
    #[arg(long)]
    quorum_gate: bool,
    #[arg(long, default_value_t = 800)]
    lease_ms: u64,
    /// Kept back from the lease at the holder for clock-rate drift.
    #[arg(long, default_value_t = 200)]
    drift_ms: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Bully/ring: silence from the primary for this long (plus up to as much, random) starts
    /// an election.
    #[arg(long, default_value_t = 300)]
    election_ms: u64,
}

fn main() -> anyhow::Result<()> {
    faultline_node::init()?;
    let args = Args::parse();
    let id = args.node.id.clone();
    let bug_list = args.node.parse_bugs::<Bug>()?;
    let replicate = match args.replicate.as_str() {
        "majority" => Replicate::Majority,
        "all-live" => Replicate::AllLive,
        other => bail!("--replicate: {other:?} is not majority or all-live"),
    };
    if args.drift_ms >= args.lease_ms || args.heartbeat_ms == 0 || args.election_ms == 0 {
        bail!("need --drift-ms < --lease-ms and nonzero --heartbeat-ms, --election-ms");
    }
    let mut addrs = args.node.peer_list().map_err(anyhow::Error::msg)?;
    addrs.push((id.clone(), args.node.listen.clone()));
    for b in &bug_list {
        faultline_node::log!("[{id}] BUG ACTIVE: {} (symptom: {})", b.name(), b.symptom());
    }
    let seed =
        std::process::id() as u64 ^ (faultline_node::clock::wall_ms() as u64).rotate_left(17);
    let cfg = Config {
        replicate,
        quorum_gate: args.quorum_gate,
        heartbeat_ms: args.heartbeat_ms,
        lease_ms: args.lease_ms,
        drift_ms: args.drift_ms,
        election_ms: args.election_ms,
        answer_ms: (args.election_ms / 3).max(1),
        bugs: Bugs::from_list(&bug_list),
        seed,
        ..Config::new(&id, args.election)
    };
    let storage = faultline_node::open_storage(&id, &args.node.data_dir)
        .with_context(|| format!("opening data dir {}", args.node.data_dir.display()))?;
    faultline_node::log!(
        "[{id}] {:?} election, WAL recovered: {} records",
        args.election,
        storage.records.len()
    );
    let replica = ElectionReplica::recover(cfg, addrs, storage.records);
    let parts = faultline_node::Parts {
        id: id.clone(),
        listen: args.node.listen.clone(),
        data_dir: args.node.data_dir.clone(),
        replica,
        wal: storage.wal,
        snapshot: storage.snapshot,
        peer_path: "/election/batch",
        is_large,
        opts: faultline_node::loop_options(&args.node),
        recovered: Vec::new(),
    };
    let bugs = bug_list.iter().map(|b| b.name().to_string()).collect();
    faultline_node::serve(parts, bugs)
}
