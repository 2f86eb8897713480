//! Real processes on loopback: kill -9, restart on the same data dir, torn WAL tails, and the
//! ack-before-fsync planted bug losing acknowledged writes.

use faultline_raft::local_cluster::LocalCluster;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_faultline-raft");
const SECS: Duration = Duration::from_secs(10);

/// Writes `keys` through the leader (retrying elsewhere on not-leader); returns acked values.
async fn write_keys(c: &LocalCluster, prefix: &str, n: usize) -> Vec<(String, Value)> {
    let mut acked = Vec::new();
    for k in 0..n {
        let key = format!("{prefix}{k}");
        let value = json!(k * 10);
        for _ in 0..50 {
            let leader = c.wait_leader(SECS).await.expect("a leader");
            let body = json!({"key": key, "value": value});
            if let Ok((200, _)) = c.post(leader, "/kv/write", &body).await {
                acked.push((key.clone(), value.clone()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    acked
}

async fn read_via_leader(c: &LocalCluster, key: &str) -> Value {
    for _ in 0..50 {
        let leader = c.wait_leader(SECS).await.expect("a leader");
        if let Ok((200, v)) = c.post(leader, "/kv/read", &json!({"key": key})).await {
            return v["value"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no read of {key} succeeded");
}

fn append_garbage(dir: &Path) {
    // A record header promising 300 bytes, followed by only a few: a torn write.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("wal.log"))
        .expect("wal exists");
    f.write_all(&[44, 1, 0, 0, 9, 9, 9, 9, b'{', b'"']).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_keep_every_acknowledged_write_through_kill_restart_and_torn_wal() {
    let tmp = tempfile::tempdir().unwrap();
    // A tiny snapshot threshold so the restarted node must be brought back by InstallSnapshot.
    let args = ["--snapshot-threshold".to_string(), "16".to_string()];
    let mut c = LocalCluster::start(Path::new(BIN), 5, tmp.path(), &args).unwrap();
    let first = c.wait_leader(SECS).await.expect("5 nodes elect a leader");
    let mut acked = write_keys(&c, "a", 30).await;
    assert_eq!(acked.len(), 30);

    // kill -9 the leader: the others elect a new one and keep accepting writes
    let old = c.wait_leader(SECS).await.unwrap();
    c.kill(old);
    let new = c
        .wait_leader(SECS)
        .await
        .expect("a new leader after kill -9");
    assert_ne!(new, old);
    acked.extend(write_keys(&c, "b", 20).await);

    // the old leader restarts on its data dir and catches up
    c.restart(old).unwrap();
    let st = c.get(new, "/status").await.unwrap();
    let commit = st["commit_index"].as_u64().unwrap();
    assert!(
        c.wait_applied(old, commit, SECS).await,
        "restarted node catches up"
    );
    assert!(
        c.stderr(old).contains("snapshot installed from leader"),
        "the lagging node was sent a snapshot: {}",
        c.stderr(old)
    );

    // a follower killed mid-flight with a torn record at its WAL tail recovers
    let leader = c.wait_leader(SECS).await.unwrap();
    let victim = (0..5).find(|i| *i != leader).unwrap();
    c.kill(victim);
    acked.extend(write_keys(&c, "c", 10).await);
    append_garbage(&c.nodes[victim].dir);
    c.restart(victim).unwrap();
    let st = c.get(leader, "/status").await.unwrap();
    let commit = st["commit_index"].as_u64().unwrap();
    assert!(
        c.wait_applied(victim, commit, SECS).await,
        "torn-tail node catches up"
    );
    assert!(
        c.stderr(victim).contains("torn tail truncated"),
        "recovery reports the truncation: {}",
        c.stderr(victim)
    );

    for (k, v) in &acked {
        assert_eq!(
            &read_via_leader(&c, k).await,
            v,
            "acknowledged write of {k} lost"
        );
    }
    // every node's committed log agrees with the leader's (no divergence)
    let leader = c.wait_leader(SECS).await.unwrap();
    let truth = c.get(leader, "/log").await.unwrap();
    let truth = truth.as_array().unwrap();
    for i in 0..5 {
        let log = c.get(i, "/log").await.unwrap();
        for e in log.as_array().unwrap() {
            let idx = e["index"].as_u64().unwrap() as usize;
            assert_eq!(&truth[idx - 1], e, "node n{} diverges at {idx}", i + 1);
        }
    }
    let _ = first;
}

/// Kills every node at once after acknowledged writes, restarts them all, reads back.
async fn acked_writes_surviving_a_full_kill(bugs: &[String]) -> (usize, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = LocalCluster::start(Path::new(BIN), 3, tmp.path(), bugs).unwrap();
    let acked = write_keys(&c, "k", 20).await;
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i).unwrap();
    }
    let mut kept = 0;
    for (k, v) in &acked {
        if &read_via_leader(&c, k).await == v {
            kept += 1;
        }
    }
    (acked.len(), kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_before_fsync_loses_acknowledged_writes_and_the_correct_node_does_not() {
    let (acked, kept) = acked_writes_surviving_a_full_kill(&[]).await;
    assert_eq!((acked, kept), (20, 20));
    let bug = ["--bug".to_string(), "ack-before-fsync".to_string()];
    let (acked, kept) = acked_writes_surviving_a_full_kill(&bug).await;
    assert_eq!(acked, 20);
    assert!(
        kept < acked,
        "the planted bug must lose acknowledged writes ({kept}/{acked} kept)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_and_the_node_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(Path::new(BIN), 1, tmp.path(), &[]).unwrap();
    let l = c.wait_leader(SECS).await.expect("single node leads itself");
    for (path, body) in [
        ("/kv/write", json!({"value": 1})),
        ("/kv/read", json!([1, 2])),
        ("/kv/cas", json!({"key": "a", "from": 1})),
        ("/txn", json!({"ops": [["x", "k", 1]]})),
        ("/kv/read", json!({"key": {"nested": true}})),
        ("/raft/batch", json!({"from": 3})),
    ] {
        let (status, v) = c.post(l, path, &body).await.unwrap();
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["definite"], true);
    }
    let (status, v) = c
        .post(l, "/kv/cas", &json!({"key":"a","from":1,"to":2}))
        .await
        .unwrap();
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("precondition-failed"))
    );
    let (status, _) = c
        .post(l, "/kv/write", &json!({"key":"a","value":1}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let v = c.get(l, "/status").await.unwrap();
    assert!(v["clock_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(v["role"], "leader");
}

/// Pauses the leader, writes through its successor, resumes it and reads from it at once.
/// Returns how many of those reads returned the overwritten (stale) value.
async fn stale_reads_from_a_resumed_leader(bugs: &[String], attempts: usize) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = LocalCluster::start(Path::new(BIN), 3, tmp.path(), bugs).unwrap();
    let mut stale = 0;
    for a in 0..attempts {
        let key = format!("p{a}");
        assert_eq!(write_keys(&c, &key, 1).await.len(), 1);
        let k = format!("{key}0");
        let old = c.wait_leader(SECS).await.unwrap();
        c.pause(old, true).unwrap();
        let new = c
            .wait_leader(SECS)
            .await
            .expect("a new leader while the old one is paused");
        let (status, _) = c
            .post(new, "/kv/write", &json!({"key": k, "value": "new"}))
            .await
            .unwrap();
        assert_eq!(status, 200);
        c.pause(old, false).unwrap();
        if let Ok((200, v)) = c.post(old, "/kv/read", &json!({"key": k})).await
            && v["value"] == json!(0)
        {
            stale += 1;
        }
    }
    stale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_leader_never_serves_stale_reads_unless_stale_local_read() {
    assert_eq!(stale_reads_from_a_resumed_leader(&[], 3).await, 0);
    let bug = ["--bug".to_string(), "stale-local-read".to_string()];
    let stale = stale_reads_from_a_resumed_leader(&bug, 3).await;
    assert!(
        stale > 0,
        "stale-local-read must serve the overwritten value"
    );
}

/// A follower forwards client requests to its leader, so a client may use any node; a
/// forwarded write the leader never answered is indefinite, a forwarded read is definite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_to_the_leader_and_a_timed_out_forward_is_indefinite() {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--request-timeout-ms".to_string(), "600".to_string()];
    let mut c = LocalCluster::start(Path::new(BIN), 3, tmp.path(), &args).unwrap();
    let leader = c.wait_leader(SECS).await.expect("a leader");
    let follower = (leader + 1) % 3;
    let w = c
        .post(follower, "/kv/write", &json!({"key":"f","value":7}))
        .await
        .unwrap();
    assert_eq!(w.0, 200, "a follower forwards a write: {w:?}");
    let r = c
        .post(follower, "/kv/read", &json!({"key":"f"}))
        .await
        .unwrap();
    assert_eq!(r, (200, json!({"value":7})), "and a read");
    let t = c
        .post(
            follower,
            "/txn",
            &json!({"ops":[["append","l",1],["r","l",null]]}),
        )
        .await
        .unwrap();
    assert_eq!(t.0, 200, "and a transaction: {t:?}");

    // The leader stops answering; the follower still names it for a few hundred ms.
    c.pause(leader, true).unwrap();
    let w = c
        .post(follower, "/kv/write", &json!({"key":"f","value":8}))
        .await
        .unwrap();
    let r = c
        .post(follower, "/kv/read", &json!({"key":"f"}))
        .await
        .unwrap();
    c.pause(leader, false).unwrap();
    eprintln!("while the leader was paused: write {w:?}, read {r:?}");
    // (a follower that already gave up on the leader says not-leader instead: definite)
    if w.1["error"] != "not-leader" {
        assert_eq!(w.0, 504, "{w:?}");
        assert_eq!(w.1["definite"], false, "a timed-out forwarded write: {w:?}");
    }
    if r.0 != 200 {
        assert_eq!(r.1["definite"], true, "a failed read did not happen: {r:?}");
    }
}
