//! `faultline run --cluster FILE.toml`: a run against a cluster someone else runs. The
//! inventory is validated, the hosts probed (per node and fault class), and a schedule
//! needing a fault that cannot be made is refused before any op; then the same run sequence
//! as a local run, with faults over SSH, and at the end the faults healed and the SSH
//! connections closed: the cluster is left as it was found.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use faultline::external::{self, ExternalTarget, Inventory, System};
use faultline::faults::client_path::ClientPath;
use faultline::faults::ssh::SshFaults;
use faultline::faults::ssh::remote::RemoteLog;
use faultline::faults::{Faults, Stack};
use faultline::nemesis::{self, FaultKind, Schedule};
use faultline::runner::promise::Promise;
use faultline::runner::run::{RunConfig, RunError, execute};
use faultline::workload::{NodeChoice, WorkloadSpec};

use super::run::{Args, NewRunDir};
use super::{BadInput, summary};

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// Refuses `schedule` if a fault it needs is unavailable on some node, or (with
/// `skip_unavailable`) drops those faults, saying so. Returns the schedule to run.
fn fit_schedule(
    schedule: Schedule,
    backend: &dyn Faults,
    skip_unavailable: bool,
) -> Result<Schedule, String> {
    let mut s = schedule;
    if skip_unavailable {
        for need in s.needs() {
            if let Err(why) = backend.supports(need) {
                let what = if need.wipe {
                    "kill+wipe"
                } else {
                    need.kind.as_str()
                };
                eprintln!(
                    "faultline: --skip-unavailable: dropping {what} faults from `{}` ({why})",
                    s.name
                );
                s = s.without_need(need);
            }
        }
    }
    nemesis::check_backend(backend, &s).map_err(|e| e.to_string())?;
    Ok(s)
}

/// `faultline run --cluster FILE`, replaying another run's realised faults when `replay` is
/// given. Returns the exit code and the run directory.
pub fn launch(
    args: Args,
    file: &Path,
    replay: Option<faultline::nemesis::Replay>,
) -> anyhow::Result<(u8, std::path::PathBuf)> {
    let inv = Inventory::load(file).map_err(bad)?;
    let system = System::resolve(&inv).map_err(bad)?;
    if !args.bugs.is_empty() {
        return Err(bad(
            "--bug with --cluster: a planted bug is part of the node's own command line; put \
             `--bug NAME` in the inventory's start command instead",
        ));
    }
    if !args.params.is_empty() {
        return Err(bad(
            "--param with --cluster: descriptor parameters shape the command lines of nodes \
             faultline starts; an external cluster's nodes run as the inventory says",
        ));
    }
    let workload = WorkloadSpec::load(&args.workload).map_err(bad)?;
    let schedule = Schedule::load(&args.nemesis).map_err(|e| {
        if e.is_bad_input() {
            bad(&e)
        } else {
            anyhow::Error::new(e)
        }
    })?;
    // Endpoints only: nothing on the hosts can be reached, so the answer needs no probe;
    // what remains is the path between the clients and the nodes (a proxy of our own).
    let client_path = inv.endpoints_only() && !schedule.kinds().is_empty();
    if client_path {
        let none = SshFaults::new(
            &inv,
            "none",
            vec![None; inv.nodes.len()],
            &Default::default(),
        );
        let judge = Stack(vec![Arc::new(none), Arc::new(ClientPath::planned(&inv))]);
        fit_schedule(schedule.clone(), &judge, args.skip_unavailable).map_err(|e| {
            bad(format!(
                "{e}. {} names client URLs only: only faults between clients and nodes \
                 (msg-delay, msg-drop, conn-reset, bandwidth at l4) are possible; give nodes \
                 `ssh = \"user@host\"` (and a pid source for pause/kill) or run with \
                 `--nemesis none`",
                file.display()
            ))
        })?;
    }
    let seed = super::run::seed_or_random(args.seed);
    let test = super::run::test_name(&system.name, &workload.name, &schedule.name);
    let made = NewRunDir::create(&args.store, &test)?;
    let dir = made.dir.clone();
    super::run::record_invocation(&dir, &args)?;
    let run = external::new_run_id(seed);
    let key_prefix = external::key_prefix(&run);
    let log = RemoteLog::create(&dir.join("remote.log")).context("creating remote.log")?;
    let control = external::control_dir(&run).context("making the ssh control directory")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let result = rt.block_on(async {
        let probed = external::probe(&inv, &run, &control, &log, system.ready()).await;
        let caps = probed.faults.capabilities().clone();
        let caps_json = caps.to_json();
        let _ = std::fs::write(
            dir.join("capabilities.json"),
            serde_json::to_vec_pretty(&serde_json::json!({"run": run, "nodes": caps_json}))
                .unwrap_or_default(),
        );
        eprintln!(
            "faultline: {} node(s) from {}; what each can have done to it:\n{}",
            inv.nodes.len(),
            file.display(),
            caps.render()
        );
        if let Some(e) = &probed.launch_error {
            let _ = probed.faults.heal().await;
            probed.faults.close().await;
            made.remove();
            return Err(bad(format!("starting the `faketime = true` nodes: {e}")));
        }
        let cp = if client_path {
            let trace = match args.trace_messages {
                true => Some(
                    faultline::faults::proxy::Tracer::create(&dir.join("messages.jsonl"))
                        .context("creating messages.jsonl")?,
                ),
                false => None,
            };
            match ClientPath::start(&inv, seed, trace).await {
                Ok(cp) => Some(Arc::new(cp)),
                Err(e) => {
                    probed.faults.close().await;
                    made.remove();
                    return Err(bad(e));
                }
            }
        } else {
            None
        };
        let backend = external::backend(&probed.faults, cp.as_ref());
        let schedule = match fit_schedule(schedule.clone(), &*backend, args.skip_unavailable) {
            Ok(s) => s,
            Err(e) => {
                probed.faults.close().await;
                made.remove();
                return Err(bad(format!(
                    "{e} (the probe above says why; --skip-unavailable drops such faults)"
                )));
            }
        };
        made.list_as_latest()?;
        eprintln!(
            "faultline: seed {seed}; run {run}; keys prefixed `{key_prefix}`; run directory {}",
            dir.display()
        );
        {
            let (f, d) = (probed.faults.clone(), dir.clone());
            faultline::cluster::install_signal_teardown(Some(interrupted.clone()), move |_| {
                // heal over SSH before the process exits (SIGKILL leaves the journals to
                // `faultline cleanup --cluster`)
                let _ = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        let _ = rt.block_on(f.heal());
                        rt.block_on(f.close());
                    }
                })
                .join();
                eprintln!(
                    "faultline: interrupted; the history so far is in {} (faultline analyze {})",
                    d.display(),
                    d.display()
                );
            })
            .context("installing signal handlers")?;
        }
        let mut target = ExternalTarget::new(
            inv.clone(),
            &system,
            schedule.clone(),
            probed.faults.clone(),
            &dir,
        );
        if let Some(r) = replay {
            target = target.replaying(r);
        }
        if let Some(cp) = cp {
            eprintln!(
                "faultline: clients reach the nodes through a proxy on 127.0.0.x (client-path \
                 faults)"
            );
            target = target.through(cp);
        }
        let roster = external::ExternalRoster::new(&inv, system.status);
        if roster
            .wait_for_leader(Duration::from_secs(15))
            .await
            .is_none()
        {
            eprintln!("faultline: warning: no node reports itself leader yet; starting anyway");
        }
        let desc = system.descriptor.as_ref();
        let kinds: Vec<FaultKind> = schedule.kinds();
        let cfg = RunConfig {
            seed,
            system: system.name.clone(),
            workload,
            nemesis: schedule.name.clone(),
            concurrency: args.concurrency,
            rate: args.rate.unwrap_or(-1.0),
            time_limit: Duration::from_secs_f64(args.time_limit),
            node_choice: args
                .node_choice
                .or(desc.and_then(|d| d.node_choice))
                .unwrap_or(NodeChoice::DEFAULT),
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            probe_interval: Duration::from_millis(args.probe_interval_ms),
            check_time_limit: Duration::from_secs(args.check_time_limit),
            bugs: Vec::new(),
            probes: desc
                .map(|d| d.leadership.probe_options())
                .unwrap_or_default(),
            promise: desc
                .and_then(|d| d.guarantees.clone())
                .map(|guarantees| Promise {
                    guarantees,
                    fault_classes: kinds.iter().map(|k| k.as_str().to_string()).collect(),
                    chosen_by: desc.and_then(|d| d.guarantees_chosen_by.clone()),
                }),
            key_prefix: key_prefix.clone(),
            pin_info: !args.no_pin_info,
        };
        let result = execute(&cfg, &dir, &mut target, interrupted.clone()).await;
        // heal (again, idempotent), collect node logs, close the SSH connections
        let stop = faultline::runner::target::Target::stop(&mut target).await;
        match result {
            Ok(o) => Ok((o, stop, caps_json)),
            Err(RunError::Client(e)) => Err(bad(e)),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    });
    let _ = std::fs::remove_dir_all(&control);
    let (mut outcome, stop, caps_json) = result?;
    // the probe belongs in the results (and so the report's data)
    let r = &mut outcome.results;
    r.extra.insert(
        "cluster".into(),
        serde_json::json!({"inventory": file.display().to_string(), "run": run,
                           "key_prefix": key_prefix, "capabilities": caps_json}),
    );
    if let Err(e) = &stop
        && let Some(serde_json::Value::Array(a)) = r.extra.get_mut("teardown_errors")
    {
        a.push(serde_json::json!(format!("after the run: {e}")));
    }
    let path = outcome.dir.join(faultline::runner::store::RESULTS);
    std::fs::write(&path, serde_json::to_vec_pretty(&*r)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let report = faultline::report::write_run_report(&outcome.dir)
        .map(|f| f.html)
        .map_err(|e| e.to_string());
    summary::print(r, &outcome.dir, report.as_ref().map(|p| p.as_path()));
    Ok((super::run::exit_code(r), outcome.dir))
}
