//! The stored runs (`store/<test>/<YYYYmmddTHHMMSS>/`), newest first, and the index page
//! `faultline serve` shows: one row per run, colored by verdict.

use std::fmt::Write;
use std::path::Path;

use super::anomalies::validity_word;
use super::error::ReportError;
use super::escape;
use super::results::RunResults;
use super::timeline::value_text;
use crate::checker::Validity;

#[derive(Clone, Debug)]
pub struct StoredRun {
    pub test: String,
    /// The run directory's name, `YYYYmmddTHHMMSS`; sorts by time.
    pub stamp: String,
    /// `Some` when results.json was read; `Err` text when it was unreadable.
    pub results: Result<Box<RunResults>, String>,
    pub has_report: bool,
}

impl StoredRun {
    pub fn rel(&self) -> String {
        format!("{}/{}", self.test, self.stamp)
    }

    pub fn valid(&self) -> Option<Validity> {
        self.results.as_ref().ok().map(|r| r.valid)
    }
}

fn is_run_dir(p: &Path) -> bool {
    p.join("history.jsonl").is_file() || p.join("results.json").is_file()
}

fn subdirs(dir: &Path) -> Result<Vec<String>, ReportError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| ReportError::io(dir, e))? {
        let e = e.map_err(|e| ReportError::io(dir, e))?;
        // `latest` is a symlink to a run already listed under its own name.
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Every run under `store`, newest first (then by test name). A missing store has no runs.
pub fn list_runs(store: &Path) -> Result<Vec<StoredRun>, ReportError> {
    if !store.exists() {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for test in subdirs(store)? {
        let test_dir = store.join(&test);
        for stamp in subdirs(&test_dir)? {
            let dir = test_dir.join(&stamp);
            if !is_run_dir(&dir) {
                continue;
            }
            let results = RunResults::read(&dir.join("results.json"))
                .map(Box::new)
                .map_err(|e| e.to_string());
            runs.push(StoredRun {
                has_report: dir.join("report.html").is_file(),
                test: test.clone(),
                stamp,
                results,
            });
        }
    }
    runs.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.test.cmp(&b.test)));
    Ok(runs)
}

/// The index page; links are `/runs/<test>/<stamp>/...`.
pub fn index_html(runs: &[StoredRun], store: &Path) -> String {
    let mut out = String::from(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>faultline runs</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}h1{margin:0;font-size:20px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e6ea}th{color:#6b7280}
tr.valid td:first-child{border-left:5px solid #3a8f3a}tr.invalid td:first-child{border-left:5px solid #d64545}
tr.unknown td:first-child,tr.none td:first-child{border-left:5px solid #8a8f98}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase}
.b-valid{background:#3a8f3a}.b-invalid{background:#d64545}.b-unknown,.b-none{background:#8a8f98}.muted{color:#6b7280}
header a{color:#cfd6e4}
</style></head><body><header><h1>faultline runs</h1><nav><a href="/suites/">suites over time</a></nav></header><main>"#,
    );
    let _ = write!(
        out,
        r#"<p class="muted">{} run(s) in <code>{}</code>, newest first.</p>"#,
        runs.len(),
        escape::html(&store.display().to_string())
    );
    out.push_str("<table><thead><tr><th>run</th><th>test</th><th>verdict</th><th>system / workload / nemesis</th><th>seed</th><th>ops ok/fail/info</th><th>elapsed</th><th>files</th></tr></thead><tbody>");
    for run in runs {
        let word = run.valid().map_or("none", validity_word);
        let rel = escape::html(&run.rel());
        let stamp = escape::html(&run.stamp);
        let link = if run.has_report {
            format!(r#"<a href="/runs/{rel}/report.html">{stamp}</a>"#)
        } else {
            stamp.clone()
        };
        let (what, seed, counts, elapsed) = match &run.results {
            Ok(r) => {
                let what: Vec<String> = [&r.system, &r.workload, &r.nemesis]
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .map(value_text)
                    .collect();
                (
                    escape::html(&what.join(" / ")),
                    escape::html(&value_text(&r.seed)),
                    format!("{}/{}/{}", r.counts.ok, r.counts.fail, r.counts.info),
                    r.elapsed_s
                        .as_f64()
                        .map_or(String::new(), |s| format!("{s:.1} s")),
                )
            }
            Err(e) => (
                format!(r#"<span class="muted">{}</span>"#, escape::html(e)),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        let _ = write!(
            out,
            r#"<tr class="{word}"><td>{link}</td><td>{}</td><td><span class="badge b-{word}">{}</span></td><td>{what}</td><td>{seed}</td><td>{counts}</td><td>{elapsed}</td><td><a href="/runs/{rel}/">files</a></td></tr>"#,
            escape::html(&run.test),
            if word == "none" { "no results" } else { word },
        );
    }
    out.push_str("</tbody></table></main></body></html>");
    out
}
