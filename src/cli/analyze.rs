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
    let a = match analyze::analyze(&dir, Duration::from_secs(args.check_time_limit)) {
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
