//! Issue 4's figures, measured on real clusters (root needed):
//! 1. time from `Cluster::start` to a 5-node cluster serving (every node answers its
//!    readiness probe), then to an elected leader and a first committed write;
//! 2. time from a fault decision to its rule being in place (nft transaction committed,
//!    signal delivered, offset file rewritten).
//!
//! `cargo build --release -p faultline-raft && cargo bench --bench cluster_figures`
//! (`FL_BENCH_ITERS` start iterations, default 7; fault latencies use 40 samples each;
//! `FL_BENCH_ONLY=startup|faults` runs one half).
//! Prints medians, p90 and min: the machine is shared and noisy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
use faultline::nemesis::{self, FaultSpec, GrudgeSpec, Plan};

fn summary(name: &str, mut xs: Vec<f64>) {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| xs[((xs.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<46} n={:<3} median {:>8.2} ms   p90 {:>8.2} ms   min {:>8.2} ms",
        xs.len(),
        q(0.5),
        q(0.9),
        xs[0]
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn write_raft(c: &Cluster, http: &reqwest::Client) {
    loop {
        let leader = c.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        let url = c.node(&leader).unwrap().url;
        let r = http
            .post(format!("{url}/kv/write"))
            .json(&serde_json::json!({"key": "k", "value": 1}))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn startup(system: &str, nodes: usize, iters: usize) {
    let desc = SystemDescriptor::load(system).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut ready, mut leader, mut write) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iters {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let c = Cluster::start(desc.clone(), ClusterConfig::new(nodes, dir.path()))
            .await
            .unwrap();
        ready.push(ms(t0.elapsed()));
        c.wait_for_leader(Duration::from_secs(20)).await.unwrap();
        leader.push(ms(t0.elapsed()));
        if system == "raft" {
            write_raft(&c, &http).await;
            write.push(ms(t0.elapsed()));
        }
        c.teardown().await.unwrap();
    }
    summary(
        &format!("{system} {nodes} nodes: start -> all serving"),
        ready,
    );
    summary(
        &format!("{system} {nodes} nodes: start -> leader elected"),
        leader,
    );
    if !write.is_empty() {
        summary(
            &format!("{system} {nodes} nodes: start -> first write ok"),
            write,
        );
    }
}

async fn fault_latency() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(
        SystemDescriptor::load("raft").unwrap(),
        ClusterConfig::new(5, dir.path()),
    )
    .await
    .unwrap();
    c.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let ids = c.node_ids();
    const N: usize = 40;
    let (mut one, mut all, mut heal, mut loss, mut pause, mut clock, mut nem) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let halves = nemesis::grudge::from_components(&[ids[..2].to_vec(), ids[2..].to_vec()]);
    let mut isolate_one = BTreeMap::new();
    isolate_one.insert(ids[0].clone(), ids[1..].to_vec());
    let mut plan = Plan::new(1);
    let spec = FaultSpec::Partition {
        grudge: GrudgeSpec::RandomHalves,
        weight: 1,
    };
    for _ in 0..N {
        let t = Instant::now();
        c.partition(&isolate_one).await.unwrap();
        one.push(ms(t.elapsed()));
        c.heal_network().await.unwrap();

        let t = Instant::now();
        c.partition(&halves).await.unwrap();
        all.push(ms(t.elapsed()));
        let t = Instant::now();
        c.heal_network().await.unwrap();
        heal.push(ms(t.elapsed()));

        let t = Instant::now();
        c.set_loss(&ids[..1], 20).await.unwrap();
        loss.push(ms(t.elapsed()));
        c.heal_network().await.unwrap();

        let t = Instant::now();
        c.pause(&ids[4]).await.unwrap();
        pause.push(ms(t.elapsed()));
        c.resume(&ids[4]).await.unwrap();

        let t = Instant::now();
        c.set_clock_offset(&ids[3], 1000).await.unwrap();
        clock.push(ms(t.elapsed()));
        c.reset_clocks().await.unwrap();

        // Through the nemesis path: apply_us is decision -> every rule loaded.
        let (ev, active) = nemesis::start_fault(&c, &spec, &mut plan, Instant::now()).await;
        nem.push(ev.detail["apply_us"].as_u64().unwrap() as f64 / 1e3);
        nemesis::stop_fault(&c, active.unwrap(), Instant::now()).await;
    }
    summary("partition one node (1 table)", one);
    summary("partition halves, 5 nodes (5 tables, parallel)", all);
    summary("heal partition, 5 nodes", heal);
    summary("nemesis random-halves decision -> in place", nem);
    summary("20% loss on one node", loss);
    summary("pause (SIGSTOP) one node", pause);
    summary("clock offset rewrite", clock);
    c.teardown().await.unwrap();
}

fn main() {
    if let Err(e) = faultline::cluster::caps::check() {
        eprintln!("cluster_figures: cannot run here: {e}");
        std::process::exit(1);
    }
    if let Err(e) = SystemDescriptor::load("raft").unwrap().resolve_binary() {
        eprintln!("cluster_figures: {e}");
        std::process::exit(1);
    }
    let iters: usize = std::env::var("FL_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // FL_BENCH_ONLY=startup|faults runs one half.
    let only = std::env::var("FL_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only != "faults" {
            startup("raft", 5, iters).await;
            startup("etcd", 5, iters.min(3)).await;
        }
        if only != "startup" {
            fault_latency().await;
        }
    });
}
