//! Helpers for the unit tests of the models and the search.

use std::path::Path;

use serde_json::Value;

use faultline_history::{Event, EventType, History, Operation, Outcome, Process};

use super::model::Model;

/// An ok op with the given call index.
pub fn op(call: u64, f: &str, invoke_value: Value, value: Value) -> Operation {
    Operation {
        request_id: None,
        id: call as usize,
        process: call,
        f: f.into(),
        key: None,
        invoke_value,
        value,
        outcome: Outcome::Ok,
        call,
        ret: Some(call + 1),
        call_time: call,
        ret_time: Some(call + 1),
        node: None,
        error: None,
    }
}

/// A history from `"<process> <type> <f> <value>; ..."`, values in JSON (`nil` allowed);
/// an optional fifth word is the key.
pub fn history(text: &str) -> History {
    let events = text
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            let w: Vec<&str> = s.split_whitespace().collect();
            let kind = match w[1] {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                _ => EventType::Info,
            };
            let value = if w[3] == "nil" {
                Value::Null
            } else {
                serde_json::from_str(w[3]).expect("json value")
            };
            Event {
                request_id: None,
                index: i as u64,
                time: i as u64,
                process: Process::Client(w[0].parse().expect("process")),
                kind,
                f: w[2].into(),
                key: w.get(4).map(|k| k.to_string()),
                value,
                node: None,
                error: None,
            }
        })
        .collect();
    History::from_events(events, Path::new("test"), None).expect("valid test history")
}

/// The ops a cas-register check keeps.
pub fn kept(h: &History) -> Vec<&Operation> {
    h.operations
        .iter()
        .filter(|o| !Model::CasRegister.ignores(o))
        .collect()
}
