//! Builds a validated history from `(process, type, f, value)` tuples, one event
//! a tuple, 1 µs apart, served by node `n1`.

use std::path::Path;

use serde_json::Value;

use super::{Event, EventType, History, Process};

pub fn client_history(key: Option<&str>, evs: &[(u64, EventType, &str, Value)]) -> History {
    let events = evs
        .iter()
        .enumerate()
        .map(|(i, (p, kind, f, value))| Event {
            request_id: None,
            index: i as u64,
            time: i as u64 * 1000,
            process: Process::Client(*p),
            kind: *kind,
            f: f.to_string(),
            key: key.map(String::from),
            value: value.clone(),
            node: Some("n1".into()),
            error: None,
        })
        .collect();
    History::from_events(events, Path::new("test.jsonl"), None).unwrap()
}

/// Validates events built with `push_client` into a history (a generated one: `gen.jsonl`).
pub fn history_of(events: Vec<Event>) -> History {
    History::from_events(events, Path::new("gen.jsonl"), None).unwrap()
}

/// Appends a client event to a history being built, its index the next one and its time
/// 1 µs a step (as `client_history` spaces them), and returns its index.
pub fn push_client(
    events: &mut Vec<Event>,
    p: u64,
    kind: EventType,
    f: &str,
    key: Option<&str>,
    value: Value,
) -> u64 {
    let i = events.len() as u64;
    events.push(Event {
        request_id: None,
        index: i,
        time: i * 1000,
        process: Process::Client(p),
        kind,
        f: f.to_string(),
        key: key.map(String::from),
        value,
        node: None,
        error: None,
    });
    i
}
