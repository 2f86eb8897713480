//! `messages.jsonl`: one line per message the proxy decided on, as it happens:
//! `{"time","from","to","type","bytes","fate","delay_ms"}` (`time` in ns since the run
//! began; `fate` delivered | delayed | duplicated | dropped | held | released | reset, or
//! lost: the proxy could not hand it on, e.g. to a partitioned peer).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules::Link;

/// One line of messages.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    pub time: u64,
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub bytes: usize,
    pub fate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
}

/// The trace writer; clones share one file.
#[derive(Clone)]
pub struct Tracer {
    out: Arc<Mutex<BufWriter<std::fs::File>>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

impl Tracer {
    pub fn create(path: &Path) -> std::io::Result<Tracer> {
        let f = std::fs::File::create(path)?;
        Ok(Tracer {
            out: Arc::new(Mutex::new(BufWriter::new(f))),
        })
    }

    pub fn record(
        &self,
        at: Duration,
        link: &Link,
        kind: Option<&str>,
        bytes: usize,
        fate: &str,
        delay_ms: Option<f64>,
    ) {
        let ev = MessageEvent {
            time: at.as_nanos() as u64,
            from: link.0.clone(),
            to: link.1.clone(),
            kind: kind.map(str::to_string),
            bytes,
            fate: fate.to_string(),
            delay_ms: delay_ms.filter(|d| *d > 0.0),
        };
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = serde_json::to_writer(&mut *out, &ev);
        let _ = out.write_all(b"\n");
    }

    pub fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// Reads a messages.jsonl (lines that do not parse are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<MessageEvent>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
