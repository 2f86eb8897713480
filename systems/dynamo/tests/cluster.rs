//! Three real `faultline-dynamo` processes on loopback: quorum reads and writes through any
//! node, a killed replica recovering from its WAL and catching up by anti-entropy, definite
//! refusals without a quorum, and the `acks-counted-twice` bug's exact symptom; four processes
//! for a sloppy quorum's hinted handoff and the `hints-dropped-on-restart` bug.

use std::path::Path;
use std::time::{Duration, Instant};

use faultline_node::local_cluster::LocalCluster;
use serde_json::{Value, json};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_faultline-dynamo"))
}

async fn wait_up(c: &LocalCluster, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if c.get(i, "/status").await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("node {i} never answered /status: {}", c.stderr(i));
}

async fn start(dir: &Path, extra: &[&str]) -> LocalCluster {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let c = LocalCluster::start(bin(), 3, dir, &extra).expect("starts 3 nodes");
    for i in 0..3 {
        wait_up(&c, i).await;
    }
    c
}

async fn write(c: &LocalCluster, i: usize, key: &str, v: i64) -> (u16, Value) {
    c.post(i, "/kv/write", &json!({"key": key, "value": v}))
        .await
        .expect("answers")
}

async fn read(c: &LocalCluster, i: usize, key: &str) -> (u16, Value) {
    c.post(i, "/kv/read", &json!({"key": key}))
        .await
        .expect("answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_reads_and_writes_survive_one_kill_and_the_replica_catches_up() {
    for mode in ["abd", "lww"] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = start(dir.path(), &["--mode", mode, "--anti-entropy-ms", "200"]).await;
        assert_eq!(write(&c, 0, "k", 1).await.0, 200, "{mode}");
        assert_eq!(read(&c, 2, "k").await, (200, json!({"value": 1})), "{mode}");
        assert_eq!(read(&c, 1, "nothing").await, (200, json!({"value": null})));

        c.kill(1);
        assert_eq!(write(&c, 0, "k", 2).await.0, 200, "{mode}: W=2 of n1, n3");
        assert_eq!(read(&c, 2, "k").await, (200, json!({"value": 2})), "{mode}");

        // n2 comes back on its WAL (it held 1) and anti-entropy brings it 2.
        c.restart(1).unwrap();
        wait_up(&c, 1).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d = c.get(1, "/replica/dump?key=k").await.unwrap();
            if d[0]["siblings"] == json!([2]) {
                assert_eq!(d[0]["replica"], true);
                assert_eq!(d[0]["node"], "n2");
                break;
            }
            assert!(Instant::now() < deadline, "{mode}: n2 never caught up: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = c.get(1, "/log").await.unwrap();
        assert_eq!(log.as_array().unwrap().len(), 1, "{log}");

        // Two of three down: no quorum, and the refusal of a read is definite.
        c.kill(1);
        c.kill(2);
        let (status, body) = read(&c, 0, "k").await;
        assert_eq!(status, 503, "{mode}: {body}");
        assert_eq!(body["definite"], true);
        let (status, body) = write(&c, 0, "k", 3).await;
        assert!(status == 503 || status == 504, "{mode}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_counted_twice_acknowledges_a_write_only_one_replica_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(
        dir.path(),
        &["--bug", "acks-counted-twice", "--anti-entropy-ms", "0"],
    )
    .await;
    let status = c.get(0, "/status").await.unwrap();
    assert_eq!(status["bugs"], json!(["acks-counted-twice"]));
    c.kill(1);
    c.kill(2);
    assert_eq!(write(&c, 0, "k", 9).await.0, 200, "n1 alone counted as W=2");
    c.restart(1).unwrap();
    c.restart(2).unwrap();
    wait_up(&c, 1).await;
    wait_up(&c, 2).await;
    for i in [1, 2] {
        let d = c.get(i, "/replica/dump?key=k").await.unwrap();
        assert_eq!(
            d[0]["siblings"],
            json!([]),
            "the acknowledged write is on n1 only"
        );
    }
}

/// Which of `c`'s four nodes are home replicas of `key` (their dumps say).
async fn homes(c: &LocalCluster, key: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..4 {
        let d = c.get(i, &format!("/replica/dump?key={key}")).await.unwrap();
        if d[0]["replica"] == true {
            out.push(i);
        }
    }
    out
}

async fn hints(c: &LocalCluster, i: usize) -> u64 {
    c.get(i, "/status").await.unwrap()["hints"]
        .as_u64()
        .expect("hints in /status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sloppy_quorum_hands_a_hint_off_and_the_planted_bug_loses_it_on_restart() {
    for bug in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = vec![
            "--mode",
            "lww",
            "--quorum",
            "sloppy",
            "--anti-entropy-ms",
            "0",
            "--handoff-ms",
            "100",
        ];
        if bug {
            extra.extend(["--bug", "hints-dropped-on-restart"]);
        }
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut c = LocalCluster::start(bin(), 4, dir.path(), &extra).expect("starts 4 nodes");
        for i in 0..4 {
            wait_up(&c, i).await;
        }
        let home = homes(&c, "k").await;
        assert_eq!(home.len(), 3);
        let stand_in = (0..4).find(|i| !home.contains(i)).unwrap();
        let (down, coord) = (home[0], home[1]);
        c.kill(down);
        // The first writes find the home down (W = 2 of the other two); once the
        // coordinator suspects it, writes go to the stand-in with a hint for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut v = 0;
        while hints(&c, stand_in).await == 0 {
            assert!(Instant::now() < deadline, "bug={bug}: no hint held");
            v += 1;
            assert_eq!(write(&c, coord, "k", v).await.0, 200);
        }
        assert_eq!(hints(&c, stand_in).await, 1, "bug={bug}");
        if bug {
            c.kill(stand_in);
            c.restart(stand_in).unwrap();
            wait_up(&c, stand_in).await;
            assert_eq!(hints(&c, stand_in).await, 0, "the hint was only in memory");
        }
        c.restart(down).unwrap();
        wait_up(&c, down).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let got = loop {
            let d = c.get(down, "/replica/dump?key=k").await.unwrap();
            if d[0]["siblings"] == json!([v]) || Instant::now() > deadline {
                break d[0]["siblings"].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if bug {
            assert_eq!(
                got,
                json!([]),
                "nothing handed off: the home never hears of it"
            );
        } else {
            assert_eq!(got, json!([v]), "handed off");
            assert_eq!(hints(&c, stand_in).await, 0, "and dropped once stored");
        }
    }
}
