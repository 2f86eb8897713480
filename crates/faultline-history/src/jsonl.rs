//! The native format: one JSON event per line. The reader is strict and names the file,
//! line and field of anything malformed; the writer appends and flushes every event so a
//! killed control node loses only the ops in flight.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::HistoryError;
use super::event::Event;
use super::operation::History;

/// Reads and validates a native JSONL history. Blank lines are skipped.
pub fn read_path(path: &Path) -> Result<History, HistoryError> {
    let file = File::open(path).map_err(|e| HistoryError::io(path, e))?;
    // Reserve for the most events the file could hold (an event line is at least ~60
    // bytes): untouched capacity costs address space, not memory, and no regrowth
    // copies a large history.
    let hint = file.metadata().map_or(0, |m| m.len() as usize / 60);
    read_with_capacity(BufReader::with_capacity(1 << 16, file), path, hint)
}

/// Reads and validates a native JSONL history from any reader; `path` names it in errors.
pub fn read(input: impl BufRead, path: &Path) -> Result<History, HistoryError> {
    read_with_capacity(input, path, 0)
}

fn read_with_capacity(
    input: impl BufRead,
    path: &Path,
    capacity: usize,
) -> Result<History, HistoryError> {
    let mut input = input;
    let mut events = Vec::with_capacity(capacity);
    // Input line of each event, kept only once a blank line makes them differ.
    let mut lines: Option<Vec<usize>> = None;
    let mut line = String::new();
    let mut line_no = 0;
    loop {
        line.clear();
        let n = input
            .read_line(&mut line)
            .map_err(|e| HistoryError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.trim().is_empty() {
            lines.get_or_insert_with(|| (1..=events.len()).collect());
            continue;
        }
        events.push(parse_line(line.trim_end(), path, line_no)?);
        if let Some(l) = &mut lines {
            l.push(line_no);
        }
    }
    History::from_events(events, path, lines.as_deref())
}

/// Parses one event line; on failure, finds the field at fault.
pub fn parse_line(line: &str, path: &Path, line_no: usize) -> Result<Event, HistoryError> {
    serde_json::from_str::<Event>(line).map_err(|e| diagnose(line, path, line_no, e))
}

/// A field's name, a test of its value, and what the test wants, in words.
type FieldCheck = (&'static str, fn(&Value) -> bool, &'static str);

fn diagnose(line: &str, path: &Path, line_no: usize, err: serde_json::Error) -> HistoryError {
    let bad = |field: &str, msg: String| HistoryError::malformed(path, line_no, field, msg);
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return bad("json", e.to_string()),
    };
    let Some(obj) = value.as_object() else {
        return bad("json", "each line must be a JSON object".into());
    };
    let checks: [FieldCheck; 5] = [
        ("index", |v| v.is_u64(), "a non-negative integer"),
        ("time", |v| v.is_u64(), "non-negative integer nanoseconds"),
        (
            "process",
            |v| v.is_u64() || v.is_string(),
            "an integer or a name such as \"nemesis\"",
        ),
        (
            "type",
            |v| matches!(v.as_str(), Some("invoke" | "ok" | "fail" | "info")),
            "one of invoke, ok, fail, info",
        ),
        ("f", |v| v.is_string(), "a string"),
    ];
    for (field, ok, want) in checks {
        match obj.get(field) {
            None => return bad(field, "missing".into()),
            Some(v) if !ok(v) => return bad(field, format!("must be {want}, found {v}")),
            Some(_) => {}
        }
    }
    for field in ["node", "error"] {
        if let Some(v) = obj.get(field)
            && !(v.is_string() || v.is_null())
        {
            return bad(field, format!("must be a string, found {v}"));
        }
    }
    if let Some(v) = obj.get("key")
        && !(v.is_string() || v.is_u64() || v.is_i64() || v.is_null())
    {
        return bad("key", format!("must be a string or an integer, found {v}"));
    }
    bad("json", err.to_string())
}

/// Appends events to a history file, one write and flush per event.
pub struct HistoryWriter {
    file: File,
    path: PathBuf,
    next_index: u64,
    buf: Vec<u8>,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<Self, HistoryError> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|e| HistoryError::io(path, e))?;
        Ok(HistoryWriter {
            file,
            path: path.to_path_buf(),
            next_index: 0,
            buf: Vec::with_capacity(256),
        })
    }

    /// The index the next appended event must carry.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Appends `event`; its `index` is overwritten with the next dense index, which is
    /// returned.
    pub fn append(&mut self, mut event: Event) -> Result<u64, HistoryError> {
        event.index = self.next_index;
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &event)
            .map_err(|e| HistoryError::io(&self.path, e.into()))?;
        self.buf.push(b'\n');
        // One write per line: a crash never leaves half a line behind another.
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush())
            .map_err(|e| HistoryError::io(&self.path, e))?;
        self.next_index += 1;
        Ok(event.index)
    }

    /// Forces written events to stable storage.
    pub fn sync(&self) -> Result<(), HistoryError> {
        self.file
            .sync_data()
            .map_err(|e| HistoryError::io(&self.path, e))
    }
}

/// Writes a whole history as JSONL (for converting imported histories).
pub fn write_all(events: &[Event], out: &mut impl Write) -> std::io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut *out, e)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Process};

    fn read_str(s: &str) -> Result<History, HistoryError> {
        read(s.as_bytes(), Path::new("h.jsonl"))
    }

    #[test]
    fn names_file_line_and_field() {
        let cases = [
            (
                "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\"}",
                "h.jsonl:1: f: missing",
            ),
            (
                "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"begin\",\"f\":\"read\"}",
                "h.jsonl:1: type: must be one of invoke, ok, fail, info, found \"begin\"",
            ),
            ("\n{\"index\":0,", "h.jsonl:2: json: EOF while parsing"),
            (
                "{\"index\":-1,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}",
                "h.jsonl:1: index: must be a non-negative integer, found -1",
            ),
        ];
        for (input, want) in cases {
            let err = read_str(input).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn writer_output_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut w = HistoryWriter::create(&path).unwrap();
        for (kind, value) in [(EventType::Invoke, Value::Null), (EventType::Ok, 5.into())] {
            w.append(Event {
                request_id: None,
                index: 99,
                time: 7,
                process: Process::Client(0),
                kind,
                f: "read".into(),
                key: Some("k".into()),
                value,
                node: Some("n1".into()),
                error: None,
            })
            .unwrap();
        }
        let h = read_path(&path).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.operations[0].value, Value::from(5));
        assert!(
            HistoryWriter::create(&path).is_err(),
            "never overwrites a history"
        );
    }
}
