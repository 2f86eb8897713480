//! The peer proxy on a real 3-node cluster of the bundled Raft (namespaces, nft, real
//! processes): every peer link goes through the harness's L7 proxy, message faults act on
//! single Raft messages, and `messages.jsonl` records each message's fate. Needs root,
//! nftables and the `faultline-raft` binary (`cargo test --workspace` builds it).

mod common;

use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
use faultline::faults::proxy::ProxyMode;
use faultline::nemesis::{self, FaultSpec, Plan, Schedule};

const LIMIT: Duration = Duration::from_secs(20);

/// A 3-node Raft with its peers behind the L7 proxy, tracing every message, whatever the
/// bundled descriptor's default.
async fn proxied(name: &str, bugs: &[&str]) -> Option<(Cluster, tempfile::TempDir, Instant)> {
    if !common::capable(name) || !common::raft_available(name) {
        return None;
    }
    let dir = common::run_dir(name);
    let mut desc = SystemDescriptor::load("raft").unwrap();
    desc.peers.proxy = ProxyMode::L7;
    desc.peers.batch = Some("msgs".into());
    let mut cfg = ClusterConfig::new(3, dir.path());
    cfg.bugs = bugs.iter().map(|b| b.to_string()).collect();
    cfg.seed = 12;
    cfg.trace_messages = Some(dir.path().join("messages.jsonl"));
    let c = Cluster::start(desc, cfg).await.unwrap();
    let t0 = Instant::now();
    c.peer_proxy().expect("proxy on").set_epoch(t0);
    Some((c, dir, t0))
}

/// The first fault of a one-fault schedule written inline.
fn spec(fault: &str) -> FaultSpec {
    let text = format!(
        "start_after_s = 0.0\ninterval_s = [1.0, 1.0]\nduration_s = [1.0, 1.0]\n\n[[fault]]\n{fault}\n"
    );
    let s = Schedule::parse(&text, "inline", "test").unwrap();
    s.lanes[0].faults[0].clone()
}

fn trace(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("messages.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn finish(c: Cluster) {
    let short = c.short_id().to_string();
    c.teardown().await.unwrap();
    common::assert_gone(&short);
}

/// The highest term any answering node reports.
async fn max_term(c: &Cluster) -> u64 {
    common::statuses(c)
        .await
        .values()
        .flatten()
        .map(|s| s.term)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_votes_stop_elections_until_the_rule_goes() {
    let Some((c, dir, t0)) = proxied("proxy-votes", &[]).await else {
        return;
    };
    let ids = c.node_ids();
    let old = c.wait_for_leader(LIMIT).await.unwrap();
    // Peer traffic really goes through the proxy: writes commit, and the trace sees them.
    assert!(common::write(&c, "a", 1, LIMIT).await, "commits via proxy");

    let drop_votes =
        spec("kind = \"msg-drop\"\nlinks = \"all\"\ntypes = [\"request_vote\", \"vote_response\"]");
    let mut plan = Plan::new(1);
    let (ev, active) = nemesis::start_fault(&c, &drop_votes, &mut plan, t0).await;
    assert!(ev.detail.get("error").is_none(), "{ev:?}");
    let active = active.unwrap();
    // The leader stops: the others time out and campaign, but no vote ever arrives.
    c.pause(&old).await.unwrap();
    let rest: Vec<String> = ids.iter().filter(|n| **n != old).cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let s = common::statuses(&c).await;
        for r in &rest {
            if let Some(Some(st)) = s.get(r) {
                assert_ne!(st.role, "leader", "{r} won an election with votes dropped");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stop = nemesis::stop_fault(&c, active, t0).await;
    assert!(stop.detail.get("error").is_none(), "{stop:?}");
    // Votes flow again: one of the two is elected.
    let new = common::eventually(LIMIT, "a leader once votes flow", || async {
        let s = common::statuses(&c).await;
        rest.iter().find_map(|r| {
            let st = s.get(r)?.as_ref()?;
            (st.role == "leader").then(|| st.id.clone())
        })
    })
    .await;
    assert_ne!(new, old);
    c.resume(&old).await.unwrap();
    assert!(common::write(&c, "a", 2, LIMIT).await, "commits after heal");
    assert!(max_term(&c).await > 0);
    finish(c).await;

    let t = trace(dir.path());
    let dropped: Vec<_> = t.iter().filter(|m| m["fate"] == "dropped").collect();
    assert!(!dropped.is_empty(), "votes were dropped");
    for m in &dropped {
        let ty = m["type"].as_str().unwrap();
        assert!(ty == "request_vote" || ty == "vote_response", "{m}");
    }
    assert!(
        t.iter()
            .any(|m| m["fate"] == "delivered" && m["type"] == "request_vote"),
        "the votes that elected the first and last leaders went through"
    );
    assert!(
        t.iter().any(|m| m["type"] == "append_entries"),
        "replication goes through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_leader_messages_are_released_together() {
    let Some((c, dir, t0)) = proxied("proxy-hold", &[]).await else {
        return;
    };
    c.wait_for_leader(LIMIT).await.unwrap();
    let hold = spec("kind = \"msg-hold\"\nlinks = \"leader-out\"");
    let mut plan = Plan::new(2);
    let (ev, active) = nemesis::start_fault(&c, &hold, &mut plan, t0).await;
    assert!(ev.detail.get("error").is_none(), "{ev:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stop = nemesis::stop_fault(&c, active.unwrap(), t0).await;
    let released = stop.detail["released"].as_u64().unwrap();
    assert!(released > 0, "{stop:?}");
    let ids = c.node_ids();
    common::eventually(LIMIT, "one leader after the release", || {
        common::converged(&c, &ids)
    })
    .await;
    assert!(common::write(&c, "h", 1, LIMIT).await);
    finish(c).await;
    let t = trace(dir.path());
    let held = t.iter().filter(|m| m["fate"] == "held").count() as u64;
    let rel = t.iter().filter(|m| m["fate"] == "released").count() as u64;
    assert_eq!(held, released, "every held message is traced");
    assert_eq!(rel, released, "and released once");
}

/// Partitions still cut proxied links: partition-halves catches a planted Raft bug exactly as
/// it does without the proxy (split brain: two leaders of one term).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_cuts_proxied_links() {
    let Some((c, _dir, _t0)) = proxied("proxy-partition", &[]).await else {
        return;
    };
    let ids = c.node_ids();
    let old = c.wait_for_leader(LIMIT).await.unwrap();
    let rest: Vec<String> = ids.iter().filter(|n| **n != old).cloned().collect();
    let mut g = std::collections::BTreeMap::new();
    g.insert(old.clone(), rest.clone());
    for r in &rest {
        g.insert(r.clone(), vec![old.clone()]);
    }
    c.partition(&g).await.unwrap();
    let new = common::eventually(LIMIT, "a leader on the majority side", || async {
        let s = common::statuses(&c).await;
        rest.iter().find_map(|r| {
            let st = s.get(r)?.as_ref()?;
            (st.role == "leader").then(|| st.id.clone())
        })
    })
    .await;
    assert_ne!(new, old);
    c.heal().await.unwrap();
    common::eventually(LIMIT, "all three agree on one leader", || {
        common::converged(&c, &ids)
    })
    .await;
    finish(c).await;
}
