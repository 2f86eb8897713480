//! Suites over time, as `faultline serve` shows them: `/suites/` lists the stored suites and
//! `/suites/NAME/` draws one line per row and one column per night (newest first), each cell
//! pass, fail or quarantined with the fingerprint id of a failure and a link to every run's
//! report, and per row the distinct fingerprints seen with how many nights each.
//!
//! Nights are `store/suites/NAME/<stamp>/summary.json` (read leniently as
//! [`StoredSummary`]). Reading them is [`load_nights`] / [`list_suites`]; the pages are
//! [`suites_html`] and [`suite_html`], pure functions of the nights read and of a `link`
//! that maps a case's `run_dir` to a URL ([`run_link`] in the server). A summary that cannot
//! be read or parsed is a night with an error, drawn as a line naming the file.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Component, Path};

use super::error::ReportError;
use super::escape::html;
use crate::suite::report::{StoredCase, StoredSummary};

/// At most this many nights are drawn as columns (the newest).
pub const NIGHTS_SHOWN: usize = 30;

/// Why a night has no summary to draw.
#[derive(Clone, Debug, PartialEq)]
pub enum NightError {
    /// No summary.json (yet): the suite is still running, or it was interrupted.
    Missing,
    /// summary.json could not be read or is not a summary: what was wrong.
    Bad(String),
}

/// One stored night of a suite.
#[derive(Clone, Debug)]
pub struct Night {
    /// The night directory's name, `YYYYmmddTHHMMSS[-n]`; sorts by time.
    pub stamp: String,
    /// The summary's path relative to the store, as shown to the reader.
    pub file: String,
    pub summary: Result<StoredSummary, NightError>,
}

impl Night {
    /// A night from the text of its summary.json (`None`: the file is not there).
    pub fn parse(suite: &str, stamp: &str, text: Option<Result<String, String>>) -> Night {
        let file = format!("suites/{suite}/{stamp}/summary.json");
        let summary = match text {
            None => Err(NightError::Missing),
            Some(Err(e)) => Err(NightError::Bad(e)),
            Some(Ok(t)) => serde_json::from_str::<StoredSummary>(&t)
                .map_err(|e| NightError::Bad(format!("not a suite summary: {e}"))),
        };
        Night {
            stamp: stamp.to_string(),
            file,
            summary,
        }
    }
}

fn dir_names(dir: &Path) -> Result<Vec<String>, ReportError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| ReportError::io(dir, e))? {
        let e = e.map_err(|e| ReportError::io(dir, e))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// A name that is one plain path component (no `/`, `.` or `..`).
pub fn is_plain_name(name: &str) -> bool {
    let mut c = Path::new(name).components();
    matches!((c.next(), c.next()), (Some(Component::Normal(n)), None) if n == name)
}

/// The nights of suite `name` under `store`, newest first; `None` if there is no such suite.
pub fn load_nights(store: &Path, name: &str) -> Result<Option<Vec<Night>>, ReportError> {
    if !is_plain_name(name) {
        return Ok(None);
    }
    let dir = store.join("suites").join(name);
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut nights: Vec<Night> = dir_names(&dir)?
        .into_iter()
        .map(|stamp| {
            let path = dir.join(&stamp).join("summary.json");
            let text = path
                .exists()
                .then(|| std::fs::read_to_string(&path).map_err(|e| format!("unreadable: {e}")));
            Night::parse(name, &stamp, text)
        })
        .collect();
    nights.sort_by(|a, b| b.stamp.cmp(&a.stamp));
    Ok(Some(nights))
}

/// Every suite under `store/suites/`, by name, each with its nights newest first.
pub fn list_suites(store: &Path) -> Result<Vec<(String, Vec<Night>)>, ReportError> {
    let dir = store.join("suites");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = dir_names(&dir)?;
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if let Some(nights) = load_nights(store, &name)? {
            out.push((name, nights));
        }
    }
    Ok(out)
}

/// The URL of a run's report (or its files, if it has no report) when `run_dir` is a run
/// directory inside `store`. The suite's runs are stored in the same store as its nights, so
/// a path that does not resolve from here (a relative path from another working directory, a
/// store that was moved) is looked up by its last two components, `<test>/<stamp>`.
pub fn run_link(store: &Path, run_dir: &str) -> Option<String> {
    let root = store.canonicalize().ok()?;
    let given = Path::new(run_dir);
    let rel = given
        .canonicalize()
        .ok()
        .and_then(|full| full.strip_prefix(&root).ok().map(Path::to_path_buf))
        .filter(|rel| rel.components().count() > 0)
        .or_else(|| {
            let tail: Vec<&str> = given
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => n.to_str(),
                    _ => None,
                })
                .collect();
            let [.., test, stamp] = tail.as_slice() else {
                return None;
            };
            let rel = Path::new(test).join(stamp);
            let full = root.join(&rel).canonicalize().ok()?;
            (full.starts_with(&root) && full.is_dir()).then_some(rel)
        })?;
    let rel_s = rel.to_str()?.trim_matches('/').to_string();
    if root.join(&rel).join("report.html").is_file() {
        Some(format!("/runs/{rel_s}/report.html"))
    } else {
        Some(format!("/runs/{rel_s}/"))
    }
}

/// How a cell (a row's runs on one night) or one run is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Quarantined,
    /// The row was not run that night (filtered, or not in the file then).
    Absent,
}

impl Status {
    fn class(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Quarantined => "quarantined",
            Status::Absent => "absent",
        }
    }
}

/// One run's status from its judgement (`pass`, `quarantined`, anything else fails).
pub fn case_status(c: &StoredCase) -> Status {
    match c.judgement.outcome.as_str() {
        "pass" => Status::Pass,
        "quarantined" => Status::Quarantined,
        _ => Status::Fail,
    }
}

/// A row's status on one night: any failing run fails it; all quarantined is quarantined.
pub fn cell_status(cases: &[&StoredCase]) -> Status {
    if cases.is_empty() {
        Status::Absent
    } else if cases.iter().any(|c| case_status(c) == Status::Fail) {
        Status::Fail
    } else if cases.iter().all(|c| case_status(c) == Status::Quarantined) {
        Status::Quarantined
    } else {
        Status::Pass
    }
}

/// A fingerprint seen on a row: its id, its signatures, and on how many nights.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenFingerprint {
    pub id: String,
    pub signatures: Vec<String>,
    pub nights: usize,
    /// Seen on a failing run (not only on caught canaries or quarantined runs).
    pub in_failure: bool,
}

/// One line of the matrix: a row's runs per shown night.
#[derive(Debug)]
pub struct RowHistory<'a> {
    pub name: String,
    pub canary: bool,
    /// One entry per shown night, in the nights' order; empty when the row did not run.
    pub cells: Vec<Vec<&'a StoredCase>>,
    /// Most nights first, then by id.
    pub fingerprints: Vec<SeenFingerprint>,
}

/// The matrix of the nights shown (the first `cap` of `nights` that have a summary).
pub fn matrix(nights: &[Night], cap: usize) -> (Vec<&Night>, Vec<RowHistory<'_>>) {
    let shown: Vec<&Night> = nights
        .iter()
        .filter(|n| n.summary.is_ok())
        .take(cap)
        .collect();
    let mut rows: Vec<RowHistory> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (ni, night) in shown.iter().enumerate() {
        let Ok(s) = &night.summary else { continue };
        for c in &s.cases {
            let ri = *index.entry(c.row.clone()).or_insert_with(|| {
                rows.push(RowHistory {
                    name: c.row.clone(),
                    canary: false,
                    cells: vec![Vec::new(); shown.len()],
                    fingerprints: Vec::new(),
                });
                rows.len() - 1
            });
            rows[ri].canary |= c.canary;
            rows[ri].cells[ni].push(c);
        }
    }
    for row in &mut rows {
        // id -> (signatures, nights, in a failure)
        let mut seen: BTreeMap<String, (Vec<String>, usize, bool)> = BTreeMap::new();
        for cell in &row.cells {
            let mut tonight: BTreeMap<String, bool> = BTreeMap::new();
            for c in cell.iter().filter(|c| !c.fingerprint.is_empty()) {
                let e = tonight.entry(c.fingerprint.id()).or_insert(false);
                *e |= case_status(c) == Status::Fail;
                seen.entry(c.fingerprint.id())
                    .or_insert_with(|| (c.fingerprint.signatures.clone(), 0, false));
            }
            for (id, failed) in tonight {
                let e = seen.get_mut(&id).expect("inserted above");
                e.1 += 1;
                e.2 |= failed;
            }
        }
        row.fingerprints = seen
            .into_iter()
            .map(|(id, (signatures, nights, in_failure))| SeenFingerprint {
                id,
                signatures,
                nights,
                in_failure,
            })
            .collect();
        row.fingerprints
            .sort_by(|a, b| b.nights.cmp(&a.nights).then_with(|| a.id.cmp(&b.id)));
    }
    (shown, rows)
}

const STYLE: &str = r#"<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}h1{margin:0;font-size:20px}
header a{color:#cfd6e4}main{padding:16px 24px}table{border-collapse:collapse;background:#fff}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border:1px solid #e3e6ea}th{color:#6b7280;font-weight:600}
th.row{color:#1d2330;white-space:nowrap}td.cell{min-width:88px;font-size:12px}
td.pass{background:#e7f4e7}td.fail{background:#fbe3e3}td.quarantined{background:#fff4d6}td.absent{background:#f1f2f4;color:#9aa0a8}
.status{font-weight:700;text-transform:uppercase;font-size:11px;display:block}
a.run,span.run{display:block;white-space:nowrap;color:inherit}a.run.fail,span.run.fail{color:#b42323}
.fp{font-family:ui-monospace,monospace}.muted{color:#6b7280}.err{color:#b42323}
.canary{font-size:11px;color:#7a5a00;font-weight:400}ul.fps{margin:0;padding-left:16px;font-size:12px}
.dot{display:inline-block;width:11px;height:11px;margin-right:2px;border-radius:2px;background:#8a8f98}
.dot.e0{background:#3a8f3a}.dot.e1{background:#d64545}.dot.e2{background:#d6a345}.dot.e255{background:#6b2a8f}
</style>"#;

fn head(title: &str, crumbs: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>{STYLE}</head><body><header><h1>{t}</h1><nav>{crumbs}</nav></header><main>"#,
        t = html(title)
    )
}

fn error_line(out: &mut String, night: &Night) {
    let what = match &night.summary {
        Ok(_) => return,
        Err(NightError::Missing) => {
            "missing (the suite is still running, or it was interrupted)".to_string()
        }
        Err(NightError::Bad(e)) => e.clone(),
    };
    let _ = write!(
        out,
        r#"<p class="err night-error"><code>{}</code>: {}</p>"#,
        html(&night.file),
        html(&what)
    );
}

/// `/suites/`: every suite with its nights, the newest's counts and a dot per night.
pub fn suites_html(suites: &[(String, Vec<Night>)]) -> String {
    let mut out = head("faultline suites", r#"<a href="/">all runs</a>"#);
    if suites.is_empty() {
        out.push_str(r#"<p class="muted">No suites stored yet: <code>faultline suite FILE --store STORE</code> writes <code>STORE/suites/NAME/&lt;night&gt;/summary.json</code>.</p>"#);
    } else {
        out.push_str("<table><thead><tr><th>suite</th><th>nights</th><th>newest</th><th>newest: passed / failed / quarantined</th><th>exit codes, newest first</th></tr></thead><tbody>");
    }
    for (name, nights) in suites {
        let bad = nights.iter().filter(|n| n.summary.is_err()).count();
        let newest = nights.iter().find_map(|n| {
            n.summary.as_ref().ok().map(|s| {
                format!(
                    "{} / {} / {} (exit {})",
                    s.passed, s.failed, s.quarantined, s.exit_code
                )
            })
        });
        let mut dots = String::new();
        for n in nights.iter().take(NIGHTS_SHOWN) {
            let (class, what) = match &n.summary {
                Ok(s) => (format!("e{}", s.exit_code), format!("exit {}", s.exit_code)),
                Err(_) => ("bad".to_string(), "no readable summary".to_string()),
            };
            let _ = write!(
                dots,
                r#"<span class="dot {class}" title="{}: {what}"></span>"#,
                html(&n.stamp)
            );
        }
        let _ = write!(
            out,
            r#"<tr><th class="row"><a href="/suites/{n}/">{n}</a></th><td>{}{}</td><td>{}</td><td>{}</td><td>{dots}</td></tr>"#,
            nights.len(),
            if bad > 0 {
                format!(r#" <span class="err">({bad} without a readable summary)</span>"#)
            } else {
                String::new()
            },
            nights.first().map_or(String::new(), |n| html(&n.stamp)),
            newest.map_or(String::new(), |s| html(&s)),
            n = html(name),
        );
    }
    if !suites.is_empty() {
        out.push_str("</tbody></table>");
    }
    out.push_str("</main></body></html>");
    out
}

fn case_text(c: &StoredCase) -> String {
    let word = c.judgement.outcome.replace('-', " ");
    let mut t = format!("seed {}: {word}", c.seed);
    if case_status(c) == Status::Fail && !c.fingerprint.is_empty() {
        t.push(' ');
        t.push_str(&c.fingerprint.id());
    }
    t
}

/// `/suites/NAME/`: the matrix of rows by nights (at most `cap` columns, newest first).
pub fn suite_html(
    name: &str,
    nights: &[Night],
    cap: usize,
    link: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut out = head(
        &format!("suite {name}"),
        r#"<a href="/suites/">all suites</a> · <a href="/">all runs</a>"#,
    );
    let (shown, rows) = matrix(nights, cap);
    let readable = nights.iter().filter(|n| n.summary.is_ok()).count();
    let _ = write!(
        out,
        r#"<p class="muted">{} night(s) stored, {readable} readable; showing the newest {}, newest first. A cell is the row's runs that night; a failure gives its fingerprint id.</p>"#,
        nights.len(),
        shown.len()
    );
    for n in nights {
        error_line(&mut out, n);
    }
    if shown.is_empty() {
        out.push_str("</main></body></html>");
        return out;
    }
    out.push_str("<table><thead><tr><th>row</th>");
    for n in &shown {
        let Ok(s) = &n.summary else { continue };
        let _ = write!(
            out,
            r#"<th class="night" title="started {}"><a href="/runs/suites/{}/{}/">{}</a><br><span class="muted">exit {}</span></th>"#,
            html(&s.started_at),
            html(name),
            html(&n.stamp),
            html(&n.stamp),
            s.exit_code
        );
    }
    out.push_str(r#"<th>fingerprints (nights seen)</th></tr></thead><tbody>"#);
    for row in &rows {
        let _ = write!(
            out,
            r#"<tr data-row="{n}"><th class="row">{n}{}</th>"#,
            if row.canary {
                r#" <span class="canary">canary</span>"#
            } else {
                ""
            },
            n = html(&row.name)
        );
        for (cell, night) in row.cells.iter().zip(&shown) {
            let st = cell_status(cell);
            let _ = write!(
                out,
                r#"<td class="cell {c}" data-night="{}"><span class="status">{}</span>"#,
                html(&night.stamp),
                if st == Status::Absent {
                    "—"
                } else {
                    st.class()
                },
                c = st.class()
            );
            for c in cell {
                let text = html(&case_text(c));
                let class = case_status(c).class();
                let title = html(&c.judgement.why);
                match c.run_dir.as_deref().and_then(link) {
                    Some(href) => {
                        let _ = write!(
                            out,
                            r#"<a class="run {class}" href="{}" title="{title}">{text}</a>"#,
                            html(&href)
                        );
                    }
                    None => {
                        let _ = write!(
                            out,
                            r#"<span class="run {class}" title="{title}">{text}</span>"#
                        );
                    }
                }
            }
            out.push_str("</td>");
        }
        out.push_str(r#"<td class="fingerprints">"#);
        if row.fingerprints.is_empty() {
            out.push_str(r#"<span class="muted">none</span>"#);
        } else {
            out.push_str(r#"<ul class="fps">"#);
            for f in &row.fingerprints {
                let _ = write!(
                    out,
                    r#"<li><span class="fp">{}</span> × {} night{}{}: {}</li>"#,
                    html(&f.id),
                    f.nights,
                    if f.nights == 1 { "" } else { "s" },
                    if f.in_failure {
                        ""
                    } else {
                        r#" <span class="muted">(not a failure)</span>"#
                    },
                    html(&f.signatures.join(", "))
                );
            }
            out.push_str("</ul>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Fingerprint;

    const SIG: &str = "linearizable/kv:nonlinearizable:read";

    fn case(row: &str, seed: u64, outcome: &str, sig: Option<&str>, canary: bool) -> String {
        let fp = sig.map_or(String::new(), |s| format!(r#""{s}""#));
        format!(
            r#"{{"row":"{row}","case":"{row}/seed={seed}","seed":{seed},"canary":{canary},"command":"faultline run --seed {seed}","run_dir":"store/raft-kv/R{row}{seed}","fingerprint":{{"signatures":[{fp}]}},"judgement":{{"outcome":"{outcome}","why":"because"}},"elapsed_s":1.0}}"#
        )
    }

    fn summary(exit: u8, cases: &[String]) -> String {
        format!(
            r#"{{"suite":"ci","file":"suites/ci.toml","seed":1,"started_at":"2026-12-01T02:00:00Z","elapsed_s":9.0,"time_budget_s":600.0,"exit_code":{exit},"passed":1,"failed":0,"quarantined":1,"canaries_caught":true,"cases":[{}]}}"#,
            cases.join(",")
        )
    }

    /// Three readable nights (the middle one with `flaky` failing as X), one bad file, one
    /// night without a summary; newest first, as `load_nights` gives them.
    fn nights() -> Vec<Night> {
        let night = |stamp: &str, flaky: &str, sig: Option<&str>, exit| {
            Night::parse(
                "ci",
                stamp,
                Some(Ok(summary(
                    exit,
                    &[
                        case("flaky", 1, flaky, sig, false),
                        case("flaky", 2, "pass", None, false),
                        case("quiet", 3, "quarantined", Some("elle:G1c"), false),
                        case("canary", 6, "pass", Some(SIG), true),
                    ],
                ))),
            )
        };
        vec![
            Night::parse("ci", "20261205T020000", None),
            night("20261204T020000", "pass", None, 0),
            Night::parse(
                "ci",
                "20261203T020000",
                Some(Ok(r#"{"suite": "ci", "cases": ["#.into())),
            ),
            night("20261202T020000", "anomaly", Some(SIG), 1),
            night("20261201T020000", "pass", None, 0),
        ]
    }

    fn x() -> String {
        Fingerprint {
            signatures: vec![SIG.into()],
        }
        .id()
    }

    #[test]
    fn a_row_failing_one_night_with_its_fingerprint() {
        let ns = nights();
        let (shown, rows) = matrix(&ns, NIGHTS_SHOWN);
        assert_eq!(
            shown.iter().map(|n| n.stamp.as_str()).collect::<Vec<_>>(),
            ["20261204T020000", "20261202T020000", "20261201T020000"]
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["flaky", "quiet", "canary"]);
        let flaky = &rows[0];
        let st: Vec<Status> = flaky.cells.iter().map(|c| cell_status(c)).collect();
        assert_eq!(st, [Status::Pass, Status::Fail, Status::Pass]);
        assert_eq!(
            flaky.fingerprints,
            [SeenFingerprint {
                id: x(),
                signatures: vec![SIG.into()],
                nights: 1,
                in_failure: true
            }]
        );
        let quiet = &rows[1];
        assert!(
            quiet
                .cells
                .iter()
                .all(|c| cell_status(c) == Status::Quarantined)
        );
        assert_eq!(quiet.fingerprints[0].nights, 3);
        assert!(!quiet.fingerprints[0].in_failure);
        assert!(rows[2].canary);
        assert_eq!(rows[2].fingerprints[0].id, x());
        assert_eq!(rows[2].fingerprints[0].nights, 3);

        let link = |d: &str| {
            Some(format!(
                "/runs/{}/report.html",
                d.trim_start_matches("store/")
            ))
        };
        let page = suite_html("ci", &ns, NIGHTS_SHOWN, &link);
        // columns newest first, each night's files linked
        let cols: Vec<usize> = [
            "20261204T020000/\">",
            "20261202T020000/\">",
            "20261201T020000/\">",
        ]
        .iter()
        .map(|s| page.find(s).unwrap_or_else(|| panic!("{s} in {page}")))
        .collect();
        assert!(cols[0] < cols[1] && cols[1] < cols[2], "{page}");
        assert!(page.contains(r#"<a href="/runs/suites/ci/20261202T020000/">"#));
        // the failing cell: its class, its run linked with the fingerprint id
        assert!(page.contains(&format!(
            r#"<td class="cell fail" data-night="20261202T020000"><span class="status">fail</span><a class="run fail" href="/runs/raft-kv/Rflaky1/report.html" title="because">seed 1: anomaly {}</a>"#,
            x()
        )), "{page}");
        assert!(page.contains(r#"<td class="cell pass" data-night="20261204T020000"><span class="status">pass</span><a class="run pass" href="/runs/raft-kv/Rflaky1/report.html""#));
        assert!(page.contains(r#"<td class="cell quarantined" data-night="20261201T020000">"#));
        assert!(page.contains(&format!(
            r#"<li><span class="fp">{}</span> × 1 night: {SIG}</li>"#,
            x()
        )));
        assert!(
            page.contains(" × 3 nights <span class=\"muted\">(not a failure)</span>: elle:G1c")
        );
        assert!(page.contains(
            r#"<tr data-row="canary"><th class="row">canary <span class="canary">canary</span></th>"#
        ));
        // a pass carries no fingerprint id in its cell (the canary's catch is listed per row)
        assert!(page.contains(r#">seed 6: pass</a>"#));
    }

    #[test]
    fn a_bad_or_missing_summary_is_a_line_naming_the_file() {
        let ns = nights();
        let page = suite_html("ci", &ns, NIGHTS_SHOWN, &|_| None);
        assert!(
            page.contains(
                r#"<p class="err night-error"><code>suites/ci/20261203T020000/summary.json</code>: not a suite summary: "#
            ),
            "{page}"
        );
        assert!(page.contains(
            "<code>suites/ci/20261205T020000/summary.json</code>: missing (the suite is still running"
        ));
        assert!(page.contains("5 night(s) stored, 3 readable"));
        assert!(!page.contains("data-night=\"20261203T020000\""));
        // no link resolver: the runs are named but not linked
        assert!(page.contains(r#"<span class="run pass" title="because">seed 2: pass</span>"#));

        let list = suites_html(&[("ci".into(), ns)]);
        assert!(list.contains(r#"<a href="/suites/ci/">ci</a>"#), "{list}");
        assert!(list.contains("5 <span class=\"err\">(2 without a readable summary)</span>"));
        assert!(list.contains("<td>20261205T020000</td>"));
        assert!(list.contains("1 / 0 / 1 (exit 0)"));
        assert!(list.contains(r#"<span class="dot e1" title="20261202T020000: exit 1">"#));
        // only bad nights: the errors, no table
        let bad = vec![Night::parse(
            "ci",
            "1",
            Some(Err("unreadable: denied".into())),
        )];
        let page = suite_html("ci", &bad, NIGHTS_SHOWN, &|_| None);
        assert!(page.contains("<code>suites/ci/1/summary.json</code>: unreadable: denied"));
        assert!(!page.contains("<table>"));
    }

    #[test]
    fn columns_are_capped_to_the_newest() {
        let ns: Vec<Night> = (0..35)
            .rev()
            .map(|i| {
                Night::parse(
                    "ci",
                    &format!("202612{i:02}T000000"),
                    Some(Ok(summary(0, &[case("r", 1, "pass", None, false)]))),
                )
            })
            .collect();
        let page = suite_html("ci", &ns, NIGHTS_SHOWN, &|_| None);
        assert_eq!(page.matches("<td class=\"cell pass\"").count(), 30);
        assert!(page.contains("showing the newest 30"));
        assert!(page.contains("data-night=\"20261234T000000\""));
        assert!(!page.contains("data-night=\"20261204T000000\""));
    }

    #[test]
    fn run_links_stay_inside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(store.join("raft-kv/20261201T020100")).unwrap();
        std::fs::write(store.join("raft-kv/20261201T020100/report.html"), "x").unwrap();
        std::fs::create_dir_all(store.join("raft-kv/20261201T020200")).unwrap();
        let abs = store.join("raft-kv/20261201T020100");
        assert_eq!(
            run_link(&store, abs.to_str().unwrap()).as_deref(),
            Some("/runs/raft-kv/20261201T020100/report.html")
        );
        // from another working directory, or a moved store: by <test>/<stamp>
        assert_eq!(
            run_link(&store, "elsewhere/store/raft-kv/20261201T020200").as_deref(),
            Some("/runs/raft-kv/20261201T020200/")
        );
        assert_eq!(run_link(&store, "store/raft-kv/20990101T000000"), None);
        assert_eq!(run_link(&store, "/etc"), None);
        assert_eq!(run_link(&store, "../.."), None);
        assert!(is_plain_name("ci") && !is_plain_name("..") && !is_plain_name("a/b"));
        assert!(!is_plain_name(".") && !is_plain_name(""));
    }
}
