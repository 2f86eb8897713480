//! A real 3-node etcd 3.4 cluster in namespaces: isolating the leader gets a new leader on
//! the majority side, and healing converges. Needs root and /usr/bin/etcd.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, ClusterConfig, NodeStatus, SystemDescriptor};

async fn statuses(c: &Cluster) -> BTreeMap<String, Option<NodeStatus>> {
    c.statuses()
        .await
        .into_iter()
        .map(|(id, r)| (id, r.ok().and_then(|v| NodeStatus::from_value(&v))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_partitioned_leader_is_replaced_and_heal_converges() {
    if !common::capable("etcd partition") {
        return;
    }
    let desc = SystemDescriptor::load("etcd").unwrap();
    if let Err(e) = desc.resolve_binary() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{e}");
        }
        eprintln!("SKIP: {e}");
        return;
    }
    let dir = common::run_dir("etcd");
    let cluster = Cluster::start(desc, ClusterConfig::new(3, dir.path()))
        .await
        .unwrap();
    let short = cluster.short_id().to_string();
    assert!(!cluster.clock_support().is_supported(), "etcd is Go");

    let old = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let rest: Vec<String> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != old)
        .collect();
    let mut grudge = BTreeMap::new();
    grudge.insert(old.clone(), rest.clone());
    for r in &rest {
        grudge.insert(r.clone(), vec![old.clone()]);
    }
    cluster.partition(&grudge).await.unwrap();

    // The majority side elects someone else, in a higher term.
    let deadline = Instant::now() + Duration::from_secs(15);
    let new = loop {
        let s = statuses(&cluster).await;
        let majority_leader = rest.iter().find_map(|r| {
            let st = s[r].as_ref()?;
            (st.role == "leader").then(|| st.id.clone())
        });
        if let Some(l) = majority_leader {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader on the majority side: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(new, old);

    cluster.heal().await.unwrap();
    // Healed: one leader, everyone else its follower. (An etcd follower names no leader:
    // its reported term is its last applied entry's, which can predate its leader's.)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = statuses(&cluster).await;
        let roles: Vec<Option<String>> = s
            .values()
            .map(|st| st.as_ref().map(|st| st.role.clone()))
            .collect();
        let leaders = roles
            .iter()
            .filter(|r| r.as_deref() == Some("leader"))
            .count();
        let followers = roles
            .iter()
            .filter(|r| r.as_deref() == Some("follower"))
            .count();
        if leaders == 1 && leaders + followers == roles.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence after heal: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.teardown().await.unwrap();
    common::assert_gone(&short);
}
