//! The etcd v3 JSON gateway adapter against a real etcd 3.4 (/usr/bin/etcd) on loopback.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline::workload::{Adapter, Client, Endpoint, NodeChoice, NodePicker, OpRequest, Reply};
use serde_json::{Value, json};

struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // only the process this test started, by pid
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_etcd() -> Option<(Etcd, String)> {
    if !std::path::Path::new("/usr/bin/etcd").exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("/usr/bin/etcd missing: run scripts/install-deps (apt-get install etcd-server)");
        }
        eprintln!("skipping: /usr/bin/etcd missing (apt-get install etcd-server)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cp, pp) = (free_port(), free_port());
    let client = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let child = Command::new("/usr/bin/etcd")
        .args(["--name", "n1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("n1={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some((Etcd { child, _dir: dir }, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_adapter_reads_writes_cas_and_sets() {
    let Some((_etcd, url)) = start_etcd() else {
        return;
    };
    let nodes = vec![Endpoint {
        id: "n1".into(),
        base_url: url,
    }];
    let c = Client::new(Adapter::Etcd, nodes, Duration::from_secs(2)).unwrap();
    let mut picker = NodePicker::new(NodeChoice::Random, 1, 0, 1);
    // wait until it serves
    let t = Instant::now();
    loop {
        let r = c
            .attempt(0, &OpRequest::new("read", Some("k".into()), Value::Null))
            .await;
        if r == Reply::Ok(Value::Null) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "etcd never served: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let op = |f: &str, key: Option<&str>, v: Value| OpRequest::new(f, key.map(str::to_string), v);
    let fail = || Reply::Fail("precondition-failed".into());
    let cases = [
        (op("cas", Some("k"), json!([1, 2])), fail()),
        (op("write", Some("k"), json!(1)), Reply::Ok(json!(1))),
        (op("read", Some("k"), Value::Null), Reply::Ok(json!(1))),
        (
            op("cas", Some("k"), json!([1, 2])),
            Reply::Ok(json!([1, 2])),
        ),
        (op("cas", Some("k"), json!([1, 3])), fail()),
        (op("read", Some("k"), Value::Null), Reply::Ok(json!(2))),
        (op("add", None, json!(3)), Reply::Ok(json!(3))),
        (op("add", None, json!(1)), Reply::Ok(json!(1))),
        (op("add", None, json!(2)), Reply::Ok(json!(2))),
    ];
    for (o, want) in cases {
        assert_eq!(c.invoke(&mut picker, &o).await.0, want, "{o:?}");
    }
    let Reply::Ok(Value::Array(mut set)) = c
        .invoke(&mut picker, &op("read", None, Value::Null))
        .await
        .0
    else {
        panic!("set read failed")
    };
    set.sort_by_key(|v| v.as_u64());
    assert_eq!(set, vec![json!(1), json!(2), json!(3)]);
    // List-append transactions: reads see the transaction's own appends.
    c.supports("txn").unwrap();
    let t = |ops: Value| op("txn", None, ops);
    let cases = [
        (
            t(json!([
                ["r", "a", null],
                ["append", "a", 1],
                ["r", "a", null]
            ])),
            json!([["r", "a", null], ["append", "a", 1], ["r", "a", [1]]]),
        ),
        (
            t(json!([
                ["append", "a", 2],
                ["append", "b", 3],
                ["r", "b", null]
            ])),
            json!([["append", "a", 2], ["append", "b", 3], ["r", "b", [3]]]),
        ),
        (
            t(json!([["r", "a", null], ["r", "b", null]])),
            json!([["r", "a", [1, 2]], ["r", "b", [3]]]),
        ),
    ];
    for (o, want) in cases {
        assert_eq!(c.invoke(&mut picker, &o).await.0, Reply::Ok(want), "{o:?}");
    }
    // Racing appends to one key: the mod_revision guard lets each either land once or fail
    // definitely, never overwrite another (a plain read-modify-write would lose some).
    let racers: Vec<_> = (100..140)
        .map(|v| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut p = NodePicker::new(NodeChoice::Random, 1, v, 1);
                let o = OpRequest::new("txn", None, json!([["append", "race", v]]));
                (v, c.invoke(&mut p, &o).await.0)
            })
        })
        .collect();
    let mut landed = Vec::new();
    let mut conflicts = 0;
    for r in racers {
        match r.await.unwrap() {
            (v, Reply::Ok(_)) => landed.push(json!(v)),
            (_, Reply::Fail(e)) if e.starts_with("conflict") => conflicts += 1,
            (v, other) => panic!("append {v}: {other:?}"),
        }
    }
    let Reply::Ok(read) = c
        .invoke(&mut picker, &t(json!([["r", "race", null]])))
        .await
        .0
    else {
        panic!("race read failed")
    };
    let mut seen: Vec<Value> = read[0][2].as_array().unwrap().clone();
    seen.sort_by_key(|v| v.as_u64());
    landed.sort_by_key(|v| v.as_u64());
    assert_eq!(seen, landed, "{conflicts} conflicts");

    assert!(c.log(0).await.is_none());
}
