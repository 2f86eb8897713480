//! `faultline-raft --id n1 --listen ADDR --peers n2=ADDR,n3=ADDR --data-dir DIR [--bug NAME]...`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_node::cli::NodeArgs;
use faultline_node::{Parts, log};
use faultline_raft::core::{Bug, Bugs, Config, Membership, Raft, SnapshotMeta};
use faultline_raft::replica::{RaftReplica, is_large};
use faultline_raft::wal::{Record, replay};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A Raft key-value node speaking faultline's node protocol",
    after_help = "Planted bugs (--bug): vote-without-log-check, vote-twice-per-term, \
                  commit-prior-term, ack-before-fsync, stale-local-read, lease-no-drift-margin, \
                  accept-stale-term-append, apply-duplicate-request."
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
    /// Serve reads from a leader lease (monotonic clock, drift margin) instead of ReadIndex.
    #[arg(long)]
    lease_reads: bool,
    /// Start with no membership and wait to be added by the leader (`/admin/membership`).
    #[arg(long)]
    join: bool,
}

fn main() -> anyhow::Result<()> {
    faultline_node::init()?;
    let args = Args::parse();
    let node = &args.node;
    let id = node.id.clone();
    let bug_list = node.parse_bugs::<Bug>()?;
    let peers = node.peer_list().map_err(anyhow::Error::msg)?;
    if args.election_min_ms == 0 || args.election_max_ms <= args.election_min_ms {
        bail!("--election-max-ms must exceed --election-min-ms > 0");
    }
    let mut initial = Membership::default();
    if !args.join {
        initial.voters.insert(id.clone(), node.listen.clone());
        initial.voters.extend(peers);
    }
    for b in &bug_list {
        log!("[{id}] BUG ACTIVE: {} (symptom: {})", b.name(), b.symptom());
    }
    let seed = std::process::id() as u64 ^ (id.len() as u64) << 32 ^ {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        t.as_nanos() as u64
    };
    let bugs = Bugs::from_list(&bug_list);
    let core = Config {
        election_min_ms: args.election_min_ms,
        election_max_ms: args.election_max_ms,
        heartbeat_ms: args.heartbeat_ms,
        lease_reads: args.lease_reads,
        bugs,
        seed,
        ..Config::new(&id)
    };
    let storage = faultline_node::open_storage::<Record>(&id, &node.data_dir)
        .with_context(|| format!("opening data dir {}", node.data_dir.display()))?;
    let rec = replay(storage.records)
        .map_err(|e| anyhow::anyhow!("{}: {e}", storage.wal.path().display()))?;
    log!(
        "[{id}] WAL recovered: {} records, term {}, vote {:?}, {} entries after index {}",
        rec.records,
        rec.hard_state.term,
        rec.hard_state.vote,
        rec.entries.len(),
        rec.base
    );
    let meta = match &storage.snapshot {
        Some(s) => {
            let meta: SnapshotMeta = serde_json::from_value(s.meta.clone()).with_context(|| {
                format!(
                    "{}: snapshot metadata",
                    node.data_dir.join("snapshot.json").display()
                )
            })?;
            log!(
                "[{id}] snapshot loaded at index {} term {}",
                meta.index,
                meta.term
            );
            meta
        }
        None => SnapshotMeta::default(),
    };
    let raft = Raft::new(core, rec.hard_state, meta, rec.entries, initial);
    let mut opts = faultline_node::loop_options(node);
    opts.lazy_wal = bugs.ack_before_fsync;
    opts.dedupe_requests = !bugs.apply_duplicate_request;
    let parts = Parts {
        id: id.clone(),
        listen: node.listen.clone(),
        data_dir: node.data_dir.clone(),
        replica: RaftReplica::new(raft),
        wal: storage.wal,
        snapshot: storage.snapshot,
        peer_path: "/raft/batch",
        is_large,
        opts,
        recovered: Vec::new(),
    };
    let names = bug_list.iter().map(|b| b.name().to_string()).collect();
    faultline_node::serve(parts, names)
}
