//! The operation timeline's data: every client op packed into lanes (one lane per client
//! thread: a retired process's successor reuses its lane), as compact columns the page's
//! script draws window by window, so a 100,000-op history stays a few MB and stays fast.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::escape;
use super::fault_bands::FaultBand;
use crate::history::{History, Operation, Outcome};

/// Column-oriented ops, indexed by op id. Times are microseconds since the run began.
#[derive(Debug, Serialize)]
pub struct TimelineData {
    pub end_us: u64,
    /// Ops in the history; more than the columns hold when the timeline is sampled.
    pub total_ops: usize,
    /// Lane labels: the process ids that ran in the lane, e.g. `"p3 p13"`.
    pub lanes: Vec<String>,
    pub lane: Vec<u32>,
    pub process: Vec<u64>,
    pub start: Vec<u64>,
    /// Duration in µs; -1 for an op that never completed.
    pub dur: Vec<i64>,
    /// One character per op: `o`k, `f`ail, `i`nfo.
    pub outcome: String,
    pub f: Vec<u16>,
    pub fs: Vec<String>,
    pub key: Vec<u32>,
    pub keys: Vec<String>,
    /// Short value text: what a read returned, else what was asked.
    pub value: Vec<String>,
    /// Invoke event index, to find ops named by anomalies.
    pub call: Vec<u64>,
    pub bands: Vec<BandData>,
    pub marks: Vec<MarkData>,
}

#[derive(Debug, Serialize)]
pub struct BandData {
    pub fault: String,
    pub start: u64,
    pub end: u64,
    pub label: String,
}

/// Ops an anomaly names, to highlight and jump to, and the times (µs) of the other events
/// it names (probes, faults), drawn as lines.
#[derive(Debug, Serialize)]
pub struct MarkData {
    pub id: String,
    pub ops: Vec<usize>,
    pub times: Vec<u64>,
}

const VALUE_CHARS: usize = 28;
/// Ops embedded at most (about 40 bytes each): beyond, every k-th op is kept, plus every op
/// an anomaly names, so no page grows past ~10 MB however long the run.
pub const MAX_TIMELINE_OPS: usize = 200_000;

/// Compact text of a JSON value (strings unquoted).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What an op did, in a few characters: `w 3`, `r →2`, `cas [1,2]`.
pub fn op_value_text(op: &Operation) -> String {
    let v = if op.outcome == Outcome::Ok && op.invoke_value.is_null() {
        format!("→{}", value_text(&op.value))
    } else if op.outcome == Outcome::Ok && op.f == "txn" {
        value_text(&op.value)
    } else {
        value_text(&op.invoke_value)
    };
    escape::truncate(&v, VALUE_CHARS)
}

/// Packs client processes into lanes: a process takes the first lane whose previous
/// process ended before it began.
fn pack_lanes(history: &History, end_ns: u64) -> (HashMap<u64, u32>, Vec<String>) {
    let mut spans: Vec<(u64, u64, u64)> = Vec::new(); // (first call, last end, process)
    let mut at: HashMap<u64, usize> = HashMap::new();
    for op in &history.operations {
        let end = op.ret_time.unwrap_or(end_ns);
        match at.get(&op.process) {
            Some(&i) => spans[i].1 = spans[i].1.max(end),
            None => {
                at.insert(op.process, spans.len());
                spans.push((op.call_time, end, op.process));
            }
        }
    }
    spans.sort();
    let mut lane_end: Vec<u64> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut lane_of = HashMap::new();
    for (start, end, p) in spans {
        let lane = match lane_end.iter().position(|&e| e < start) {
            Some(l) => l,
            None => {
                lane_end.push(0);
                labels.push(String::new());
                lane_end.len() - 1
            }
        };
        lane_end[lane] = end;
        if labels[lane].len() < 40 {
            if !labels[lane].is_empty() {
                labels[lane].push(' ');
            }
            labels[lane].push_str(&format!("p{p}"));
        } else if !labels[lane].ends_with('…') {
            labels[lane].push('…');
        }
        lane_of.insert(p, lane as u32);
    }
    (lane_of, labels)
}

/// The last event time in the history (ns), at least 1.
pub fn end_ns(history: &History) -> u64 {
    history.events.last().map_or(1, |e| e.time.max(1))
}

pub fn timeline_data(
    history: &History,
    bands: &[FaultBand],
    marks: Vec<(String, Vec<u64>)>,
) -> TimelineData {
    let end = end_ns(history);
    let (lane_of, lanes) = pack_lanes(history, end);
    let n = history.operations.len();
    let mut d = TimelineData {
        end_us: end / 1000,
        total_ops: n,
        lanes,
        lane: Vec::with_capacity(n),
        process: Vec::with_capacity(n),
        start: Vec::with_capacity(n),
        dur: Vec::with_capacity(n),
        outcome: String::with_capacity(n),
        f: Vec::with_capacity(n),
        fs: Vec::new(),
        key: Vec::with_capacity(n),
        keys: Vec::new(),
        value: Vec::with_capacity(n),
        call: Vec::with_capacity(n),
        bands: bands
            .iter()
            .map(|b| BandData {
                fault: b.fault.clone(),
                start: b.start_ns / 1000,
                end: b.end_or(end) / 1000,
                label: b.label(),
            })
            .collect(),
        marks: Vec::new(),
    };
    let mut f_ids: HashMap<&str, u16> = HashMap::new();
    let mut key_ids: HashMap<Option<&str>, u32> = HashMap::new();
    // event index -> op id, for both invoke and completion events
    let mut op_of_event: HashMap<u64, usize> = HashMap::with_capacity(n * 2);
    for op in &history.operations {
        op_of_event.insert(op.call, op.id);
        if let Some(r) = op.ret {
            op_of_event.insert(r, op.id);
        }
    }
    let marked: HashSet<usize> = marks
        .iter()
        .flat_map(|(_, events)| events.iter().filter_map(|e| op_of_event.get(e).copied()))
        .collect();
    let stride = n.div_ceil(MAX_TIMELINE_OPS).max(1);
    // op id -> position in the columns
    let mut pos_of: HashMap<usize, usize> = HashMap::new();
    for op in &history.operations {
        if op.id % stride != 0 && !marked.contains(&op.id) {
            continue;
        }
        if marked.contains(&op.id) {
            pos_of.insert(op.id, d.start.len());
        }
        d.lane.push(lane_of[&op.process]);
        d.process.push(op.process);
        d.start.push(op.call_time / 1000);
        d.dur.push(
            op.ret_time
                .map_or(-1, |r| (r.saturating_sub(op.call_time) / 1000) as i64),
        );
        d.outcome.push(match op.outcome {
            Outcome::Ok => 'o',
            Outcome::Fail => 'f',
            Outcome::Info => 'i',
        });
        let next_f = f_ids.len() as u16;
        d.f.push(*f_ids.entry(op.f.as_str()).or_insert_with(|| {
            d.fs.push(op.f.clone());
            next_f
        }));
        let next_k = key_ids.len() as u32;
        d.key
            .push(*key_ids.entry(op.key.as_deref()).or_insert_with(|| {
                d.keys.push(op.key.clone().unwrap_or_default());
                next_k
            }));
        d.value.push(op_value_text(op));
        d.call.push(op.call);
    }
    d.marks = marks
        .into_iter()
        .map(|(id, events)| {
            let mut ops: Vec<usize> = events
                .iter()
                .filter_map(|e| pos_of.get(op_of_event.get(e)?).copied())
                .collect();
            ops.sort_unstable();
            ops.dedup();
            let times = events
                .iter()
                .filter(|e| !op_of_event.contains_key(e))
                .filter_map(|&e| history.events.get(e as usize).map(|ev| ev.time / 1000))
                .collect();
            MarkData { id, ops, times }
        })
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process};
    use serde_json::json;
    use std::path::Path;

    fn ev(index: u64, time: u64, p: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            request_id: None,
            index,
            time,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: Some("k".into()),
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn retired_processes_reuse_lanes_and_marks_find_ops() {
        use EventType::*;
        let events = vec![
            ev(0, 1000, 0, Invoke, "write", json!(1)),
            ev(1, 2000, 1, Invoke, "read", Value::Null),
            ev(2, 3000, 0, Info, "write", json!(1)),
            ev(3, 4000, 1, Ok, "read", json!(1)),
            ev(4, 5000, 2, Invoke, "write", json!(2)),
            ev(5, 9000, 2, Fail, "write", json!(2)),
            ev(6, 9500, 3, Invoke, "read", Value::Null),
        ];
        let h = History::from_events(events, Path::new("h"), None).unwrap();
        let d = timeline_data(&h, &[], vec![("a1".into(), vec![3, 99])]);
        assert_eq!(
            d.marks[0].times,
            Vec::<u64>::new(),
            "event 99 is not in the history"
        );
        assert_eq!(d.lanes, vec!["p0 p2 p3", "p1"]);
        assert_eq!(d.lane, vec![0, 1, 0, 0]);
        assert_eq!(d.outcome, "iofi");
        assert_eq!(d.value, vec!["1", "→1", "2", "nil"]);
        assert_eq!(d.dur, vec![2, 2, 4, -1]);
        assert_eq!(d.fs, vec!["write", "read"]);
        assert_eq!(d.marks[0].ops, vec![1]);
        assert_eq!(d.total_ops, 4);
    }

    #[test]
    fn long_histories_are_sampled_but_keep_marked_ops() {
        use EventType::*;
        let n = MAX_TIMELINE_OPS as u64 + 10;
        let mut events = Vec::new();
        for i in 0..n {
            events.push(ev(2 * i, 2 * i, 0, Invoke, "write", json!(i)));
            events.push(ev(2 * i + 1, 2 * i + 1, 0, Ok, "write", json!(i)));
        }
        let h = History::from_events(events, Path::new("h"), None).unwrap();
        // op 7 (events 14, 15) is named by an anomaly; stride 2 keeps even ops only
        let d = timeline_data(&h, &[], vec![("a".into(), vec![15])]);
        assert_eq!(d.total_ops, n as usize);
        assert_eq!(d.start.len(), (n as usize).div_ceil(2) + 1);
        let at = d.marks[0].ops[0];
        assert_eq!(d.call[at], 14);
    }
}
