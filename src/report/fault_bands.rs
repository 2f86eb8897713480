//! Nemesis intervals: each `start-<fault>` nemesis event paired with the `stop-<fault>` that
//! ends it, drawn as bands behind the timeline and the plots.

use serde_json::Value;

use crate::history::{History, Process};

/// One fault, active from `start_ns` until `end_ns` (`None`: never stopped in the history).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultBand {
    /// `partition`, `loss`, `pause`, `kill`, `clock`, or whatever follows `start-`.
    pub fault: String,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub targets: Vec<String>,
    /// The start event's `value`, minus nothing: grudge, percent, offset_ms, ...
    pub detail: Value,
    pub start_event: u64,
}

impl FaultBand {
    pub fn end_or(&self, history_end_ns: u64) -> u64 {
        self.end_ns.unwrap_or(history_end_ns).max(self.start_ns)
    }

    /// A short text such as `partition n1,n2 {"grudge":...}` for tooltips and tables.
    pub fn label(&self) -> String {
        let mut s = self.fault.clone();
        if !self.targets.is_empty() {
            s.push(' ');
            s.push_str(&self.targets.join(","));
        }
        s
    }
}

fn targets_of(value: &Value) -> Vec<String> {
    match value.get("targets") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Pairs start/stop nemesis events in history order. A stop closes the oldest open band of
/// the same fault with the same targets, else the oldest open band of that fault (a stop
/// without targets heals everything of its kind).
pub fn fault_bands(history: &History) -> Vec<FaultBand> {
    let mut bands: Vec<FaultBand> = Vec::new();
    for &i in &history.annotations {
        let e = &history.events[i];
        if e.process != Process::nemesis() {
            continue;
        }
        if let Some(fault) = e.f.strip_prefix("start-") {
            bands.push(FaultBand {
                fault: fault.to_string(),
                start_ns: e.time,
                end_ns: None,
                targets: targets_of(&e.value),
                detail: e.value.clone(),
                start_event: e.index,
            });
        } else if let Some(fault) = e.f.strip_prefix("stop-") {
            let targets = targets_of(&e.value);
            let open = |b: &&mut FaultBand| b.fault == fault && b.end_ns.is_none();
            let same_targets = bands
                .iter()
                .position(|b| b.fault == fault && b.end_ns.is_none() && b.targets == targets);
            if let Some(pos) = same_targets {
                bands[pos].end_ns = Some(e.time);
            } else if targets.is_empty() {
                for b in bands.iter_mut().filter(|b| open(b)) {
                    b.end_ns = Some(e.time);
                }
            } else if let Some(b) = bands.iter_mut().find(|b| open(b)) {
                b.end_ns = Some(e.time);
            }
        }
    }
    bands
}

/// A fill color per fault kind, shared by every drawing so a band means the same everywhere.
pub fn color(fault: &str) -> &'static str {
    match fault {
        "partition" => "#f6b26b",
        "loss" => "#b4a7d6",
        "pause" => "#9fc5e8",
        "kill" => "#ea9999",
        "clock" => "#b6d7a8",
        _ => "#d9d9d9",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType};
    use serde_json::json;
    use std::path::Path;

    fn nem(index: u64, time: u64, f: &str, value: Value) -> Event {
        Event {
            request_id: None,
            index,
            time,
            process: Process::nemesis(),
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_starts_with_stops_by_fault_and_targets() {
        let events = vec![
            nem(0, 10, "start-partition", json!({"targets":["n1"]})),
            nem(1, 20, "start-pause", json!({"targets":["n2"]})),
            nem(2, 25, "start-pause", json!({"targets":["n3"]})),
            nem(3, 30, "stop-pause", json!({"targets":["n3"]})),
            nem(4, 40, "stop-partition", json!({})),
            nem(5, 50, "start-kill", json!({"targets":["n4"]})),
        ];
        let h = History::from_events(events, Path::new("h"), None).unwrap();
        let b = fault_bands(&h);
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].fault.as_str(), b[0].end_ns), ("partition", Some(40)));
        assert_eq!((b[1].targets[0].as_str(), b[1].end_ns), ("n2", None));
        assert_eq!((b[2].targets[0].as_str(), b[2].end_ns), ("n3", Some(30)));
        assert_eq!(b[3].end_or(99), 99);
        assert_eq!(b[3].label(), "kill n4");
    }
}
