//! A short seeded chaos run: clients append unique values while leaders and followers are
//! killed (-9, restarted on their data dir) and paused. Afterwards every acknowledged append
//! must be in the final list exactly once, in each client's order, and all nodes' committed
//! logs must agree index by index.

use faultline_raft::local_cluster::LocalCluster;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-raft");
const KEYS: u64 = 3;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// One client: appends `client*1e6 + n` to key `l{n % KEYS}`, following leader hints.
async fn client(id: u64, addrs: Vec<String>, stop: Arc<AtomicBool>) -> Vec<(String, u64)> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let ids: HashMap<String, usize> = (0..addrs.len())
        .map(|i| (format!("n{}", i + 1), i))
        .collect();
    let mut target = 0usize;
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("l{}", n % KEYS);
        let value = id * 1_000_000 + n;
        let url = format!("http://{}/kv/append", addrs[target]);
        match http
            .post(url)
            .json(&json!({"key": key, "value": value}))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => acked.push((key, value)),
            Ok(r) => {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                target = v["leader"]
                    .as_str()
                    .and_then(|l| ids.get(l).copied())
                    .unwrap_or((target + 1) % addrs.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                target = (target + 1) % addrs.len();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_kills_and_pauses_and_logs_never_diverge() {
    let seed: u64 = std::env::var("FAULTLINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("chaos seed {seed} (rerun with FAULTLINE_SEED={seed})");
    let tmp = tempfile::tempdir().unwrap();
    // FAULTLINE_RAFT_BUG=name plants a bug: the test is then expected to fail (manual check
    // that the chaos below is strong enough to expose it).
    let extra: Vec<String> = std::env::var("FAULTLINE_RAFT_BUG")
        .map(|b| vec!["--bug".to_string(), b])
        .unwrap_or_default();
    let mut c = LocalCluster::start(Path::new(BIN), 5, tmp.path(), &extra).unwrap();
    c.wait_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=6)
        .map(|id| tokio::spawn(client(id, addrs.clone(), stop.clone())))
        .collect();

    let mut rng = seed;
    let end = Instant::now() + Duration::from_secs(8);
    let mut faults = 0;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(300 + xorshift(&mut rng) % 400)).await;
        let victim = match c.wait_leader(Duration::from_secs(2)).await {
            Some(l) if xorshift(&mut rng).is_multiple_of(2) => l,
            _ => (xorshift(&mut rng) % 5) as usize,
        };
        if xorshift(&mut rng).is_multiple_of(2) {
            c.kill(victim);
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.restart(victim).unwrap();
        } else {
            c.pause(victim, true).unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            c.pause(victim, false).unwrap();
        }
        faults += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for (i, h) in clients.into_iter().enumerate() {
        acked.push((i as u64 + 1, h.await.unwrap()));
    }
    let total: usize = acked.iter().map(|(_, a)| a.len()).sum();
    println!("{faults} faults, {total} acknowledged appends");
    assert!(
        total > 50,
        "the cluster made progress under faults ({total} appends)"
    );

    let leader = c
        .wait_leader(Duration::from_secs(10))
        .await
        .expect("leader after healing");
    let mut lists: HashMap<String, Vec<u64>> = HashMap::new();
    for k in 0..KEYS {
        let key = format!("l{k}");
        let mut value = Value::Null;
        for _ in 0..50 {
            let l = c.wait_leader(Duration::from_secs(10)).await.unwrap();
            if let Ok((200, v)) = c.post(l, "/kv/read", &json!({"key": key})).await {
                value = v["value"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let list: Vec<u64> = value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for v in &list {
            assert!(seen.insert(*v), "value {v} appended twice to {key}");
        }
        lists.insert(key, list);
    }
    for (client, appends) in &acked {
        let mut last_pos: HashMap<&str, usize> = HashMap::new();
        for (key, value) in appends {
            let list = &lists[key];
            let pos = list.iter().position(|v| v == value);
            let pos = pos.unwrap_or_else(|| panic!("acknowledged append {value} to {key} lost"));
            if let Some(prev) = last_pos.insert(key, pos) {
                assert!(
                    prev < pos,
                    "client {client}'s appends to {key} out of order"
                );
            }
        }
    }

    let st = c.get(leader, "/status").await.unwrap();
    let commit = st["commit_index"].as_u64().unwrap();
    let truth = c.get(leader, "/log").await.unwrap();
    let truth = truth.as_array().unwrap().clone();
    for i in 0..5 {
        assert!(
            c.wait_applied(i, commit, Duration::from_secs(10)).await,
            "n{} catches up",
            i + 1
        );
        let log = c.get(i, "/log").await.unwrap();
        for e in log.as_array().unwrap() {
            let idx = e["index"].as_u64().unwrap() as usize;
            if idx <= truth.len() {
                assert_eq!(&truth[idx - 1], e, "n{} diverges at index {idx}", i + 1);
            }
        }
    }
}
