//! Reading a node's role, term and leader through the system's status adapter, normalised to
//! the node protocol's `/status` shape: {"id","role","term","leader","commit_index",
//! "applied_index","clock_ms"}.

use std::time::Duration;

use serde_json::{Value, json};

use super::descriptor::StatusAdapter;

/// A normalised `/status` (the node protocol's wire type; `clock_ms` is None when the system
/// does not report its clock, `generation` None for v1 nodes).
pub use faultline_proto::NodeStatus;

/// Fetches `/status` (native) or etcd's maintenance status + member list, as JSON in the
/// node protocol's shape. `members` maps etcd member ids (decimal) to node names.
pub async fn fetch(
    http: &reqwest::Client,
    adapter: StatusAdapter,
    node_id: &str,
    base_url: &str,
    timeout: Duration,
) -> Result<Value, String> {
    match adapter {
        StatusAdapter::Native => {
            let resp = http
                .get(format!("{base_url}/status"))
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("/status answered {}", resp.status()));
            }
            resp.json::<Value>().await.map_err(|e| e.to_string())
        }
        StatusAdapter::Etcd => {
            let post = |path: &'static str| {
                http.post(format!("{base_url}{path}"))
                    .timeout(timeout)
                    .body("{}")
                    .send()
            };
            let status: Value = post("/v3/maintenance/status")
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let members: Value = post("/v3/cluster/member/list")
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            etcd_to_native(node_id, &status, &members)
        }
    }
}

/// The node claiming leadership in the highest term among `statuses` (those that answered).
pub fn leader_of<E>(statuses: impl IntoIterator<Item = Result<Value, E>>) -> Option<String> {
    statuses
        .into_iter()
        .filter_map(|r| NodeStatus::from_value(&r.ok()?))
        .filter(|s| s.role == "leader")
        .max_by_key(|s| s.term)
        .map(|s| s.id)
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Maps etcd's status (ids are decimal strings in the JSON gateway) to the native shape.
///
/// The node is named `node_id`, the harness's name for it, whatever its member name (a
/// cluster someone else started names its members as it likes). Only a leader names a
/// leader (itself): etcd's `raftTerm` is the term of the node's last *applied* entry, and a
/// follower learns of a new leader before it applies an entry of the new term, so a
/// follower's (leader, term) pair can pair the new leader with the old term — a second
/// leader in one term that never was. A follower's `leader` is null.
pub fn etcd_to_native(node_id: &str, status: &Value, members: &Value) -> Result<Value, String> {
    if let Some(err) = status.get("error") {
        return Err(format!("etcd status error: {err}"));
    }
    let me = num(&status["header"]["member_id"]).ok_or("status without header.member_id")?;
    if !members["members"]
        .as_array()
        .is_some_and(|ms| ms.iter().any(|m| num(&m["ID"]) == Some(me)))
    {
        return Err(format!("member {me} is not in its own member list"));
    }
    let leader = num(&status["leader"]).filter(|l| *l != 0);
    let role = match leader {
        Some(l) if l == me => "leader",
        Some(_) => "follower",
        None => "candidate",
    };
    Ok(json!({
        "id": node_id,
        "role": role,
        "term": num(&status["raftTerm"]).unwrap_or(0),
        "leader": (role == "leader").then_some(node_id),
        "commit_index": num(&status["raftIndex"]).unwrap_or(0),
        "applied_index": num(&status["raftAppliedIndex"]).unwrap_or(0),
        "clock_ms": Value::Null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_status_maps_to_native() {
        let status = json!({"header":{"member_id":"111","raft_term":"3"},"leader":"222",
            "raftIndex":"17","raftTerm":"3","raftAppliedIndex":"16"});
        let members = json!({"members":[{"ID":"111","name":"n1"},{"ID":"222","name":"n2"}]});
        let v = etcd_to_native("n1", &status, &members).unwrap();
        let s = NodeStatus::from_value(&v).unwrap();
        assert_eq!(
            s,
            NodeStatus {
                id: "n1".into(),
                role: "follower".into(),
                term: 3,
                // a follower's term may predate its leader's: it names none
                leader: None,
                commit_index: 17,
                applied_index: 16,
                clock_ms: None,
                generation: None,
                lease_until_ms: None,
            }
        );
        let lead = json!({"header":{"member_id":"222"},"leader":"222","raftTerm":"3"});
        let v = etcd_to_native("n2", &lead, &members).unwrap();
        assert_eq!(v["role"], "leader");
        assert_eq!(v["leader"], "n2");
        // the harness's id, not the member name: members named etcd-a/etcd-b
        let named = json!({"members":[{"ID":"111","name":"etcd-a"},{"ID":"222","name":"etcd-b"}]});
        let v = etcd_to_native("n2", &lead, &named).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["leader"].as_str()),
            (Some("n2"), Some("n2"))
        );
        let none = json!({"header":{"member_id":"222"},"leader":"0"});
        assert_eq!(
            etcd_to_native("n2", &none, &members).unwrap()["leader"],
            Value::Null
        );
    }
}
