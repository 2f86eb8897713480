//! A real 3-node cluster of the bundled Raft in namespaces, under each fault the nemesis
//! injects through the kernel. Needs root, nftables, libfaketime, and the `faultline-raft`
//! binary built next to the test executable's directory (`cargo build -p faultline-raft`
//! with the same target dir and profile; `cargo test --workspace` builds it).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline::cluster::{Cluster, NodeState};
use faultline::nemesis;

const LIMIT: Duration = Duration::from_secs(20);

async fn start(name: &str) -> Option<(Cluster, tempfile::TempDir)> {
    common::raft_cluster(name, 3, &[]).await
}

fn isolate(victim: &str, ids: &[String]) -> BTreeMap<String, Vec<String>> {
    let rest: Vec<String> = ids.iter().filter(|n| *n != victim).cloned().collect();
    let mut g = BTreeMap::new();
    g.insert(victim.to_string(), rest.clone());
    for r in rest {
        g.insert(r, vec![victim.to_string()]);
    }
    g
}

async fn majority_leader(c: &Cluster, rest: &[String]) -> Option<String> {
    let s = common::statuses(c).await;
    rest.iter().find_map(|r| {
        let st = s.get(r)?.as_ref()?;
        (st.role == "leader").then(|| st.id.clone())
    })
}

async fn finish(c: Cluster) {
    let short = c.short_id().to_string();
    c.teardown().await.unwrap();
    common::assert_gone(&short);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_heal_converges() {
    let Some((c, _dir)) = start("raft-partition").await else {
        return;
    };
    let ids = c.node_ids();
    let old = c.wait_for_leader(LIMIT).await.unwrap();
    let rest: Vec<String> = ids.iter().filter(|n| **n != old).cloned().collect();
    c.partition(&isolate(&old, &ids)).await.unwrap();
    let new = common::eventually(LIMIT, "a leader on the majority side", || {
        majority_leader(&c, &rest)
    })
    .await;
    assert_ne!(new, old);
    assert!(
        common::write(&c, "a", 1, LIMIT).await,
        "majority side commits"
    );
    c.heal().await.unwrap();
    common::eventually(LIMIT, "all three agree on one leader", || {
        common::converged(&c, &ids)
    })
    .await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_is_replaced_and_rejoins_on_resume() {
    let Some((c, _dir)) = start("raft-pause").await else {
        return;
    };
    let ids = c.node_ids();
    let old = c.wait_for_leader(LIMIT).await.unwrap();
    let rest: Vec<String> = ids.iter().filter(|n| **n != old).cloned().collect();
    c.pause(&old).await.unwrap();
    assert_eq!(c.node_state(&old).unwrap(), NodeState::Paused);
    // A stopped process does not answer.
    assert!(c.status(&old).await.is_err());
    let new = common::eventually(LIMIT, "a new leader while the old one is paused", || {
        majority_leader(&c, &rest)
    })
    .await;
    assert_ne!(new, old);
    c.resume(&old).await.unwrap();
    let agreed = common::eventually(LIMIT, "the resumed node follows the cluster", || {
        common::converged(&c, &ids)
    })
    .await;
    let s = common::statuses(&c).await;
    assert_eq!(
        s[&old].as_ref().unwrap().leader.as_deref(),
        Some(agreed.as_str())
    );
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_restarts_with_its_data_and_rejoins() {
    let Some((c, _dir)) = start("raft-kill").await else {
        return;
    };
    let ids = c.node_ids();
    c.wait_for_leader(LIMIT).await.unwrap();
    for i in 0..5 {
        assert!(common::write(&c, "k", i, LIMIT).await);
    }
    // Wait until a follower has applied those writes, then kill it.
    let leader = c.wait_for_leader(LIMIT).await.unwrap();
    let victim = ids.iter().find(|n| **n != leader).unwrap().clone();
    let applied = common::eventually(LIMIT, "victim applies the writes", || async {
        let st = common::statuses(&c).await.remove(&victim)??;
        (st.applied_index >= 5).then_some(st.applied_index)
    })
    .await;
    let old_pid = c.pid(&victim).unwrap();
    c.kill(&victim).await.unwrap();
    assert_eq!(c.node_state(&victim).unwrap(), NodeState::Killed);
    assert!(!std::path::Path::new(&format!("/proc/{old_pid}")).exists());
    assert!(
        common::write(&c, "k", 99, LIMIT).await,
        "two of three still commit"
    );

    // Restart it cut off from its peers: whatever it reports now came from its own disk.
    c.partition(&isolate(&victim, &ids)).await.unwrap();
    c.restart(&victim).await.unwrap();
    assert_ne!(c.pid(&victim).unwrap(), old_pid);
    // Commit and applied indexes are volatile in Raft; the log's last index comes from the WAL.
    let st = c.status(&victim).await.unwrap();
    let last = st["last_index"].as_u64().unwrap_or(0);
    assert!(
        last >= applied,
        "restarted node lost its log: {st} (had applied {applied})"
    );
    assert!(st["term"].as_u64().unwrap_or(0) >= 1, "term survives: {st}");

    c.heal().await.unwrap();
    common::eventually(
        LIMIT,
        "restarted node catches up with the write made while down",
        || async {
            let s = common::statuses(&c).await;
            let me = s.get(&victim)?.as_ref()?;
            (me.leader.is_some() && me.applied_index > applied).then_some(())
        },
    )
    .await;

    // heal restarts what a fault killed, not what was stopped on purpose.
    let other = ids
        .iter()
        .find(|n| **n != leader && **n != victim)
        .unwrap()
        .clone();
    c.stop(&other).await.unwrap();
    c.kill(&victim).await.unwrap();
    c.heal().await.unwrap();
    assert_eq!(c.node_state(&victim).unwrap(), NodeState::Running);
    assert_eq!(c.node_state(&other).unwrap(), NodeState::Stopped);
    finish(c).await;
}

/// A kill with `wipe` through the local backend: the node comes back blank (no log, no
/// term: a lost disk), then follows the leader once it hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_restarts_blank_and_follows_the_leader() {
    use faultline::faults::{Fault, Faults, local::LocalFaults};
    let Some((c, _dir)) = start("raft-wipe").await else {
        return;
    };
    let ids = c.node_ids();
    let leader = c.wait_for_leader(LIMIT).await.unwrap();
    for i in 0..5 {
        assert!(common::write(&c, "k", i, LIMIT).await);
    }
    let victim = ids.iter().find(|n| **n != leader).unwrap().clone();
    common::eventually(LIMIT, "victim applies the writes", || async {
        let st = common::statuses(&c).await.remove(&victim)??;
        (st.applied_index >= 5).then_some(())
    })
    .await;
    let data = c.node_dir(&victim).unwrap().join("data");
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_some(),
        "a WAL to wipe"
    );
    // cut off first, so what it reports after the restart came from its (blank) disk
    c.partition(&isolate(&victim, &ids)).await.unwrap();
    let backend = LocalFaults::new(c.clone());
    let fault = Fault::Kill {
        targets: vec![victim.clone()],
        wipe: true,
    };
    backend.apply(&fault).await.unwrap();
    assert_eq!(c.node_state(&victim).unwrap(), NodeState::Killed);
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_none(),
        "data dir emptied"
    );
    backend.undo(&fault).await.unwrap();
    let st = c.status(&victim).await.unwrap();
    assert_eq!(st["last_index"].as_u64(), Some(0), "restarted blank: {st}");
    assert_eq!(st["term"].as_u64(), Some(0), "its term is gone too: {st}");
    c.heal().await.unwrap();
    // It hears the leader again; it does not get its log back while that leader lasts: a
    // leader never resends below a follower's match index (stable storage is Raft's premise),
    // which is what `kill-wipe` runs show.
    let term = c.status(&leader).await.unwrap()["term"].as_u64().unwrap();
    common::eventually(LIMIT, "the blank node follows the leader again", || async {
        let st = common::statuses(&c).await.remove(&victim)??;
        (st.term >= term && st.leader.as_deref() == Some(leader.as_str())).then_some(())
    })
    .await;
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_bump_is_seen_by_the_node() {
    let Some((c, _dir)) = start("raft-clock").await else {
        return;
    };
    assert!(c.clock_support().is_supported(), "{:?}", c.clock_support());
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let clock_of = |id: String| {
        let c = c.clone();
        async move {
            let v = c.status(&id).await.ok()?;
            v["clock_ms"].as_i64()
        }
    };
    let skew = |id: &str| {
        let id = id.to_string();
        let f = clock_of(id);
        async move {
            let before = now_ms();
            let t = f.await?;
            Some(t - (before + now_ms()) / 2)
        }
    };
    assert!(
        skew("n1").await.unwrap().abs() < 1_000,
        "unbumped clock is real time"
    );
    c.set_clock_offset("n1", 3_600_000).await.unwrap();
    let s = skew("n1").await.unwrap();
    assert!((s - 3_600_000).abs() < 1_000, "n1 sees +1h: skew {s} ms");
    // Other nodes are untouched.
    assert!(skew("n2").await.unwrap().abs() < 1_000);
    c.set_clock_offset("n1", -90_000).await.unwrap();
    let s = skew("n1").await.unwrap();
    assert!((s + 90_000).abs() < 1_000, "n1 sees -90 s: skew {s} ms");
    c.reset_clocks().await.unwrap();
    assert!(skew("n1").await.unwrap().abs() < 1_000);

    // Drift through the nemesis: n2's clock runs 2 s fast per real second.
    let spec = nemesis::FaultSpec::Clock {
        targets: nemesis::TargetSpec::One,
        clock: nemesis::ClockSpec::Drift { ms_per_s: 2000.0 },
        of: nemesis::ClockOf::Wall,
        weight: 1,
    };
    let mut plan = nemesis::Plan::new(3);
    let (ev, active) = nemesis::start_fault(&c, &spec, &mut plan, std::time::Instant::now()).await;
    let active = active.unwrap();
    let victim = ev.targets[0].clone();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        nemesis::executor::tick(&c, &active).await;
    }
    let s = skew(&victim).await.unwrap();
    assert!(
        (2_000..6_000).contains(&s),
        "{victim} drifted ahead ~3 s: {s} ms"
    );
    let stop = nemesis::stop_fault(&c, active, std::time::Instant::now()).await;
    assert!(stop.detail.get("error").is_none(), "{stop:?}");
    assert!(
        skew(&victim).await.unwrap().abs() < 1_000,
        "reset after the fault"
    );
    finish(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_under_20_percent_loss() {
    let Some((c, _dir)) = start("raft-loss").await else {
        return;
    };
    c.wait_for_leader(LIMIT).await.unwrap();
    let ids = c.node_ids();
    c.set_loss(&ids, 20).await.unwrap();
    // The rule is really in the kernel, in each node's namespace.
    for n in c.nodes() {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &n.netns,
                "nft",
                "list",
                "table",
                "inet",
                "faultline",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("numgen random mod 100 < 20 drop"),
            "{}: {text}",
            n.id
        );
    }
    let t0 = std::time::Instant::now();
    let mut ok = 0;
    for i in 0..10 {
        let t = std::time::Instant::now();
        if common::write(&c, "lossy", i, LIMIT).await {
            ok += 1;
        }
        eprintln!("write {i}: {:?}", t.elapsed());
    }
    eprintln!("10 writes under loss: {:?}", t0.elapsed());
    assert_eq!(ok, 10, "every write eventually commits under 20% loss");
    c.heal_network().await.unwrap();
    finish(c).await;
}

/// `/status` as JSON, or Null while the node does not answer.
async fn status(c: &Cluster, id: &str) -> serde_json::Value {
    c.status(id).await.unwrap_or_default()
}

/// Status polls in the figure-8 choreography are fast: a step must act right after an
/// election, before clients or timers move on.
const QUICK: Duration = Duration::from_millis(20);

/// Waits up to `limit` for `f` to hold; false if it never did.
async fn within<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    common::poll(limit, QUICK, || {
        let holds = f();
        async move { holds.await.then_some(()) }
    })
    .await
    .is_some()
}

/// The first of `ids` seen leading in a term above `above`, within `limit`.
async fn leader_among(c: &Cluster, ids: &[&String], above: u64, limit: Duration) -> Option<String> {
    common::poll(limit, QUICK, || async {
        for id in ids {
            let st = status(c, id).await;
            if st["role"] == "leader" && st["term"].as_u64().unwrap_or(0) > above {
                return Some(id.to_string());
            }
        }
        None
    })
    .await
}

/// Raft's figure 8, choreographed on 5 real nodes with partitions and two client writes,
/// no other traffic. Returns whether every step happened as scripted, and the verdict of
/// the split-brain log checker on every node's committed log at the end.
///
/// 1. Leader L (term t1) is cut off and appends X at index j+1, alone.
/// 2. S wins among the rest (term t2), is cut off at once and appends Y at j+1, alone.
/// 3. L with two nodes P, Q that lack Y (their leader R of the meantime left out) wins term
///    t3 and replicates X: a majority holds X, a term-t1 entry.
/// 4. S with R and P wins term t4 (its last term t2 beats their t1) and overwrites j+1 with Y.
///
/// Correct Raft never commits X in step 3 by counting (only an entry of its own term, the
/// election no-op, commits it, and that no-op then keeps S from winning); with
/// `commit-prior-term` X is committed in step 3 and overwritten in step 4.
async fn figure_8(bugs: &[&str]) -> Option<(bool, faultline::checker::Verdict)> {
    let (c, _dir) = common::raft_cluster("figure-8", 5, bugs).await?;
    let ids = c.node_ids();
    let split = common::split;
    let u = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let is_leader = |v: &serde_json::Value| v["role"] == "leader";

    let l = c.wait_for_leader(LIMIT).await.unwrap();
    assert!(common::write(&c, "f8", 1, LIMIT).await, "first write");
    let j = u(&status(&c, &l).await, "last_index");
    let all_at_j = within(LIMIT, || async {
        let mut ok = true;
        for id in &ids {
            ok &= u(&status(&c, id).await, "last_index") == j;
        }
        ok
    })
    .await;
    assert!(all_at_j, "every node holds the first write");
    let t1 = u(&status(&c, &l).await, "term");

    // 1. L alone appends X.
    let others: Vec<&String> = ids.iter().filter(|n| **n != l).collect();
    c.partition(&split(&[&[&l], &others])).await.unwrap();
    common::fire_write(&c, &l, "f8", 2);
    let mut done = within(Duration::from_secs(2), || async {
        u(&status(&c, &l).await, "last_index") > j
    })
    .await;

    // 2. S wins among the rest, is cut off at once, appends Y alone.
    let s = leader_among(&c, &others, t1, LIMIT).await;
    done &= s.is_some();
    let s = s.unwrap_or_else(|| others[0].clone());
    let rest: Vec<&String> = others.iter().copied().filter(|n| **n != s).collect();
    c.partition(&split(&[&[&l], &[&s], &rest])).await.unwrap();
    common::fire_write(&c, &s, "f8", 3);
    done &= within(Duration::from_secs(2), || async {
        u(&status(&c, &s).await, "last_index") > j
    })
    .await;

    // 3. L wins with the two of the rest that are not their current leader R.
    let r = leader_among(&c, &rest, 0, Duration::from_secs(3))
        .await
        .unwrap_or_else(|| rest[0].clone());
    let pq: Vec<&String> = rest.iter().copied().filter(|n| **n != r).collect();
    let (p, q) = (pq[0], pq[1]);
    // Elections among three connected nodes take well under a second. Correct Raft never
    // gets past this step (P and Q hold S's election no-op, of a later term than X), so
    // each remaining step waits boundedly.
    let step = Duration::from_secs(6);
    c.partition(&split(&[&[&l, p, q], &[&r], &[&s]]))
        .await
        .unwrap();
    done &= within(step, || async {
        let st = status(&c, &l).await;
        is_leader(&st) && u(&st, "commit_index") > j && u(&status(&c, q).await, "commit_index") > j
    })
    .await;

    // 4. S wins with R and P and overwrites index j+1.
    c.partition(&split(&[&[&s, &r, p], &[&l], &[q]]))
        .await
        .unwrap();
    done &= within(step, || async {
        let st = status(&c, &s).await;
        is_leader(&st)
            && u(&st, "commit_index") > j
            && u(&status(&c, &r).await, "commit_index") > j
            && u(&status(&c, p).await, "commit_index") > j
    })
    .await;

    let verdict = common::committed_logs_then_teardown(c).await;
    Some((done, verdict))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure_8_diverges_committed_logs_only_with_commit_prior_term() {
    use faultline::checker::Validity;
    let Some((done, bad)) = figure_8(&["commit-prior-term"]).await else {
        return;
    };
    assert!(
        done,
        "the figure-8 steps all happened with commit-prior-term"
    );
    assert_eq!(bad.valid, Validity::Invalid, "{bad:#?}");
    assert_eq!(bad.anomalies[0].kind, "log-divergence", "{bad:#?}");
    println!("commit-prior-term: {}", bad.explanation);
    let (_, good) = figure_8(&[]).await.unwrap();
    assert_eq!(good.valid, Validity::Valid, "{good:#?}");
}
