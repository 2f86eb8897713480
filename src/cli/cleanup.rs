//! `faultline cleanup`: remove what dead runs left behind (node processes, namespaces with
//! their nft tables, veths, bridges, registry records). Live runs are never touched. With
//! `--cluster FILE`, the hosts of an external cluster instead: the fault journals a dead
//! controller left there are undone (and nothing else).

use std::path::PathBuf;

use anyhow::Context;
use faultline::cluster::cleanup_dead_runs;

#[derive(clap::Args)]
pub struct Args {
    /// Print what was removed as one JSON object.
    #[arg(long)]
    json: bool,
    /// Undo what dead runs left on the hosts of this inventory (over SSH, from each host's
    /// fault journal) instead of cleaning this machine.
    #[arg(long, value_name = "FILE.toml")]
    cluster: Option<PathBuf>,
}

fn cluster(args: &Args, file: &std::path::Path) -> anyhow::Result<u8> {
    use faultline::external::{self, Inventory};
    use faultline::faults::ssh::remote::RemoteLog;
    let inv = Inventory::load(file).map_err(|e| super::BadInput(e.to_string()))?;
    let run = format!("cleanup-{}", std::process::id());
    let control = external::control_dir(&run).context("making the ssh control directory")?;
    let log = match std::env::var_os("FAULTLINE_REMOTE_LOG") {
        Some(p) => RemoteLog::create(std::path::Path::new(&p)).context("opening the remote log")?,
        None => RemoteLog::none(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(external::cleanup::cleanup(&inv, &control, &log));
    let _ = std::fs::remove_dir_all(&control);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.journals.is_empty() && report.errors.is_empty() {
        println!(
            "cleanup: nothing left by dead runs on the hosts of {}{}",
            file.display(),
            if report.live.is_empty() {
                String::new()
            } else {
                format!(" (live runs left alone: {})", report.live.join(", "))
            }
        );
    } else {
        println!(
            "cleanup: {} journal(s) [{}]; undid {} change(s): {}",
            report.journals.len(),
            report.journals.join(", "),
            report.undone.len(),
            report.undone.join("; ")
        );
    }
    if !report.errors.is_empty() {
        anyhow::bail!(
            "cleanup could not undo everything: {}",
            report.errors.join("; ")
        );
    }
    Ok(0)
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if let Some(file) = args.cluster.clone() {
        return cluster(&args, &file);
    }
    faultline::cluster::caps::check()?;
    let report = cleanup_dead_runs()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.is_empty() {
        println!("cleanup: nothing left by dead runs");
    } else {
        println!(
            "cleanup: {} dead run(s) {}; killed {} process(es); removed namespaces [{}], links [{}]",
            report.runs.len(),
            report.runs.join(", "),
            report.processes.len(),
            report.namespaces.join(", "),
            report.links.join(", ")
        );
    }
    if !report.errors.is_empty() {
        anyhow::bail!(
            "cleanup could not remove everything: {}",
            report.errors.join("; ")
        );
    }
    Ok(0)
}
