//! The HTTP API: faultline's node protocol (`/kv/*`, `/txn`, `/status`, `/log`), peer RPC
//! (`/raft/batch`) and admin calls (`/admin/transfer`, `/admin/membership`). Bodies are parsed
//! by hand so malformed input gets a JSON 400 naming the field, never a crash.
//!
//! A follower that is asked a client request forwards it once to the leader it knows (as
//! etcd does), so clients bound to any node make progress; the forward shares the request's
//! time budget, and its failure says whether the op may have happened.

use crate::core::NodeId;
use crate::kv::{Op, key_of, parse_txn};
use crate::node::{Event, Reply, Responder, Status};
use crate::transport::Batch;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Marks a request a follower forwarded, so it is never forwarded twice.
const FORWARDED: &str = "x-faultline-forwarded";

pub struct Shared {
    pub id: NodeId,
    pub bugs: Vec<String>,
    pub events: Sender<Event>,
    pub status: Arc<Mutex<Status>>,
    pub request_timeout: Duration,
    /// Client requests in flight; past `max_inflight` new ones are refused (definite).
    pub inflight: AtomicUsize,
    pub max_inflight: usize,
    /// Peer id -> `ip:port` (the same HTTP port serves clients): where to forward.
    pub peers: HashMap<NodeId, String>,
    /// For forwarded client requests.
    pub http: reqwest::Client,
}

impl Shared {
    /// The client used to forward requests to the leader (no proxies, fast connect).
    pub fn forward_client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(250))
            .tcp_nodelay(true)
            .build()
            .expect("http client builds")
    }
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

fn bad_request(detail: impl Into<String>) -> Response {
    respond(Reply {
        status: 400,
        body: json!({"error":"bad-request","detail":detail.into(),"definite":true}),
    })
}

/// Body problems are reported as a detail string, turned into a 400 by the handler.
type Parsed<T> = Result<T, String>;

fn parse_object(body: &Bytes) -> Parsed<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("body is not JSON: {e}")),
    }
}

fn field(m: &serde_json::Map<String, Value>, name: &str) -> Parsed<Value> {
    m.get(name)
        .cloned()
        .ok_or_else(|| format!("missing field \"{name}\""))
}

fn key_field(m: &serde_json::Map<String, Value>) -> Parsed<Value> {
    let key = field(m, "key")?;
    key_of(&key).map_err(|e| format!("field \"key\": {e}"))?;
    Ok(key)
}

struct InflightGuard<'a>(&'a AtomicUsize);
impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long one client request may take here, forwarding included.
fn budget(shared: &Shared) -> Duration {
    shared.request_timeout + Duration::from_millis(500)
}

/// Hands an event to the node thread and waits for its answer (bounded by the timeout).
async fn ask(shared: &Shared, read: bool, make: impl FnOnce(Responder) -> Event) -> Reply {
    if shared.inflight.fetch_add(1, Ordering::Relaxed) >= shared.max_inflight {
        shared.inflight.fetch_sub(1, Ordering::Relaxed);
        return Reply::error(503, "overloaded", true);
    }
    let _guard = InflightGuard(&shared.inflight);
    let (tx, rx) = tokio::sync::oneshot::channel();
    if shared.events.send(make(tx)).is_err() {
        return Reply::error(500, "node-stopped", read);
    }
    match tokio::time::timeout(budget(shared), rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Reply::error(500, "node-stopped", read),
        Err(_) => Reply::error(504, "timeout", read),
    }
}

async fn submit(shared: &Shared, read: bool, make: impl FnOnce(Responder) -> Event) -> Response {
    respond(ask(shared, read, make).await)
}

/// A client request as received, kept so a follower can forward it unchanged.
struct Request<'a> {
    path: &'static str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    started: Instant,
}

/// The leader's address when `reply` is a `not-leader` naming a peer we know, and this
/// request was not already forwarded to us.
fn forward_target<'a>(shared: &'a Shared, req: &Request<'_>, reply: &Reply) -> Option<&'a str> {
    if reply.body.get("error").and_then(Value::as_str) != Some("not-leader")
        || req.headers.contains_key(FORWARDED)
    {
        return None;
    }
    let leader = reply.body.get("leader").and_then(Value::as_str)?;
    (leader != shared.id)
        .then(|| shared.peers.get(leader).map(String::as_str))
        .flatten()
}

/// Sends the request to the leader within what is left of its budget and relays the answer.
/// Failures keep the protocol's meaning: never connected is definite (not done); a timeout
/// or a lost connection after sending is definite only for a read.
async fn forward(shared: &Shared, req: &Request<'_>, read: bool, addr: &str) -> Reply {
    let left = budget(shared).saturating_sub(req.started.elapsed());
    if left.is_zero() {
        return Reply::error(504, "timeout", read);
    }
    let sent = shared
        .http
        .post(format!("http://{addr}{}", req.path))
        .header(FORWARDED, shared.id.as_str())
        .header("content-type", "application/json")
        .body(req.body.clone())
        .timeout(left)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Reply::error(503, "leader-unreachable", true),
        Err(e) if e.is_timeout() => return Reply::error(504, "timeout", read),
        Err(_) => return Reply::error(502, "forward-lost", read),
    };
    let status = resp.status().as_u16();
    match resp
        .bytes()
        .await
        .map(|b| serde_json::from_slice::<Value>(&b))
    {
        Ok(Ok(body)) => Reply { status, body },
        Ok(Err(_)) => Reply::error(502, "forward-bad-answer", read || status < 300),
        Err(e) if e.is_timeout() => Reply::error(504, "timeout", read),
        Err(_) => Reply::error(502, "forward-lost", read),
    }
}

/// Runs a client request here, or at the leader when this node is not it.
async fn serve(
    shared: &Shared,
    req: Request<'_>,
    read: bool,
    make: impl FnOnce(Responder) -> Event,
) -> Response {
    let reply = ask(shared, read, make).await;
    match forward_target(shared, &req, &reply) {
        Some(addr) => respond(forward(shared, &req, read, addr).await),
        None => respond(reply),
    }
}

async fn propose(shared: &Shared, req: Request<'_>, op: Op) -> Response {
    let data = serde_json::to_value(op).expect("ops serialize");
    serve(shared, req, false, |reply| Event::Propose { data, reply }).await
}

fn request<'a>(path: &'static str, headers: &'a HeaderMap, body: &'a Bytes) -> Request<'a> {
    Request {
        path,
        headers,
        body,
        started: Instant::now(),
    }
}

async fn kv_read(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/kv/read", &headers, &body);
    let key = match parse_object(&body).and_then(|m| key_field(&m)) {
        Ok(k) => key_of(&k).expect("validated"),
        Err(d) => return bad_request(d),
    };
    serve(&s, req, true, |reply| Event::Read { key, reply }).await
}

async fn kv_write(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/kv/write", &headers, &body);
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Write {
            key: key_field(&m)?,
            value: field(&m, "value")?,
        })
    });
    match op {
        Ok(op) => propose(&s, req, op).await,
        Err(d) => bad_request(d),
    }
}

async fn kv_cas(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/kv/cas", &headers, &body);
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Cas {
            key: key_field(&m)?,
            from: field(&m, "from")?,
            to: field(&m, "to")?,
        })
    });
    match op {
        Ok(op) => propose(&s, req, op).await,
        Err(d) => bad_request(d),
    }
}

async fn kv_append(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/kv/append", &headers, &body);
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Append {
            key: key_field(&m)?,
            value: field(&m, "value")?,
        })
    });
    match op {
        Ok(op) => propose(&s, req, op).await,
        Err(d) => bad_request(d),
    }
}

async fn txn(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/txn", &headers, &body);
    let op = parse_object(&body).and_then(|m| {
        let ops = field(&m, "ops")?;
        let Value::Array(ops) = ops else {
            return Err("field \"ops\": expected an array".to_string());
        };
        parse_txn(&ops).map_err(|e| format!("field \"ops\": {e}"))?;
        Ok(Op::Txn { ops })
    });
    match op {
        Ok(op) => propose(&s, req, op).await,
        Err(d) => bad_request(d),
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let st = s.status.lock().expect("status lock").clone();
    let clock_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let body = json!({
        "id": s.id,
        "role": if st.role.is_empty() { "follower" } else { st.role },
        "term": st.term,
        "leader": st.leader,
        "commit_index": st.commit_index,
        "applied_index": st.applied_index,
        "clock_ms": clock_ms,
        "last_index": st.last_index,
        "snapshot_index": st.snapshot_index,
        "voters": st.voters,
        "bugs": s.bugs,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn log(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let from = match q.get("from").map(|f| f.parse::<u64>()) {
        None => 0,
        Some(Ok(f)) => f,
        Some(Err(_)) => return bad_request("query \"from\": expected a non-negative integer"),
    };
    submit(&s, true, |reply| Event::Log { from, reply }).await
}

async fn raft_batch(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("raft batch: {e}")),
    };
    for msg in batch.msgs {
        if s.events
            .send(Event::Peer {
                from: batch.from.clone(),
                addr: batch.addr.clone(),
                msg,
            })
            .is_err()
        {
            return respond(Reply::error(500, "node-stopped", true));
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn transfer(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let to = parse_object(&body).and_then(|m| match field(&m, "to")? {
        Value::String(to) => Ok(to),
        _ => Err("field \"to\": expected a node id".to_string()),
    });
    match to {
        Ok(to) => submit(&s, true, |reply| Event::Transfer { to, reply }).await,
        Err(d) => bad_request(d),
    }
}

async fn membership(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let change = parse_object(&body).and_then(|m| {
        if let Some(add) = m.get("add") {
            let id = add.get("id").and_then(Value::as_str);
            let addr = add.get("addr").and_then(Value::as_str);
            match (id, addr) {
                (Some(id), Some(addr)) => Ok((id.to_string(), Some(addr.to_string()))),
                _ => Err("field \"add\": expected {\"id\":..,\"addr\":..}".to_string()),
            }
        } else if let Some(Value::String(id)) = m.get("remove") {
            Ok((id.clone(), None))
        } else {
            Err("expected field \"add\" or \"remove\"".to_string())
        }
    });
    match change {
        Ok((id, addr)) => submit(&s, false, |reply| Event::Membership { id, addr, reply }).await,
        Err(d) => bad_request(d),
    }
}

async fn not_found() -> Response {
    respond(Reply::error(404, "not-found", true))
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/kv/read", post(kv_read))
        .route("/kv/write", post(kv_write))
        .route("/kv/cas", post(kv_cas))
        .route("/kv/append", post(kv_append))
        .route("/txn", post(txn))
        .route("/status", get(status))
        .route("/log", get(log))
        .route("/raft/batch", post(raft_batch))
        .route("/admin/transfer", post(transfer))
        .route("/admin/membership", post(membership))
        .fallback(not_found)
        .with_state(shared)
}
