//! Re-checking a stored run: its history (a killed run's too: ops in flight count as
//! `info`, a cut-short last line is dropped), its workload as stored, its node logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::promise;
use super::{checks, store};
use crate::report::results::{Counts, RunResults};
use crate::workload::WorkloadSpec;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{0}")]
    History(#[from] crate::report::ReportError),
    #[error("{0}")]
    Workload(#[from] crate::workload::spec::SpecError),
    #[error("{}: {msg}", path.display())]
    Io {
        path: std::path::PathBuf,
        msg: String,
    },
}

pub struct Analysis {
    pub results: RunResults,
    /// Notes for the user (a dropped torn line, a run that never finished).
    pub notes: Vec<String>,
    pub report: Result<std::path::PathBuf, String>,
}

/// How the run judged leadership (results.json `leadership`); Raft's rules when unrecorded.
pub fn probe_options(results: &Path) -> crate::checker::split_brain::ProbeOptions {
    let mut o = crate::checker::split_brain::ProbeOptions::default();
    let v: Value = std::fs::read_to_string(results)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let l = &v[super::run::LEADERSHIP];
    if let Some(g) = l["generation"].as_str() {
        o.generation = g.to_string();
    }
    if let Some(b) = l["overlapping_reigns"].as_bool() {
        o.overlapping_reigns = b;
    }
    o
}

/// Re-checks the run in `dir`; `pin_info`: resolve info ops by the stored final logs.
pub fn analyze(dir: &Path, time_limit: Duration, pin_info: bool) -> Result<Analysis, AnalyzeError> {
    let mut notes = Vec::new();
    let (history, torn) = crate::report::run_dir::read_history(&dir.join(store::HISTORY))?;
    if let Some(t) = torn {
        notes.push(format!(
            "history.jsonl: its last line was cut short ({} bytes) and was left out",
            t.len()
        ));
    }
    let spec = WorkloadSpec::load(&dir.join(store::WORKLOAD).to_string_lossy())?;
    let logs = read_logs(dir);
    let samples = super::log_sampler::read(dir);
    let results_path = dir.join(store::RESULTS);
    let probes = probe_options(&results_path);
    let pinned = if pin_info {
        checks::pin_run_dir(&history, dir, &logs, &samples)
    } else {
        Err(checks::PIN_OFF.into())
    };
    let checked = pinned.as_ref().map_or(&history, |(h, _)| h);
    let verdicts = checks::check_run(checked, &spec, &logs, &samples, time_limit, &probes);
    let mut results = if results_path.exists() {
        RunResults::read(&results_path)?
    } else {
        notes.push("results.json is missing: the run never finished; seed and schedule come from schedule.json".into());
        let schedule: Value = std::fs::read_to_string(dir.join(store::SCHEDULE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let mut r = RunResults::from_verdicts(&history, &verdicts);
        r.seed = schedule["seed"].clone();
        r.nemesis = schedule["nemesis"].clone();
        r.workload = json!(spec.name);
        r.extra.insert("unfinished".into(), json!(true));
        r
    };
    results.counts = Counts::of(&history);
    let (valid, fields) = promise::judge(promise::recorded(&results.extra).as_ref(), &verdicts);
    results.valid = valid;
    results.extra.extend(fields);
    results.verdicts = verdicts;
    results.extra.insert(
        checks::PINNING.into(),
        checks::pinning_field(pinned.as_ref().map(|(_, p)| p).map_err(String::as_str)),
    );
    results.extra.insert(
        "analyzed_at".into(),
        json!(store::rfc3339_utc(std::time::SystemTime::now())),
    );
    let text = serde_json::to_vec_pretty(&results).map_err(|e| AnalyzeError::Io {
        path: results_path.clone(),
        msg: e.to_string(),
    })?;
    std::fs::write(&results_path, text).map_err(|e| AnalyzeError::Io {
        path: results_path.clone(),
        msg: e.to_string(),
    })?;
    let report = crate::report::write_run_report(dir)
        .map(|f| f.html)
        .map_err(|e| e.to_string());
    Ok(Analysis {
        results,
        notes,
        report,
    })
}

/// `nodes/<id>/log.json` of every node that has one.
pub fn read_logs(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join(store::NODES))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = entry.path().join("log.json");
        if let Some(v) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            out.insert(entry.file_name().to_string_lossy().into_owned(), v);
        }
    }
    out
}
