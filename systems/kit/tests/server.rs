//! The node-protocol server over real sockets, on the kit's `Solo` replica and on a replica
//! that is never leader (forwarding): bodies, errors, request-id dedupe, `/status` v2,
//! `/log`, failpoints, admin calls, and a restart on the same data dir.

use faultline_node::solo::{Record, Solo};
use faultline_node::{
    Effect, Input, LoopOptions, Parts, Reject, Replica, ReplicaStatus, Role, Started, open_storage,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn opts() -> LoopOptions {
    LoopOptions {
        snapshot_threshold: 4,
        request_timeout: Duration::from_millis(1000),
        tick: Duration::from_millis(10),
        lazy_wal: false,
        dedupe_requests: true,
    }
}

async fn solo(dir: &Path) -> Started {
    let storage = open_storage::<Record>("n1", dir).unwrap();
    let snap = storage
        .snapshot
        .as_ref()
        .map_or(0, |s| faultline_node::snapshot_index(&s.meta));
    let (replica, recovered) = Solo::recover("n1", true, storage.records, snap);
    let parts = Parts {
        id: "n1".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        replica,
        wal: storage.wal,
        snapshot: storage.snapshot,
        peer_path: "/solo/batch",
        is_large: |_| false,
        opts: opts(),
        recovered,
    };
    faultline_node::start(parts, vec!["none".into()])
        .await
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn post(addr: impl std::fmt::Display, path: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(addr: impl std::fmt::Display, path: &str) -> Value {
    http()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_serves_the_node_protocol_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let n = solo(dir.path()).await;
    let a = n.addr;
    assert_eq!(
        post(
            a,
            "/kv/write",
            json!({"key":"k","value":1,"request_id":"0:1"})
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        post(a, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":1}))
    );
    let (st, body) = post(a, "/kv/cas", json!({"key":"k","from":5,"to":6})).await;
    assert_eq!(
        (st, body),
        (409, json!({"error":"precondition-failed","definite":true}))
    );
    // the same request id twice: applied once
    let append = json!({"key":"l","value":7,"request_id":"3:9"});
    assert_eq!(post(a, "/kv/append", append.clone()).await.0, 200);
    assert_eq!(post(a, "/kv/append", append).await.0, 200);
    let (st, body) = post(a, "/txn", json!({"ops":[["r","l",null],["append","l",8]]})).await;
    assert_eq!(
        (st, body),
        (200, json!({"ops":[["r","l",[7]],["append","l",8]]}))
    );
    // bad bodies name the field
    let (st, body) = post(a, "/kv/write", json!({"key":"k"})).await;
    assert_eq!(st, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("\"value\""),
        "{body}"
    );
    let (st, body) = post(a, "/kv/write", json!({"key":"k","value":1,"request_id":5})).await;
    assert!(
        st == 400 && body["detail"].as_str().unwrap().contains("request_id"),
        "{body}"
    );
    let (st, body) = post(a, "/txn", json!({"ops":[["x","k",1]]})).await;
    assert!(
        st == 400 && body["detail"].as_str().unwrap().contains("ops[0]"),
        "{body}"
    );
    // status v2
    let s = get(a, "/status").await;
    assert_eq!(
        (
            s["role"].clone(),
            s["generation"].clone(),
            s["term"].clone()
        ),
        (json!("leader"), json!(1), json!(1))
    );
    assert_eq!(s["applied_index"], json!(5));
    assert!(s["clock_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(s["bugs"], json!(["none"]));
    // the log carries proposal ids and client request ids
    let log = get(a, "/log?from=3").await;
    let ids: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("3:9"), json!("3:9"), Value::Null]);
    // admin: failpoint bodies are checked, unknown admin calls are the replica's 404
    let (st, body) = post(
        a,
        "/admin/failpoint",
        json!({"name":"apply","action":"boom"}),
    )
    .await;
    assert!(
        st == 400 && body["detail"].as_str().unwrap().contains("action"),
        "{body}"
    );
    assert_eq!(
        post(
            a,
            "/admin/failpoint",
            json!({"name":"propose","action":"drop-next"})
        )
        .await
        .0,
        200
    );
    let (st, body) = post(a, "/kv/write", json!({"key":"lost","value":1})).await;
    assert_eq!(
        (st, body["definite"].clone()),
        (504, json!(false)),
        "a dropped proposal times out"
    );
    assert_eq!(post(a, "/admin/transfer", json!({})).await.0, 404);
    assert_eq!(post(a, "/nope", json!({})).await.0, 404);
    // snapshots were taken (threshold 4); a second node on the same data dir recovers
    n.server.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(dir.path().join("snapshot.json").is_file());
    let again = solo(dir.path()).await;
    assert_eq!(
        post(again.addr, "/kv/read", json!({"key":"l"})).await,
        (200, json!({"value":[7,8]}))
    );
    assert_eq!(
        post(again.addr, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":1}))
    );
}

/// A replica that is never leader and names `n1` as the leader.
struct Follower {
    leader_addr: String,
}

impl Replica for Follower {
    type Msg = faultline_node::solo::Msg;
    type Record = Record;
    fn step(&mut self, input: Input<Self::Msg>) -> Vec<Effect<Self::Msg, Record>> {
        let reason = Reject::NotLeader {
            leader: Some("n1".into()),
        };
        match input {
            Input::Propose { id, .. } => vec![Effect::Rejected { id, reason }],
            Input::Read { id } => vec![Effect::ReadRejected { id, reason }],
            _ => vec![],
        }
    }
    fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            role: Role::Follower,
            generation: 1,
            leader: Some("n1".into()),
            commit_index: 0,
            last_index: 0,
            lease_until_ms: Some(5),
            extra: serde_json::Map::new(),
        }
    }
    fn peers(&self) -> Vec<(String, String)> {
        vec![("n1".into(), self.leader_addr.clone())]
    }
    fn snapshot_meta(&self, _: u64) -> Option<Value> {
        None
    }
    fn wal_records(&self) -> Vec<Record> {
        vec![]
    }
    fn snapshot_message(&self, _: u64, _: Value, _: Value) -> Self::Msg {
        faultline_node::solo::Msg::Never
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_client_requests_to_its_leader_once() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let leader = solo(d1.path()).await;
    let storage = open_storage::<Record>("n2", d2.path()).unwrap();
    let parts = Parts {
        id: "n2".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: d2.path().to_path_buf(),
        replica: Follower {
            leader_addr: leader.addr.to_string(),
        },
        wal: storage.wal,
        snapshot: None,
        peer_path: "/solo/batch",
        is_large: |_| false,
        opts: opts(),
        recovered: vec![],
    };
    let f = faultline_node::start(parts, vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // the first status publication
    assert_eq!(
        post(
            f.addr,
            "/kv/write",
            json!({"key":"k","value":3,"request_id":"1:1"})
        )
        .await,
        (200, json!({}))
    );
    assert_eq!(
        post(f.addr, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":3}))
    );
    assert_eq!(
        post(leader.addr, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":3}))
    );
    assert_eq!(get(f.addr, "/status").await["lease_until_ms"], json!(5));
    // a request already forwarded is not forwarded again: the not-leader answer comes back
    let r = http()
        .post(format!("http://{}/kv/read", f.addr))
        .header(faultline_node::server::FORWARDED, "n3")
        .json(&json!({"key":"k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error":"not-leader","leader":"n1","definite":true})
    );
    // the leader gone: never connected is definite
    leader.server.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (st, body) = post(f.addr, "/kv/write", json!({"key":"k","value":4})).await;
    assert_eq!(
        (st, body["error"].clone(), body["definite"].clone()),
        (503, json!("leader-unreachable"), json!(true))
    );
}

/// Solo, except that it refuses proposals (not-leader) while `refuse` is set.
struct Refusing {
    solo: Solo,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Replica for Refusing {
    type Msg = faultline_node::solo::Msg;
    type Record = Record;
    fn step(&mut self, input: Input<Self::Msg>) -> Vec<Effect<Self::Msg, Record>> {
        match input {
            Input::Propose { id, .. } if self.refuse.load(std::sync::atomic::Ordering::SeqCst) => {
                vec![Effect::Rejected {
                    id,
                    reason: Reject::NotLeader { leader: None },
                }]
            }
            other => self.solo.step(other),
        }
    }
    fn status(&self) -> ReplicaStatus {
        self.solo.status()
    }
    fn peers(&self) -> Vec<(String, String)> {
        self.solo.peers()
    }
    fn snapshot_meta(&self, applied: u64) -> Option<Value> {
        self.solo.snapshot_meta(applied)
    }
    fn wal_records(&self) -> Vec<Record> {
        self.solo.wal_records()
    }
    fn snapshot_message(&self, g: u64, meta: Value, data: Value) -> Self::Msg {
        self.solo.snapshot_message(g, meta, data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_refused_request_is_refused_again_after_the_node_can_serve() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open_storage::<Record>("n1", dir.path()).unwrap();
    let (solo, recovered) = Solo::recover("n1", true, storage.records, 0);
    let refuse = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let parts = Parts {
        id: "n1".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        replica: Refusing {
            solo,
            refuse: refuse.clone(),
        },
        wal: storage.wal,
        snapshot: None,
        peer_path: "/solo/batch",
        is_large: |_| false,
        opts: opts(),
        recovered,
    };
    let n = faultline_node::start(parts, vec![]).await.unwrap();
    let write = |v: i64, rid: &str| json!({"key":"k","value":v,"request_id":rid});
    let (st, body) = post(n.addr, "/kv/write", write(1, "7:1")).await;
    assert_eq!((st, body["error"].clone()), (503, json!("not-leader")));
    // The node can serve now; a copy of the refused request (a duplicated forward) arrives.
    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    let (st, body) = post(n.addr, "/kv/write", write(1, "7:1")).await;
    assert_eq!(
        (st, body["error"].clone(), body["definite"].clone()),
        (503, json!("not-leader"), json!(true)),
        "the refusal holds: the op did not happen"
    );
    assert_eq!(
        post(n.addr, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":null}))
    );
    // A new request is served.
    assert_eq!(
        post(n.addr, "/kv/write", write(2, "7:2")).await,
        (200, json!({}))
    );
    assert_eq!(
        post(n.addr, "/kv/read", json!({"key":"k"})).await,
        (200, json!({"value":2}))
    );
}
