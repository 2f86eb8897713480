//! A minimal in-process node speaking DESIGN.md's node protocol from one in-memory map,
//! answering at once. It exists to measure the harness's own ceiling (nothing to wait
//! for but the harness) and to exercise the client path over real sockets in tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

type Store = Arc<Mutex<HashMap<String, Value>>>;

/// Serves until the returned handle is aborted or the runtime ends.
pub async fn serve(id: &str) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let store: Store = Arc::default();
    let id = id.to_string();
    let app = Router::new()
        .route("/kv/read", post(read))
        .route("/kv/write", post(write))
        .route("/kv/cas", post(cas))
        .route("/txn", post(txn))
        .route(
            "/status",
            get(move || {
                let id = id.clone();
                async move {
                    Json(json!({"id": id, "role": "leader", "term": 1, "leader": id,
                                "commit_index": 0, "applied_index": 0,
                                "clock_ms": std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)}))
                }
            }),
        )
        .route("/log", get(|| async { Json(json!([])) }))
        .with_state(store);
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, handle))
}

fn key_of(body: &Value) -> String {
    match &body["key"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn read(State(s): State<Store>, Json(body): Json<Value>) -> Json<Value> {
    let v = s
        .lock()
        .unwrap()
        .get(&key_of(&body))
        .cloned()
        .unwrap_or(Value::Null);
    Json(json!({ "value": v }))
}

async fn write(State(s): State<Store>, Json(body): Json<Value>) -> Json<Value> {
    s.lock()
        .unwrap()
        .insert(key_of(&body), body["value"].clone());
    Json(json!({}))
}

async fn cas(State(s): State<Store>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut m = s.lock().unwrap();
    let k = key_of(&body);
    if m.get(&k).unwrap_or(&Value::Null) == &body["from"] {
        m.insert(k, body["to"].clone());
        (StatusCode::OK, Json(json!({})))
    } else {
        (
            StatusCode::CONFLICT,
            Json(json!({"error": "precondition-failed", "definite": true})),
        )
    }
}

async fn txn(State(s): State<Store>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let Some(ops) = body["ops"].as_array() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "ops must be a list", "definite": true})),
        );
    };
    let mut m = s.lock().unwrap();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let k = match &op[1] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match op[0].as_str() {
            Some("r") => out.push(json!([
                "r",
                op[1],
                m.get(&k).cloned().unwrap_or(Value::Null)
            ])),
            Some("append") => {
                let list = m.entry(k).or_insert_with(|| json!([]));
                if let Some(l) = list.as_array_mut() {
                    l.push(op[2].clone());
                }
                out.push(op.clone());
            }
            Some("w") => {
                m.insert(k, op[2].clone());
                out.push(op.clone());
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("bad micro-op {op}"), "definite": true})),
                );
            }
        }
    }
    (StatusCode::OK, Json(json!({ "ops": out })))
}
