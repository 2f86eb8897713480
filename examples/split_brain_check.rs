//! Re-runs the split-brain checkers on a stored run directory: `split_brain_check RUN_DIR`.
use std::collections::BTreeMap;

use faultline::checker::split_brain::{self, LogEntry};
use faultline::history::jsonl;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("RUN_DIR"));
    let h = jsonl::read_path(&dir.join("history.jsonl")).expect("history");
    let mut logs: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    if let Ok(nodes) = std::fs::read_dir(dir.join("nodes")) {
        for n in nodes.flatten() {
            if let Ok(text) = std::fs::read_to_string(n.path().join("log.json"))
                && let Ok(l) = serde_json::from_str(&text)
            {
                logs.insert(n.file_name().to_string_lossy().into_owned(), l);
            }
        }
    }
    for v in [
        split_brain::check_probes(&h),
        split_brain::check_logs(&logs),
        split_brain::check_lost_writes(&h),
    ] {
        println!("{} {:?}: {}", v.checker, v.valid, v.explanation);
        for a in v.anomalies.iter().take(3) {
            println!("  - {}: {}", a.kind, a.description);
        }
    }
}
