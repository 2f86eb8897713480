//! Issue 12, must-show 4: what the L7 peer proxy costs when it injects nothing. A real 5-node
//! Raft (namespaces, nft, real processes) under the same closed-loop load, with every peer link
//! through the proxy and with peers talking directly; rounds interleave the two so a noisy
//! machine's drift spreads over both. Target: at least 0.8x the ops/s, at most +1 ms p99.
//!
//! `cargo build --release --workspace && cargo bench --bench proxy_overhead`
//! (`FL_BENCH_ROUNDS` rounds, default 3; `FL_BENCH_SECONDS` of load per run, default 10;
//! `FL_BENCH_CLIENTS` concurrent clients, default 16; `FL_BENCH_NODES`, default 5).
//! Prints every run, then medians over the rounds and their ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
use faultline::faults::proxy::ProxyMode;

struct Figures {
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One cluster with `mode`, `clients` closed-loop clients spread over the nodes as a run's bound
/// clients are (writes and reads on 1,000 keys, half each; a follower forwards to the leader,
/// through the proxy when it is on), for `seconds`.
async fn measure(mode: ProxyMode, nodes: usize, clients: usize, seconds: u64) -> Figures {
    let mut desc = SystemDescriptor::load("raft").unwrap();
    desc.peers.proxy = mode;
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(desc, ClusterConfig::new(nodes, dir.path()))
        .await
        .unwrap();
    c.wait_for_leader(Duration::from_secs(20)).await.unwrap();
    let urls: Vec<String> = c
        .node_ids()
        .iter()
        .map(|id| c.node(id).unwrap().url)
        .collect();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    // A short warm-up so the first elections and connection set-up are not measured.
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + Duration::from_secs(seconds);
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (http, url, failed) = (http.clone(), urls[i % urls.len()].clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n: u64 = i as u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    return lat;
                }
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let key = (n >> 33) % 1000;
                let (path, body) = if (n >> 20) & 1 == 0 {
                    (
                        "/kv/write",
                        serde_json::json!({"key": key.to_string(), "value": n >> 40}),
                    )
                } else {
                    ("/kv/read", serde_json::json!({"key": key.to_string()}))
                };
                let ok = http
                    .post(format!("{url}{path}"))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if now >= warm {
                    if ok {
                        lat.push(now.elapsed().as_secs_f64() * 1e3);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    c.teardown().await.unwrap();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let f = Figures {
        ops_per_s: all.len() as f64 / seconds as f64,
        p50_ms: quantile(&all, 0.5),
        p99_ms: quantile(&all, 0.99),
    };
    println!(
        "  {:<8} {:>8.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ok, {} failed)",
        format!("{mode:?}"),
        f.ops_per_s,
        f.p50_ms,
        f.p99_ms,
        all.len(),
        failed.load(Ordering::Relaxed)
    );
    f
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    if let Err(e) = faultline::cluster::caps::check() {
        eprintln!("proxy_overhead: cannot run here: {e}");
        std::process::exit(1);
    }
    if let Err(e) = SystemDescriptor::load("raft").unwrap().resolve_binary() {
        eprintln!("proxy_overhead: {e}");
        std::process::exit(1);
    }
    let rounds = env("FL_BENCH_ROUNDS", 3) as usize;
    let seconds = env("FL_BENCH_SECONDS", 10);
    let clients = env("FL_BENCH_CLIENTS", 16) as usize;
    let nodes = env("FL_BENCH_NODES", 5) as usize;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut off, mut l7) = (Vec::new(), Vec::new());
    println!("raft, {nodes} nodes, {clients} clients, {seconds} s per run, {rounds} rounds");
    for r in 0..rounds {
        println!("round {}", r + 1);
        // Alternate which goes first, so neither always gets the quieter half of a round.
        let order = if r % 2 == 0 {
            [ProxyMode::Off, ProxyMode::L7]
        } else {
            [ProxyMode::L7, ProxyMode::Off]
        };
        for mode in order {
            let f = rt.block_on(measure(mode, nodes, clients, seconds));
            match mode {
                ProxyMode::Off => off.push(f),
                _ => l7.push(f),
            }
        }
    }
    let med = |v: &[Figures], g: fn(&Figures) -> f64| median(v.iter().map(g).collect());
    let (o_ops, p_ops) = (med(&off, |f| f.ops_per_s), med(&l7, |f| f.ops_per_s));
    let (o_p50, p_p50) = (med(&off, |f| f.p50_ms), med(&l7, |f| f.p50_ms));
    let (o_p99, p_p99) = (med(&off, |f| f.p99_ms), med(&l7, |f| f.p99_ms));
    println!("medians over {rounds} rounds:");
    println!("  no proxy {o_ops:>8.0} ops/s   p50 {o_p50:>6.2} ms   p99 {o_p99:>6.2} ms");
    println!("  L7 proxy {p_ops:>8.0} ops/s   p50 {p_p50:>6.2} ms   p99 {p_p99:>6.2} ms");
    println!(
        "  proxy / none: {:.2}x ops/s (target >= 0.8x), p99 {:+.2} ms (target <= +1 ms)",
        p_ops / o_ops,
        p_p99 - o_p99
    );
}
