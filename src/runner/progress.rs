//! The live display on stderr (only on a terminal): elapsed time, phase, ok/fail/info
//! counts and the faults in force.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::recorder::Recorder;

/// What the display shows besides counts; updated by the runner and the nemesis feed.
#[derive(Default)]
pub struct Status {
    pub phase: String,
    pub faults: BTreeSet<String>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    pub status: Arc<Mutex<Status>>,
}

impl Progress {
    pub fn new(total: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total.as_secs());
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:20}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            status: Arc::new(Mutex::new(Status::default())),
        }
    }

    pub fn set_phase(&self, phase: &str) {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).phase = phase.to_string();
        if self.bar.is_none() {
            eprintln!("faultline: {phase}");
        }
    }

    /// Applies a `start-x` / `stop-x` nemesis event to the list of active faults.
    pub fn fault_event(&self, f: &str) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(x) = f.strip_prefix("start-") {
            s.faults.insert(x.to_string());
        } else if let Some(x) = f.strip_prefix("stop-") {
            s.faults.remove(x);
        }
    }

    pub fn refresh(&self, rec: &Recorder) {
        let Some(bar) = &self.bar else { return };
        let c = rec.counts();
        let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let faults = if s.faults.is_empty() {
            "none".to_string()
        } else {
            s.faults.iter().cloned().collect::<Vec<_>>().join(",")
        };
        bar.set_position(rec.started().elapsed().as_secs());
        bar.set_message(format!(
            "{:<10} ok {} fail {} info {}  faults: {faults}",
            s.phase, c.ok, c.fail, c.info
        ));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
