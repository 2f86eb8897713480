//! Benchmark: the same closed-loop client load (puts and linearizable reads on random keys)
//! against each bundled system built on the node kit (Raft, Multi-Paxos) and an etcd 3.4
//! cluster, of the same sizes, on loopback. Prints ops/s, p50 and p99 latency per system, size
//! and repetition, the median of each, and the ratios of the medians to the first system's.
//!
//! `faultline-systems-bench [--systems raft,paxos,etcd] [--clients 32] [--seconds 5]
//!  [--sizes 3,5] [--repeat 3] [--read-percent 50] [--etcd /usr/bin/etcd] [--bin-dir DIR]`

use anyhow::{Context, bail};
use clap::Parser;
use faultline_node::local_cluster::{LocalCluster, free_ports};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Systems to measure, in order: bundled kit systems by name (`raft` runs
    /// `faultline-raft`, `paxos` runs `faultline-paxos`) and `etcd`. Ratios are to the first.
    #[arg(long, default_value = "raft,paxos,etcd")]
    systems: String,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value = "3,5")]
    sizes: String,
    /// Runs per system and size; each round runs every system once, so drift of a noisy
    /// machine spreads over all of them. Medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[arg(long, default_value_t = 50)]
    read_percent: u32,
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Where the node binaries are (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Keep the node data and logs (printed path) instead of deleting them.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum System {
    /// A bundled system on the node kit: its name and binary.
    Kit(String, PathBuf),
    Etcd(PathBuf),
}

impl System {
    fn name(&self) -> &str {
        match self {
            System::Kit(n, _) => n,
            System::Etcd(_) => "etcd",
        }
    }
}

/// `raft,paxos,etcd` -> the systems, each binary checked before anything starts.
fn systems(list: &str, bin_dir: &Path, etcd: &Path) -> anyhow::Result<Vec<System>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let s = if name == "etcd" {
            System::Etcd(etcd.to_path_buf())
        } else {
            System::Kit(name.to_string(), bin_dir.join(format!("faultline-{name}")))
        };
        let bin = match &s {
            System::Kit(_, b) | System::Etcd(b) => b,
        };
        if !bin.is_file() {
            bail!(
                "--systems: `{name}` needs {} (build the workspace, or install etcd-server)",
                bin.display()
            );
        }
        out.push(s);
    }
    if out.is_empty() {
        bail!("--systems: name at least one system");
    }
    Ok(out)
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
async fn drive(etcd: bool, url: String, args: &Args) -> Stats {
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
                let (path, body) = match (etcd, read) {
                    (false, true) => ("/kv/read", json!({"key": key})),
                    (false, false) => ("/kv/write", json!({"key": key, "value": n})),
                    (true, true) => ("/v3/kv/range", json!({"key": b64(key.as_bytes())})),
                    (true, false) => (
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

impl Stats {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

fn print(system: &str, n: usize, round: usize, s: &Stats) {
    println!(
        "{system:<6} nodes={n} run={round} ops={} errors={} ops/s={:.0} p50={:.2}ms p99={:.2}ms",
        s.ops,
        s.errors,
        s.ops_per_s(),
        s.p50_ms,
        s.p99_ms
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match &args.bin_dir {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .to_path_buf(),
    };
    let systems = systems(&args.systems, &bin_dir, &args.etcd)?;
    let sizes: Vec<usize> = args
        .sizes
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("--sizes: expected e.g. 3,5")?;
    if args.repeat == 0 {
        bail!("--repeat: at least 1");
    }
    let base = std::env::temp_dir().join(format!("fl-systems-bench-{}", std::process::id()));
    println!(
        "load: {} closed-loop clients, {}% linearizable reads / puts, {} keys, {} s per run, {} runs per system and size",
        args.clients, args.read_percent, args.keys, args.seconds, args.repeat
    );
    let result = run(&args, &systems, &sizes, &base).await;
    if args.keep {
        println!("kept node data and logs in {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

/// One run of `system` on `n` fresh nodes.
async fn measure(system: &System, n: usize, dir: &Path, args: &Args) -> anyhow::Result<Stats> {
    std::fs::create_dir_all(dir)?;
    Ok(match system {
        System::Kit(name, bin) => {
            let c = LocalCluster::start(bin, n, dir, &[])?;
            let leader = c
                .wait_leader(Duration::from_secs(10))
                .await
                .with_context(|| format!("{name} elected no leader within 10 s"))?;
            let url = format!("http://{}", c.nodes[leader].addr);
            drive(false, url, args).await
        }
        System::Etcd(bin) => {
            let e = start_etcd(bin, n, dir)?;
            let leader = etcd_leader(&e.client_urls).await?;
            drive(true, e.client_urls[leader].clone(), args).await
        }
    })
}

async fn run(args: &Args, systems: &[System], sizes: &[usize], base: &Path) -> anyhow::Result<()> {
    for &n in sizes {
        let mut got: Vec<Vec<Stats>> = systems.iter().map(|_| Vec::new()).collect();
        for round in 1..=args.repeat {
            for (i, s) in systems.iter().enumerate() {
                let dir = base.join(format!("{}-{n}-{round}", s.name()));
                let stats = measure(s, n, &dir, args).await?;
                print(s.name(), n, round, &stats);
                got[i].push(stats);
            }
        }
        let medians: Vec<(f64, f64)> = got
            .iter()
            .map(|runs| {
                (
                    median(runs.iter().map(Stats::ops_per_s).collect()),
                    median(runs.iter().map(|s| s.p99_ms).collect()),
                )
            })
            .collect();
        for (s, (ops, p99)) in systems.iter().zip(&medians) {
            println!(
                "median {:<6} nodes={n} ops/s={ops:.0} p99={p99:.2}ms",
                s.name()
            );
        }
        let (base_ops, base_p99) = medians[0];
        for (s, (ops, p99)) in systems.iter().zip(&medians).skip(1) {
            println!(
                "ratio nodes={n} throughput {}/{}={:.2} p99 {}/{}={:.2}",
                s.name(),
                systems[0].name(),
                ops / base_ops,
                s.name(),
                systems[0].name(),
                p99 / base_p99
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn systems_are_named_by_binary_and_a_missing_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("faultline-raft"), "").unwrap();
        let etcd = dir.path().join("etcd");
        std::fs::write(&etcd, "").unwrap();
        let got = systems("raft, etcd", dir.path(), &etcd).unwrap();
        assert_eq!(
            got,
            vec![
                System::Kit("raft".into(), dir.path().join("faultline-raft")),
                System::Etcd(etcd.clone())
            ]
        );
        let e = systems("raft,paxos", dir.path(), &etcd).unwrap_err();
        assert!(e.to_string().contains("faultline-paxos"), "{e}");
        assert!(systems(" ", dir.path(), &etcd).is_err());
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(b64(b"k1"), "azE=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"k12"), "azEy");
        assert_eq!(b64(b"k1234"), "azEyMzQ=");
    }
}
