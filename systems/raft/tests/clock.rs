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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_live_clock_offsets_reports_them_and_keeps_serving() {
    if !Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{LIBFAKETIME} missing (scripts/install-deps installs libfaketime)"
        );
        eprintln!("skipped: {LIBFAKETIME} missing");
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
