//! Node log excerpts around an anomaly. History times are nanoseconds since the run began;
//! log lines carry wall-clock stamps. Each node's offset between the two comes from its
//! probe events (`clock_ms` against the event's `time`, so a skewed node is mapped with its
//! own clock, as it was around that moment: clock faults bump and drift it during a run),
//! else from the run's `started_at`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::error::ReportError;
use crate::history::{History, Process};

/// Bytes read per log file at most; the rest is reported as cut, never silently dropped.
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// Lines shown per node per anomaly.
pub const EXCERPT_LINES: usize = 30;

#[derive(Clone, Debug)]
pub struct NodeLog {
    pub node: String,
    /// Path relative to the run directory, e.g. `nodes/n1/stderr.log`.
    pub file: String,
    pub lines: Vec<LogLine>,
    /// True when the file was longer than `MAX_LOG_BYTES` and only its start was read.
    pub cut: bool,
}

#[derive(Clone, Debug)]
pub struct LogLine {
    /// 1-based line number in the file.
    pub no: usize,
    /// Wall-clock stamp of the line (unix ms), or of the last stamped line before it.
    pub unix_ms: Option<f64>,
    pub text: String,
}

impl NodeLog {
    pub fn read(node: &str, path: &Path, rel: &str) -> Result<NodeLog, ReportError> {
        let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes = Vec::new();
        file.take(MAX_LOG_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| ReportError::io(path, e))?;
        Ok(Self::parse(
            node,
            rel,
            &String::from_utf8_lossy(&bytes),
            len > MAX_LOG_BYTES,
        ))
    }

    pub fn parse(node: &str, rel: &str, text: &str, cut: bool) -> NodeLog {
        let mut last = None;
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if let Some(t) = line_stamp(l) {
                    last = Some(t);
                }
                LogLine {
                    no: i + 1,
                    unix_ms: last,
                    text: l.to_string(),
                }
            })
            .collect();
        NodeLog {
            node: node.to_string(),
            file: rel.to_string(),
            lines,
            cut,
        }
    }

    pub fn has_stamps(&self) -> bool {
        self.lines.iter().any(|l| l.unix_ms.is_some())
    }

    /// Lines stamped within [from_ms, to_ms]; if more than `EXCERPT_LINES`, those nearest
    /// the middle of the window, in file order. Also returns how many were left out.
    pub fn excerpt(&self, from_ms: f64, to_ms: f64) -> (Vec<&LogLine>, usize) {
        let inside: Vec<&LogLine> = self
            .lines
            .iter()
            .filter(|l| l.unix_ms.is_some_and(|t| t >= from_ms && t <= to_ms))
            .collect();
        if inside.len() <= EXCERPT_LINES {
            return (inside, 0);
        }
        let mid = (from_ms + to_ms) / 2.0;
        let centre = inside
            .iter()
            .position(|l| l.unix_ms.unwrap_or(0.0) >= mid)
            .unwrap_or(inside.len() - 1);
        let start = centre
            .saturating_sub(EXCERPT_LINES / 2)
            .min(inside.len() - EXCERPT_LINES);
        let left_out = inside.len() - EXCERPT_LINES;
        (inside[start..start + EXCERPT_LINES].to_vec(), left_out)
    }
}

/// How many probe samples nearest in time decide a node's clock offset at a moment: the
/// median of a few follows bumps and drift yet ignores one probe delayed by a pause.
const NEAREST_SAMPLES: usize = 5;

/// One node's wall clock against history time over the run, from its probes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClockMap {
    /// (history ms, wall-clock ms minus history ms), by history time.
    samples: Vec<(f64, f64)>,
}

impl ClockMap {
    pub fn new(mut samples: Vec<(f64, f64)>) -> ClockMap {
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        ClockMap { samples }
    }

    /// Wall-clock ms minus history ms at history time `t_ms`: the median of the samples
    /// nearest to it. None without samples.
    pub fn offset_at(&self, t_ms: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let i = self.samples.partition_point(|s| s.0 < t_ms);
        let k = NEAREST_SAMPLES.min(self.samples.len());
        // The k samples nearest t: a window of k around the insertion point, slid to fit.
        let start = i.saturating_sub(k / 2).min(self.samples.len() - k);
        let mut near: Vec<f64> = self.samples[start..start + k].iter().map(|s| s.1).collect();
        near.sort_by(f64::total_cmp);
        Some(near[near.len() / 2])
    }
}

/// Each node's clock map, from probe events' `clock_ms`.
pub fn clock_offsets(history: &History) -> HashMap<String, ClockMap> {
    let mut samples: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    for &i in &history.annotations {
        let e = &history.events[i];
        if e.process != Process::probe() {
            continue;
        }
        let node = e
            .node
            .clone()
            .or_else(|| e.value.get("id").and_then(Value::as_str).map(String::from));
        if let (Some(node), Some(clock)) = (node, e.value.get("clock_ms").and_then(Value::as_f64)) {
            let t = e.time as f64 / 1e6;
            samples.entry(node).or_default().push((t, clock - t));
        }
    }
    samples
        .into_iter()
        .map(|(n, v)| (n, ClockMap::new(v)))
        .collect()
}

/// `started_at` as unix ms: RFC 3339 text, or a number of seconds or milliseconds.
pub fn started_at_ms(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_rfc3339_ms(s.trim()),
        Value::Number(n) => n.as_f64().map(|x| if x > 1e11 { x } else { x * 1000.0 }),
        _ => None,
    }
}

/// A wall-clock stamp at the start of a log line: RFC 3339 (optionally in `[...]`, `T` or a
/// space between date and time, zone `Z`, `±HH:MM` or none meaning UTC), or a bare unix time
/// in ms (13 digits) or seconds (10 digits, optional fraction).
pub fn line_stamp(line: &str) -> Option<f64> {
    let s = line.trim_start().trim_start_matches('[');
    if let Some(t) = parse_rfc3339_ms(s) {
        return Some(t);
    }
    let num: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let int_len = num.split('.').next().map_or(0, str::len);
    match int_len {
        13 => num.parse().ok(),
        10 => num.parse::<f64>().ok().map(|x| x * 1000.0),
        _ => None,
    }
}

/// Parses the RFC 3339 timestamp at the start of `s` (trailing text ignored): the node
/// protocol's stamp parser.
pub use faultline_proto::parse_rfc3339_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_stamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-02T00:00:01Z"), Some(86_401_000.0));
        assert_eq!(
            line_stamp("2026-11-22T14:12:56.250Z  INFO raft: became leader"),
            Some(1_795_356_776_250.0)
        );
        assert_eq!(
            line_stamp("[2026-11-22 15:12:56+01:00 INFO x]"),
            Some(1_795_356_776_000.0)
        );
        assert_eq!(
            line_stamp("1795356776250 leader n1"),
            Some(1_795_356_776_250.0)
        );
        assert_eq!(line_stamp("1795356776.5 x"), Some(1_795_356_776_500.0));
        assert_eq!(line_stamp("term 3 leader n1"), None);
        assert_eq!(line_stamp("2026-13-22T14:12:56Z"), None);
    }

    #[test]
    fn clock_maps_follow_drift_and_ignore_one_delayed_probe() {
        // A node whose clock loses 0.8 ms per ms from t = 10 s, probed every 500 ms.
        let drifting = ClockMap::new(
            (0..60)
                .map(|i| {
                    let t = i as f64 * 500.0;
                    (t, 1_000.0 - 0.8 * (t - 10_000.0).max(0.0))
                })
                .collect(),
        );
        assert_eq!(drifting.offset_at(2_000.0), Some(1_000.0));
        let late = drifting.offset_at(20_000.0).unwrap();
        assert!((late - (1_000.0 - 8_000.0)).abs() <= 800.0, "{late}");
        // A steady node with one probe answered late (its clock read long after the event).
        let mut steady: Vec<(f64, f64)> = (0..20).map(|i| (i as f64 * 500.0, 42.0)).collect();
        steady[7].1 = 3_042.0;
        let steady = ClockMap::new(steady);
        assert_eq!(steady.offset_at(3_500.0), Some(42.0));
        assert_eq!(steady.offset_at(-5.0), Some(42.0));
        assert_eq!(steady.offset_at(1e9), Some(42.0));
        assert_eq!(ClockMap::default().offset_at(1.0), None);
    }

    #[test]
    fn excerpts_centre_on_the_window_and_count_the_rest() {
        let text: String = (0..100)
            .map(|i| {
                format!(
                    "{} line {i}\nunstamped {i}\n",
                    1_700_000_000_000u64 + i * 10
                )
            })
            .collect();
        let log = NodeLog::parse("n1", "nodes/n1/stderr.log", &text, false);
        assert!(log.has_stamps());
        let (lines, left) = log.excerpt(1_700_000_000_100.0, 1_700_000_000_200.0);
        assert_eq!(lines.len(), 22); // 11 stamped lines and the unstamped line after each
        assert_eq!(left, 0);
        assert_eq!(lines[0].no, 21);
        let (lines, left) = log.excerpt(1_700_000_000_000.0, 1_700_000_000_990.0);
        assert_eq!((lines.len(), left), (EXCERPT_LINES, 170));
        assert_eq!(lines[0].text, "unstamped 42");
    }
}
