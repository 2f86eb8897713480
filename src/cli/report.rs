//! `faultline report RUN_DIR`: (re)write a stored run's report.html, junit.xml and the
//! counts and verdict of its results.json.

use std::path::PathBuf;

use anyhow::Context;
use faultline::report::{ReportError, write_run_report};

use super::BadInput;

#[derive(clap::Args)]
pub struct Args {
    /// The run directory (`store/<test>/<YYYYmmddTHHMMSS>`), or `latest` for `<store>/latest`.
    pub run_dir: PathBuf,
    /// The store `latest` is looked up in.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let dir = if args.run_dir.as_os_str() == "latest" && !args.run_dir.exists() {
        args.store.join("latest")
    } else {
        args.run_dir
    };
    if !dir.is_dir() {
        return Err(BadInput(format!("{}: not a run directory", dir.display())).into());
    }
    // `latest` is a symlink: the report names the run by its real directory.
    let dir = dir.canonicalize().unwrap_or(dir);
    let files = write_run_report(&dir)
        .map_err(|e: ReportError| -> anyhow::Error {
            if e.is_bad_input() {
                BadInput(e.to_string()).into()
            } else {
                e.into()
            }
        })
        .with_context(|| format!("writing the report of {}", dir.display()))?;
    println!(
        "{} ({:.1} MB)\n{}\n{}",
        files.html.display(),
        files.html_bytes as f64 / 1e6,
        files.junit.display(),
        files.results.display()
    );
    Ok(0)
}
