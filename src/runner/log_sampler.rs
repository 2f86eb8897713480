//! Samples every node's `/log` while the run goes on, so an entry a node committed and later
//! lost (a primary that overwrites the loser's log when a partition heals) is still evidence
//! of a split brain. Incremental: each poll asks `/log?from=NEXT` and keeps only entries at
//! NEXT or above (a node that ignores `from` costs bandwidth, not memory). Bounded: at most
//! `per_poll` entries per node per poll, at most `cap` sightings in all; at the cap sampling
//! stops, and the checker's verdict says from when only the final logs were checked.
//! Every sighting is appended to `log-samples.jsonl` in the run directory for `analyze`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::checker::split_brain::{LogEntry, LogSamples, Sighting};
use crate::workload::Client;

/// `log-samples.jsonl`: one sighting per line, and a last `{"capped_at_ns"}` line if the
/// cap was reached.
pub const LOG_SAMPLES: &str = "log-samples.jsonl";

#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub per_poll: usize,
    pub cap: usize,
}

impl Bounds {
    /// 2,000 entries per node per poll; 200,000 sightings in all (about 20 MB in memory).
    pub const DEFAULT: Bounds = Bounds {
        per_poll: 2_000,
        cap: 200_000,
    };
}

/// What one node's answer adds: the entries at `next` and above, at most `per_poll`, in
/// index order; and the new `next`. A malformed answer adds nothing.
pub fn take_new(answer: &Value, next: u64, per_poll: usize) -> (Vec<LogEntry>, u64) {
    let Ok(mut entries) = serde_json::from_value::<Vec<LogEntry>>(answer.clone()) else {
        return (Vec::new(), next);
    };
    entries.retain(|e| e.index >= next);
    entries.sort_by_key(|e| e.index);
    entries.dedup_by_key(|e| e.index);
    entries.truncate(per_poll);
    let next = entries.last().map_or(next, |e| e.index + 1);
    (entries, next)
}

/// Polls every `every` until `stop`; returns what it saw. Without a `/log` (etcd) it returns
/// at once with nothing.
pub async fn sample_loop(
    client: Arc<dyn LogSource>,
    out: &Path,
    started: Instant,
    every: Duration,
    bounds: Bounds,
    stop: Arc<AtomicBool>,
) -> Result<LogSamples, String> {
    let nodes = client.node_ids();
    let mut next = vec![0u64; nodes.len()];
    let mut samples = LogSamples::default();
    let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'polls: while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for (i, node) in nodes.iter().enumerate() {
            let Some(answer) = client.log_from(i, next[i]).await else {
                return Ok(samples); // no /log in this system
            };
            let Ok(answer) = answer else { continue }; // unreachable now: next poll
            let at_ns = started.elapsed().as_nanos() as u64;
            let room = bounds.cap - samples.sightings.len();
            let (entries, n) = take_new(&answer, next[i], bounds.per_poll.min(room));
            next[i] = n;
            if entries.is_empty() {
                continue;
            }
            let f = match &mut file {
                Some(f) => f,
                None => file.insert(std::io::BufWriter::new(
                    std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?,
                )),
            };
            for entry in entries {
                let s = Sighting {
                    node: node.clone(),
                    entry,
                    at_ns,
                };
                serde_json::to_writer(&mut *f, &s).map_err(|e| e.to_string())?;
                f.write_all(b"\n").map_err(|e| e.to_string())?;
                samples.sightings.push(s);
            }
            if samples.sightings.len() >= bounds.cap {
                samples.capped_at_ns = Some(at_ns);
                writeln!(f, "{}", json!({"capped_at_ns": at_ns, "cap": bounds.cap}))
                    .map_err(|e| e.to_string())?;
                break 'polls;
            }
        }
        if let Some(f) = &mut file {
            f.flush().map_err(|e| format!("{}: {e}", out.display()))?;
        }
    }
    if let Some(f) = &mut file {
        f.flush().map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(samples)
}

/// Reads `log-samples.jsonl` back (absent: no samples); a line that does not parse (a run
/// killed mid-write) ends the read.
pub fn read(dir: &Path) -> LogSamples {
    let mut samples = LogSamples::default();
    let Ok(text) = std::fs::read_to_string(dir.join(LOG_SAMPLES)) else {
        return samples;
    };
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            break;
        };
        if let Some(t) = v.get("capped_at_ns").and_then(Value::as_u64) {
            samples.capped_at_ns = Some(t);
        } else if let Ok(s) = serde_json::from_value::<Sighting>(v) {
            samples.sightings.push(s);
        }
    }
    samples
}

/// A node's `/log` answer on its way (None: the system has no `/log`).
pub type LogFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<Result<Value, String>>> + Send + 'a>>;

/// Where the sampler reads logs: the run's client (or a test's fake).
pub trait LogSource: Send + Sync {
    fn node_ids(&self) -> Vec<String>;
    /// `GET /log?from=FROM` of node `i`; None for a system without `/log`.
    fn log_from(&self, i: usize, from: u64) -> LogFuture<'_>;
}

impl LogSource for Client {
    fn node_ids(&self) -> Vec<String> {
        self.nodes().iter().map(|n| n.id.clone()).collect()
    }
    fn log_from(&self, i: usize, from: u64) -> LogFuture<'_> {
        Box::pin(Client::log_from(self, i, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn only_entries_from_next_on_are_taken_at_most_per_poll() {
        let answer = json!([
            {"index": 1, "term": 1, "id": "a"},
            {"index": 2, "term": 1, "id": "b"},
            {"index": 3, "term": 1, "id": "c"},
            {"index": 4, "term": 2, "id": "d"}
        ]);
        let (e, next) = take_new(&answer, 2, 2);
        assert_eq!(
            e.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(next, 4);
        let (e, next) = take_new(&answer, 4, 10);
        assert_eq!((e.len(), next), (1, 5));
        assert_eq!(take_new(&answer, 5, 10), (vec![], 5));
        assert_eq!(take_new(&json!({"error": "x"}), 3, 10), (vec![], 3));
    }

    /// Two nodes whose logs grow by a scripted answer per poll.
    struct Fake {
        answers: Mutex<Vec<Vec<Value>>>,
        asked: Mutex<Vec<(usize, u64)>>,
    }

    impl LogSource for Fake {
        fn node_ids(&self) -> Vec<String> {
            vec!["n1".into(), "n2".into()]
        }
        fn log_from(&self, i: usize, from: u64) -> LogFuture<'_> {
            self.asked.lock().unwrap().push((i, from));
            let mut a = self.answers.lock().unwrap();
            let v = if a[i].is_empty() {
                json!([])
            } else {
                a[i].remove(0)
            };
            Box::pin(async move { Some(Ok(v)) })
        }
    }

    fn entries(range: std::ops::RangeInclusive<u64>, who: &str) -> Value {
        json!(
            range
                .map(|i| json!({"index": i, "term": 1, "id": format!("{who}{i}")}))
                .collect::<Vec<_>>()
        )
    }

    #[tokio::test]
    async fn sampling_is_incremental_and_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            answers: Mutex::new(vec![
                vec![entries(1..=3, "a"), entries(4..=9, "a")],
                vec![entries(1..=2, "b")],
            ]),
            asked: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let out = dir.path().join(LOG_SAMPLES);
        let s = sample_loop(
            fake.clone(),
            &out,
            Instant::now(),
            Duration::from_millis(1),
            Bounds {
                per_poll: 4,
                cap: 9,
            },
            stop,
        )
        .await
        .unwrap();
        // Poll 1: n1 1..=3, n2 1..=2 (5). Poll 2: n1 4..=7 (per poll 4: 9, the cap).
        assert_eq!(s.sightings.len(), 9);
        assert!(s.capped_at_ns.is_some());
        assert_eq!(
            fake.asked.lock().unwrap()[..3],
            [(0, 0), (1, 0), (0, 4)],
            "the second poll asks from the next index"
        );
        assert_eq!(read(dir.path()), s, "the file holds the same");
    }
}
