//! `faultline shrink RUN_DIR|FILE... [--model M] [--format F] [--out DIR] [--max-checks N]
//! [--time-limit S] [--json]`: the smallest sub-history that is still rejected with the same
//! finding, found without re-running anything. For a run directory it is written to
//! `RUN_DIR/shrunk/` (`history.jsonl` and `report.html`); for a history file, to `--out` when
//! given. Exit 0 when every input was shrunk or had nothing to shrink, 254 for bad input.
//! With `--schedule`, the run's fault schedule is shrunk instead (`shrink_schedule`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use faultline::checker::shrink::{self, Limits, Shrunk};
use faultline::checker::{Budget, Validity, Verdict};
use faultline::history::{Format, History, read_file};
use faultline::report;
use faultline::runner::shrink::{ShrinkRunError, findings, shrink_run};
use faultline::runner::store;

use super::BadInput;
use super::check::{Settings, resolve_model, verdict_of};

#[derive(clap::Args)]
pub struct Args {
    /// Run directories (their own checkers decide) or history files (`check`'s formats).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// For history files: the model, as for `check` (auto infers it from the ops).
    #[arg(long, default_value = "auto")]
    pub model: String,
    /// For history files: auto, jsonl, edn, json, jepsen-log, porcupine-kv.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// For one history file: write the shrunk history and its report into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Most checks per input; then the smallest rejected history found so far is kept.
    #[arg(long, default_value_t = 20_000)]
    pub max_checks: usize,
    /// Seconds per input; then the smallest rejected history found so far is kept.
    #[arg(long, default_value_t = 120.0)]
    pub time_limit: f64,
    /// Seconds per single check of a candidate (then it counts as not rejected).
    #[arg(long, default_value_t = 10.0)]
    pub check_time_limit: f64,
    /// One JSON object per input instead of text.
    #[arg(long)]
    pub json: bool,
    /// Shrink the run's fault schedule instead of its history: the fewest faults, held the
    /// shortest, that still fail the same way, found by replaying candidates.
    #[arg(long)]
    pub schedule: bool,
    /// With --schedule: seconds of replays per run; then the smallest schedule found so far
    /// is kept.
    #[arg(long, default_value_t = 1800.0)]
    pub budget: f64,
    /// With --schedule: replays of a candidate before it counts as not reproducing.
    #[arg(long, default_value_t = 1)]
    pub tries: usize,
    /// With --schedule: replays of the shrunk schedule afterwards, to say how reliably it
    /// reproduces (a candidate is kept on one reproducing replay).
    #[arg(long, default_value_t = 2)]
    pub confirm: usize,
}

/// One input's outcome.
enum Outcome {
    Shrunk {
        shrunk: Shrunk,
        finding: String,
        verdicts: Vec<Verdict>,
        written: Option<PathBuf>,
    },
    NothingToShrink(String),
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if args.schedule {
        if !(args.budget.is_finite() && args.budget > 0.0) {
            return Err(BadInput(format!(
                "--budget must be a positive number of seconds, not {}",
                args.budget
            ))
            .into());
        }
        let mut worst = 0;
        for input in &args.inputs {
            if !input.join(store::SCHEDULE).is_file() {
                return Err(BadInput(format!(
                    "{}: no schedule.json here (--schedule shrinks a run directory)",
                    input.display()
                ))
                .into());
            }
            worst = worst.max(super::shrink_schedule::main(
                input,
                Duration::from_secs_f64(args.budget),
                args.tries,
                args.confirm,
            )?);
        }
        return Ok(worst);
    }
    let format: Format = args.format.parse().map_err(BadInput)?;
    for (what, v) in [
        ("--time-limit", args.time_limit),
        ("--check-time-limit", args.check_time_limit),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(BadInput(format!(
                "{what} must be a positive number of seconds, not {v}"
            ))
            .into());
        }
    }
    let files = args.inputs.iter().filter(|p| !p.is_dir()).count();
    if args.out.is_some() && (files != 1 || args.inputs.len() != 1) {
        return Err(BadInput("--out takes exactly one history file".into()).into());
    }
    let limits = Limits {
        max_checks: args.max_checks,
        time_limit: Some(Duration::from_secs_f64(args.time_limit)),
    };
    let check_limit = Duration::from_secs_f64(args.check_time_limit);
    let stdout = std::io::stdout();
    for input in &args.inputs {
        let started = Instant::now();
        let outcome = if input.is_dir() {
            shrink_dir(input, check_limit, &limits)?
        } else {
            shrink_file(input, format, &args, check_limit, &limits)?
        };
        let elapsed = started.elapsed();
        let mut out = stdout.lock();
        if args.json {
            writeln!(out, "{}", json_line(input, &outcome, elapsed))?;
        } else {
            write!(out, "{}", text(input, &outcome, elapsed))?;
        }
    }
    Ok(0)
}

fn shrink_dir(dir: &Path, check_limit: Duration, limits: &Limits) -> anyhow::Result<Outcome> {
    if !dir.join(store::HISTORY).is_file() {
        return Err(BadInput(format!(
            "{}: no history.jsonl here (not a run directory?)",
            dir.display()
        ))
        .into());
    }
    let r = match shrink_run(dir, check_limit, limits) {
        Ok(r) => r,
        Err(ShrinkRunError::NotRejected(why)) => {
            return Ok(Outcome::NothingToShrink(format!(
                "{why}: its history is not rejected (a finding only in the node logs cannot shrink)"
            )));
        }
        Err(e) => return Err(BadInput(e.to_string()).into()),
    };
    let out = dir.join("shrunk");
    write_shrunk(
        &out,
        &dir.display().to_string(),
        &r.shrunk.history,
        &r.verdicts,
    )?;
    Ok(Outcome::Shrunk {
        shrunk: r.shrunk,
        finding: r.finding,
        verdicts: r.verdicts,
        written: Some(out),
    })
}

fn shrink_file(
    file: &Path,
    format: Format,
    args: &Args,
    check_limit: Duration,
    limits: &Limits,
) -> anyhow::Result<Outcome> {
    let history = read_file(file, format)?;
    let model = resolve_model(&history, &args.model, file)?;
    let settings = Settings {
        budget: Budget {
            time_limit: Some(check_limit),
            memory_limit_bytes: None,
        },
        ..Settings::default()
    };
    let check = |h: &History| verdict_of(h, &model, &settings, None);
    let first = check(&history).map_err(|e| BadInput(format!("{}: {}", file.display(), e.0)))?;
    let Some(target) = findings(std::slice::from_ref(&first)).into_iter().next() else {
        let why = match first.valid {
            Validity::Unknown => format!("the checker could not decide it ({})", first.explanation),
            _ => "it is valid".into(),
        };
        return Ok(Outcome::NothingToShrink(format!(
            "{}: {why}",
            file.display()
        )));
    };
    let mut rejects =
        |h: &History| check(h).is_ok_and(|v| findings(std::slice::from_ref(&v)).contains(&target));
    let shrunk = shrink::shrink(&history, &mut rejects, limits)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let verdicts = vec![check(&shrunk.history).map_err(|e| BadInput(e.0))?];
    if let Some(out) = &args.out {
        write_shrunk(out, &file.display().to_string(), &shrunk.history, &verdicts)?;
    }
    Ok(Outcome::Shrunk {
        shrunk,
        finding: target,
        verdicts,
        written: args.out.clone(),
    })
}

/// `history.jsonl` and `report.html` of the shrunk history in `dir`.
fn write_shrunk(dir: &Path, source: &str, h: &History, verdicts: &[Verdict]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = String::new();
    for e in &h.events {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    let path = dir.join(store::HISTORY);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let title = format!("{source}, shrunk to {} ops", h.operations.len());
    let page = report::render_html(&report::ReportInput::new(title, h, verdicts));
    let path = dir.join("report.html");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}

fn json_line(input: &Path, o: &Outcome, elapsed: Duration) -> Value {
    match o {
        Outcome::Shrunk {
            shrunk,
            finding,
            written,
            ..
        } => json!({
            "input": input.display().to_string(),
            "finding": finding,
            "ops_before": shrunk.ops_before,
            "ops_after": shrunk.history.operations.len(),
            "keys_before": shrunk.keys_before,
            "keys_after": shrunk.keys_after,
            "kept_annotations": shrunk.kept_annotations,
            "checks": shrunk.checks,
            "elapsed_ms": elapsed.as_secs_f64() * 1e3,
            "stopped": shrunk.stopped,
            "written": written.as_ref().map(|p| p.display().to_string()),
        }),
        Outcome::NothingToShrink(why) => json!({
            "input": input.display().to_string(),
            "nothing_to_shrink": why,
        }),
    }
}

fn text(input: &Path, o: &Outcome, elapsed: Duration) -> String {
    match o {
        Outcome::Shrunk {
            shrunk,
            finding,
            verdicts,
            written,
        } => {
            let mut s = format!(
                "{}: {} ops on {} key(s) -> {} ops on {} key(s) ({} checks, {:.1} s), still {finding}{}\n",
                input.display(),
                shrunk.ops_before,
                shrunk.keys_before,
                shrunk.history.operations.len(),
                shrunk.keys_after,
                shrunk.checks,
                elapsed.as_secs_f64(),
                shrunk
                    .stopped
                    .as_ref()
                    .map_or(String::new(), |w| format!("; {w}, not minimal"))
            );
            for o in &shrunk.history.operations {
                s.push_str(&format!(
                    "  process {} {} {} -> {} ({:?}, events {}-{})\n",
                    o.process,
                    o.f,
                    o.invoke_value,
                    o.value,
                    o.outcome,
                    o.call,
                    o.ret.map_or("-".into(), |r| r.to_string())
                ));
            }
            if let Some(v) = verdicts.iter().find(|v| {
                findings(std::slice::from_ref(v))
                    .iter()
                    .any(|f| f == finding)
            }) {
                s.push_str(&format!("  {}\n", v.explanation));
            }
            if let Some(w) = written {
                s.push_str(&format!("  written: {}\n", w.display()));
            }
            s
        }
        Outcome::NothingToShrink(why) => format!("{}: nothing to shrink: {why}\n", input.display()),
    }
}
