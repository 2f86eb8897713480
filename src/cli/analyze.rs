//! `faultline analyze [RUN_DIR|latest]`: re-check a stored run, rewrite its results and report.

use std::path::PathBuf;
use std::time::Duration;

use faultline::runner::{analyze, store};

use super::BadInput;
use super::summary;

#[derive(clap::Args)]
pub struct Args {
    /// A run directory, or `latest` (under --store).
    #[arg(default_value = "latest")]
    pub run: String,
    /// The store `latest` refers to.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Time budget for the checkers, in seconds (then: unknown).
    #[arg(long, default_value_t = 120)]
    pub check_time_limit: u64,
    /// Leave info ops indeterminate instead of resolving them by the nodes' stored logs
    /// (also off when the run itself was started with --no-pin-info).
    #[arg(long)]
    pub no_pin_info: bool,
}

/// Whether the run in `dir` was started with `--no-pin-info` (its `invocation.json`).
fn run_said_no_pin(dir: &std::path::Path) -> bool {
    std::fs::read_to_string(dir.join(store::INVOCATION))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["args"]["no_pin_info"] == serde_json::json!(true))
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let dir = store::resolve_run_dir(&args.store, &args.run);
    if !dir.join(store::HISTORY).is_file() {
        return Err(BadInput(format!(
            "{}: no history.jsonl here (not a run directory?)",
            dir.display()
        ))
        .into());
    }
    let pin = !args.no_pin_info && !run_said_no_pin(&dir);
    let a = match analyze::analyze(&dir, Duration::from_secs(args.check_time_limit), pin) {
        Ok(a) => a,
        Err(analyze::AnalyzeError::Io { path, msg }) => anyhow::bail!("{}: {msg}", path.display()),
        Err(e) => return Err(BadInput(e.to_string()).into()),
    };
    for n in &a.notes {
        eprintln!("faultline: note: {n}");
    }
    summary::print(&a.results, &dir, a.report.as_ref().map(|p| p.as_path()));
    Ok(a.results.valid.exit_code())
}
