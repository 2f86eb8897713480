//! Jepsen's op maps (`{:process 0, :type :invoke, :f :cas, :value [1 2]}`), from EDN or
//! from JSON, turned into loose events that `import::assemble` makes into a history.

use std::path::Path;

use serde_json::Value;

use super::edn::Edn;
use super::error::HistoryError;
use super::event::{EventType, Process};

/// An event as an importer read it, before the leniency Jepsen allows is applied
/// (no dense index yet, times possibly missing or out of order, processes reused).
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// 1-based input line.
    pub line: usize,
    /// `None` when the op map has no `:process` (Elle's hand-written examples).
    pub process: Option<Process>,
    pub kind: EventType,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    pub time: Option<u64>,
    pub node: Option<String>,
    pub error: Option<String>,
}

/// Converts one Jepsen op map. `file` and `line` name it in errors.
pub fn from_edn(op: &Edn, file: &Path, line: usize) -> Result<RawEvent, HistoryError> {
    let bad = |field: &str, msg: String| HistoryError::malformed(file, line, field, msg);
    if !is_map(op) {
        return Err(bad(
            "op",
            format!("expected an op map, found {}", short(op)),
        ));
    }
    let process = match op.get("process") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(p)) if *p >= 0 => Some(Process::Client(*p as u64)),
        Some(Edn::Keyword(n) | Edn::Str(n) | Edn::Symbol(n)) => match n.parse::<u64>() {
            Ok(p) => Some(Process::Client(p)),
            Err(_) => Some(Process::Named(n.clone())),
        },
        Some(other) => {
            return Err(bad(
                "process",
                format!(
                    "must be a non-negative integer or a name such as :nemesis, found {}",
                    short(other)
                ),
            ));
        }
    };
    let kind = match op.get("type").and_then(Edn::as_name) {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        Some(other) => {
            return Err(bad(
                "type",
                format!("must be one of :invoke, :ok, :fail, :info, found :{other}"),
            ));
        }
        None => {
            let found = op.get("type").map_or("nothing".to_string(), short);
            return Err(bad("type", format!("must be a keyword, found {found}")));
        }
    };
    let value = op.get("value").map_or(Value::Null, Edn::to_json);
    let f = match op.get("f") {
        Some(Edn::Keyword(f) | Edn::Str(f) | Edn::Symbol(f)) => f.clone(),
        // elle-cli's JSON histories leave out `:f` on transactions.
        None if looks_like_txn(&value) => "txn".to_string(),
        None => return Err(bad("f", "missing".into())),
        Some(other) => {
            return Err(bad(
                "f",
                format!("must be a keyword, found {}", short(other)),
            ));
        }
    };
    let key = match op.get("key") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(k) | Edn::Keyword(k) | Edn::Symbol(k)) => Some(k.clone()),
        Some(Edn::Int(k)) => Some(k.to_string()),
        Some(other) => {
            return Err(bad(
                "key",
                format!(
                    "must be a string, keyword or integer, found {}",
                    short(other)
                ),
            ));
        }
    };
    let time = match op.get("time") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
        Some(other) => {
            return Err(bad(
                "time",
                format!(
                    "must be non-negative integer nanoseconds, found {}",
                    short(other)
                ),
            ));
        }
    };
    let node = op.get("node").and_then(|n| match n {
        Edn::Nil => None,
        n => Some(n.as_name().map_or_else(|| n.to_string(), str::to_string)),
    });
    let error = op.get("error").and_then(|e| match e {
        Edn::Nil => None,
        Edn::Str(s) | Edn::Keyword(s) => Some(s.clone()),
        other => Some(other.to_string()),
    });
    Ok(RawEvent {
        line,
        process,
        kind,
        f,
        key,
        value,
        time,
        node,
        error,
    })
}

fn is_map(op: &Edn) -> bool {
    match op {
        Edn::Map(_) => true,
        Edn::Tagged(_, inner) => is_map(inner),
        _ => false,
    }
}

fn looks_like_txn(v: &Value) -> bool {
    v.as_array().is_some_and(|ops| {
        !ops.is_empty()
            && ops
                .iter()
                .all(|m| m.as_array().is_some_and(|m| m.len() == 3))
    })
}

/// A value shortened for an error message.
fn short(v: &Edn) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::parse_str;
    use serde_json::json;

    fn conv(s: &str) -> Result<RawEvent, HistoryError> {
        from_edn(&parse_str(s).unwrap(), Path::new("h.edn"), 7)
    }

    #[test]
    fn converts_client_and_nemesis_ops() {
        let e = conv("{:process 3, :type :ok, :f :cas, :value [1 2], :time 5}").unwrap();
        assert_eq!(e.process, Some(Process::Client(3)));
        assert_eq!(e.kind, EventType::Ok);
        assert_eq!(e.f, "cas");
        assert_eq!(e.value, json!([1, 2]));
        assert_eq!(e.time, Some(5));
        let n = conv("{:process :nemesis, :type :info, :f :start, :value \"cut\"}").unwrap();
        assert_eq!(n.process, Some(Process::nemesis()));
        let k = conv("{:process 0, :type :invoke, :f :get, :key \"4\", :value nil}").unwrap();
        assert_eq!(k.key.as_deref(), Some("4"));
        let t = conv("#jepsen.history.Op{:process 1, :type :invoke, :value [[:r 1 nil]]}").unwrap();
        assert_eq!(t.f, "txn");
        assert_eq!(t.value, json!([["r", 1, null]]));
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            ("{:process 1, :type :begin, :f :read}", "h.edn:7: type:"),
            ("{:process 1, :type :ok, :f 3}", "h.edn:7: f:"),
            ("{:process [1], :type :ok, :f :read}", "h.edn:7: process:"),
            (
                "{:process 1, :type :ok, :f :read, :time -3}",
                "h.edn:7: time:",
            ),
            ("[1 2]", "h.edn:7: op:"),
        ];
        for (input, want) in cases {
            let err = conv(input).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }
}
