//! `faultline run`: start a cluster, drive it with clients under faults, check the history,
//! write results and a report. Exit code: the verdict (0 valid, 1 anomalies, 2 unknown), or
//! 255 when the harness could not set up, or could not heal/tear down a run that was valid.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use faultline::checker::Validity;
use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
use faultline::nemesis::{self, FaultKind, Replay, Schedule};
use faultline::runner::cluster_target::ClusterTarget;
use faultline::runner::promise::Promise;
use faultline::runner::run::{RunConfig, RunError, execute};
use faultline::runner::store;
use faultline::workload::{NodeChoice, WorkloadSpec};
use rand::RngExt;

use super::{BadInput, EXIT_HARNESS_FAILURE, summary};

/// The text after `run --help`; the nemesis list comes from `nemeses/*.toml`.
fn after_help() -> String {
    format!(
        "\
Planted bugs of the bundled Raft (--bug, repeatable): vote-without-log-check,
vote-twice-per-term, commit-prior-term, ack-before-fsync, stale-local-read,
lease-no-drift-margin (reads from a wall-clock lease), accept-stale-term-append,
apply-duplicate-request (a request delivered twice is applied twice).

Workloads: register, cas-register, kv, list-append, set (or a TOML file).

Nemeses (--nemesis NAME, or a TOML file):
{}",
        Schedule::builtin_help()
    )
}

#[derive(clap::Args, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[command(after_help = after_help())]
pub struct Args {
    /// The system under test: raft, etcd, or a descriptor TOML file.
    #[arg(long, default_value = "raft")]
    pub system: String,
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Workload name (workloads/NAME.toml or built in) or TOML file.
    #[arg(long, default_value = "kv")]
    pub workload: String,
    /// Fault schedule name (nemeses/NAME.toml or built in) or TOML file.
    #[arg(long, default_value = "partition-halves")]
    pub nemesis: String,
    /// Seconds of client load (warm-up, faults, recovery); final reads come after.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Total ops/s over all clients (0: as fast as they go). Default: the workload's.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The run's seed (generator and fault schedule). Default: random, printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Switch on a planted bug in the bundled system (repeatable).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Override one of the descriptor's `[params]` (repeatable), e.g. `--param r=1` for the
    /// Dynamo store's read quorum.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    #[serde(default)]
    pub params: Vec<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Which node each client sends to. Default: the descriptor's `node_choice`, else bound
    /// (client i to node i mod n, as Jepsen binds clients).
    #[arg(long, value_enum)]
    pub node_choice: Option<NodeChoice>,
    /// Client request timeout in milliseconds (then: info).
    #[arg(long, default_value_t = 3000)]
    pub request_timeout_ms: u64,
    /// How often every node's /status (and its new /log entries) is sampled, in ms. Short:
    /// two leaders of one generation, or a generation that goes back after a restart, may
    /// last only a few hundred milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub probe_interval_ms: u64,
    /// Time budget per checker, in seconds (then: unknown).
    #[arg(long, default_value_t = 120)]
    pub check_time_limit: u64,
    /// Record every peer message's fate (the peer proxy's) in messages.jsonl.
    #[arg(long)]
    pub trace_messages: bool,
    /// Test an external cluster named by an inventory (see clusters/) instead of starting
    /// one: endpoints only, or hosts over SSH. `--system` and `--nodes` come from the file.
    #[arg(long, value_name = "FILE.toml")]
    pub cluster: Option<PathBuf>,
    /// With --cluster: drop the schedule's faults the probe found unavailable (and say so)
    /// instead of refusing the run.
    #[arg(long)]
    pub skip_unavailable: bool,
    /// Leave info ops indeterminate instead of resolving them by the nodes' final logs
    /// (an op the logs show committed becomes ok, one absent from every complete log fail).
    #[arg(long)]
    #[serde(default)]
    pub no_pin_info: bool,
}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    launch(args, None).map(|(code, _)| code)
}

/// Runs `args`, with another run's realised faults instead of the schedule's when `replay`
/// is given (`faultline replay`). Returns the exit code and the run directory.
pub fn launch(args: Args, replay: Option<Replay>) -> anyhow::Result<(u8, PathBuf)> {
    if args.concurrency == 0 {
        return Err(bad("--concurrency must be at least 1"));
    }
    if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
        return Err(bad("--time-limit must be a positive number of seconds"));
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
        return Err(bad("--rate must be a non-negative number"));
    }
    if let Some(file) = args.cluster.clone() {
        return super::external::launch(args, &file, replay);
    }
    if args.skip_unavailable {
        return Err(bad("--skip-unavailable goes with --cluster"));
    }
    let workload = WorkloadSpec::load(&args.workload).map_err(bad)?;
    let mut desc = SystemDescriptor::load(&args.system).map_err(|e| {
        if e.is_bad_input() {
            bad(&e)
        } else {
            anyhow::Error::new(e)
        }
    })?;
    desc.set_params(&args.params).map_err(bad)?;
    let schedule = Schedule::load(&args.nemesis).map_err(|e| {
        if e.is_bad_input() {
            bad(&e)
        } else {
            anyhow::Error::new(e)
        }
    })?;
    // The user's mistakes that need no node: found before a run directory exists.
    let binary = desc.resolve_binary().map_err(bad)?;
    let clock_faults = schedule.kinds().contains(&FaultKind::Clock);
    if clock_faults {
        let support = faultline::cluster::clock::support_for(desc.clock, &binary);
        nemesis::check_clock(&schedule, &desc.name, &support, desc.peers.proxy).map_err(bad)?;
    }
    let seed = seed_or_random(args.seed);
    let test = test_name(&desc.name, &workload.name, &schedule.name);
    // Mistakes only a started node shows (a readiness probe answered 404) are found after
    // the run directory is made: it is not `store/latest` until the cluster is up, and a
    // bad-input failure removes it again (and the store, if this run made it).
    let made = NewRunDir::create(&args.store, &test)?;
    let dir = made.dir.clone();
    record_invocation(&dir, &args)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let outcome = rt.block_on(async {
        // A first ^C ends the run early (heal, final reads, check, report). A second ^C or
        // SIGTERM tears the cluster down at once; the history is already on disk (flushed
        // per event) for `faultline analyze`.
        let d = dir.clone();
        faultline::cluster::install_signal_teardown(Some(interrupted.clone()), move |_| {
            eprintln!(
                "faultline: interrupted; the history so far is in {} (faultline analyze {})",
                d.display(),
                d.display()
            );
        })
        .context("installing signal handlers")?;
        let mut ccfg = ClusterConfig::new(args.nodes, &dir);
        ccfg.bugs = args.bugs.clone();
        ccfg.clock_faults = clock_faults;
        ccfg.seed = seed;
        if args.trace_messages {
            ccfg.trace_messages = Some(dir.join("messages.jsonl"));
        }
        let cluster = match Cluster::start(desc.clone(), ccfg).await {
            Ok(c) => c,
            Err(e) if e.is_bad_input() => {
                made.remove();
                return Err(bad(&e));
            }
            Err(e) => {
                made.list_as_latest()?;
                return Err(anyhow::Error::new(e).context(format!(
                    "starting the cluster (node logs in {})",
                    dir.join("nodes").display()
                )));
            }
        };
        // What each fault backend of the started cluster can do (the peer proxy's mode, say):
        // a schedule that needs more is refused before the first op, as bad input.
        if let Err(e) = nemesis::check_supported(&cluster, &schedule) {
            let _ = cluster.teardown().await;
            return Err(if e.is_bad_input() {
                made.remove();
                bad(&e)
            } else {
                made.list_as_latest()?;
                anyhow::Error::new(e)
            });
        }
        made.list_as_latest()?;
        eprintln!("faultline: seed {seed}; run directory {}", dir.display());
        if let Err(e) = cluster.wait_for_leader(Duration::from_secs(15)).await {
            eprintln!("faultline: warning: no leader yet ({e}); starting anyway");
        }
        let mut target = ClusterTarget::new(cluster, schedule.clone());
        if let Some(r) = replay {
            target = target.replaying(r);
        }
        let cfg = RunConfig {
            seed,
            system: desc.name.clone(),
            workload,
            nemesis: schedule.name.clone(),
            concurrency: args.concurrency,
            rate: args.rate.unwrap_or(-1.0),
            time_limit: Duration::from_secs_f64(args.time_limit),
            node_choice: args
                .node_choice
                .or(desc.node_choice)
                .unwrap_or(NodeChoice::DEFAULT),
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            probe_interval: Duration::from_millis(args.probe_interval_ms),
            check_time_limit: Duration::from_secs(args.check_time_limit),
            bugs: args.bugs.clone(),
            probes: desc.leadership.probe_options(),
            promise: desc.guarantees.clone().map(|guarantees| Promise {
                guarantees,
                fault_classes: schedule
                    .kinds()
                    .into_iter()
                    .map(|k| k.as_str().to_string())
                    .collect(),
                chosen_by: desc.guarantees_chosen_by.clone(),
            }),
            // a local cluster starts empty: the bare keys
            key_prefix: String::new(),
            pin_info: !args.no_pin_info,
        };
        let result = execute(&cfg, &dir, &mut target, interrupted.clone()).await;
        if result.is_err() {
            // never leave the machine dirty, whatever went wrong
            let _ = faultline::runner::target::Target::stop(&mut target).await;
        }
        match result {
            Ok(o) => Ok(o),
            Err(RunError::Client(e)) => Err(bad(e)),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })?;
    let r = &outcome.results;
    summary::print(
        r,
        &outcome.dir,
        outcome.report.as_ref().map(|p| p.as_path()),
    );
    Ok((exit_code(r), outcome.dir))
}

/// Writes the run's options as given (`invocation.json`), so `faultline replay` can run it
/// again exactly.
pub(super) fn record_invocation(dir: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let path = dir.join(store::INVOCATION);
    let v = serde_json::json!({"version": 1, "args": args});
    std::fs::write(&path, format!("{v:#}\n")).with_context(|| format!("writing {}", path.display()))
}

/// A finished run's exit code: 1 for anomalies whatever happened after, the harness-failure
/// code if tearing down went wrong, else the verdict's.
pub(super) fn exit_code(r: &faultline::report::results::RunResults) -> u8 {
    let teardown_trouble = r
        .extra
        .get("teardown_errors")
        .and_then(|v| v.as_array())
        .is_some_and(|a| !a.is_empty());
    match r.valid {
        Validity::Invalid => 1,
        _ if teardown_trouble => EXIT_HARNESS_FAILURE,
        v => v.exit_code(),
    }
}

/// A run directory not yet listed as `store/latest`, with what it took to make it.
pub(super) struct NewRunDir {
    store: PathBuf,
    pub(super) dir: PathBuf,
    /// Directories this run created on the way (the store, the test's directory).
    created: Vec<PathBuf>,
}

impl NewRunDir {
    pub(super) fn create(store: &std::path::Path, test: &str) -> anyhow::Result<NewRunDir> {
        let created: Vec<PathBuf> = [store.join(test), store.to_path_buf()]
            .into_iter()
            .filter(|d| !d.exists())
            .collect();
        let dir = store::new_run_dir(store, test)
            .with_context(|| format!("creating a run directory under {}", store.display()))?;
        Ok(NewRunDir {
            store: store.to_path_buf(),
            dir,
            created,
        })
    }

    pub(super) fn list_as_latest(&self) -> anyhow::Result<()> {
        store::point_latest(&self.store, &self.dir)
            .with_context(|| format!("pointing {}/latest at the run", self.store.display()))
    }

    /// Removes the run directory and whatever directories making it created (best effort:
    /// the error being reported matters more).
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The run's seed: the one given, else a fresh one (printed and recorded by the run).
pub(super) fn seed_or_random(given: Option<u64>) -> u64 {
    given.unwrap_or_else(|| rand::rng().random_range(1..=u64::from(u32::MAX)))
}

/// The store directory a run goes in: `system-workload-nemesis`, safe as a file name.
pub(super) fn test_name(system: &str, workload: &str, nemesis: &str) -> String {
    format!("{system}-{workload}-{nemesis}").replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "_",
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Harness {
        #[command(flatten)]
        args: super::Args,
    }

    #[test]
    fn help_names_every_builtin_nemesis_and_workload() {
        let help = Harness::command().render_long_help().to_string();
        let words: std::collections::BTreeSet<&str> = help
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .collect();
        for n in faultline::nemesis::Schedule::builtin_names() {
            assert!(
                words.contains(n),
                "`faultline run --help` omits nemesis {n}"
            );
        }
        for w in ["register", "cas-register", "kv", "list-append", "set"] {
            assert!(words.contains(w), "omits workload {w}");
        }
    }
}
