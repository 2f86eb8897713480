//! The node protocol over HTTP (DESIGN.md): `/kv/read|write|cas|append`, `/txn`, `/status`,
//! `/log`, `/admin/failpoint`, other `/admin/NAME` calls handed to the replica, and the peer
//! batch path. Bodies are parsed by hand so malformed input gets a JSON 400 naming the field,
//! never a crash.
//!
//! A node that is not the leader forwards a client request once to the leader it knows (as
//! etcd does), so clients bound to any node make progress; the forward shares the request's
//! time budget, and its failure says whether the op may have happened. The request id in the
//! body travels along, so a request that reaches the log twice takes effect once, and a copy
//! of a request this node refused gets the same refusal (`refusals`).

use crate::failpoint::{Action, Failpoints};
use crate::kv::{Command, Op, key_of, parse_txn};
use crate::node::{Event, Reply, Responder, View};
use crate::replica::NodeId;
use crate::transport::Batch;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use faultline_proto::REQUEST_ID;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Marks a request a node forwarded, so it is never forwarded twice.
pub const FORWARDED: &str = "x-faultline-forwarded";

pub struct Shared<M> {
    pub id: NodeId,
    pub bugs: Vec<String>,
    pub events: Sender<Event<M>>,
    pub view: Arc<Mutex<View>>,
    pub failpoints: Arc<Failpoints>,
    pub request_timeout: Duration,
    /// Client requests in flight; past `max_inflight` new ones are refused (definite).
    pub inflight: AtomicUsize,
    pub max_inflight: usize,
    /// For forwarded client requests (no proxies, fast connect).
    pub http: reqwest::Client,
    /// Definite refusals given, by request id, for copies of the same request.
    pub refusals: Mutex<crate::refusals::Refusals>,
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

fn request_id(m: &serde_json::Map<String, Value>) -> Parsed<Option<String>> {
    match m.get(REQUEST_ID) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "field \"{REQUEST_ID}\": expected a non-empty string"
        )),
    }
}

struct InflightGuard<'a>(&'a AtomicUsize);
impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M> Shared<M> {
    /// How long one client request may take here, forwarding included.
    fn budget(&self) -> Duration {
        self.request_timeout + Duration::from_millis(500)
    }

    /// Hands an event to the node thread and waits for its answer (bounded by the budget).
    async fn ask(&self, read: bool, make: impl FnOnce(Responder) -> Event<M>) -> Reply {
        if self.inflight.fetch_add(1, Ordering::Relaxed) >= self.max_inflight {
            self.inflight.fetch_sub(1, Ordering::Relaxed);
            return Reply::error(503, "overloaded", true);
        }
        let _guard = InflightGuard(&self.inflight);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.events.send(make(tx)).is_err() {
            return Reply::error(500, "node-stopped", read);
        }
        match tokio::time::timeout(self.budget(), rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Reply::error(500, "node-stopped", read),
            Err(_) => Reply::error(504, "timeout", read),
        }
    }
}

/// A client request as received, kept so a follower can forward it unchanged.
struct Request<'a> {
    path: &'static str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    started: Instant,
}

fn request<'a>(path: &'static str, headers: &'a HeaderMap, body: &'a Bytes) -> Request<'a> {
    Request {
        path,
        headers,
        body,
        started: Instant::now(),
    }
}

/// The leader's address when `reply` is a `not-leader` naming a peer we know, and this
/// request was not already forwarded to us.
fn forward_target<M>(shared: &Shared<M>, req: &Request<'_>, reply: &Reply) -> Option<String> {
    if reply.body.get("error").and_then(Value::as_str) != Some("not-leader")
        || req.headers.contains_key(FORWARDED)
    {
        return None;
    }
    let leader = reply.body.get("leader").and_then(Value::as_str)?;
    if leader == shared.id {
        return None;
    }
    shared
        .view
        .lock()
        .expect("view lock")
        .peers
        .get(leader)
        .cloned()
}

/// Sends the request to the leader within what is left of its budget and relays the answer.
/// Failures keep the protocol's meaning: never connected is definite (not done); a timeout
/// or a lost connection after sending is definite only for a read.
async fn forward<M>(shared: &Shared<M>, req: &Request<'_>, read: bool, addr: &str) -> Reply {
    let left = shared.budget().saturating_sub(req.started.elapsed());
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
async fn serve<M>(
    shared: &Shared<M>,
    req: Request<'_>,
    read: bool,
    make: impl FnOnce(Responder) -> Event<M>,
) -> Reply {
    let reply = shared.ask(read, make).await;
    match forward_target(shared, &req, &reply) {
        Some(addr) => forward(shared, &req, read, &addr).await,
        None => reply,
    }
}

/// Parses a write-like body into a command and proposes it.
async fn propose<M>(
    shared: &Shared<M>,
    req: Request<'_>,
    parse: impl FnOnce(&serde_json::Map<String, Value>) -> Parsed<Op>,
) -> Response {
    let cmd = parse_object(req.body).and_then(|m| {
        Ok(Command {
            op: parse(&m)?,
            request_id: request_id(&m)?,
        })
    });
    match cmd {
        Ok(cmd) => {
            let refusals = || shared.refusals.lock().expect("refusals lock");
            if let Some(rid) = &cmd.request_id
                && let Some(again) = refusals().get(rid, Instant::now())
            {
                return respond(again);
            }
            let data = cmd.to_value();
            let reply = serve(shared, req, false, |reply| Event::Propose { data, reply }).await;
            if let Some(rid) = &cmd.request_id {
                refusals().remember(rid, &reply, Instant::now());
            }
            respond(reply)
        }
        Err(d) => bad_request(d),
    }
}

async fn kv_read<M>(State(s): State<Arc<Shared<M>>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = request("/kv/read", &headers, &body);
    let key = match parse_object(&body).and_then(|m| key_field(&m)) {
        Ok(k) => key_of(&k).expect("validated"),
        Err(d) => return bad_request(d),
    };
    respond(serve(&s, req, true, |reply| Event::Read { key, reply }).await)
}

async fn kv_write<M>(State(s): State<Arc<Shared<M>>>, h: HeaderMap, body: Bytes) -> Response {
    propose(&s, request("/kv/write", &h, &body), |m| {
        Ok(Op::Write {
            key: key_field(m)?,
            value: field(m, "value")?,
        })
    })
    .await
}

async fn kv_cas<M>(State(s): State<Arc<Shared<M>>>, h: HeaderMap, body: Bytes) -> Response {
    propose(&s, request("/kv/cas", &h, &body), |m| {
        Ok(Op::Cas {
            key: key_field(m)?,
            from: field(m, "from")?,
            to: field(m, "to")?,
        })
    })
    .await
}

async fn kv_append<M>(State(s): State<Arc<Shared<M>>>, h: HeaderMap, body: Bytes) -> Response {
    propose(&s, request("/kv/append", &h, &body), |m| {
        Ok(Op::Append {
            key: key_field(m)?,
            value: field(m, "value")?,
        })
    })
    .await
}

async fn txn<M>(State(s): State<Arc<Shared<M>>>, h: HeaderMap, body: Bytes) -> Response {
    propose(&s, request("/txn", &h, &body), |m| {
        let Value::Array(ops) = field(m, "ops")? else {
            return Err("field \"ops\": expected an array".to_string());
        };
        parse_txn(&ops).map_err(|e| format!("field \"ops\": {e}"))?;
        Ok(Op::Txn { ops })
    })
    .await
}

/// The `/status` body of a node: protocol v2 (`generation`, `lease_until_ms`), v1's `term`.
pub fn status_body(id: &str, bugs: &[String], view: &View) -> Value {
    let st = &view.status;
    let mut body = json!({
        "id": id,
        "role": st.role.as_str(),
        "term": st.generation,
        "generation": st.generation,
        "leader": st.leader,
        "commit_index": st.commit_index,
        "applied_index": view.applied_index,
        "clock_ms": crate::clock::wall_ms(),
        "last_index": st.last_index,
        "snapshot_index": view.snapshot_index,
        "bugs": bugs,
    });
    if let Some(l) = st.lease_until_ms {
        body["lease_until_ms"] = json!(l);
    }
    if let Value::Object(m) = &mut body {
        for (k, v) in &st.extra {
            m.insert(k.clone(), v.clone());
        }
    }
    body
}

async fn status<M>(State(s): State<Arc<Shared<M>>>) -> Response {
    let view = s.view.lock().expect("view lock").clone();
    (
        StatusCode::OK,
        axum::Json(status_body(&s.id, &s.bugs, &view)),
    )
        .into_response()
}

async fn log<M>(
    State(s): State<Arc<Shared<M>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let from = match q.get("from").map(|f| f.parse::<u64>()) {
        None => 0,
        Some(Ok(f)) => f,
        Some(Err(_)) => return bad_request("query \"from\": expected a non-negative integer"),
    };
    respond(s.ask(true, |reply| Event::Log { from, reply }).await)
}

async fn peer_batch<M: DeserializeOwned>(State(s): State<Arc<Shared<M>>>, body: Bytes) -> Response {
    let batch: Batch<M> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("peer batch: {e}")),
    };
    for msg in batch.msgs {
        let ev = Event::Peer {
            from: batch.from.clone(),
            addr: batch.addr.clone(),
            msg,
        };
        if s.events.send(ev).is_err() {
            return respond(Reply::error(500, "node-stopped", true));
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn failpoint<M>(State(s): State<Arc<Shared<M>>>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("body is not JSON: {e}"))
        .and_then(|v| Action::parse(&v));
    match parsed {
        Ok((name, action)) => {
            crate::log!("[{}] failpoint {name} armed: {action:?}", s.id);
            s.failpoints.arm(name.clone(), action);
            respond(Reply::ok(json!({"armed": name})))
        }
        Err(d) => bad_request(d),
    }
}

async fn admin<M>(
    State(s): State<Arc<Shared<M>>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_object(&body) {
        Ok(m) => Value::Object(m),
        Err(d) => return bad_request(d),
    };
    respond(
        s.ask(false, |reply| Event::Admin { name, body, reply })
            .await,
    )
}

async fn not_found() -> Response {
    respond(Reply::error(404, "not-found", true))
}

/// The node's HTTP API; peers POST batches to `peer_path`.
pub fn router<M: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<M>>,
    peer_path: &'static str,
) -> Router {
    Router::new()
        .route("/kv/read", post(kv_read::<M>))
        .route("/kv/write", post(kv_write::<M>))
        .route("/kv/cas", post(kv_cas::<M>))
        .route("/kv/append", post(kv_append::<M>))
        .route("/txn", post(txn::<M>))
        .route("/status", get(status::<M>))
        .route("/log", get(log::<M>))
        .route("/admin/failpoint", post(failpoint::<M>))
        .route("/admin/{name}", post(admin::<M>))
        .route(peer_path, post(peer_batch::<M>))
        .fallback(not_found)
        .with_state(shared)
}
