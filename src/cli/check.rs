//! `faultline check FILE... [--model M] [--format F] [--json] [--time-limit S]
//! [--memory-limit MB] [--all-keys] [--negative-balances] [--consistency-models M,..]
//! [--linearizable-keys] [--sequential-keys] [--wfr-keys] [--html OUT]`: checks recorded histories and exits 0 valid,
//! 1 anomalies found, 2 unknown, 254 unreadable input.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use faultline::checker::linearizable;
use faultline::checker::{Budget, Validity, Verdict};
use faultline::history::compact::{self, LoadError, LoadLimits, OpSource};
use faultline::history::{Format, History, edn_export};
use faultline::report;

use super::BadInput;

#[derive(clap::Args)]
pub struct Args {
    /// History files (native JSONL, Jepsen EDN / JSON / log lines, Porcupine kv).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// auto (the model the ops imply), or a checker's name (--help lists them)
    #[arg(long, default_value = "auto", long_help = model_help())]
    pub model: String,
    /// auto, jsonl, edn, json, jepsen-log, porcupine-kv.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds per file before giving up with `unknown`.
    #[arg(long, value_name = "S")]
    pub time_limit: Option<f64>,
    /// Megabytes the checks may hold before giving up with `unknown` (default: half the
    /// machine's memory). Files checked at once share it; one undecided within its share
    /// is checked again alone, with all of it.
    #[arg(long, value_name = "MB")]
    pub memory_limit: Option<u64>,
    /// Decide every key instead of stopping at the first invalid one.
    #[arg(long)]
    pub all_keys: bool,
    /// Worker threads: files checked at once, and each file's parser and search threads
    /// (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The model's initial state as JSON, when not its default (e.g. '{"x":0,"y":0}'; for
    /// bank, the total every read must show or the opening balances, else the first read's).
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,
    /// bank: balances may go negative (no negative-value anomaly).
    #[arg(long)]
    pub negative_balances: bool,
    /// liveness: T in seconds, the longest an op may wait for a success on its key while
    /// at most a minority is down.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub liveness_within: f64,
    /// Elle (list-append, rw-register): the consistency models expected to hold, comma
    /// separated, in Elle's names (default strict-serializable).
    #[arg(long, value_name = "MODELS", value_delimiter = ',')]
    pub consistency_models: Vec<String>,
    /// Elle rw-register: infer version order from the real-time order of txns on each key.
    #[arg(long)]
    pub linearizable_keys: bool,
    /// Elle rw-register: infer version order from each process's successive txns on a key.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Elle rw-register: within a txn, a write of a key follows the txn's read of it.
    #[arg(long)]
    pub wfr_keys: bool,
    /// Also write each history as Jepsen EDN to this file (one file only).
    #[arg(long, value_name = "FILE")]
    pub export_edn: Option<PathBuf>,
    /// Write a self-contained HTML report of the check to this file (one file only).
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let format: Format = args.format.parse().map_err(BadInput)?;
    if args.export_edn.is_some() && args.files.len() != 1 {
        return Err(BadInput("--export-edn takes exactly one input file".into()).into());
    }
    if args.html.is_some() && args.files.len() != 1 {
        return Err(BadInput("--html takes exactly one input file".into()).into());
    }
    let initial: Option<Value> = match &args.initial {
        None => None,
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| BadInput(format!("--initial is not JSON: {e}")))?,
        ),
    };
    if let Some(t) = args.time_limit
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(BadInput(format!("--time-limit must be a number of seconds, not {t}")).into());
    }
    let budget = Budget {
        time_limit: args.time_limit.map(Duration::from_secs_f64),
        memory_limit_bytes: Some(
            args.memory_limit
                .map_or_else(default_memory_limit, |mb| mb.saturating_mul(1 << 20)),
        ),
    };
    let consistency_models = args
        .consistency_models
        .iter()
        .map(|m| {
            m.trim()
                .parse()
                .map_err(|e| BadInput(format!("--consistency-models: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let liveness_within_ms = |s: f64| {
        (s > 0.0 && s.is_finite())
            .then_some((s * 1000.0) as u64)
            .ok_or_else(|| BadInput(format!("--liveness-within: must be positive, got {s}")))
    };
    let settings = Settings {
        elle: ElleFlags {
            consistency_models,
            linearizable_keys: args.linearizable_keys,
            sequential_keys: args.sequential_keys,
            wfr_keys: args.wfr_keys,
        },
        progress: None,
        budget: budget.clone(),
        all_keys: args.all_keys,
        threads: args.threads,
        initial: initial.clone(),
        negative_balances: args.negative_balances,
        liveness_within_ms: Some(liveness_within_ms(args.liveness_within)?),
    };
    let job = Job {
        args: &args,
        format,
        settings,
        budget,
        bars: std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
    };
    let workers = if args.files.len() < 2 {
        1
    } else {
        faultline::history::cores::or_available(args.threads).min(args.files.len())
    };
    let overall = if workers == 1 {
        let mut overall = Validity::Valid;
        for n in 0..args.files.len() {
            let Checked::Done { out, valid } = job.check_file(n, Share::Whole)? else {
                unreachable!("a file checked with the whole budget is not checked again")
            };
            overall = overall.and(valid);
            std::io::stdout().lock().write_all(&out)?;
        }
        overall
    } else {
        check_in_parallel(&job, workers)?
    };
    Ok(overall.exit_code())
}

/// What `check` needs to check any one of its files.
struct Job<'a> {
    args: &'a Args,
    format: Format,
    settings: Settings,
    budget: Budget,
    /// The progress bars (stderr is a terminal), hidden until a check has run a second.
    bars: Option<MultiProgress>,
}

/// How much of the budget's memory limit a file may use.
#[derive(Clone, Copy, PartialEq)]
enum Share {
    /// All of it: the file is checked alone.
    Whole,
    /// A `1/n` part: `n` files are checked at once.
    Part(u64),
}

/// What checking one file came to.
enum Checked {
    /// The file's report, as printed, and its verdict.
    Done { out: Vec<u8>, valid: Validity },
    /// Undecided within its part of the memory limit: to be checked again alone.
    Again,
}

impl Job<'_> {
    /// Loads and checks file `n` within `share` of the memory limit, and renders its report.
    fn check_file(&self, n: usize, share: Share) -> anyhow::Result<Checked> {
        let (args, budget) = (self.args, &self.budget);
        let file = &args.files[n];
        // The budget covers loading as well as checking.
        let started = Instant::now();
        let memory_limit = match share {
            Share::Whole => budget.memory_limit_bytes,
            Share::Part(n) => budget.memory_limit_bytes.map(|m| m / n),
        };
        // Undecided with part of the memory and time to spare: the whole memory may decide it.
        let again = |valid: Validity| {
            share != Share::Whole
                && valid == Validity::Unknown
                && budget.time_limit.is_none_or(|t| started.elapsed() < t)
        };
        let limits = LoadLimits {
            deadline: budget.time_limit.map(|t| started + t),
            memory_bytes: memory_limit,
            threads: args.threads,
        };
        let compact = match compact::load(file, self.format, &limits) {
            Ok((c, _stats)) => c,
            Err(LoadError::History(e)) => return Err(e.into()),
            Err(stop) => {
                if again(Validity::Unknown) {
                    return Ok(Checked::Again);
                }
                let verdict = Verdict {
                    checker: "load".into(),
                    valid: Validity::Unknown,
                    anomalies: vec![],
                    explanation: format!("undecided: {stop}"),
                    stats: json!({"ops": 0, "keys": 0, "elapsed_ms": started.elapsed().as_secs_f64() * 1e3}),
                };
                let out = render(args, file, &args.model, &verdict);
                return Ok(Checked::Done {
                    out,
                    valid: verdict.valid,
                });
            }
        };
        let mut settings = self.settings.clone();
        settings.budget.memory_limit_bytes = memory_limit;
        settings.budget.time_limit = budget
            .time_limit
            .map(|t| t.saturating_sub(started.elapsed()));
        // Reports and exports read the whole history; the search reads the compact one.
        let full: Option<History> =
            (args.html.is_some() || args.export_edn.is_some()).then(|| compact.to_history());
        if let (Some(out), Some(h)) = (&args.export_edn, &full) {
            export(h, out)?;
        }
        let model = resolve_model(&compact, &args.model, file)?;
        let bar = self.bars.as_ref().map(|bars| bars.add(progress_bar()));
        let progress: Option<linearizable::Progress> = bar.as_ref().map(|bar| {
            let (bar, start) = (bar.clone(), Instant::now());
            let bars = self.bars.clone().expect("a bar has its bars");
            Arc::new(move |done: usize, total: usize| {
                if start.elapsed() > Duration::from_secs(1) && bars.is_hidden() {
                    bars.set_draw_target(ProgressDrawTarget::stderr());
                }
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }) as linearizable::Progress
        });
        let verdict = match &full {
            Some(h) => verdict_of(h, &model, &settings, progress),
            None => verdict_of(&compact, &model, &settings, progress),
        }
        .map_err(|e| BadInput(format!("{}: {}", file.display(), e.0)))?;
        if let (Some(bar), Some(bars)) = (bar, &self.bars) {
            bar.finish_and_clear();
            bars.remove(&bar);
        }
        if again(verdict.valid) {
            return Ok(Checked::Again);
        }
        if let (Some(out), Some(history)) = (&args.html, &full) {
            let title = file.display().to_string();
            let verdicts = [verdict.clone()];
            let page = report::render_html(&report::ReportInput::new(title, history, &verdicts));
            std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
        }
        let out = render(args, file, &model, &verdict);
        if n + 1 == args.files.len() {
            // The process ends next: freeing a large history piece by piece would only
            // delay the exit (tens of ms per million ops); the OS takes the pages back.
            std::mem::forget(compact);
            std::mem::forget(full);
        }
        Ok(Checked::Done {
            out,
            valid: verdict.valid,
        })
    }
}

/// Which files the workers may still start, and whether they may start any now.
struct Gate {
    /// Workers hold off while a file is checked again alone.
    paused: bool,
    /// Files being checked.
    active: usize,
}

/// Checks the files `workers` at a time, each within its part of the memory limit, and
/// prints their reports in file order as they come. A file undecided within its part is
/// checked again alone, with the whole limit, so at no time do the checks together hold
/// more than the limit and every verdict is the one a check of the files one by one
/// gives. As one by one, the first unreadable file ends the run once the reports before
/// it are printed, and no later file is started.
fn check_in_parallel(job: &Job, workers: usize) -> anyhow::Result<Validity> {
    let files = job.args.files.len();
    let next = AtomicUsize::new(0);
    // Files after the first that failed are not started.
    let last = AtomicUsize::new(usize::MAX);
    let gate = (
        Mutex::new(Gate {
            paused: false,
            active: 0,
        }),
        Condvar::new(),
    );
    let lock = || gate.0.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel::<(usize, anyhow::Result<Checked>)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, last, gate, lock) = (&next, &last, &gate, &lock);
            s.spawn(move || {
                loop {
                    let n = {
                        let mut g = lock();
                        while g.paused {
                            g = gate.1.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= files || n > last.load(Ordering::Relaxed) {
                            break;
                        }
                        g.active += 1;
                        n
                    };
                    let r = job.check_file(n, Share::Part(workers as u64));
                    if r.is_err() {
                        last.fetch_min(n, Ordering::Relaxed);
                    }
                    lock().active -= 1;
                    gate.1.notify_all();
                    if tx.send((n, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let print = || -> anyhow::Result<Validity> {
            let mut overall = Validity::Valid;
            let mut waiting: BTreeMap<usize, anyhow::Result<Checked>> = BTreeMap::new();
            for n in 0..files {
                let r = loop {
                    if let Some(r) = waiting.remove(&n) {
                        break r;
                    }
                    let (i, r) = rx
                        .recv()
                        .context("the check of a file ended without a report")?;
                    waiting.insert(i, r);
                };
                let (out, valid) = match r? {
                    Checked::Done { out, valid } => (out, valid),
                    Checked::Again => {
                        let mut g = lock();
                        g.paused = true;
                        while g.active > 0 {
                            g = gate.1.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(g);
                        let r = job.check_file(n, Share::Whole);
                        lock().paused = false;
                        gate.1.notify_all();
                        match r? {
                            Checked::Done { out, valid } => (out, valid),
                            Checked::Again => unreachable!("checked with the whole budget"),
                        }
                    }
                };
                overall = overall.and(valid);
                std::io::stdout().lock().write_all(&out)?;
            }
            Ok(overall)
        };
        let result = print();
        if result.is_err() {
            // Whatever stopped the printing stops the workers at their next file.
            last.store(0, Ordering::Relaxed);
            lock().paused = false;
            gate.1.notify_all();
        }
        result
    })
}

/// A file's report as `check` prints it: one JSON line, or text.
fn render(args: &Args, file: &Path, model: &str, verdict: &Verdict) -> Vec<u8> {
    if args.json {
        let mut out =
            serde_json::to_vec(&JsonLine::new(file, model, verdict)).expect("a verdict serializes");
        out.push(b'\n');
        out
    } else {
        text_report(file, model, verdict).into_bytes()
    }
}

pub use faultline::checker::registry::{ElleFlags, Settings};

/// `--model`'s long help: every checker in the registry.
fn model_help() -> String {
    let mut s = String::from("auto: the model the ops' functions imply; or one of:\n");
    for e in faultline::checker::registry::entries() {
        s.push_str(&format!("  {}: {}\n", e.name, e.about));
    }
    s
}

/// The verdict `check` gives `history` under `model`: the registry's checker of that name
/// (the linearizability search, Elle, the weak-consistency and Jepsen workload checkers).
/// An op the checker cannot interpret is bad input.
pub fn verdict_of<S: OpSource>(
    source: &S,
    model: &str,
    settings: &Settings,
    progress: Option<linearizable::Progress>,
) -> Result<Verdict, BadInput> {
    let settings = Settings {
        progress,
        ..settings.clone()
    };
    faultline::checker::registry::check(source, model, &settings)
        .map_err(|e| BadInput(e.to_string()))
}

/// A file's bar, drawn with the others once a check has run for a second.
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} keys")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// Half of MemTotal, or 4 GiB if /proc/meminfo cannot say.
fn default_memory_limit() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    total_kb.map_or(4 << 30, |kb| kb * 1024 / 2)
}

fn export(history: &History, out: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    edn_export::write(&history.events, &mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing {}", out.display()))
}

/// `--model` as given, or for `auto` the model the ops imply (bad input if none does).
pub fn resolve_model<S: OpSource>(
    history: &S,
    model: &str,
    file: &Path,
) -> Result<String, BadInput> {
    match model {
        "auto" => infer_model(history).ok_or_else(|| {
            BadInput(format!(
                "{}: cannot tell which model fits these ops; pass --model",
                file.display()
            ))
        }),
        m => Ok(m.to_string()),
    }
}

/// Picks the model the ops' functions imply.
pub fn infer_model<S: OpSource>(history: &S) -> Option<String> {
    let mut fs: Vec<&str> = (0..history.op_count()).map(|i| history.op_f(i)).collect();
    fs.sort_unstable();
    fs.dedup();
    let all = |allowed: &[&str]| !fs.is_empty() && fs.iter().all(|f| allowed.contains(f));
    // Ops are built one at a time, and only for the shapes that need their values.
    let ops = || (0..history.op_count()).map(|i| history.op(i));
    // Jepsen's long-fork workload: reads and writes whose values are micro-op lists.
    if all(&["read", "write"]) && ops().all(|o| is_rw_txn(&o.invoke_value)) {
        return Some("long-fork".into());
    }
    // Jepsen's bank: transfers, and reads of every balance (a map), maybe reads alone.
    let ok_reads =
        || ops().filter(|o| o.f == "read" && o.outcome == faultline::history::Outcome::Ok);
    if all(&["transfer", "read"])
        && (fs.contains(&"transfer")
            || ok_reads().next().is_some() && ok_reads().all(|o| o.value.is_object()))
    {
        return Some("bank".into());
    }
    if all(&["read", "write", "cas"]) {
        return Some("cas-register".into());
    }
    if all(&["get", "put", "append"]) {
        return Some("append-kv".into());
    }
    if all(&["acquire", "release"]) {
        return Some("mutex".into());
    }
    if all(&["add", "read"]) {
        // A counter reads a number, a set its elements.
        let counter = ok_reads().next().is_some() && ok_reads().all(|o| o.value.is_i64());
        return Some(if counter { "counter" } else { "set" }.into());
    }
    if all(&["generate"]) {
        return Some("unique-ids".into());
    }
    if all(&["enqueue", "dequeue"]) {
        return Some("queue".into());
    }
    if all(&["txn"]) {
        let micro: Vec<String> = ops()
            .filter_map(|o| o.invoke_value.as_array().cloned())
            .flatten()
            .filter_map(|m| m.get(0).and_then(Value::as_str).map(str::to_string))
            .collect();
        let has = |f: &str| micro.iter().any(|m| m == f);
        return Some(
            if has("append") {
                "list-append"
            } else if has("read") || has("write") {
                "multi-register"
            } else {
                "rw-register"
            }
            .into(),
        );
    }
    None
}

/// A list of `["r"|"w", k, v]` micro-ops.
fn is_rw_txn(v: &Value) -> bool {
    v.as_array().is_some_and(|ms| {
        !ms.is_empty()
            && ms.iter().all(|m| {
                m.as_array()
                    .is_some_and(|m| m.len() == 3 && matches!(m[0].as_str(), Some("r" | "w")))
            })
    })
}

/// A file's `--json` line. Its fields, and an anomaly's, are in name order, as a
/// `serde_json::Value` map writes them, without building one.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    anomalies: Vec<JsonAnomaly<'a>>,
    checker: &'a str,
    explanation: &'a str,
    file: String,
    model: &'a str,
    stats: &'a Value,
    valid: Validity,
}

#[derive(serde::Serialize)]
struct JsonAnomaly<'a> {
    #[serde(skip_serializing_if = "Value::is_null")]
    data: &'a Value,
    description: &'a str,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    events: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    kind: &'a str,
}

impl<'a> JsonLine<'a> {
    fn new(file: &Path, model: &'a str, v: &'a Verdict) -> Self {
        JsonLine {
            anomalies: v
                .anomalies
                .iter()
                .map(|a| JsonAnomaly {
                    data: &a.data,
                    description: &a.description,
                    events: &a.events,
                    key: a.key.as_deref(),
                    kind: &a.kind,
                })
                .collect(),
            checker: &v.checker,
            explanation: &v.explanation,
            file: file.display().to_string(),
            model,
            stats: &v.stats,
            valid: v.valid,
        }
    }
}

fn text_report(file: &Path, model: &str, v: &Verdict) -> String {
    let word = match v.valid {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown",
    };
    let ms = v.stats["elapsed_ms"].as_f64().unwrap_or(0.0);
    // The figures a checker reports; not every checker counts ops and keys.
    let mut figures = vec![model.to_string()];
    for (field, unit) in [
        ("ops", "ops"),
        ("keys", "keys"),
        ("judged_ops", "ops judged"),
    ] {
        if let Some(n) = v.stats.get(field).filter(|n| !n.is_null()) {
            figures.push(format!("{n} {unit}"));
        }
    }
    figures.push(format!("{ms:.1} ms"));
    let mut s = format!(
        "{}: {word} ({})\n  {}\n",
        file.display(),
        figures.join(", "),
        v.explanation
    );
    for a in v.anomalies.iter().skip(1).take(9) {
        s.push_str(&format!("  - {}\n", a.description));
    }
    if v.anomalies.len() > 10 {
        s.push_str(&format!(
            "  ... and {} more (see --json)\n",
            v.anomalies.len() - 10
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline::checker::Anomaly;

    #[test]
    fn json_line_is_the_verdict_as_a_json_value_writes_it() {
        let anomaly = |key: Option<&str>, events: Vec<u64>, data: Value| Anomaly {
            kind: "nonlinearizable".into(),
            key: key.map(str::to_string),
            description: "a \"stale\" read".into(),
            events,
            data,
        };
        let verdict = Verdict {
            checker: "linearizable/cas-register".into(),
            valid: Validity::Invalid,
            anomalies: vec![
                anomaly(
                    Some("k"),
                    vec![4, 5],
                    json!({"z": 1, "a": [null, {"y": 2, "b": 3}]}),
                ),
                anomaly(None, vec![], Value::Null),
            ],
            explanation: "not linearizable".into(),
            stats: json!({"ops": 2, "keys": 1, "elapsed_ms": 0.5}),
        };
        let file = Path::new("dir/h.log");
        let want = json!({
            "file": file.display().to_string(),
            "model": "cas-register",
            "valid": verdict.valid,
            "checker": verdict.checker,
            "explanation": verdict.explanation,
            "anomalies": verdict.anomalies,
            "stats": verdict.stats,
        });
        let got = serde_json::to_string(&JsonLine::new(file, "cas-register", &verdict)).unwrap();
        assert_eq!(got, want.to_string());
    }
}
