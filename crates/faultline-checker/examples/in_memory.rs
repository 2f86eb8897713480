//! Checks ops a Rust test recorded itself, without a file: build the events, make a
//! [`History`] of them, and ask for a verdict. A malformed history (a completion without an
//! invoke, a key that changes) is an error, not a verdict.
//!
//!     cargo run -p faultline-checker --example in_memory

use std::path::Path;

use faultline_checker::linearizable::{self, Model};
use faultline_checker::{Budget, Validity};
use faultline_history::{Event, EventType, History, Process};
use serde_json::{Value, json};

/// One event of client `p`; indexes and times follow the order of the calls.
fn event(events: &mut Vec<Event>, p: u64, kind: EventType, f: &str, value: Value) {
    let index = events.len() as u64;
    events.push(Event {
        request_id: None,
        index,
        time: index * 1_000,
        process: Process::Client(p),
        kind,
        f: f.into(),
        key: Some("x".into()),
        value,
        node: None,
        error: None,
    });
}

fn main() -> Result<(), faultline_history::HistoryError> {
    let mut events = Vec::new();
    // Client 0 writes 1; once that is acknowledged client 1 reads 0: a stale read.
    event(&mut events, 0, EventType::Invoke, "write", json!(1));
    event(&mut events, 0, EventType::Ok, "write", json!(1));
    event(&mut events, 1, EventType::Invoke, "read", Value::Null);
    event(&mut events, 1, EventType::Ok, "read", json!(0));
    let history = History::from_events(events, Path::new("in-memory"), None)?;

    let verdict = linearizable::check(&history, Model::CasRegister, &Budget::default());
    assert_eq!(verdict.valid, Validity::Invalid);
    let a = &verdict.anomalies[0];
    println!("{}: {}", a.kind, a.description);
    // The witness as data: the op that cannot be placed, by its invoke event.
    println!("cannot place: {}", a.data["unplaceable"][0]);
    Ok(())
}
