//! Importer for elle-cli's JSON histories: one JSON array of Jepsen op maps,
//! `{"index","process","type","f"?,"value":[["append",1,1],...]}`, without `time` and
//! often without `f`. Ops keep the array's order; indexes are renumbered densely and
//! times synthesized from position, so `History::from_events` can validate them.

use std::path::Path;

use serde_json::Value;

use super::error::HistoryError;
use super::event::{Event, EventType, Process};
use super::operation::History;

pub fn read_path(path: &Path) -> Result<History, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError::io(path, e))?;
    parse(&text, path)
}

/// Parses the text of an elle-cli JSON history; `path` names it in errors. Errors give the
/// line on which the offending op starts.
pub fn parse(text: &str, path: &Path) -> Result<History, HistoryError> {
    let ops: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        HistoryError::malformed(path, e.line(), "json", format!("not a JSON array of ops: {e}"))
    })?;
    let line_starts = op_lines(text, ops.len());
    let mut events = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let line = line_starts[i];
        let bad = |field: &str, msg: String| HistoryError::malformed(path, line, field, msg);
        let obj = op
            .as_object()
            .ok_or_else(|| bad("op", format!("each op must be a JSON object, found {op}")))?;
        let process = match obj.get("process") {
            Some(Value::Number(n)) if n.is_u64() => Process::Client(n.as_u64().unwrap_or(0)),
            Some(Value::String(s)) => Process::Named(s.clone()),
            other => {
                return Err(bad(
                    "process",
                    format!("must be a non-negative integer or a name, found {}", show(other)),
                ));
            }
        };
        let kind = match obj.get("type").and_then(Value::as_str) {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            _ => {
                return Err(bad(
                    "type",
                    format!("must be one of invoke, ok, fail, info, found {}", show(obj.get("type"))),
                ));
            }
        };
        let f = match obj.get("f") {
            None | Some(Value::Null) => "txn".to_string(),
            Some(Value::String(s)) => s.trim_start_matches(':').to_string(),
            Some(other) => return Err(bad("f", format!("must be a string, found {other}"))),
        };
        // Order, not clock readings, is what the checkers use: time is the position.
        let time = i as u64;
        events.push(Event {
            index: i as u64,
            time,
            process,
            kind,
            f,
            key: None,
            value: obj.get("value").cloned().unwrap_or(Value::Null),
            node: None,
            error: obj.get("error").map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        });
    }
    History::from_events(events, path, Some(&line_starts))
}

fn show(v: Option<&Value>) -> String {
    v.map_or("nothing".to_string(), |v| v.to_string())
}

/// The 1-based line on which each top-level op object starts (by brace depth), so errors
/// can point into the file.
fn op_lines(text: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    let (mut depth, mut line, mut in_str, mut esc) = (0i32, 1usize, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => {
                if depth == 1 {
                    out.push(line);
                }
                depth += 1;
            }
            '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    out.resize(n.max(out.len()), line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn reads_elle_cli_ops_without_f_or_time() {
        let text = r#"[{"index":0,"process":0,"type":"invoke","value":[["append",1,1]]},
 {"index":1,"process":0,"type":"ok","value":[["append",1,1]]},
 {"index":2,"process":1,"type":"invoke","value":[["r",1,null]]},
 {"index":3,"process":1,"type":"ok","value":[["r",1,[1]]]}]"#;
        let h = parse(text, Path::new("x.json")).unwrap();
        assert_eq!(h.operations.len(), 2);
        assert_eq!(h.operations[1].f, "txn");
        assert_eq!(h.operations[1].outcome, Outcome::Ok);
        assert_eq!(h.operations[1].value, serde_json::json!([["r", 1, [1]]]));
    }

    #[test]
    fn names_the_line_of_a_bad_op() {
        let text = "[{\"index\":0,\"process\":0,\"type\":\"invoke\",\"value\":[]},\n {\"index\":1,\"process\":0,\"type\":\"maybe\",\"value\":[]}]";
        let err = parse(text, Path::new("x.json")).unwrap_err().to_string();
        assert!(err.starts_with("x.json:2: type:"), "{err}");
    }
}
