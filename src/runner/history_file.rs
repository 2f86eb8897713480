//! Reading a run's history back, tolerating what a killed control node can leave: ops still
//! in flight (strict validation treats them as `info`) and, at worst, a last line cut short
//! (dropped, and said so). Anything else malformed is an error naming file, line and field.

use std::path::Path;

use crate::history::{History, HistoryError, jsonl};

pub struct RunHistory {
    pub history: History,
    /// A cut-short last line that was dropped, if any.
    pub dropped_tail: Option<String>,
}

pub fn read(path: &Path) -> Result<RunHistory, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError::io(path, e))?;
    let mut body = text.as_str();
    let mut dropped_tail = None;
    if !body.is_empty() && !body.ends_with('\n') {
        let cut = body.rfind('\n').map_or(0, |i| i + 1);
        let last = &body[cut..];
        let line_no = body[..cut].matches('\n').count() + 1;
        if jsonl::parse_line(last, path, line_no).is_err() {
            dropped_tail = Some(format!(
                "{}:{line_no}: dropped a last line cut short ({} bytes)",
                path.display(),
                last.len()
            ));
            body = &body[..cut];
        }
    }
    let history = jsonl::read(body.as_bytes(), path)?;
    Ok(RunHistory {
        history,
        dropped_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    const HEAD: &str = concat!(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"1","value":3}"#,
        "\n",
        r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read","key":"1","value":null}"#,
        "\n",
        r#"{"index":2,"time":3,"process":0,"type":"ok","f":"write","key":"1","value":3}"#,
        "\n",
    );

    #[test]
    fn in_flight_ops_are_info_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        std::fs::write(&p, format!("{HEAD}{{\"index\":3,\"time\":4,\"proc")).unwrap();
        let r = read(&p).unwrap();
        assert_eq!(r.history.operations.len(), 2);
        assert_eq!(r.history.operations[1].outcome, Outcome::Info);
        assert!(r.dropped_tail.unwrap().contains(":4: dropped"));

        std::fs::write(&p, HEAD).unwrap();
        assert!(read(&p).unwrap().dropped_tail.is_none());
    }

    #[test]
    fn damage_inside_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.jsonl");
        std::fs::write(&p, format!("{{\"index\":0,\n{HEAD}")).unwrap();
        let err = read(&p).err().unwrap().to_string();
        assert!(err.contains("history.jsonl:1: json:"), "{err}");
    }
}
