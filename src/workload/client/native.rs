//! DESIGN.md's node protocol: `/kv/read|write|cas`, `/txn`; a set is appends to one list
//! (`set`: where a set op's elements live, see `Client::set_target`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::post_json;
use crate::workload::op::{OpRequest, Reply};

pub async fn invoke(
    http: &reqwest::Client,
    base: &str,
    op: &OpRequest,
    set: Option<&str>,
) -> Reply {
    let key = op.key.clone().unwrap_or_default();
    let (path, body) = match (op.f.as_str(), set) {
        ("read", Some(set)) => ("/txn", json!({"ops": [["r", set, null]]})),
        ("add", Some(set)) => ("/txn", json!({"ops": [["append", set, op.value]]})),
        ("read", None) => ("/kv/read", json!({"key": key})),
        ("write", _) => ("/kv/write", json!({"key": key, "value": op.value})),
        ("cas", _) => (
            "/kv/cas",
            json!({"key": key, "from": op.value[0], "to": op.value[1]}),
        ),
        ("txn", _) => ("/txn", json!({"ops": op.value})),
        (other, _) => return Reply::Fail(format!("unsupported op {other}")),
    };
    let mut body = body;
    if let Some(rid) = &op.request_id
        && path != "/kv/read"
    {
        body[faultline_proto::REQUEST_ID] = json!(rid);
    }
    let (status, body) = match post_json(http, format!("{base}{path}"), &body).await {
        Ok(answer) => answer,
        Err(reply) => return reply,
    };
    if status == StatusCode::OK {
        return completion(op, set.is_some(), body);
    }
    error_reply(status, &body)
}

/// The completion value of a successful op, in the history's shapes.
fn completion(op: &OpRequest, set: bool, body: Value) -> Reply {
    match op.f.as_str() {
        "read" if set => {
            // the set: the list read by the single `r` micro-op
            let list = body["ops"][0][2].clone();
            Reply::Ok(if list.is_null() { json!([]) } else { list })
        }
        "read" => match body.get("value") {
            Some(v) => Reply::Ok(v.clone()),
            None => Reply::Info(format!("malformed read answer {body}")),
        },
        "txn" => match body.get("ops") {
            Some(ops) if ops.is_array() => Reply::Ok(ops.clone()),
            _ => Reply::Info(format!("malformed txn answer {body}")),
        },
        _ => Reply::Ok(op.value.clone()),
    }
}

/// Maps an error answer: `definite` decides fail vs info; without it a 4xx is definite.
pub fn error_reply(status: StatusCode, body: &Value) -> Reply {
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| format!("http {}", status.as_u16()), str::to_string);
    let definite = body
        .get("definite")
        .and_then(Value::as_bool)
        .unwrap_or(status.is_client_error());
    if error == "not-leader" && definite {
        return Reply::NotLeader(
            body.get("leader")
                .and_then(Value::as_str)
                .map(str::to_string),
        );
    }
    if definite {
        Reply::Fail(error)
    } else {
        Reply::Info(error)
    }
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: http {}", status.as_u16()));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_by_definiteness() {
        let nl = json!({"error":"not-leader","leader":"n2","definite":true});
        assert_eq!(
            error_reply(StatusCode::CONFLICT, &nl),
            Reply::NotLeader(Some("n2".into()))
        );
        let pf = json!({"error":"precondition-failed","definite":true});
        assert_eq!(
            error_reply(StatusCode::CONFLICT, &pf),
            Reply::Fail("precondition-failed".into())
        );
        let to = json!({"error":"timeout","definite":false});
        assert_eq!(
            error_reply(StatusCode::SERVICE_UNAVAILABLE, &to),
            Reply::Info("timeout".into())
        );
        assert_eq!(
            error_reply(StatusCode::BAD_GATEWAY, &Value::Null),
            Reply::Info("http 502".into())
        );
        assert_eq!(
            error_reply(StatusCode::BAD_REQUEST, &Value::Null),
            Reply::Fail("http 400".into())
        );
    }

    #[test]
    fn completions_take_the_history_shapes() {
        let set_read = OpRequest::new("read", None, Value::Null);
        assert_eq!(
            completion(&set_read, true, json!({"ops":[["r","set",[1,2]]]})),
            Reply::Ok(json!([1, 2]))
        );
        assert_eq!(
            completion(&set_read, true, json!({"ops":[["r","set",null]]})),
            Reply::Ok(json!([]))
        );
        let cas = OpRequest::new("cas", Some("k".into()), json!([1, 2]));
        assert_eq!(completion(&cas, false, json!({})), Reply::Ok(json!([1, 2])));
        let read = OpRequest::new("read", Some("k".into()), Value::Null);
        assert_eq!(
            completion(&read, false, json!({"value":null})),
            Reply::Ok(Value::Null)
        );
    }
}
