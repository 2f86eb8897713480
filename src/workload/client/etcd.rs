//! etcd's v3 JSON gateway (`/v3/kv/range|put|txn`, base64 keys and values). Values are
//! stored as JSON text. Ranges are linearizable (etcd's default). A set is one key per
//! element under `set/`. etcd forwards to its leader, so there is no `not-leader`.
//! (Status comes from the cluster runtime's status adapter.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::post_json;
use crate::workload::generator::SET_KEY;
use crate::workload::op::{OpRequest, Reply};

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

fn unb64(v: &Value) -> Option<String> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    String::from_utf8(bytes).ok()
}

fn set_prefix() -> String {
    format!("{SET_KEY}/")
}

pub async fn invoke(http: &reqwest::Client, base: &str, op: &OpRequest) -> Reply {
    let key = op.key.clone().unwrap_or_default();
    let (path, body) = match op.f.as_str() {
        "read" if op.key.is_none() => {
            // every key in [set/, set0): '0' follows '/'
            let end = format!("{SET_KEY}0");
            (
                "/v3/kv/range",
                json!({"key": b64(&set_prefix()), "range_end": b64(&end)}),
            )
        }
        "read" => ("/v3/kv/range", json!({"key": b64(&key)})),
        "write" => (
            "/v3/kv/put",
            json!({"key": b64(&key), "value": b64(&op.value.to_string())}),
        ),
        "add" => (
            "/v3/kv/put",
            json!({"key": b64(&format!("{}{}", set_prefix(), op.value)), "value": b64(&op.value.to_string())}),
        ),
        "cas" => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": b64(&key), "target": "VALUE", "result": "EQUAL",
                             "value": b64(&op.value[0].to_string())}],
                "success": [{"request_put": {"key": b64(&key), "value": b64(&op.value[1].to_string())}}],
            }),
        ),
        other => return Reply::Fail(format!("unsupported op {other} on etcd")),
    };
    let (status, body) = match post_json(http, format!("{base}{path}"), &body).await {
        Ok(answer) => answer,
        Err(reply) => return reply,
    };
    if !status.is_success() || body.get("error").is_some() {
        let msg = body
            .get("message")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("http {}", status.as_u16()), str::to_string);
        // The gateway cannot tell whether a failed proposal was applied: unknown, unless
        // the request was refused outright (4xx).
        return if status.is_client_error() {
            Reply::Fail(msg)
        } else {
            Reply::Info(msg)
        };
    }
    completion(op, &body)
}

fn completion(op: &OpRequest, body: &Value) -> Reply {
    let kvs = body.get("kvs").and_then(Value::as_array);
    match op.f.as_str() {
        "read" if op.key.is_none() => {
            let mut elems = Vec::new();
            for kv in kvs.into_iter().flatten() {
                match kv
                    .get("value")
                    .and_then(unb64)
                    .and_then(|s| serde_json::from_str(&s).ok())
                {
                    Some(v) => elems.push(v),
                    None => return Reply::Info(format!("undecodable set element {kv}")),
                }
            }
            Reply::Ok(Value::Array(elems))
        }
        "read" => match kvs.and_then(|k| k.first()) {
            None => Reply::Ok(Value::Null),
            Some(kv) => match kv
                .get("value")
                .and_then(unb64)
                .and_then(|s| serde_json::from_str(&s).ok())
            {
                Some(v) => Reply::Ok(v),
                None => Reply::Info(format!("undecodable value {kv}")),
            },
        },
        "cas" => {
            if body.get("succeeded").and_then(Value::as_bool) == Some(true) {
                Reply::Ok(op.value.clone())
            } else {
                Reply::Fail("precondition-failed".into())
            }
        }
        _ => Reply::Ok(op.value.clone()),
    }
}
