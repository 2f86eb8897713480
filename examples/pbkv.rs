//! `pbkv`: a small primary-backup key-value node written as a stranger to faultline would,
//! split-brained by design, for testing faultline against a system it did not write
//! (`systems/pbkv.toml` describes it; nothing else tells faultline about it).
//!
//! - Primary choice is bully-style with no quorum: every 100 ms a node asks its peers'
//!   `/status`; the highest id it can reach (itself included) is the primary. Two sides of a
//!   partition each pick one.
//! - Replication is asynchronous: the primary acknowledges a write at once and pushes its
//!   whole state to the backups in the background; a backup takes any push whose term is at
//!   least its own, overwriting what it had (so the loser's entries vanish on heal).
//! - Reads are served by any node from its local copy.
//!
//! `--single-owner` makes it correct instead: one node (`--owner`, default n1) alone serves
//! reads and writes, the others answer `not-leader` naming it.
//!
//! `--heal-overwrites`: a backup takes every push from the node it now regards as primary,
//! whatever the term, so on heal the loser's entries always vanish and the nodes' logs agree
//! again by the end; only logs sampled during the run show they diverged.
//!
//! `cargo run --release --example pbkv -- --id n1 --listen 127.0.0.1:7001 --peers n2=127.0.0.1:7002`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Data {
    term: u64,
    kv: BTreeMap<String, Value>,
    /// Every applied write: index (from 1), the term it was taken in, an id.
    log: Vec<Value>,
}

struct Node {
    id: String,
    peers: Vec<(String, String)>,
    single_owner: bool,
    heal_overwrites: bool,
    owner: String,
    http: reqwest::Client,
    st: Mutex<(Data, Option<String>)>,
}

type Shared = Arc<Node>;

fn reply(code: u16, body: Value) -> Response {
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

impl Node {
    fn primary(&self) -> Option<String> {
        self.st.lock().unwrap().1.clone()
    }
    fn is_primary(&self) -> bool {
        self.primary().as_deref() == Some(&self.id)
    }
    fn not_leader(&self) -> Response {
        reply(
            503,
            json!({"error":"not-leader","leader":self.primary(),"definite":true}),
        )
    }
}

async fn status(State(n): State<Shared>) -> Response {
    let (data, primary) = n.st.lock().unwrap().clone();
    let role = if primary.as_deref() == Some(&n.id) {
        "leader"
    } else {
        "follower"
    };
    let len = data.log.len();
    reply(
        200,
        json!({"id":n.id,"role":role,"term":data.term,"leader":primary,
               "commit_index":len,"applied_index":len}),
    )
}

async fn log(State(n): State<Shared>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let from: usize = q.get("from").and_then(|f| f.parse().ok()).unwrap_or(0);
    let st = n.st.lock().unwrap();
    let entries: Vec<Value> =
        st.0.log
            .iter()
            .skip(from.saturating_sub(1))
            .cloned()
            .collect();
    reply(200, json!(entries))
}

async fn read(State(n): State<Shared>, axum::Json(b): axum::Json<Value>) -> Response {
    if n.single_owner && !n.is_primary() {
        return n.not_leader();
    }
    let key = b["key"].as_str().unwrap_or_default().to_string();
    let st = n.st.lock().unwrap();
    reply(200, json!({"value": st.0.kv.get(&key).cloned()}))
}

/// Applies a write at the primary: `check` sees the current value and may refuse.
fn apply(n: &Node, key: &str, value: Value, check: Option<&Value>) -> Response {
    let mut st = n.st.lock().unwrap();
    if st.1.as_deref() != Some(&n.id) {
        drop(st);
        return n.not_leader();
    }
    if let Some(from) = check
        && st.0.kv.get(key).unwrap_or(&Value::Null) != from
    {
        return reply(409, json!({"error":"precondition-failed","definite":true}));
    }
    st.0.kv.insert(key.to_string(), value);
    let (index, term) = (st.0.log.len() + 1, st.0.term);
    let id = format!("{}-{term}-{index}", n.id);
    st.0.log.push(json!({"index":index,"term":term,"id":id}));
    reply(200, json!({}))
}

async fn write(State(n): State<Shared>, axum::Json(b): axum::Json<Value>) -> Response {
    let key = b["key"].as_str().unwrap_or_default();
    apply(&n, key, b["value"].clone(), None)
}

async fn cas(State(n): State<Shared>, axum::Json(b): axum::Json<Value>) -> Response {
    let key = b["key"].as_str().unwrap_or_default();
    apply(&n, key, b["to"].clone(), Some(&b["from"]))
}

/// A push from a primary: taken if its term is at least ours (whole state replaced).
async fn replicate(State(n): State<Shared>, axum::Json(b): axum::Json<Value>) -> Response {
    let (Ok(data), Some(from)) = (
        serde_json::from_value::<Data>(b["data"].clone()),
        b["from"].as_str(),
    ) else {
        return reply(400, json!({"error":"bad-request","definite":true}));
    };
    let mut st = n.st.lock().unwrap();
    let takes = data.term >= st.0.term || (n.heal_overwrites && st.1.as_deref() == Some(from));
    if takes && from != n.id {
        st.0 = data;
        st.1 = Some(from.to_string());
    }
    reply(200, json!({}))
}

/// Bully choice every 100 ms; a primary pushes its state to every peer it reaches.
async fn elect_and_push(n: Shared) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if n.single_owner {
            n.st.lock().unwrap().1 = Some(n.owner.clone());
            continue;
        }
        let mut reachable = vec![n.id.clone()];
        let mut max_term = 0;
        for (id, addr) in &n.peers {
            let r = n
                .http
                .get(format!("http://{addr}/status"))
                .timeout(Duration::from_millis(150))
                .send()
                .await;
            if let Ok(r) = r
                && let Ok(s) = r.json::<Value>().await
            {
                reachable.push(id.clone());
                max_term = max_term.max(s["term"].as_u64().unwrap_or(0));
            }
        }
        let winner = reachable.iter().max().cloned();
        let data = {
            let mut st = n.st.lock().unwrap();
            if winner.as_deref() == Some(&n.id) && st.1.as_deref() != Some(&n.id) {
                st.0.term = st.0.term.max(max_term) + 1;
            }
            st.1 = winner;
            (st.1.as_deref() == Some(&n.id)).then(|| st.0.clone())
        };
        if let Some(data) = data {
            let body = json!({"from": n.id, "data": data});
            for (_, addr) in &n.peers {
                let _ = n
                    .http
                    .post(format!("http://{addr}/replicate"))
                    .json(&body)
                    .timeout(Duration::from_millis(300))
                    .send()
                    .await;
            }
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(id), Some(listen)) = (arg(&args, "--id"), arg(&args, "--listen")) else {
        eprintln!(
            "usage: pbkv --id ID --listen IP:PORT [--peers ID=IP:PORT,...] [--single-owner \
             [--owner ID]] [--heal-overwrites]"
        );
        std::process::exit(2);
    };
    let peers = arg(&args, "--peers")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(i, a)| (i.to_string(), a.to_string()))
        .collect();
    let node = Arc::new(Node {
        id,
        peers,
        single_owner: args.iter().any(|a| a == "--single-owner"),
        heal_overwrites: args.iter().any(|a| a == "--heal-overwrites"),
        owner: arg(&args, "--owner").unwrap_or_else(|| "n1".into()),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        st: Mutex::new((Data::default(), None)),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
        eprintln!("pbkv {} listening on {listen}", node.id);
        tokio::spawn(elect_and_push(node.clone()));
        let app = Router::new()
            .route("/status", get(status))
            .route("/log", get(log))
            .route("/kv/read", post(read))
            .route("/kv/write", post(write))
            .route("/kv/cas", post(cas))
            .route("/replicate", post(replicate))
            .with_state(node);
        axum::serve(listener, app).await.unwrap();
    });
}
