//! One operation a client asks for, and how it ended, in the history's vocabulary.

use serde_json::Value;

/// What a client invokes: `f`, optional `key`, and the invoke `value` (DESIGN's shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct OpRequest {
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    /// Sent as the node protocol's `request_id` (`"<key prefix><process>:<invoke index>"`,
    /// unique in a run, and across runs on one cluster by the run's key prefix), so a node
    /// applies the op at most once and `/log` names it.
    pub request_id: Option<String>,
}

impl OpRequest {
    pub fn new(f: &str, key: Option<String>, value: Value) -> Self {
        OpRequest {
            f: f.to_string(),
            key,
            value,
            request_id: None,
        }
    }

    /// True when the op cannot change state, so an unknown outcome may be recorded as
    /// `fail` (Jepsen does the same): reads and read-only transactions.
    pub fn is_read_only(&self) -> bool {
        match self.f.as_str() {
            "read" => true,
            "txn" => self.value.as_array().is_some_and(|ops| {
                ops.iter()
                    .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
            }),
            _ => false,
        }
    }
}

/// How one attempt ended, after an adapter mapped the node's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// It happened; the completion's value (e.g. what a read saw).
    Ok(Value),
    /// It definitely did not happen.
    Fail(String),
    /// Unknown: timeout, connection lost mid-request, or an error that is not definite.
    Info(String),
    /// Definitely not done: the node is not the leader (and may name the one it knows).
    NotLeader(Option<String>),
}

impl Reply {
    /// Applies Jepsen's rule that an unknown read is a failed read.
    pub fn settle(self, op: &OpRequest) -> Reply {
        match self {
            Reply::Info(e) if op.is_read_only() => Reply::Fail(e),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_reads_settle_as_fail_unknown_writes_stay_info() {
        let read = OpRequest::new("read", Some("1".into()), Value::Null);
        let write = OpRequest::new("write", Some("1".into()), json!(3));
        let rtxn = OpRequest::new("txn", None, json!([["r", "1", null], ["r", "2", null]]));
        let wtxn = OpRequest::new("txn", None, json!([["r", "1", null], ["append", "2", 4]]));
        let info = || Reply::Info("timeout".into());
        assert_eq!(info().settle(&read), Reply::Fail("timeout".into()));
        assert_eq!(info().settle(&rtxn), Reply::Fail("timeout".into()));
        assert_eq!(info().settle(&write), info());
        assert_eq!(info().settle(&wtxn), info());
    }
}
