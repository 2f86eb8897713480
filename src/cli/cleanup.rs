//! `faultline cleanup`: remove what dead runs left behind (node processes, namespaces with
//! their nft tables, veths, bridges, registry records). Live runs are never touched.

use faultline::cluster::cleanup_dead_runs;

#[derive(clap::Args)]
pub struct Args {
    /// Print what was removed as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
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
