//! Benchmark: the same closed-loop client load (puts and linearizable reads on random keys)
//! against a faultline-raft cluster and an etcd 3.4 cluster of the same size on loopback.
//! Prints ops/s, p50 and p99 latency per system and size, and the raft/etcd ratios.
//!
//! `faultline-raft-bench [--clients 32] [--seconds 5] [--sizes 3,5] [--read-percent 50]
//!  [--etcd /usr/bin/etcd] [--raft-bin PATH]`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_raft::local_cluster::{LocalCluster, free_ports};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value = "3,5")]
    sizes: String,
    #[arg(long, default_value_t = 50)]
    read_percent: u32,
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// The node binary (default: `faultline-raft` next to this one).
    #[arg(long)]
    raft_bin: Option<PathBuf>,
    /// Keep the node data and logs (printed path) instead of deleting them.
    #[arg(long)]
    keep: bool,
    /// Skip etcd (e.g. when it is not installed).
    #[arg(long)]
    no_etcd: bool,
}

#[derive(Clone, Copy)]
enum System {
    Raft,
    Etcd,
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Stats {
    ops: usize,
    errors: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Closed loop: each client issues one op at a time for `seconds`; returns the stats.
async fn drive(system: System, url: String, args: &Args) -> Stats {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.clients)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let url = Arc::new(url);
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, url) = (client.clone(), url.clone());
        let (keys, read_percent) = (args.keys, args.read_percent);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ (c as u64 + 1);
            let mut n = 0u64;
            while Instant::now() < end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("k{}", x % keys);
                let read = (x >> 32) % 100 < read_percent as u64;
                n += 1;
                let (path, body) = match (system, read) {
                    (System::Raft, true) => ("/kv/read", json!({"key": key})),
                    (System::Raft, false) => ("/kv/write", json!({"key": key, "value": n})),
                    (System::Etcd, true) => ("/v3/kv/range", json!({"key": b64(key.as_bytes())})),
                    (System::Etcd, false) => (
                        "/v3/kv/put",
                        json!({"key": b64(key.as_bytes()), "value": b64(n.to_string().as_bytes())}),
                    ),
                };
                let t = Instant::now();
                let res = client.post(format!("{url}{path}")).json(&body).send().await;
                let err = match res {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.err().map(|e| e.to_string())
                    }
                    Ok(r) => Some(format!(
                        "{} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => Some(e.to_string()),
                };
                match err {
                    None => lat.push(t.elapsed()),
                    Some(e) => {
                        if errors == 0 && c == 0 {
                            eprintln!("first error of client 0: {e}");
                        }
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("client task");
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Stats {
        ops: all.len(),
        errors,
        secs,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

struct Etcd {
    children: Vec<Child>,
    client_urls: Vec<String>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_etcd(bin: &Path, n: usize, dir: &Path) -> anyhow::Result<Etcd> {
    let ports = free_ports(2 * n)?;
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
    let cluster: Vec<String> = (0..n).map(|i| format!("e{}={}", i + 1, peer(i))).collect();
    let mut etcd = Etcd {
        children: Vec::new(),
        client_urls: Vec::new(),
    };
    for i in 0..n {
        let client = format!("http://127.0.0.1:{}", ports[2 * i]);
        let log = std::fs::File::create(dir.join(format!("e{}.log", i + 1)))?;
        let child = Command::new(bin)
            .arg("--name")
            .arg(format!("e{}", i + 1))
            .arg("--data-dir")
            .arg(dir.join(format!("e{}", i + 1)))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer(i),
                "--initial-advertise-peer-urls",
                &peer(i),
            ])
            .args(["--initial-cluster", &cluster.join(",")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "fl-bench",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        etcd.children.push(child);
        etcd.client_urls.push(client);
    }
    Ok(etcd)
}

/// The etcd member that is leader, by asking each member's maintenance status.
async fn etcd_leader(urls: &[String]) -> anyhow::Result<usize> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for (i, u) in urls.iter().enumerate() {
            let r = client
                .post(format!("{u}/v3/maintenance/status"))
                .json(&json!({}))
                .send()
                .await;
            if let Ok(r) = r
                && let Ok(v) = r.json::<Value>().await
                && v["leader"].as_str().is_some()
                && v["leader"] == v["header"]["member_id"]
            {
                return Ok(i);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("etcd elected no leader within 20 s")
}

fn print(system: &str, n: usize, s: &Stats) {
    println!(
        "{system:<5} nodes={n} ops={} errors={} ops/s={:.0} p50={:.2}ms p99={:.2}ms",
        s.ops,
        s.errors,
        s.ops as f64 / s.secs,
        s.p50_ms,
        s.p99_ms
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let raft_bin = match &args.raft_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("faultline-raft"),
    };
    let base = std::env::temp_dir().join(format!("fl-raft-bench-{}", std::process::id()));
    println!(
        "load: {} closed-loop clients, {}% linearizable reads / puts, {} keys, {} s per run",
        args.clients, args.read_percent, args.keys, args.seconds
    );
    let result = run(&args, &raft_bin, &base).await;
    if args.keep {
        println!("kept node data and logs in {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

async fn run(args: &Args, raft_bin: &Path, base: &Path) -> anyhow::Result<()> {
    let sizes: Vec<usize> = args
        .sizes
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("--sizes: expected e.g. 3,5")?;
    for n in sizes {
        let dir = base.join(format!("raft-{n}"));
        std::fs::create_dir_all(&dir)?;
        let raft = {
            let c = LocalCluster::start(raft_bin, n, &dir, &[])?;
            let leader = c
                .wait_leader(Duration::from_secs(10))
                .await
                .context("raft elected no leader")?;
            let url = format!("http://{}", c.nodes[leader].addr);
            drive(System::Raft, url, args).await
        };
        print("raft", n, &raft);
        if args.no_etcd {
            continue;
        }
        let dir = base.join(format!("etcd-{n}"));
        std::fs::create_dir_all(&dir)?;
        let etcd = {
            let e = start_etcd(&args.etcd, n, &dir)?;
            let leader = etcd_leader(&e.client_urls).await?;
            drive(System::Etcd, e.client_urls[leader].clone(), args).await
        };
        print("etcd", n, &etcd);
        println!(
            "ratio nodes={n} throughput raft/etcd={:.2} p99 raft/etcd={:.2}",
            (raft.ops as f64 / raft.secs) / (etcd.ops as f64 / etcd.secs),
            raft.p99_ms / etcd.p99_ms
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::b64(b"k1"), "azE=");
        assert_eq!(super::b64(b"foo"), "Zm9v");
        assert_eq!(super::b64(b"k12"), "azEy");
        assert_eq!(super::b64(b"k1234"), "azEyMzQ=");
    }
}
