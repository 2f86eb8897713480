//! `faultline-cluster`: start a local cluster and hold it until SIGINT/SIGTERM, optionally
//! under a nemesis schedule. For experiments by hand, the cleanup tests (which SIGKILL it) and
//! the cluster figures. Prints one JSON line describing the cluster, then one per fault event.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor, install_signal_teardown};
use faultline::nemesis::{self, Schedule};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Start a local cluster in namespaces and hold it until SIGINT/SIGTERM")]
struct Args {
    /// `raft`, `etcd` or a descriptor path.
    #[arg(long, default_value = "raft")]
    system: String,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Where nodes/<id>/ go.
    #[arg(long)]
    run_dir: PathBuf,
    #[arg(long = "bug")]
    bugs: Vec<String>,
    /// A schedule name or path to run until the signal.
    #[arg(long)]
    nemesis: Option<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    install_signal_teardown(None, |_| {})?;
    let desc = SystemDescriptor::load(&args.system)?;
    let mut cfg = ClusterConfig::new(args.nodes, &args.run_dir);
    cfg.bugs = args.bugs.clone();
    let t0 = Instant::now();
    let cluster = Cluster::start(desc, cfg)
        .await
        .context("starting the cluster")?;
    let started_ms = t0.elapsed().as_secs_f64() * 1e3;
    let pids: Vec<Option<u32>> = cluster
        .node_ids()
        .iter()
        .map(|id| cluster.pid(id))
        .collect();
    println!(
        "{}",
        json!({
            "short_id": cluster.short_id(),
            "subnet": cluster.subnet().to_string(),
            "client": cluster.client_adapter(),
            "clock": format!("{:?}", cluster.clock_support()),
            "nodes": cluster.nodes(),
            "pids": pids,
            "control_pid": std::process::id(),
            "started_ms": started_ms,
        })
    );
    if let Some(n) = &args.nemesis {
        let schedule = Schedule::load(n)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _handle = nemesis::spawn(cluster.clone(), schedule, args.seed, t0, tx)?;
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                println!(
                    "{}",
                    json!({"f": e.f(), "value": e.history_value(), "at_ns": e.at_ns})
                );
            }
        });
    }
    // Hold until the signal task tears down and exits.
    std::future::pending::<()>().await;
    Ok(())
}
