//! Jepsen's log lines (the 2015 etcd runs Porcupine ships):
//! `INFO  jepsen.util - <process> :<type> :<f> <value>`, fields separated by a tab or
//! by runs of spaces. Lines that are not op lines (other loggers, stack traces) are skipped.

use std::path::Path;

use serde_json::Value;

use super::edn::{self, Edn};
use super::error::HistoryError;
use super::event::{EventType, Process};
use super::jepsen_op::RawEvent;

pub(crate) const MARKER: &str = "jepsen.util - ";

/// Where `MARKER` starts in `line` (a searcher built once, not once a line).
pub(crate) fn find_marker(line: &str) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(MARKER));
    FINDER.find(line.as_bytes())
}

/// Parses every op line of `text`.
pub fn parse(text: &str, file: &Path) -> Result<Vec<RawEvent>, HistoryError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(e) = parse_line(line, file, i + 1)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Whether `line` looks like a Jepsen op log line (used by format detection).
pub fn is_op_line(line: &str) -> bool {
    find_marker(line).is_some_and(|at| {
        let mut it = line[at + MARKER.len()..].split_whitespace();
        let p = it.next();
        let t = it.next();
        p.is_some() && t.is_some_and(|t| matches!(t, ":invoke" | ":ok" | ":fail" | ":info"))
    })
}

/// One line: its op, or `None` for a line that is not an op line. `no` names it in errors.
pub(crate) fn parse_line(
    line: &str,
    file: &Path,
    no: usize,
) -> Result<Option<RawEvent>, HistoryError> {
    let Some(at) = find_marker(line) else {
        return Ok(None);
    };
    let bad = |field: &str, msg: String| HistoryError::malformed(file, no, field, msg);
    let rest = line[at + MARKER.len()..].trim();
    let (process, rest) = split_field(rest);
    let (kind, rest) = split_field(rest);
    let kind = match kind {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        // Free-form messages from jepsen.util (e.g. nemesis chatter) are not ops.
        _ => return Ok(None),
    };
    let process = match process.parse::<u64>() {
        Ok(p) => Process::Client(p),
        Err(_) if process.starts_with(':') => Process::Named(process[1..].to_string()),
        Err(_) => {
            return Err(bad(
                "process",
                format!("must be an integer or a name such as :nemesis, found {process:?}"),
            ));
        }
    };
    let (f, rest) = split_field(rest);
    let f = f
        .strip_prefix(':')
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad("f", format!("must be a keyword such as :read, found {f:?}")))?;
    let rest = rest.trim();
    let (value, error) = if rest.is_empty() {
        (Value::Null, None)
    } else {
        match edn::parse_str(rest) {
            // `:timed-out` and the like stand where an info op's value would be.
            Ok(Edn::Keyword(k))
                if kind != EventType::Invoke && !matches!(process, Process::Named(_)) =>
            {
                (Value::Null, Some(k))
            }
            Ok(v) => (v.to_json(), None),
            Err(e) => return Err(bad("value", format!("{rest:?} is not EDN: {}", e.message))),
        }
    };
    Ok(Some(RawEvent {
        line: no,
        process: Some(process),
        kind,
        f: f.to_string(),
        key: None,
        value,
        time: None,
        node: None,
        error,
    }))
}

/// The first whitespace-separated field and the rest.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_tabs_spaces_and_timeouts() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 2   :ok   :cas   [3 0]\n\
                    INFO  jepsen.core - Worker 2 starting\n\
                    INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n\
                    INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
        let ev = parse(text, Path::new("e.log")).unwrap();
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0].value, json!([3, 0]));
        assert_eq!(ev[1].kind, EventType::Ok);
        assert_eq!(ev[2].line, 4);
        assert_eq!(ev[2].error.as_deref(), Some("timed-out"));
        assert_eq!(ev[2].value, Value::Null);
        assert_eq!(ev[3].value, Value::Null);
        assert!(is_op_line("INFO  jepsen.util - 0\t:invoke\t:read\tnil"));
        assert!(!is_op_line("INFO  jepsen.core - Worker 2 starting"));
    }

    #[test]
    fn names_line_and_field() {
        let err = parse("\nINFO  jepsen.util - x :ok :read 1\n", Path::new("e.log")).unwrap_err();
        assert!(err.to_string().starts_with("e.log:2: process:"), "{err}");
        let err = parse("INFO  jepsen.util - 1 :ok :read [1\n", Path::new("e.log")).unwrap_err();
        assert!(err.to_string().starts_with("e.log:1: value:"), "{err}");
        let err = parse("INFO  jepsen.util - 1 :ok read 1\n", Path::new("e.log")).unwrap_err();
        assert!(err.to_string().starts_with("e.log:1: f:"), "{err}");
    }
}
