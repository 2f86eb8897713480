//! Reading histories in any supported format: native JSONL, Jepsen EDN (a vector, or one
//! map a line), Jepsen JSON (an array of op objects, as elle-cli writes), Jepsen log lines
//! and Porcupine kv logs, with `Format::Auto` detection.
//!
//! Foreign histories get the leniency Jepsen allows before strict validation: indexes are
//! renumbered densely, missing or backwards times are made monotonic, a process reused
//! after an `:info` completion continues under a fresh process id, and a completion with
//! no invocation (a client that crashed before recording one) is kept as an annotation
//! under the process name `orphaned-<p>` rather than dropped. Ops with no `:process` at
//! all (Elle's hand-written examples) run each under a fresh process; a completion
//! without a process completes the oldest such invoke with the same `f` and key.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::path::Path;
use std::str::FromStr;

use super::compact::{Fx, FxMap};
use super::edn;
use super::error::HistoryError;
use super::event::{Event, EventType, Process};
use super::jepsen_log;
use super::jepsen_op::{self, RawEvent};
use super::jsonl;
use super::operation::History;

/// An input format. `Auto` looks at the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Auto,
    /// faultline's native JSON Lines.
    Jsonl,
    /// Jepsen/Knossos EDN: one vector (or list) of op maps, or one op map a line.
    Edn,
    /// A JSON array of Jepsen op objects (elle-cli's test histories).
    Json,
    /// Jepsen `jepsen.util` log lines.
    JepsenLog,
    /// Porcupine's kv logs: one EDN op map a line with `:key`.
    PorcupineKv,
}

impl Format {
    pub const NAMES: [&'static str; 6] =
        ["auto", "jsonl", "edn", "json", "jepsen-log", "porcupine-kv"];

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::Json => "json",
            Format::JepsenLog => "jepsen-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Format::Auto,
            "jsonl" => Format::Jsonl,
            "edn" => Format::Edn,
            "json" => Format::Json,
            "jepsen-log" | "log" => Format::JepsenLog,
            "porcupine-kv" | "porcupine" => Format::PorcupineKv,
            other => {
                return Err(format!(
                    "unknown format {other:?} (expected one of {})",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// Reads and validates a history file in `format` (`Auto` detects it), every event
/// whole. The format is told, and Jepsen logs read, as `compact::load` does.
pub fn read_file(path: &Path, format: Format) -> Result<History, HistoryError> {
    crate::compact::read_history(path, format)
}

/// `read_file` by the whole-history readers.
pub(crate) fn read_whole(path: &Path, format: Format) -> Result<History, HistoryError> {
    // Native histories can be large: stream them rather than hold the text.
    if format == Format::Jsonl || format == Format::Auto && sniff_jsonl(path)? {
        return jsonl::read_path(path);
    }
    let bytes = std::fs::read(path).map_err(|e| HistoryError::io(path, e))?;
    read_bytes(bytes, path, format)
}

/// Reads a history from a file's bytes, which must be UTF-8 text; `path` names it in
/// errors.
pub fn read_bytes(bytes: Vec<u8>, path: &Path, format: Format) -> Result<History, HistoryError> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(HistoryError::malformed(
                path,
                line,
                "encoding",
                "the file is not UTF-8 text",
            ));
        }
    };
    read_str(&text, path, format)
}

/// Whether the file's first non-blank line looks like a native JSONL event.
fn sniff_jsonl(path: &Path) -> Result<bool, HistoryError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| HistoryError::io(path, e))?;
    let text = String::from_utf8_lossy(&head);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    Ok(first.starts_with("{\"") && !jepsen_log::is_op_line(first))
}

/// Reads a history from text; `path` names it in errors.
pub fn read_str(text: &str, path: &Path, format: Format) -> Result<History, HistoryError> {
    let format = match format {
        Format::Auto => detect(text).ok_or_else(|| {
            HistoryError::malformed(
                path,
                first_content_line(text),
                "format",
                format!(
                    "cannot tell the format of this file; pass --format (one of {})",
                    Format::NAMES[1..].join(", ")
                ),
            )
        })?,
        f => f,
    };
    match format {
        Format::Auto => unreachable!("resolved above"),
        Format::Jsonl => jsonl::read(text.as_bytes(), path),
        Format::Edn | Format::PorcupineKv => {
            let items = edn::read_seq(text).map_err(|e| {
                HistoryError::malformed(
                    path,
                    e.line,
                    "edn",
                    format!("column {}: {}", e.column, e.message),
                )
            })?;
            let raw = items
                .iter()
                .map(|s| jepsen_op::from_edn(&s.value, path, s.line))
                .collect::<Result<Vec<_>, _>>()?;
            assemble(raw, path)
        }
        Format::Json => {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| HistoryError::malformed(path, e.line(), "json", e.to_string()))?;
            let Some(ops) = value.as_array() else {
                return Err(HistoryError::malformed(
                    path,
                    1,
                    "json",
                    "expected an array of op objects",
                ));
            };
            let lines = json_item_lines(text, ops.len());
            let raw = ops
                .iter()
                .zip(lines)
                .map(|(op, line)| jepsen_op::from_edn(&edn::from_json(op), path, line))
                .collect::<Result<Vec<_>, _>>()?;
            assemble(raw, path)
        }
        Format::JepsenLog => assemble(jepsen_log::parse(text, path)?, path),
    }
}

/// Guesses the format from the first meaningful line (or two).
pub fn detect(text: &str) -> Option<Format> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'));
    let first = lines.next()?;
    if jepsen_log::is_op_line(first) || text.lines().take(200).any(jepsen_log::is_op_line) {
        return Some(Format::JepsenLog);
    }
    if first.starts_with("{\"") || first.starts_with("{ \"") {
        return Some(Format::Jsonl);
    }
    if first.starts_with("[{\"")
        || first.starts_with("[ {\"")
        || first == "[" && lines.next().is_some_and(|l| l.starts_with("{\""))
    {
        return Some(Format::Json);
    }
    if first.starts_with('{') || first.starts_with('#') {
        // One EDN map a line; Porcupine's kv logs carry a `:key` and get/put/append.
        let kv = first.contains(":key")
            && [":get", ":put", ":append"]
                .iter()
                .any(|f| first.contains(&format!(":f {f}")));
        return Some(if kv { Format::PorcupineKv } else { Format::Edn });
    }
    if first.starts_with('[') || first.starts_with('(') {
        return Some(Format::Edn);
    }
    None
}

fn first_content_line(text: &str) -> usize {
    text.lines()
        .position(|l| !l.trim().is_empty())
        .map_or(1, |i| i + 1)
}

/// The 1-based line on which each top-level element of a JSON array starts: a cheap scan
/// that tracks nesting and strings.
fn json_item_lines(text: &str, n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n);
    let (mut depth, mut line, mut in_str, mut esc) = (0usize, 1usize, false, false);
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                if depth == 1 {
                    out.push(line);
                }
                depth += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out.resize(n, line);
    out
}

type FxSet<T> = HashSet<T, BuildHasherDefault<Fx>>;

/// Applies Jepsen's leniency (see the module comment) and validates strictly.
pub fn assemble(raw: Vec<RawEvent>, path: &Path) -> Result<History, HistoryError> {
    let mut next_fresh = raw
        .iter()
        .filter_map(|e| e.process.as_ref().and_then(Process::client))
        .max()
        .map_or(0, |m| m + 1);
    let any_time = raw.iter().any(|e| e.time.is_some());
    // original process -> the id it currently runs under
    let mut current: FxMap<u64, u64> = FxMap::default();
    let mut in_flight: FxSet<u64> = FxSet::default();
    let mut retired: FxSet<u64> = FxSet::default();
    let mut events = Vec::with_capacity(raw.len());
    let mut lines = Vec::with_capacity(raw.len());
    let mut last_time = 0u64;
    // in-flight invokes that had no process: (f, key, assigned id), oldest first
    let mut anonymous: Vec<(String, Option<String>, u64)> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let time = if any_time {
            r.time.unwrap_or(last_time).max(last_time)
        } else {
            i as u64
        };
        last_time = time;
        let process = match r.process {
            None if r.kind == EventType::Invoke => {
                let id = next_fresh;
                next_fresh += 1;
                anonymous.push((r.f.clone(), r.key.clone(), id));
                Process::Client(id)
            }
            None => {
                let at = anonymous
                    .iter()
                    .position(|(f, k, _)| *f == r.f && *k == r.key)
                    .ok_or_else(|| {
                        HistoryError::malformed(
                            path,
                            r.line,
                            "process",
                            "missing, and no invocation without a process is in flight",
                        )
                    })?;
                Process::Client(anonymous.remove(at).2)
            }
            Some(Process::Named(n)) => Process::Named(n),
            Some(Process::Client(p)) => {
                let id = *current.entry(p).or_insert(p);
                if r.kind == EventType::Invoke {
                    let id = if retired.contains(&id) {
                        let fresh = next_fresh;
                        next_fresh += 1;
                        current.insert(p, fresh);
                        fresh
                    } else {
                        id
                    };
                    in_flight.insert(id);
                    Process::Client(id)
                } else if in_flight.remove(&id) {
                    if r.kind == EventType::Info {
                        retired.insert(id);
                    }
                    Process::Client(id)
                } else {
                    Process::Named(format!("orphaned-{p}"))
                }
            }
        };
        lines.push(r.line);
        events.push(Event {
            request_id: None,
            index: i as u64,
            time,
            process,
            kind: r.kind,
            f: r.f,
            key: r.key,
            value: r.value,
            node: r.node,
            error: r.error,
        });
    }
    History::from_events(events, path, Some(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Outcome;
    use serde_json::json;

    fn read(text: &str, format: Format) -> Result<History, HistoryError> {
        read_str(text, Path::new("h"), format)
    }

    #[test]
    fn detects_every_format() {
        let cases = [
            (
                "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}",
                Format::Jsonl,
            ),
            (
                "; comment\n[{:process 0, :type :invoke, :f :read}]",
                Format::Edn,
            ),
            ("({:process 0, :type :invoke, :f :read})", Format::Edn),
            (
                "{:process 0, :type :invoke, :f :read, :value nil}",
                Format::Edn,
            ),
            (
                "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}",
                Format::PorcupineKv,
            ),
            (
                "[{\"index\":0,\"process\":1,\"type\":\"invoke\",\"value\":[]}]",
                Format::Json,
            ),
            (
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
                Format::JepsenLog,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text), Some(want), "{text}");
        }
        assert_eq!(detect("hello"), None);
        let err = read("hello\n", Format::Auto).unwrap_err().to_string();
        assert!(err.starts_with("h:1: format:"), "{err}");
    }

    #[test]
    fn jepsen_leniency() {
        // Process 1 is reused after an info; process 2 completes without an invoke;
        // times go backwards; a nemesis acts.
        let text = "[{:process 1, :type :invoke, :f :write, :value 1, :time 10}
 {:process 1, :type :info, :f :write, :value 1, :time 20}
 {:process :nemesis, :type :info, :f :start, :value nil, :time 15}
 {:process 1, :type :invoke, :f :read, :value nil, :time 30}
 {:process 2, :type :info, :f :read, :value nil, :time 31}
 {:process 1, :type :ok, :f :read, :value 1, :time 40}]";
        let h = read(text, Format::Auto).unwrap();
        assert_eq!(h.operations.len(), 2);
        assert_eq!(h.operations[0].outcome, Outcome::Info);
        assert_eq!(
            h.operations[1].process, 3,
            "fresh id after the retired process 2's max"
        );
        assert_eq!(h.operations[1].value, json!(1));
        assert_eq!(h.events[2].time, 20, "times made monotonic");
        assert_eq!(h.events[4].process, Process::Named("orphaned-2".into()));
        assert_eq!(h.annotations, vec![2, 4]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = read(
            "[{:process 1, :type :invoke, :f :read}\n {:process 1, :type :okk, :f :read}]",
            Format::Edn,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("h:2: type:"), "{err}");
        let err = read("[{:process 1, :type :invoke\n :f}]", Format::Edn)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("h:2: edn:"), "{err}");
        let err = read("[{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"},\n{\"type\":\"ok\",\"f\":\"write\"}]", Format::Json)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("h:2: process: missing"), "{err}");
        let h = read("{:type :invoke, :f :txn, :value [[:r 1 nil]]}\n{:type :ok, :f :txn, :value [[:r 1 [2]]]}", Format::Auto).unwrap();
        assert_eq!(h.operations.len(), 1);
        assert_eq!(h.operations[0].value, json!([["r", 1, [2]]]));
        let err = read(
            "[{:process 1, :type :invoke, :f :read}\n {:process 1, :type :invoke, :f :read}]",
            Format::Edn,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("h:2: process:"), "{err}");
    }

    #[test]
    fn jepsen_map_values_load_with_text_keys() {
        // A bank read (integer account ids) and a transfer (keyword fields), as Jepsen
        // writes them; JSON histories name the accounts by text already.
        let edn = "[{:process 0, :type :invoke, :f :read, :value nil}
 {:process 0, :type :ok, :f :read, :value {0 10, 1 -2, :c nil}}
 {:process 1, :type :invoke, :f :transfer, :value {:from 0, :to 1, :amount 5}}]";
        let h = read(edn, Format::Auto).unwrap();
        assert_eq!(h.operations[0].value, json!({"0": 10, "1": -2, "c": null}));
        assert_eq!(
            h.operations[1].invoke_value,
            json!({"from": 0, "to": 1, "amount": 5})
        );
        let js = r#"[{"type":"invoke","f":"read","process":0},
{"type":"ok","f":"read","process":0,"value":{"0":10,"1":-2,"c":null}}]"#;
        let j = read(js, Format::Auto).unwrap();
        assert_eq!(j.operations[0].value, h.operations[0].value);
    }

    #[test]
    fn reads_porcupine_kv_and_logs() {
        let kv = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                  {:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n";
        let h = read(kv, Format::Auto).unwrap();
        assert_eq!(h.operations[0].key.as_deref(), Some("0"));
        assert_eq!(h.operations[0].f, "append");
        let log = "INFO  jepsen.util - 4\t:invoke\t:write\t3\nINFO  jepsen.util - 4\t:info\t:write\t:timed-out\n";
        let h = read(log, Format::Auto).unwrap();
        assert_eq!(h.operations[0].outcome, Outcome::Info);
        assert_eq!(h.operations[0].value, json!(3));
    }
}
