//! Clock faults as the harness injects them: libfaketime preloaded, offset file rewritten live.
//! The node must report the faked wall clock in /status and keep working (its timers use the
//! real monotonic clock).

use faultline_raft::local_cluster::LocalCluster;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-raft");
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// False (after printing why) when libfaketime is missing; under CI=true that is a failure.
fn have_libfaketime() -> bool {
    if Path::new(LIBFAKETIME).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{LIBFAKETIME} missing (scripts/install-deps installs libfaketime)"
    );
    eprintln!("skipped: {LIBFAKETIME} missing");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_live_clock_offsets_reports_them_and_keeps_serving() {
    if !have_libfaketime() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let offset = tmp.path().join("offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let env = [
        ("LD_PRELOAD".to_string(), LIBFAKETIME.to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".to_string(),
            offset.display().to_string(),
        ),
        ("FAKETIME_NO_CACHE".to_string(), "1".to_string()),
    ];
    let c = LocalCluster::start_with_env(Path::new(BIN), 3, tmp.path(), &[], &env).unwrap();
    let secs = Duration::from_secs(10);
    c.wait_leader(secs)
        .await
        .expect("a leader under libfaketime");
    for (text, expected_ms) in [("-30s", -30_000i64), ("+45s", 45_000)] {
        std::fs::write(&offset, format!("{text}\n")).unwrap();
        let leader = c
            .wait_leader(secs)
            .await
            .expect("a leader after the clock jump");
        let st = c.get(leader, "/status").await.unwrap();
        let skew = st["clock_ms"].as_i64().unwrap() - now_ms();
        assert!(
            (skew - expected_ms).abs() < 2_000,
            "clock_ms skew {skew} for {text}"
        );
        let body = json!({"key": "k", "value": text});
        let (status, v) = c.post(leader, "/kv/write", &body).await.unwrap();
        assert_eq!(status, 200, "write after {text}: {v}");
        let (status, v) = c
            .post(leader, "/kv/read", &json!({"key": "k"}))
            .await
            .unwrap();
        assert_eq!((status, &v["value"]), (200, &json!(text)));
    }
}

/// Sets the leader's wall clock back a minute, pauses it while a successor takes a write,
/// resumes it and reads from it at once; returns how many reads saw the overwritten value.
async fn stale_reads_after_clock_skew_and_pause(args: &[String], attempts: usize) -> usize {
    let tmp = tempfile::tempdir().unwrap();
    let offsets = tmp.path().join("offsets");
    std::fs::create_dir_all(&offsets).unwrap();
    for i in 1..=3 {
        std::fs::write(offsets.join(format!("n{i}")), "+0\n").unwrap();
    }
    let env = [
        ("LD_PRELOAD".to_string(), LIBFAKETIME.to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".to_string(),
            format!("{}/{{id}}", offsets.display()),
        ),
        ("FAKETIME_NO_CACHE".to_string(), "1".to_string()),
    ];
    let mut c = LocalCluster::start_with_env(Path::new(BIN), 3, tmp.path(), args, &env).unwrap();
    let secs = Duration::from_secs(10);
    let mut stale = 0;
    for a in 0..attempts {
        let key = format!("s{a}");
        let old = c.wait_leader(secs).await.unwrap();
        let (status, _) = c
            .post(old, "/kv/write", &json!({"key": key, "value": "old"}))
            .await
            .unwrap();
        assert_eq!(status, 200);
        // a read renews the lease, then the leader's clock goes back a minute
        c.post(old, "/kv/read", &json!({"key": key})).await.unwrap();
        let file = offsets.join(&c.nodes[old].id);
        std::fs::write(&file, "-60s\n").unwrap();
        c.pause(old, true).unwrap();
        let Some(new) = c.wait_leader(secs).await else {
            let logs: Vec<String> = (0..3).map(|i| c.stderr(i)).collect();
            panic!(
                "no successor to n{} within {secs:?}; stderr: {logs:#?}",
                old + 1
            );
        };
        let (status, _) = c
            .post(new, "/kv/write", &json!({"key": key, "value": "new"}))
            .await
            .unwrap();
        assert_eq!(status, 200);
        c.pause(old, false).unwrap();
        if let Ok((200, v)) = c.post(old, "/kv/read", &json!({"key": key})).await
            && v["value"] == json!("old")
        {
            stale += 1;
        }
        std::fs::write(&file, "+0\n").unwrap();
    }
    stale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_stay_linearizable_under_clock_skew_and_pause() {
    if !have_libfaketime() {
        return;
    }
    let correct = ["--lease-reads".to_string()];
    assert_eq!(stale_reads_after_clock_skew_and_pause(&correct, 3).await, 0);
    // With lease-no-drift-margin the same scenario serves stale reads only when the resumed
    // leader handles the read before the successor's queued heartbeat (a race on loopback;
    // the harness's partitions make it reliable), so the count is reported, not asserted.
    let bug = ["--bug".to_string(), "lease-no-drift-margin".to_string()];
    let stale = stale_reads_after_clock_skew_and_pause(&bug, 3).await;
    println!("lease-no-drift-margin: {stale}/3 stale reads");
}
