//! The HTTP API: faultline's node protocol (`/kv/*`, `/txn`, `/status`, `/log`), peer RPC
//! (`/raft/batch`) and admin calls (`/admin/transfer`, `/admin/membership`). Bodies are parsed
//! by hand so malformed input gets a JSON 400 naming the field, never a crash.

use crate::core::NodeId;
use crate::kv::{Op, key_of, parse_txn};
use crate::node::{Event, Reply, Responder, Status};
use crate::transport::Batch;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Shared {
    pub id: NodeId,
    pub bugs: Vec<String>,
    pub events: Sender<Event>,
    pub status: Arc<Mutex<Status>>,
    pub request_timeout: Duration,
    /// Client requests in flight; past `max_inflight` new ones are refused (definite).
    pub inflight: AtomicUsize,
    pub max_inflight: usize,
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

/// Hands an event to the node thread and waits for its answer (bounded by the timeout).
async fn submit(shared: &Shared, read: bool, make: impl FnOnce(Responder) -> Event) -> Response {
    if shared.inflight.fetch_add(1, Ordering::Relaxed) >= shared.max_inflight {
        shared.inflight.fetch_sub(1, Ordering::Relaxed);
        return respond(Reply::error(503, "overloaded", true));
    }
    let _guard = InflightGuard(&shared.inflight);
    let (tx, rx) = tokio::sync::oneshot::channel();
    if shared.events.send(make(tx)).is_err() {
        return respond(Reply::error(500, "node-stopped", read));
    }
    let limit = shared.request_timeout + Duration::from_millis(500);
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(reply)) => respond(reply),
        Ok(Err(_)) => respond(Reply::error(500, "node-stopped", read)),
        Err(_) => respond(Reply::error(504, "timeout", read)),
    }
}

async fn propose(shared: &Shared, op: Op) -> Response {
    let data = serde_json::to_value(op).expect("ops serialize");
    submit(shared, false, |reply| Event::Propose { data, reply }).await
}

async fn kv_read(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let key = match parse_object(&body).and_then(|m| key_field(&m)) {
        Ok(k) => key_of(&k).expect("validated"),
        Err(d) => return bad_request(d),
    };
    submit(&s, true, |reply| Event::Read { key, reply }).await
}

async fn kv_write(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Write {
            key: key_field(&m)?,
            value: field(&m, "value")?,
        })
    });
    match op {
        Ok(op) => propose(&s, op).await,
        Err(d) => bad_request(d),
    }
}

async fn kv_cas(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Cas {
            key: key_field(&m)?,
            from: field(&m, "from")?,
            to: field(&m, "to")?,
        })
    });
    match op {
        Ok(op) => propose(&s, op).await,
        Err(d) => bad_request(d),
    }
}

async fn kv_append(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let op = parse_object(&body).and_then(|m| {
        Ok(Op::Append {
            key: key_field(&m)?,
            value: field(&m, "value")?,
        })
    });
    match op {
        Ok(op) => propose(&s, op).await,
        Err(d) => bad_request(d),
    }
}

async fn txn(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let op = parse_object(&body).and_then(|m| {
        let ops = field(&m, "ops")?;
        let Value::Array(ops) = ops else {
            return Err("field \"ops\": expected an array".to_string());
        };
        parse_txn(&ops).map_err(|e| format!("field \"ops\": {e}"))?;
        Ok(Op::Txn { ops })
    });
    match op {
        Ok(op) => propose(&s, op).await,
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
