//! One line of a native history: an invocation or a completion, as DESIGN.md specifies.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who issued an event: a client process (an integer) or a named actor such as
/// `"nemesis"` or `"probe"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Named(String),
}

impl Process {
    pub const NEMESIS: &'static str = "nemesis";
    pub const PROBE: &'static str = "probe";

    pub fn nemesis() -> Self {
        Process::Named(Self::NEMESIS.to_string())
    }

    pub fn probe() -> Self {
        Process::Named(Self::PROBE.to_string())
    }

    pub fn client(&self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(*p),
            Process::Named(_) => None,
        }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Named(n) => f.write_str(n),
        }
    }
}

/// `invoke`, then exactly one of `ok` (happened), `fail` (definitely did not happen)
/// or `info` (unknown: may take effect at any time after its invoke, or never).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dense from 0, in the order events happened.
    pub index: u64,
    /// Nanoseconds since the run began, from a monotonic clock.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    /// Ops on different keys are independent. Integer keys are read as their decimal text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "key_text"
    )]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The request id the client sent with the op (node protocol `request_id`), on its
    /// completion: what a node's `/log` names the op by. Optional (older histories lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn key_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(de::Error::custom(format!(
            "key must be a string or an integer, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_design_examples() {
        let lines = [
            r#"{"index":0,"time":1203344,"process":3,"type":"invoke","f":"cas","key":"k1","value":[1,2]}"#,
            r#"{"index":2,"time":5300000,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n3","n4","n5"]}}}"#,
        ];
        for line in lines {
            let e: Event = serde_json::from_str(line).unwrap();
            let back: Value = serde_json::to_value(&e).unwrap();
            assert_eq!(back, serde_json::from_str::<Value>(line).unwrap());
        }
    }

    #[test]
    fn integer_keys_become_text() {
        let e: Event = serde_json::from_str(
            r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"read","key":7,"value":null}"#,
        )
        .unwrap();
        assert_eq!(e.key.as_deref(), Some("7"));
        assert_eq!(e.process, Process::Client(1));
    }
}
