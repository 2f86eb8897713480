//! The `faultline` command line. Exit codes (DESIGN.md): 0 valid, 1 anomalies found,
//! 2 unknown, 254 bad usage or unreadable input, 255 harness failure.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Fault injection and linearizability checking for distributed systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster, drive it with clients under faults, check the history, write a report.
    Run(cli::run::Args),
    /// Run a stored run again: its options and seed, with the faults it realised at their
    /// recorded times; says whether its verdict and fingerprint came back.
    Replay(cli::replay::Args),
    /// Check recorded histories (native JSONL, Jepsen EDN or log, Porcupine kv).
    Check(cli::check::Args),
    /// Re-check a stored run.
    Analyze(cli::analyze::Args),
    /// (Re)write the report of a stored run.
    Report(cli::report::Args),
    /// Browse stored runs and their reports over HTTP.
    Serve(cli::serve::Args),
    /// Shrink a rejected history (a run's or a file) to a small one with the same finding.
    Shrink(cli::shrink::Args),
    /// Run a suite file: every row's runs, judged against what each row expects.
    Suite(cli::suite::Args),
    /// Remove namespaces, bridges, nft tables and processes that dead runs left behind.
    Cleanup(cli::cleanup::Args),
    /// Describe a system to faultline: `systems new NAME` writes a descriptor skeleton.
    Systems(cli::systems::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                cli::EXIT_BAD_INPUT
            } else {
                0
            });
        }
    };
    let result = match cli.command {
        Command::Run(a) => cli::run::main(a),
        Command::Replay(a) => cli::replay::main(a),
        Command::Check(a) => cli::check::main(a),
        Command::Analyze(a) => cli::analyze::main(a),
        Command::Report(a) => cli::report::main(a),
        Command::Serve(a) => cli::serve::main(a),
        Command::Cleanup(a) => cli::cleanup::main(a),
        Command::Suite(a) => cli::suite::main(a),
        Command::Systems(a) => cli::systems::main(a),
        Command::Shrink(a) => cli::shrink::main(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("faultline: {err:#}");
            ExitCode::from(cli::exit_code_for(&err))
        }
    }
}
