//! etcd's v3 JSON gateway (`/v3/kv/range|put|txn`, base64 keys and values). Values are
//! stored as JSON text. Ranges are linearizable (etcd's default). A set is one key per
//! element under `<set>/` (`set`: where a set op's elements live, see `Client::set_target`). etcd forwards to its
//! leader, so there is no `not-leader`.
//! (Status comes from the cluster runtime's status adapter.)
//!
//! A list-append transaction is optimistic, as in Jepsen's etcd test: one linearizable
//! read of every key it touches, then (if it appends) one etcd txn that writes the new
//! lists only if no key's `mod_revision` moved since. A moved key fails the transaction
//! definitely: etcd applied none of it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::post_json;
use crate::workload::op::{OpRequest, Reply};

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// A key-value's `value`: base64 of the JSON text this adapter stored.
fn kv_value<T: serde::de::DeserializeOwned>(kv: &Value) -> Option<T> {
    let bytes = B64.decode(kv.get("value")?.as_str()?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a set's elements live: `[<set_key>/, <set_key>0)` ('0' follows '/').
fn set_range(set_key: &str) -> (String, String) {
    (format!("{set_key}/"), format!("{set_key}0"))
}

pub async fn invoke(
    http: &reqwest::Client,
    base: &str,
    op: &OpRequest,
    set: Option<&str>,
) -> Reply {
    let key = op.key.clone().unwrap_or_default();
    if op.f == "txn" {
        return txn(http, base, &op.value).await;
    }
    let (path, body) = match (op.f.as_str(), set) {
        ("read", Some(set)) => {
            let (start, end) = set_range(set);
            (
                "/v3/kv/range",
                json!({"key": b64(&start), "range_end": b64(&end)}),
            )
        }
        ("read", None) => ("/v3/kv/range", json!({"key": b64(&key)})),
        ("write", _) => (
            "/v3/kv/put",
            json!({"key": b64(&key), "value": b64(&op.value.to_string())}),
        ),
        ("add", Some(set)) => (
            "/v3/kv/put",
            json!({"key": b64(&format!("{}{}", set_range(set).0, op.value)), "value": b64(&op.value.to_string())}),
        ),
        ("cas", _) => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": b64(&key), "target": "VALUE", "result": "EQUAL",
                             "value": b64(&op.value[0].to_string())}],
                "success": [{"request_put": {"key": b64(&key), "value": b64(&op.value[1].to_string())}}],
            }),
        ),
        (other, _) => return Reply::Fail(format!("unsupported op {other} on etcd")),
    };
    match exchange(http, base, path, &body).await {
        Ok(body) => completion(op, set.is_some(), &body),
        Err(reply) => reply,
    }
}

/// One gateway call: the answer's body, or the op's reply when it went wrong.
async fn exchange(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> Result<Value, Reply> {
    let (status, body) = post_json(http, format!("{base}{path}"), body).await?;
    if !status.is_success() || body.get("error").is_some() {
        let msg = body
            .get("message")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("http {}", status.as_u16()), str::to_string);
        // The gateway cannot tell whether a failed proposal was applied: unknown, unless
        // the request was refused outright (4xx).
        return Err(if status.is_client_error() {
            Reply::Fail(msg)
        } else {
            Reply::Info(msg)
        });
    }
    Ok(body)
}

/// A list-append transaction (`[["r", k, null] | ["append", k, v], ...]`): read, then a
/// guarded write. The completion has every read's list as of the transaction's point.
async fn txn(http: &reqwest::Client, base: &str, ops: &Value) -> Reply {
    let Some(ops) = ops.as_array() else {
        return Reply::Fail(format!("malformed txn {ops}"));
    };
    let mut keys: Vec<&str> = Vec::new();
    for m in ops {
        match (
            m.get(0).and_then(Value::as_str),
            m.get(1).and_then(Value::as_str),
        ) {
            (Some("r" | "append"), Some(k)) => {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            _ => return Reply::Fail(format!("malformed micro-op {m}")),
        }
    }
    let ranges: Vec<Value> = keys
        .iter()
        .map(|k| json!({"request_range": {"key": b64(k)}}))
        .collect();
    // The read is a write-free etcd txn: every key at one revision, linearizably. Its
    // failure changes nothing, so it is a definite fail.
    let read = match exchange(http, base, "/v3/kv/txn", &json!({"success": ranges})).await {
        Ok(body) => body,
        Err(Reply::Info(e)) => return Reply::Fail(format!("read phase (nothing written): {e}")),
        Err(other) => return other,
    };
    // (the list, or None for a key never written as native nodes answer; its mod_revision)
    let mut lists: Vec<(Option<Vec<Value>>, String)> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let kv = read["responses"][i]["response_range"]["kvs"].get(0);
        let Some(kv) = kv else {
            lists.push((None, "0".into()));
            continue;
        };
        let list: Option<Vec<Value>> = kv_value(kv);
        let rev = match &kv["mod_revision"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match list {
            Some(l) if !rev.is_empty() => lists.push((Some(l), rev)),
            _ => return Reply::Fail(format!("key {k}: undecodable list {kv}")),
        }
    }
    let mut done = Vec::with_capacity(ops.len());
    let mut written = vec![false; keys.len()];
    for m in ops {
        let k = m[1].as_str().expect("checked above");
        let i = keys.iter().position(|x| *x == k).expect("collected above");
        if m[0] == "r" {
            done.push(json!(["r", k, lists[i].0]));
        } else {
            lists[i].0.get_or_insert_default().push(m[2].clone());
            written[i] = true;
            done.push(m.clone());
        }
    }
    if !written.contains(&true) {
        return Reply::Ok(Value::Array(done));
    }
    let compare: Vec<Value> = keys
        .iter()
        .zip(&lists)
        .map(|(k, (_, rev))| {
            json!({"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev})
        })
        .collect();
    let puts: Vec<Value> = keys
        .iter()
        .zip(&lists)
        .zip(&written)
        .filter(|(_, w)| **w)
        .map(|((k, (list, _)), _)| {
            json!({"request_put": {"key": b64(k), "value": b64(&json!(list).to_string())}})
        })
        .collect();
    let body = json!({"compare": compare, "success": puts});
    match exchange(http, base, "/v3/kv/txn", &body).await {
        Ok(b) if b.get("succeeded").and_then(Value::as_bool) == Some(true) => {
            Reply::Ok(Value::Array(done))
        }
        Ok(_) => Reply::Fail("conflict: a key changed since it was read".into()),
        Err(reply) => reply,
    }
}

fn completion(op: &OpRequest, set: bool, body: &Value) -> Reply {
    let kvs = body.get("kvs").and_then(Value::as_array);
    match op.f.as_str() {
        "read" if set => {
            let mut elems = Vec::new();
            for kv in kvs.into_iter().flatten() {
                match kv_value(kv) {
                    Some(v) => elems.push(v),
                    None => return Reply::Info(format!("undecodable set element {kv}")),
                }
            }
            Reply::Ok(Value::Array(elems))
        }
        "read" => match kvs.and_then(|k| k.first()) {
            None => Reply::Ok(Value::Null),
            Some(kv) => match kv_value(kv) {
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
