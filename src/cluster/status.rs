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
/// node protocol's shape. `nodes` (id, client URL) names the harness's nodes, so an etcd
/// member whose name is not its harness id (a cluster someone else started) is still
/// named by its id; empty where member names are the ids.
pub async fn fetch(
    http: &reqwest::Client,
    adapter: StatusAdapter,
    node_id: &str,
    base_url: &str,
    nodes: &[(String, String)],
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
            etcd_to_native(node_id, &status, &members, nodes)
        }
    }
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Maps etcd's status (ids are decimal strings in the JSON gateway) to the native shape.
/// This node is `node_id`; another member is the harness node whose client URL it
/// advertises (`nodes`: id, client URL), else the node named like it, else its etcd name.
pub fn etcd_to_native(
    node_id: &str,
    status: &Value,
    members: &Value,
    nodes: &[(String, String)],
) -> Result<Value, String> {
    if let Some(err) = status.get("error") {
        return Err(format!("etcd status error: {err}"));
    }
    let me = num(&status["header"]["member_id"]).ok_or("status without header.member_id")?;
    let name_of = |id: u64| -> Option<String> {
        if id == me {
            return Some(node_id.to_string());
        }
        let m = members["members"]
            .as_array()?
            .iter()
            .find(|m| num(&m["ID"]) == Some(id))?;
        let urls: Vec<&str> = m["clientURLs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|u| u.trim_end_matches('/'))
            .collect();
        nodes
            .iter()
            .find(|(_, url)| urls.contains(&url.trim_end_matches('/')))
            .map(|(id, _)| id.clone())
            .or_else(|| m["name"].as_str().map(str::to_string))
    };
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
        "leader": leader.and_then(name_of),
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
        let v = etcd_to_native("n1", &status, &members, &[]).unwrap();
        let s = NodeStatus::from_value(&v).unwrap();
        assert_eq!(
            s,
            NodeStatus {
                id: "n1".into(),
                role: "follower".into(),
                term: 3,
                leader: Some("n2".into()),
                commit_index: 17,
                applied_index: 16,
                clock_ms: None,
                generation: None,
                lease_until_ms: None,
            }
        );
        let lead = json!({"header":{"member_id":"222"},"leader":"222","raftTerm":"3"});
        let v = etcd_to_native("n2", &lead, &members, &[]).unwrap();
        assert_eq!(v["role"], "leader");
        let none = json!({"header":{"member_id":"222"},"leader":"0"});
        assert_eq!(
            etcd_to_native("n2", &none, &members, &[]).unwrap()["leader"],
            Value::Null
        );
    }

    #[test]
    fn etcd_members_named_otherwise_map_to_harness_ids_by_client_url() {
        // an external cluster: members named etcd-a/etcd-b, the inventory says n1/n2
        let members = json!({"members":[
            {"ID":"111","name":"etcd-a","clientURLs":["http://10.0.0.1:2379"]},
            {"ID":"222","name":"etcd-b","clientURLs":["http://10.0.0.2:2379/"]},
            {"ID":"333","name":"etcd-c","clientURLs":["http://elsewhere:2379"]}]});
        let nodes = vec![
            ("n1".to_string(), "http://10.0.0.1:2379".to_string()),
            ("n2".to_string(), "http://10.0.0.2:2379".to_string()),
        ];
        let st =
            |leader: &str| json!({"header":{"member_id":"111"},"leader":leader,"raftTerm":"4"});
        let v = etcd_to_native("n1", &st("222"), &members, &nodes).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["leader"].as_str()),
            (Some("n1"), Some("n2"))
        );
        assert_eq!(v["role"], "follower");
        let v = etcd_to_native("n1", &st("111"), &members, &nodes).unwrap();
        assert_eq!(
            (v["role"].as_str(), v["leader"].as_str()),
            (Some("leader"), Some("n1"))
        );
        // a member no inventory URL names keeps its etcd name
        let v = etcd_to_native("n1", &st("333"), &members, &nodes).unwrap();
        assert_eq!(v["leader"], "etcd-c");
    }
}
