//! Shared by the cluster integration tests: capability gating and run directories.
#![allow(dead_code)]

use std::path::Path;

/// True if the test may run. Without root/nft/ip it skips with a printed reason, unless
/// `CI=true`, where a missing capability is a failure.
pub fn capable(test: &str) -> bool {
    match faultline::cluster::caps::check() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: CI=true and the machine cannot run a local cluster: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

/// Is the bundled Raft binary built where the runtime looks for it?
pub fn raft_available(test: &str) -> bool {
    let d = faultline::cluster::SystemDescriptor::load("raft").unwrap();
    match d.resolve_binary() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

pub fn run_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("fl-test-{name}-"))
        .tempdir()
        .unwrap()
}

/// Nothing of run `short` is left on the machine: namespaces, links, registry record.
pub fn assert_gone(short: &str) {
    let ns = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(short))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
    let links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(short))
        .collect();
    assert!(links.is_empty(), "links left: {links:?}");
    assert!(
        !Path::new(&format!("/run/faultline/runs/{short}.json")).exists(),
        "registry record left"
    );
}

use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, NodeStatus};

/// Statuses of every node that answers.
pub async fn statuses(c: &Cluster) -> std::collections::BTreeMap<String, Option<NodeStatus>> {
    c.statuses()
        .await
        .into_iter()
        .map(|(id, r)| (id, r.ok().and_then(|v| NodeStatus::from_value(&v))))
        .collect()
}

/// Polls `f` every 100 ms until it yields Some, panicking with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node in `ids` answers and names the same leader, which is one of them.
pub async fn converged(c: &Cluster, ids: &[String]) -> Option<String> {
    let s = statuses(c).await;
    let mut leader = None;
    for id in ids {
        let st = s.get(id)?.as_ref()?;
        let l = st.leader.clone()?;
        if leader.get_or_insert(l.clone()) != &l {
            return None;
        }
    }
    leader.filter(|l| ids.contains(l))
}

/// Writes key=value through the node protocol, following not-leader redirects and retrying
/// indefinite failures, until `limit`. Returns whether it committed (200).
pub async fn write(c: &Cluster, key: &str, value: i64, limit: Duration) -> bool {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + limit;
    let mut target = c.leader().await.unwrap_or_else(|| c.node_ids()[0].clone());
    while Instant::now() < deadline {
        let url = c.node(&target).unwrap().url;
        let resp = http
            .post(format!("{url}/kv/write"))
            .json(&serde_json::json!({"key": key, "value": value}))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if let Some(l) = body["leader"].as_str()
                    && c.node_ids().iter().any(|n| n == l)
                {
                    target = l.to_string();
                } else if let Some(l) = c.leader().await {
                    target = l;
                }
            }
            Err(_) => {
                if let Some(l) = c.leader().await {
                    target = l;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
