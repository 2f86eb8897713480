//! The run's history: every event is appended and flushed as it happens (through
//! `HistoryWriter`), with times from one monotonic clock started with the run.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::checker::split_brain::probes::PROBE_SENT;
use crate::history::jsonl::HistoryWriter;
use crate::history::{Event, EventType, HistoryError, Process};
use crate::report::results::Counts;
use crate::workload::OpRequest;

pub struct Recorder {
    writer: Mutex<HistoryWriter>,
    start: Instant,
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Recorder, HistoryError> {
        Ok(Recorder {
            writer: Mutex::new(HistoryWriter::create(path)?),
            start: Instant::now(),
            ok: AtomicU64::new(0),
            fail: AtomicU64::new(0),
            info: AtomicU64::new(0),
        })
    }

    /// Nanoseconds since the run began.
    pub fn elapsed_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    fn append(&self, event: Event) -> Result<u64, HistoryError> {
        self.append_timed(event).map(|(index, _)| index)
    }

    /// Appends `event`; returns its index and time.
    fn append_timed(&self, mut event: Event) -> Result<(u64, u64), HistoryError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // Time is taken under the lock so times never decrease along indexes.
        event.time = self.elapsed_ns();
        let time = event.time;
        Ok((w.append(event)?, time))
    }

    pub fn invoke(&self, process: u64, op: &OpRequest) -> Result<u64, HistoryError> {
        self.append(Event {
            request_id: op.request_id.clone(),
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind: EventType::Invoke,
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.value.clone(),
            node: None,
            error: None,
        })
    }

    pub fn complete(
        &self,
        process: u64,
        op: &OpRequest,
        kind: EventType,
        value: Value,
        node: Option<&str>,
        error: Option<String>,
    ) -> Result<u64, HistoryError> {
        let counter = match kind {
            EventType::Ok => &self.ok,
            EventType::Fail => &self.fail,
            EventType::Info => &self.info,
            EventType::Invoke => unreachable!("a completion is ok, fail or info"),
        };
        let index = self.append(Event {
            request_id: op.request_id.clone(),
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind,
            f: op.f.clone(),
            key: op.key.clone(),
            value,
            node: node.map(str::to_string),
            error,
        })?;
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(index)
    }

    /// A nemesis event (`start-<fault>` / `stop-<fault>`, value with `targets`); returns
    /// its time, which `schedule.json` repeats.
    pub fn nemesis(&self, f: &str, value: Value) -> Result<u64, HistoryError> {
        self.named(Process::nemesis(), f, None, value)
            .map(|(_, t)| t)
    }

    /// A status probe of `node`, its `/status` body as the value, plus `probe_sent_ns`: when
    /// it was asked for. The event's time is when it was recorded, which for a round of probes
    /// answered together can be well after the node answered, so two probes of one node may
    /// be recorded in the other order than the node answered them; the checkers order them by
    /// real time only when one was recorded before the other was sent.
    pub fn probe(&self, node: &str, mut value: Value, asked: Instant) -> Result<u64, HistoryError> {
        if let Value::Object(m) = &mut value {
            let sent = asked.saturating_duration_since(self.started()).as_nanos() as u64;
            m.insert(PROBE_SENT.into(), Value::from(sent));
        }
        self.named(Process::probe(), "status", Some(node), value)
            .map(|(i, _)| i)
    }

    fn named(
        &self,
        process: Process,
        f: &str,
        node: Option<&str>,
        value: Value,
    ) -> Result<(u64, u64), HistoryError> {
        self.append_timed(Event {
            request_id: None,
            index: 0,
            time: 0,
            process,
            kind: EventType::Info,
            f: f.to_string(),
            key: None,
            value,
            node: node.map(str::to_string),
            error: None,
        })
    }

    pub fn counts(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            fail: self.fail.load(Ordering::Relaxed),
            info: self.info.load(Ordering::Relaxed),
        }
    }

    /// Forces the history to stable storage (before it is checked).
    pub fn sync(&self) -> Result<(), HistoryError> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_a_valid_history_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let r = Recorder::create(&path).unwrap();
        let w = OpRequest::new("write", Some("1".into()), json!(3));
        r.invoke(0, &w).unwrap();
        r.nemesis("start-partition", json!({"targets":["n1"]}))
            .unwrap();
        r.complete(
            0,
            &w,
            EventType::Info,
            json!(3),
            Some("n1"),
            Some("timeout".into()),
        )
        .unwrap();
        r.probe(
            "n2",
            json!({"id":"n2","role":"leader","term":2}),
            r.started(),
        )
        .unwrap();
        r.invoke(5, &w).unwrap();
        r.complete(5, &w, EventType::Ok, json!(3), Some("n2"), None)
            .unwrap();
        let h = crate::history::jsonl::read_path(&path).unwrap();
        assert_eq!(h.operations.len(), 2);
        assert_eq!(h.annotations.len(), 2);
        assert_eq!(h.events[3].node.as_deref(), Some("n2"));
        assert_eq!(
            r.counts(),
            Counts {
                ok: 1,
                fail: 0,
                info: 1
            }
        );
    }
}
