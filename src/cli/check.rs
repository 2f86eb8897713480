//! `faultline check FILE... [--model M] [--format F] [--json] [--time-limit S]
//! [--memory-limit MB] [--all-keys] [--negative-balances] [--consistency-models M,..]
//! [--linearizable-keys] [--sequential-keys] [--wfr-keys] [--html OUT]`: checks recorded histories and exits 0 valid,
//! 1 anomalies found, 2 unknown, 254 unreadable input.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    /// Megabytes the search may remember per file before giving up with `unknown`
    /// (default: half the machine's memory).
    #[arg(long, value_name = "MB")]
    pub memory_limit: Option<u64>,
    /// Decide every key instead of stopping at the first invalid one.
    #[arg(long)]
    pub all_keys: bool,
    /// Worker threads (default: one per core).
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
    let mut overall = Validity::Valid;
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
    for (n, file) in args.files.iter().enumerate() {
        // The budget covers loading as well as checking.
        let started = Instant::now();
        let limits = LoadLimits {
            deadline: budget.time_limit.map(|t| started + t),
            memory_bytes: budget.memory_limit_bytes,
            threads: args.threads,
        };
        let compact = match compact::load(file, format, &limits) {
            Ok((c, _stats)) => c,
            Err(LoadError::History(e)) => return Err(e.into()),
            Err(stop) => {
                let verdict = Verdict {
                    checker: "load".into(),
                    valid: Validity::Unknown,
                    anomalies: vec![],
                    explanation: format!("undecided: {stop}"),
                    stats: json!({"ops": 0, "keys": 0, "elapsed_ms": started.elapsed().as_secs_f64() * 1e3}),
                };
                overall = overall.and(verdict.valid);
                print_verdict(&args, file, &args.model, &verdict)?;
                continue;
            }
        };
        let mut settings = settings.clone();
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
        let bar = progress_bar();
        let progress: Option<linearizable::Progress> = bar.as_ref().map(|bar| {
            let (bar, start) = (bar.clone(), Instant::now());
            Arc::new(move |done: usize, total: usize| {
                if start.elapsed() > Duration::from_secs(1) && bar.is_hidden() {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
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
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        overall = overall.and(verdict.valid);
        if let (Some(out), Some(history)) = (&args.html, &full) {
            let title = file.display().to_string();
            let verdicts = [verdict.clone()];
            let page = report::render_html(&report::ReportInput::new(title, history, &verdicts));
            std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
        }
        print_verdict(&args, file, &model, &verdict)?;
        if n + 1 == args.files.len() {
            // The process ends next: freeing a large history piece by piece would only
            // delay the exit (tens of ms per million ops); the OS takes the pages back.
            std::mem::forget(compact);
            std::mem::forget(full);
        }
    }
    Ok(overall.exit_code())
}

fn print_verdict(args: &Args, file: &Path, model: &str, verdict: &Verdict) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", json_line(file, model, verdict))?;
    } else {
        write!(out, "{}", text_report(file, model, verdict))?;
    }
    Ok(())
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

/// A bar on stderr that only appears once a check has run for a second, and only on a
/// terminal.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} keys")
            .expect("static template")
            .progress_chars("=> "),
    );
    Some(bar)
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

fn json_line(file: &Path, model: &str, v: &Verdict) -> Value {
    json!({
        "file": file.display().to_string(),
        "model": model,
        "valid": v.valid,
        "checker": v.checker,
        "explanation": v.explanation,
        "anomalies": v.anomalies,
        "stats": v.stats,
    })
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
