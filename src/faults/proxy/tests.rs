//! The proxy against real loopback servers: nodes on 127.0.0.1x, their proxy addresses on
//! 127.0.0.11x, every message through real sockets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use super::*;

/// What a test node received: (when, message) per delivered message.
type Inbox = Arc<Mutex<Vec<(Instant, Value)>>>;

struct TestNode {
    id: String,
    addr: IpAddr,
    proxy_addr: IpAddr,
    port: u16,
    inbox: Inbox,
    writes: Arc<Mutex<u32>>,
}

async fn batch_handler(
    State((inbox, _)): State<(Inbox, Arc<Mutex<u32>>)>,
    body: Bytes,
) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap();
    let now = Instant::now();
    for m in v["msgs"].as_array().unwrap() {
        inbox.lock().unwrap().push((now, m.clone()));
    }
    StatusCode::NO_CONTENT
}

async fn write_handler(State((_, writes)): State<(Inbox, Arc<Mutex<u32>>)>) -> String {
    *writes.lock().unwrap() += 1;
    "{\"ok\":true}".into()
}

/// Starts a node's server on 127.0.0.1<i> (the node side) on a free port.
async fn node(i: u8) -> TestNode {
    let addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i));
    let l = tokio::net::TcpListener::bind(SocketAddr::new(addr, 0))
        .await
        .unwrap();
    let port = l.local_addr().unwrap().port();
    let inbox: Inbox = Arc::default();
    let writes = Arc::new(Mutex::new(0));
    let app = Router::new()
        .route("/raft/batch", post(batch_handler))
        .route("/kv/write", post(write_handler))
        .with_state((inbox.clone(), writes.clone()));
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    TestNode {
        id: format!("n{i}"),
        addr,
        proxy_addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 110 + i)),
        port,
        inbox,
        writes,
    }
}

async fn setup(mode: ProxyMode, n: u8) -> (PeerProxy, Vec<TestNode>) {
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(node(i).await);
    }
    let cfg = ProxyConfig {
        mode,
        nodes: nodes
            .iter()
            .map(|t| ProxyNode {
                id: t.id.clone(),
                addr: t.addr,
                proxy_addr: t.proxy_addr,
                port: t.port,
            })
            .collect(),
        batch_field: Some("msgs".into()),
        seed: 42,
        unknown_as: None,
        trace: None,
    };
    (PeerProxy::start(cfg).await.unwrap(), nodes)
}

/// A client that connects as node `from` would: from its real address.
fn client(from: &TestNode) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(from.addr)
        .build()
        .unwrap()
}

fn url(to: &TestNode, path: &str) -> String {
    format!("http://{}:{}{path}", to.proxy_addr, to.port)
}

async fn send_batch(c: &reqwest::Client, to: &TestNode, msgs: Vec<Value>) {
    let r = c
        .post(url(to, "/raft/batch"))
        .json(&json!({"from": "x", "addr": "", "msgs": msgs}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

fn links(pairs: &[(&TestNode, &TestNode)]) -> BTreeSet<Link> {
    pairs
        .iter()
        .map(|(a, b)| (a.id.clone(), b.id.clone()))
        .collect()
}

fn rule(id: u64, links: BTreeSet<Link>, action: MsgAction) -> MsgRule {
    MsgRule {
        id,
        links,
        types: vec![],
        paths: vec![],
        probability: 1.0,
        action,
    }
}

async fn wait_for(inbox: &Inbox, n: usize, limit: Duration) -> Vec<(Instant, Value)> {
    let start = Instant::now();
    while inbox.lock().unwrap().len() < n && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    inbox.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_median_is_the_configured_one_and_messages_reorder() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    let d = Dist::Uniform {
        min_ms: 30.0,
        max_ms: 70.0,
    };
    p.add_rule(rule(
        1,
        links(&[(&ns[0], &ns[1])]),
        MsgAction::Delay { delay: d.clone() },
    ));
    let c = client(&ns[0]);
    let t0 = Instant::now();
    let mut sent = Vec::new();
    for i in 0..1000u64 {
        sent.push(Instant::now());
        send_batch(&c, &ns[1], vec![json!({"type": "append_entries", "i": i})]).await;
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let got = wait_for(&ns[1].inbox, 1000, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1000, "all delivered");
    let mut delays: Vec<f64> = got
        .iter()
        .map(|(at, m)| {
            let i = m["i"].as_u64().unwrap() as usize;
            at.duration_since(sent[i]).as_secs_f64() * 1000.0
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let median = delays[500];
    assert!(
        (median - d.median_ms()).abs() <= 0.1 * d.median_ms(),
        "median {median} ms, configured {} ms",
        d.median_ms()
    );
    let order: Vec<u64> = got.iter().map(|(_, m)| m["i"].as_u64().unwrap()).collect();
    let inversions = order.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 50, "per-message draws reorder: {inversions}");
    // The other direction is untouched: its messages take less than the rule's least delay
    // (the median of 20, so that one slow wake-up of a loaded machine does not decide).
    let c = client(&ns[1]);
    let mut back = Vec::new();
    for n in 1..=20 {
        let t1 = Instant::now();
        send_batch(&c, &ns[0], vec![json!({"type": "x"})]).await;
        wait_for(&ns[0].inbox, n, Duration::from_secs(2)).await;
        back.push(t1.elapsed());
    }
    back.sort();
    assert!(
        back[10] < Duration::from_millis(30),
        "one-way: median {:?} of {back:?}",
        back[10]
    );
    let _ = t0;
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dup_delivers_copies() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    let mut r = rule(
        1,
        links(&[(&ns[0], &ns[1])]),
        MsgAction::Dup {
            after: Dist::Fixed { ms: 5.0 },
        },
    );
    r.probability = 0.5;
    p.add_rule(r);
    let c = client(&ns[0]);
    for i in 0..400 {
        send_batch(&c, &ns[1], vec![json!({"type": "x", "i": i})]).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = ns[1].inbox.lock().unwrap().clone();
    let mut count = std::collections::BTreeMap::new();
    for (_, m) in &got {
        *count.entry(m["i"].as_u64().unwrap()).or_insert(0) += 1;
    }
    assert_eq!(count.len(), 400, "every message arrives");
    assert!(count.values().all(|c| *c <= 2));
    let dups = got.len() - 400;
    assert!(
        (150..=250).contains(&dups),
        "{dups} duplicates of 400 at p=0.5"
    );
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_by_type_splits_batches() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    let mut r = rule(1, links(&[(&ns[0], &ns[1])]), MsgAction::Drop);
    r.types = vec!["request_vote".into()];
    p.add_rule(r);
    let c = client(&ns[0]);
    for i in 0..50 {
        send_batch(
            &c,
            &ns[1],
            vec![
                json!({"type": "request_vote", "i": i}),
                json!({"type": "append_entries", "i": i}),
            ],
        )
        .await;
    }
    let got = wait_for(&ns[1].inbox, 50, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got2 = ns[1].inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 50);
    assert_eq!(got2.len(), 50);
    assert!(got2.iter().all(|(_, m)| m["type"] == "append_entries"));
    // In order, when nothing delays them.
    let order: Vec<u64> = got2.iter().map(|(_, m)| m["i"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>());
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_then_release_together_shuffled() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    p.add_rule(rule(7, links(&[(&ns[0], &ns[1])]), MsgAction::Hold));
    let c = client(&ns[0]);
    for i in 0..30 {
        send_batch(&c, &ns[1], vec![json!({"type": "x", "i": i})]).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(ns[1].inbox.lock().unwrap().is_empty(), "held");
    let released_at = Instant::now();
    assert_eq!(p.remove_rule(7), 30);
    let got = wait_for(&ns[1].inbox, 30, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 30);
    assert!(got.iter().all(|(at, _)| *at >= released_at));
    let order: Vec<u64> = got.iter().map(|(_, m)| m["i"].as_u64().unwrap()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..30).collect::<Vec<_>>(), "each exactly once");
    assert_ne!(order, sorted, "released out of order");
    // Released together: within a few ms of each other.
    let spread = got.last().unwrap().0.duration_since(got[0].0);
    assert!(spread < Duration::from_millis(50), "{spread:?}");
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_drop() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    p.add_rule(rule(1, links(&[(&ns[0], &ns[1])]), MsgAction::Drop));
    send_batch(&client(&ns[0]), &ns[1], vec![json!({"type": "x"})]).await;
    send_batch(&client(&ns[1]), &ns[0], vec![json!({"type": "x"})]).await;
    assert_eq!(
        wait_for(&ns[0].inbox, 1, Duration::from_secs(2))
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(ns[1].inbox.lock().unwrap().is_empty());
    p.clear();
    send_batch(&client(&ns[0]), &ns[1], vec![json!({"type": "x"})]).await;
    assert_eq!(
        wait_for(&ns[1].inbox, 1, Duration::from_secs(2))
            .await
            .len(),
        1
    );
    p.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_relay_with_answers_and_dup() {
    let (p, ns) = setup(ProxyMode::L7, 2).await;
    let c = client(&ns[0]);
    let r = c
        .post(url(&ns[1], "/kv/write"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{\"ok\":true}");
    let mut d = rule(
        1,
        links(&[(&ns[0], &ns[1])]),
        MsgAction::Dup {
            after: Dist::Fixed { ms: 10.0 },
        },
    );
    d.paths = vec!["/kv/write".into()];
    p.add_rule(d);
    c.post(url(&ns[1], "/kv/write"))
        .body("{}")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *ns[1].writes.lock().unwrap(),
        3,
        "one plain, one duplicated"
    );
    // A dropped request gets no answer.
    p.clear();
    let mut drop = rule(2, links(&[(&ns[0], &ns[1])]), MsgAction::Drop);
    drop.paths = vec!["/kv/write".into()];
    p.add_rule(drop);
    assert!(
        c.post(url(&ns[1], "/kv/write"))
            .body("{}")
            .send()
            .await
            .is_err()
    );
    assert_eq!(*ns[1].writes.lock().unwrap(), 3);
    p.stop();
}

async fn rtt(s: &mut tokio::net::TcpStream) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Instant::now();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    t.elapsed()
}

/// A raw TCP echo server on the node side.
async fn echo(i: u8) -> (IpAddr, u16) {
    let addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i));
    let l = tokio::net::TcpListener::bind(SocketAddr::new(addr, 0))
        .await
        .unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l4_forwards_delays_and_resets() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a_addr, a_port) = echo(5).await;
    let (b_addr, b_port) = echo(6).await;
    let pa = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 115));
    let pb = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 116));
    let p = PeerProxy::start(ProxyConfig {
        mode: ProxyMode::L4,
        nodes: vec![
            ProxyNode {
                id: "a".into(),
                addr: a_addr,
                proxy_addr: pa,
                port: a_port,
            },
            ProxyNode {
                id: "b".into(),
                addr: b_addr,
                proxy_addr: pb,
                port: b_port,
            },
        ],
        batch_field: None,
        seed: 1,
        unknown_as: None,
        trace: None,
    })
    .await
    .unwrap();
    let connect = || async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(a_addr, 0)).unwrap();
        s.connect(SocketAddr::new(pb, b_port)).await
    };
    let mut s = connect().await.unwrap();
    assert!(rtt(&mut s).await < Duration::from_millis(20));
    // Delay on a->b only: one leg of the round trip.
    p.add_rule(rule(
        1,
        [("a".to_string(), "b".to_string())].into(),
        MsgAction::Delay {
            delay: Dist::Fixed { ms: 40.0 },
        },
    ));
    let d = rtt(&mut s).await;
    assert!(
        d >= Duration::from_millis(40) && d < Duration::from_millis(70),
        "{d:?}"
    );
    p.clear();
    // A reset ends the live connection and refuses new ones while in force.
    p.add_rule(rule(
        2,
        [("a".to_string(), "b".to_string())].into(),
        MsgAction::Reset,
    ));
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = s.write_all(b"ping").await;
        s.read(&mut buf).await
    })
    .await
    .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // The reset may land before or after the connect completes.
    if let Ok(mut s2) = connect().await {
        let r = tokio::time::timeout(Duration::from_secs(2), s2.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
    p.clear();
    let mut s3 = connect().await.unwrap();
    assert!(rtt(&mut s3).await < Duration::from_millis(20));
    p.stop();
}
