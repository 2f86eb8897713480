//! `faultline report RUN_DIR`: (re)write a stored run's report.html, junit.xml and the
//! counts and verdict of its results.json.

use std::path::PathBuf;

use anyhow::Context;
use faultline::report::{ReportError, write_run_report_windows};

use super::BadInput;

#[derive(clap::Args)]
pub struct Args {
    /// The run directory (`store/<test>/<YYYYmmddTHHMMSS>`), or `latest` for `<store>/latest`.
    pub run_dir: PathBuf,
    /// The store `latest` is looked up in.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Also draw the peer messages of this window (seconds since the run began, `FROM..TO`,
    /// e.g. `3.2..3.6`) in the report's Messages section; repeatable. Needs a run made with
    /// `--trace-messages`.
    #[arg(long = "messages-window", value_name = "FROM..TO", value_parser = parse_window)]
    pub messages_window: Vec<(u64, u64)>,
}

/// `FROM..TO` in seconds to nanoseconds, FROM < TO.
fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: expected FROM..TO in seconds, e.g. 3.2..3.6"))?;
    let secs = |x: &str| -> Result<u64, String> {
        match x.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok((v * 1e9) as u64),
            _ => Err(format!("`{x}`: not a number of seconds >= 0")),
        }
    };
    let (a, b) = (secs(a)?, secs(b)?);
    if a >= b {
        return Err(format!("`{s}`: FROM must be before TO"));
    }
    Ok((a, b))
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
    if !args.messages_window.is_empty() && !dir.join("messages.jsonl").is_file() {
        return Err(BadInput(format!(
            "{}: --messages-window: the run has no messages.jsonl (make it with `faultline run --trace-messages`)",
            dir.display()
        ))
        .into());
    }
    let files = write_run_report_windows(&dir, &args.messages_window)
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

#[cfg(test)]
mod tests {
    use super::parse_window;

    #[test]
    fn windows_parse_in_seconds_and_refuse_nonsense() {
        assert_eq!(parse_window("3.2..3.6"), Ok((3_200_000_000, 3_600_000_000)));
        assert_eq!(parse_window("0..1"), Ok((0, 1_000_000_000)));
        assert!(parse_window("3.6..3.2").unwrap_err().contains("before"));
        assert!(parse_window("3.2").unwrap_err().contains("FROM..TO"));
        assert!(parse_window("a..1").unwrap_err().contains("not a number"));
        assert!(parse_window("-1..1").unwrap_err().contains("not a number"));
    }
}
