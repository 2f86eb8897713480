//! A real 5-node cluster of the bundled Multi-Paxos (namespaces, nft, the L7 peer proxy,
//! real processes), driven through a scenario no random schedule reaches: ScyllaDB #6139,
//! `promise-does-not-raise-on-accept`. Needs root, nftables and the `faultline-paxos` binary
//! (`cargo build --workspace` builds it; `cargo test` alone does not).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use faultline::checker::Validity;
use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
use faultline::faults::proxy::{MsgAction, MsgRule, ProxyMode};

const LIMIT: Duration = Duration::from_secs(20);
const QUICK: Duration = Duration::from_millis(20);

/// Five Paxos nodes whose election timers are long (1-30 s, leaders check their quorum every
/// 30 s), so that nobody campaigns unless the scenario says so (`/admin/campaign`).
async fn slow_timers(name: &str, bugs: &[&str]) -> Option<(Cluster, tempfile::TempDir)> {
    if !common::capable(name) || !common::system_available(name, "paxos") {
        return None;
    }
    let dir = common::run_dir(name);
    let mut desc = SystemDescriptor::load("paxos").unwrap();
    assert_eq!(
        desc.peers.proxy,
        ProxyMode::L7,
        "paxos.toml proxies its peers"
    );
    desc.args.extend(
        ["--election-min-ms", "1000", "--election-max-ms", "30000"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut cfg = ClusterConfig::new(5, dir.path());
    cfg.bugs = bugs.iter().map(|b| b.to_string()).collect();
    let c = Cluster::start(desc, cfg).await.unwrap();
    Some((c, dir))
}

async fn status(c: &Cluster, id: &str) -> serde_json::Value {
    c.status(id).await.unwrap_or_default()
}

async fn admin(c: &Cluster, id: &str, name: &str, body: serde_json::Value) -> serde_json::Value {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/admin/{name}", c.node(id).unwrap().url);
    let r = http.post(url).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{name} on {id}: {}", r.status());
    r.json().await.unwrap_or_default()
}

/// Campaigns on `id` until it leads (a campaign can lose to a lease still in force).
async fn elect(c: &Cluster, id: &str) -> bool {
    for _ in 0..20 {
        admin(c, id, "campaign", serde_json::json!({})).await;
        let led = common::poll(Duration::from_millis(600), QUICK, || async {
            (status(c, id).await["role"] == "leader").then_some(())
        })
        .await;
        if led.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

fn rule(id: u64, links: &[(&str, &str)], types: &[&str], action: MsgAction) -> MsgRule {
    MsgRule {
        id,
        links: links
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<BTreeSet<_>>(),
        types: types.iter().map(|t| t.to_string()).collect(),
        paths: Vec::new(),
        probability: 1.0,
        action,
    }
}

/// ScyllaDB #6139 on 5 nodes. A (ballot b1) leads; X follows it.
///
/// 1. A is cut off from B, C, D (X still reaches everyone); X drops every Prepare; A's
///    Accepts to X are held in the proxy. A client write v1 goes to A: slot s, held.
/// 2. B campaigns (b2) and wins with C and D; then D is cut off too, and B's heartbeats and
///    commit notices to X are dropped (X must not learn that s is chosen). A write v2 to B
///    is chosen at slot s by B, C and X: X votes at b2.
/// 3. A's held Accept(b1, s, v1) reaches X. Correct Paxos: X's promise is b2 since its vote,
///    so b1 is refused. The bug: the vote left X's promise at b1, so X takes it and its vote
///    for s becomes (b1, v1).
/// 4. B and C are cut off; A campaigns (b3) with X and D. The highest vote for s in that
///    quorum is X's: (b1, v1) with the bug, (b2, v2) without. With the bug, A chooses v1 at
///    s while B and C hold v2 there: two values chosen for one slot.
///
/// Returns whether each step happened as scripted and the log checker's verdict.
async fn scylla_6139(bugs: &[&str]) -> Option<(bool, faultline::checker::Verdict)> {
    let (c, _dir) = slow_timers("paxos-6139", bugs).await?;
    let ids = c.node_ids();
    let (a, b, cc, d, x) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let proxy = c.peer_proxy().expect("proxy on");
    let split = common::split;
    let u = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);

    let mut done = elect(&c, a).await;
    assert!(common::write(&c, "p", 0, LIMIT).await, "first write");
    let s = u(&status(&c, a).await, "commit_index") + 1;
    done &= common::poll(LIMIT, QUICK, || async {
        for id in &ids {
            if u(&status(&c, id).await, "commit_index") + 1 < s {
                return None;
            }
        }
        Some(())
    })
    .await
    .is_some();

    // 1. A alone with X; X deaf to Prepares; A's Accepts to X held.
    let others = [a, b, cc, d];
    let all_to_x: Vec<(&str, &str)> = others.iter().map(|n| (n.as_str(), x.as_str())).collect();
    proxy.add_rule(rule(1, &all_to_x, &["prepare"], MsgAction::Drop));
    proxy.add_rule(rule(2, &[(a, x)], &["accept"], MsgAction::Hold));
    let mut grudge = split(&[&[a, x], &[b, cc, d]]);
    // X keeps its links to B, C and D: only A is cut off from them.
    for n in [b, cc, d] {
        grudge.get_mut(x).unwrap().retain(|m| m != n);
        grudge.get_mut(n).unwrap().retain(|m| m != x);
    }
    c.partition(&grudge).await.unwrap();
    common::fire_write(&c, a, "p", 1);
    done &= common::poll(Duration::from_secs(2), QUICK, || async {
        (u(&status(&c, a).await, "last_index") >= s).then_some(())
    })
    .await
    .is_some();

    // 2. B leads with C and D (A's lease on them runs out after 1 s), then D goes too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    done &= elect(&c, b).await;
    let mut grudge = split(&[&[a], &[b, cc, x], &[d]]);
    grudge.get_mut(a).unwrap().retain(|m| m != x);
    grudge.get_mut(x).unwrap().retain(|m| m != a);
    c.partition(&grudge).await.unwrap();
    proxy.add_rule(rule(
        3,
        &[(b, x)],
        &["heartbeat", "commit"],
        MsgAction::Drop,
    ));
    done &= common::write(&c, "p", 2, Duration::from_secs(5)).await;

    // 3. A's held Accept reaches X.
    proxy.remove_rule(2);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 4. A campaigns with X and D, B and C cut off.
    proxy.remove_rule(1);
    proxy.remove_rule(3);
    c.partition(&split(&[&[a, x, d], &[b, cc]])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    done &= elect(&c, a).await;
    done &= common::write(&c, "p", 3, Duration::from_secs(5)).await;
    done &= common::poll(LIMIT, QUICK, || async {
        for id in [a, x, d] {
            if u(&status(&c, id).await, "commit_index") < s {
                return None;
            }
        }
        Some(())
    })
    .await
    .is_some();

    let verdict = common::committed_logs_then_teardown(c).await;
    Some((done, verdict))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_6139_chooses_two_values_only_with_promise_does_not_raise_on_accept() {
    let Some((done, bad)) = scylla_6139(&["promise-does-not-raise-on-accept"]).await else {
        return;
    };
    assert!(done, "every step happened with the bug");
    assert_eq!(bad.valid, Validity::Invalid, "{bad:#?}");
    assert_eq!(bad.anomalies[0].kind, "log-divergence", "{bad:#?}");
    println!("promise-does-not-raise-on-accept: {}", bad.explanation);
    let (done, good) = scylla_6139(&[]).await.unwrap();
    assert!(done, "every step happened without the bug");
    assert_eq!(good.valid, Validity::Valid, "{good:#?}");
}
