//! `faultline replay RUN_DIR [--faults FILE] [--exact-targets] [--store DIR]`: the recorded
//! run again (its system, bugs, workload, seed and options, from `invocation.json`) with the
//! faults it realised (`schedule.json`, or FILE) put in force at the recorded times. Says
//! whether the verdict and fingerprint came back and how closely the realised schedule
//! matched, and writes that to the new run's `replay.json`. Exit code: the new run's, as
//! `run`'s.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::FromArgMatches;

use faultline::nemesis::Replay;
use faultline::nemesis::replay::{self, Realised};
use faultline::report::results::RunResults;
use faultline::runner::replay::{ReplayReport, fidelity, invoke_times};
use faultline::runner::store;
use faultline::workload::{NodeChoice, WorkloadSpec};

use super::BadInput;
use super::run;

#[derive(clap::Args)]
pub struct Args {
    /// The run to replay (a run directory).
    pub run_dir: PathBuf,
    /// Replay these faults instead of the run's own (a schedule.json, such as the one
    /// `faultline shrink --schedule` writes).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// Keep a fault that was aimed at the leader on the node it hit, even when another node
    /// leads in the replay.
    #[arg(long)]
    pub exact_targets: bool,
    /// Where the new run is stored. Default: the original's store (else `store`).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Seconds of client load, instead of the original's.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// For runs recorded without invocation.json: the original's --node-choice.
    #[arg(long, value_enum)]
    pub node_choice: Option<NodeChoice>,
}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

#[derive(clap::Parser)]
struct RunCommand {
    #[command(flatten)]
    args: run::Args,
}

/// The original run's options: `invocation.json`, or for older runs what `results.json`
/// says (the rest take their defaults, and a note says so).
fn original_args(dir: &Path) -> anyhow::Result<(run::Args, Option<String>)> {
    let inv = dir.join(store::INVOCATION);
    if inv.is_file() {
        let text =
            std::fs::read_to_string(&inv).with_context(|| format!("reading {}", inv.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{}: line {}: {e}", inv.display(), e.line())))?;
        let args = serde_json::from_value(v.get("args").cloned().unwrap_or_default())
            .map_err(|e| bad(format!("{}: args: {e}", inv.display())))?;
        return Ok((args, None));
    }
    let res = dir.join(store::RESULTS);
    if !res.is_file() {
        return Err(bad(format!(
            "{}: neither invocation.json nor results.json here (not a run directory?)",
            dir.display()
        )));
    }
    let r = RunResults::read(&res).map_err(bad)?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut argv: Vec<String> = vec!["run".into()];
    let mut opt = |k: &str, v: String| {
        argv.push(format!("--{k}"));
        argv.push(v);
    };
    opt("system", text(&r.system));
    opt("workload", text(&r.workload));
    opt("nemesis", text(&r.nemesis));
    opt("seed", text(&r.seed));
    if let Some(n) = r.nodes.as_array() {
        opt("nodes", n.len().to_string());
    }
    for (k, key) in [("concurrency", "concurrency"), ("rate", "rate")] {
        if let Some(v) = r.extra.get(key) {
            opt(k, text(v));
        }
    }
    if let Some(bugs) = r.extra.get("bugs").and_then(|b| b.as_array()) {
        for b in bugs {
            opt("bug", text(b));
        }
    }
    let cmd = <RunCommand as clap::CommandFactory>::command();
    let m = cmd
        .try_get_matches_from(&argv)
        .map_err(|e| bad(format!("{}: {e}", res.display())))?;
    let args = RunCommand::from_arg_matches(&m).map_err(bad)?.args;
    Ok((
        args,
        Some(format!(
            "{} has no invocation.json (older run): options results.json does not record \
             take their defaults (time limit, node choice, request timeout); pass \
             --time-limit and --node-choice to match the original",
            dir.display()
        )),
    ))
}

fn read_realised(path: &Path) -> anyhow::Result<Realised> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    replay::parse(&text, &path.display().to_string()).map_err(bad)
}

pub fn main(a: Args) -> anyhow::Result<u8> {
    if !a.run_dir.is_dir() {
        return Err(bad(format!("{}: not a directory", a.run_dir.display())));
    }
    let dir = std::fs::canonicalize(&a.run_dir)
        .with_context(|| format!("resolving {}", a.run_dir.display()))?;
    let (mut args, note) = original_args(&dir)?;
    let own = read_realised(&dir.join(store::SCHEDULE))?;
    let faults_from = a
        .faults
        .clone()
        .unwrap_or_else(|| dir.join(store::SCHEDULE));
    let given = if a.faults.is_some() {
        read_realised(&faults_from)?
    } else {
        own.clone()
    };
    if let Some(n) = note {
        eprintln!("faultline replay: note: {n}");
    }
    args.seed = Some(own.seed);
    if let Some(t) = a.time_limit {
        args.time_limit = t;
    }
    if let Some(c) = a.node_choice {
        args.node_choice = Some(c);
    }
    // Beside the original when it is in a store (STORE/TEST/STAMP, STORE/latest), else
    // where `run` would store it.
    args.store = match &a.store {
        Some(s) => s.clone(),
        None => dir
            .parent()
            .and_then(Path::parent)
            .filter(|s| s.join("latest").exists())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("store")),
    };
    // A workload file that moved since: the copy the run kept.
    if WorkloadSpec::load(&args.workload).is_err() && dir.join(store::WORKLOAD).is_file() {
        args.workload = dir.join(store::WORKLOAD).display().to_string();
    }
    eprintln!(
        "faultline replay: {} fault(s) from {} at their recorded times, seed {}{}",
        given.faults.len(),
        faults_from.display(),
        own.seed,
        if given.failed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} that failed to start in the original not replayed",
                given.failed.len()
            )
        }
    );
    let plan = Replay {
        faults: given.faults.clone(),
        reaim_leader: !a.exact_targets,
    };
    let (code, new_dir) = run::launch(args, Some(plan))?;

    let before = RunResults::read(&dir.join(store::RESULTS)).ok();
    let after = RunResults::read(&new_dir.join(store::RESULTS)).map_err(anyhow::Error::new)?;
    let ops = |d: &Path| {
        faultline::report::run_dir::read_history(&d.join(store::HISTORY))
            .map(|(h, _)| invoke_times(&h))
            .unwrap_or_default()
    };
    let got = read_realised(&new_dir.join(store::SCHEDULE))?;
    let report = ReplayReport::new(
        dir.display().to_string(),
        faults_from.display().to_string(),
        before.as_ref().map(|r| (r.valid, r.verdicts.as_slice())),
        (after.valid, after.verdicts.as_slice()),
        fidelity(&given, &ops(&dir), &got, &ops(&new_dir)),
        given.failed.clone(),
    );
    let path = new_dir.join(store::REPLAY);
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    // the report shows what the replay was and whether it reproduced
    if let Err(e) = faultline::report::write_run_report(&new_dir) {
        eprintln!("faultline replay: rewriting the report: {e}");
    }
    for l in report.lines() {
        println!("faultline replay: {l}");
    }
    Ok(code)
}
