//! A stored run directory (shared conventions) in, `report.html`, `junit.xml` and an updated
//! `results.json` out.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ReportError;
use super::html::render_html;
use super::input::ReportInput;
use super::junit::junit_xml;
use super::node_logs::NodeLog;
use super::results::{Counts, RunResults};
use super::timeline::value_text;
use crate::faults::proxy::trace::MessageEvent;
use crate::history::{History, HistoryError, jsonl};

/// What `write_run_report` wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub junit: PathBuf,
    pub results: PathBuf,
    pub html_bytes: u64,
}

/// Everything read from a run directory.
pub struct LoadedRun {
    pub dir: PathBuf,
    pub history: History,
    /// A torn last line (the control node died mid-write) that was left out, if any.
    pub torn_tail: Option<String>,
    pub results: RunResults,
    pub schedule: Option<Value>,
    /// `replay.json`, when the run replayed another (`faultline replay`).
    pub replay: Option<Value>,
    pub node_logs: Vec<NodeLog>,
    /// `messages.jsonl` (the peer proxy's trace), empty when the run kept none.
    pub messages: Vec<MessageEvent>,
}

/// Reads the history; a malformed *last* line with no newline after it is a write cut short
/// by a crash, so it is left out (and reported) instead of failing the whole report.
pub fn read_history(path: &Path) -> Result<(History, Option<String>), ReportError> {
    match jsonl::read_path(path) {
        Ok(h) => Ok((h, None)),
        Err(err @ HistoryError::Malformed { line, .. }) => {
            let text = std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))?;
            let last_line = text.lines().count();
            if line != last_line || text.ends_with('\n') {
                return Err(err.into());
            }
            let cut = text.rfind('\n').map_or(0, |i| i + 1);
            let h = jsonl::read(&text.as_bytes()[..cut], path)?;
            Ok((h, Some(text[cut..].to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ReportError::malformed(path, e.line(), "json", e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::io(path, e)),
    }
}

/// Node logs under `nodes/<id>/`, by node id.
fn read_node_logs(dir: &Path) -> Result<Vec<NodeLog>, ReportError> {
    let nodes = dir.join("nodes");
    let mut ids: Vec<String> = match std::fs::read_dir(&nodes) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReportError::io(&nodes, e)),
    };
    ids.sort();
    let mut logs = Vec::new();
    for id in ids {
        for name in ["stderr.log", "stdout.log"] {
            let path = nodes.join(&id).join(name);
            if path.is_file() {
                logs.push(NodeLog::read(&id, &path, &format!("nodes/{id}/{name}"))?);
            }
        }
    }
    Ok(logs)
}

pub fn load_run(dir: &Path) -> Result<LoadedRun, ReportError> {
    let (history, torn_tail) = read_history(&dir.join("history.jsonl"))?;
    let results = RunResults::read(&dir.join("results.json"))?;
    let schedule = read_json(&dir.join("schedule.json"))?;
    let replay = read_json(&dir.join(crate::runner::store::REPLAY))?;
    let node_logs = read_node_logs(dir)?;
    let trace = dir.join("messages.jsonl");
    let messages = if trace.is_file() {
        crate::faults::proxy::trace::read(&trace).map_err(|e| ReportError::io(&trace, e))?
    } else {
        Vec::new()
    };
    Ok(LoadedRun {
        dir: dir.to_path_buf(),
        history,
        torn_tail,
        results,
        schedule,
        replay,
        node_logs,
        messages,
    })
}

fn text_of(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| value_text(v))
}

/// Writes `path` whole or not at all: a reader never sees half a report.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, contents).map_err(|e| ReportError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ReportError::io(path, e))
}

/// (Re)writes `report.html` and `junit.xml` of a run directory, and brings `results.json`'s
/// `counts` and `valid` in line with its history and verdicts (other fields are kept).
pub fn write_run_report(run_dir: &Path) -> Result<ReportFiles, ReportError> {
    write_run_report_windows(run_dir, &[])
}

/// `write_run_report`, with message windows (ns since the run began) drawn in the report's
/// Messages section besides the ones it picks itself.
pub fn write_run_report_windows(
    run_dir: &Path,
    message_windows: &[(u64, u64)],
) -> Result<ReportFiles, ReportError> {
    let mut run = load_run(run_dir)?;
    run.results.counts = Counts::of(&run.history);
    if !run.results.verdicts.is_empty() {
        // Judged as the run was: verdicts outside a recorded promise do not count.
        let promise = crate::runner::promise::recorded(&run.results.extra);
        run.results.valid =
            crate::runner::promise::judge(promise.as_ref(), &run.results.verdicts).0;
    }
    let results_path = run_dir.join("results.json");
    let results_json = serde_json::to_vec_pretty(&run.results)
        .map_err(|e| ReportError::io(&results_path, e.into()))?;
    write_atomically(&results_path, &results_json)?;

    let r = &run.results;
    let name_parts: Vec<String> = [&r.system, &r.workload, &r.nemesis]
        .into_iter()
        .filter_map(text_of)
        .collect();
    let stamp = run_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = if name_parts.is_empty() {
        stamp.clone()
    } else {
        format!("{} · {stamp}", name_parts.join(" / "))
    };
    let mut files = vec!["history.jsonl".to_string()];
    if run.schedule.is_some() {
        files.push("schedule.json".into());
    }
    for f in [
        crate::runner::store::INVOCATION,
        crate::runner::store::REPLAY,
    ] {
        if run_dir.join(f).is_file() {
            files.push(f.into());
        }
    }
    files.extend(["results.json".to_string(), "junit.xml".to_string()]);
    files.extend(run.node_logs.iter().map(|l| l.file.clone()));
    if !run.messages.is_empty() {
        // The diagram on its own too, for pasting into an issue or a README.
        let w = super::space_time::pick_window(&run.messages);
        write_atomically(
            &run_dir.join("messages.svg"),
            super::space_time::svg(&w).as_bytes(),
        )?;
        files.extend(["messages.jsonl".to_string(), "messages.svg".to_string()]);
    }
    let mut input = ReportInput::new(title, &run.history, &r.verdicts);
    input.results = Some(r);
    input.schedule = run.schedule.as_ref();
    input.replay = run.replay.as_ref();
    input.node_logs = &run.node_logs;
    input.messages = &run.messages;
    input.message_windows = message_windows.to_vec();
    input.files = files;
    if let Some(tail) = &run.torn_tail {
        input.source = Some(format!(
            "history.jsonl (its torn last line, {} bytes, was left out)",
            tail.len()
        ));
    }
    let html = render_html(&input);
    let html_path = run_dir.join("report.html");
    write_atomically(&html_path, html.as_bytes())?;

    let suite = if name_parts.len() >= 2 {
        name_parts[..2].join("-")
    } else {
        "faultline".to_string()
    };
    let mut props: Vec<(String, String)> = [
        ("seed", &r.seed),
        ("system", &r.system),
        ("workload", &r.workload),
        ("nemesis", &r.nemesis),
        ("started_at", &r.started_at),
    ]
    .into_iter()
    .filter_map(|(k, v)| text_of(v).map(|t| (k.to_string(), t)))
    .collect();
    props.push(("run".into(), stamp));
    let junit = junit_xml(
        &r.verdicts,
        &suite,
        &props,
        r.elapsed_s.as_f64().unwrap_or(0.0),
    );
    let junit_path = run_dir.join("junit.xml");
    write_atomically(&junit_path, junit.as_bytes())?;
    Ok(ReportFiles {
        html: html_path,
        junit: junit_path,
        results: results_path,
        html_bytes: html.len() as u64,
    })
}
