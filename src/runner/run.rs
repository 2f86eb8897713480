//! One run, in DESIGN.md's order: warm-up, faults, stop faults and heal, recovery, final
//! reads, stop clients, collect node logs, stop nodes, check, report. Node statuses and
//! `/log`s are sampled throughout. Trouble after the
//! clients stopped is recorded and never discards the verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::checks;
use super::clients::{self, Drive, FinalReads, Pacer};
use super::log_sampler::{self, Bounds, LogSource};
use super::probe;
use super::progress::Progress;
use super::recorder::Recorder;
use super::store;
use super::target::{FaultSink, Target};
use crate::checker::split_brain::LogSamples;
use crate::checker::{Validity, Verdict};
use crate::history::HistoryError;
use crate::nemesis::FaultEvent;
use crate::report::results::RunResults;
use crate::runner::promise;
use crate::workload::{Client, Generator, Kind, NodeChoice, WorkloadSpec};

/// The results.json field recording how probes were judged (re-used by `analyze`).
pub const LEADERSHIP: &str = "leadership";

/// The results.json field naming the run's key namespace (runs with one only).
pub const KEY_PREFIX: &str = "key_prefix";

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub system: String,
    pub workload: WorkloadSpec,
    pub nemesis: String,
    pub concurrency: usize,
    /// Total ops/s over all clients; 0: unpaced.
    pub rate: f64,
    pub time_limit: Duration,
    pub node_choice: NodeChoice,
    pub request_timeout: Duration,
    pub probe_interval: Duration,
    pub check_time_limit: Duration,
    pub bugs: Vec<String>,
    /// How split-brain probes judge this system (its descriptor's `[leadership]`).
    pub probes: crate::checker::split_brain::ProbeOptions,
    /// The system's promise envelope for this run (None: every verdict counts).
    pub promise: Option<promise::Promise>,
    /// Put before every key the workload sends (and the set's storage key and request ids):
    /// the run's own namespace on a cluster that keeps data between runs. "" for a fresh
    /// cluster: the bare keys.
    pub key_prefix: String,
    /// Resolve info ops by the nodes' final logs before checking (`checker::pin`).
    pub pin_info: bool,
}

/// How the time limit is spent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phases {
    pub warmup: Duration,
    pub faults: Duration,
    pub recovery: Duration,
    /// Upper bound on the final reads.
    pub final_reads: Duration,
}

impl Phases {
    /// Warm-up a tenth (1-5 s), recovery a sixth (2-10 s), faults the rest.
    pub fn of(limit: Duration) -> Phases {
        let s = limit.as_secs_f64();
        let warmup = (s / 10.0).clamp(1.0, 5.0).min(s);
        let recovery = (s / 6.0).clamp(2.0, 10.0).min((s - warmup).max(0.0));
        let faults = (s - warmup - recovery).max(0.0);
        Phases {
            warmup: Duration::from_secs_f64(warmup),
            faults: Duration::from_secs_f64(faults),
            recovery: Duration::from_secs_f64(recovery),
            final_reads: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("recording the history failed, the run is void: {0}")]
    History(#[from] HistoryError),
    #[error("{0}")]
    Io(String),
    #[error("the faults could not be started: {0}")]
    Faults(String),
    #[error("client setup failed: {0}")]
    Client(#[from] crate::workload::client::ClientError),
}

pub struct RunOutcome {
    pub dir: PathBuf,
    pub results: RunResults,
    pub report: Result<PathBuf, String>,
}

impl RunOutcome {
    pub fn valid(&self) -> Validity {
        self.results.valid
    }
}

struct Schedule {
    path: PathBuf,
    seed: u64,
    nemesis: String,
    faults: Vec<Value>,
}

impl Schedule {
    /// Rewritten whole at every event, so a killed run still leaves its schedule.
    fn save(&self) -> std::io::Result<()> {
        let v = json!({"seed": self.seed, "nemesis": self.nemesis, "faults": self.faults});
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&v).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Sleeps `d`, or less if the user interrupts (then the end sequence runs at once).
/// How long a run whose workload checks `convergence` stays quiet before collecting the
/// nodes' final state (three anti-entropy periods of the bundled Dynamo store).
pub const CONVERGENCE_QUIESCENCE: Duration = Duration::from_secs(3);

async fn phase_sleep(d: Duration, interrupted: &Arc<std::sync::atomic::AtomicBool>) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end && !interrupted.load(Ordering::Relaxed) {
        let step = (end - tokio::time::Instant::now()).min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
    }
}

/// Runs the whole sequence against a started `target` whose nodes write under `dir/nodes/`.
pub async fn execute<T: Target>(
    cfg: &RunConfig,
    dir: &Path,
    target: &mut T,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
) -> Result<RunOutcome, RunError> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let phases = Phases::of(cfg.time_limit);
    let recorder = Arc::new(Recorder::create(&dir.join(store::HISTORY))?);
    target.set_run_start(recorder.started());
    let wpath = dir.join(store::WORKLOAD);
    std::fs::write(&wpath, &cfg.workload.text)
        .map_err(|e| RunError::Io(format!("{}: {e}", wpath.display())))?;
    let endpoints = target.endpoints();
    let client = Client::new(target.adapter(), endpoints.clone(), cfg.request_timeout)?
        .with_key_prefix(&cfg.key_prefix)
        .with_sets(cfg.workload.kind == Kind::Set);
    for f in ["read", "write", "cas", "txn", "add"] {
        if ops_of(&cfg.workload).contains(&f) {
            client.supports(f)?;
        }
    }
    let rate = if cfg.rate >= 0.0 {
        cfg.rate
    } else {
        cfg.workload.rate
    };
    let drive = Arc::new(Drive {
        recorder: recorder.clone(),
        client,
        generator: Mutex::new(
            Generator::new(&cfg.workload, cfg.seed).with_key_prefix(&cfg.key_prefix),
        ),
        pacer: Pacer::new(rate),
        choice: cfg.node_choice,
        seed: cfg.seed,
        concurrency: cfg.concurrency,
        stop: Default::default(),
        started: Default::default(),
    });
    let progress = Arc::new(Progress::new(cfg.time_limit));
    let schedule = Arc::new(Mutex::new(Schedule {
        path: dir.join(store::SCHEDULE),
        seed: cfg.seed,
        nemesis: cfg.nemesis.clone(),
        faults: Vec::new(),
    }));
    schedule
        .lock()
        .unwrap()
        .save()
        .map_err(|e| RunError::Io(format!("schedule.json: {e}")))?;
    let history_error: Arc<Mutex<Option<HistoryError>>> = Arc::default();

    let refresher = {
        let (p, r, d) = (progress.clone(), recorder.clone(), drive.clone());
        tokio::spawn(async move {
            while !d.stop.load(Ordering::Relaxed) {
                p.refresh(&r);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let probes_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        // A write error here also fails the next op's record, which ends the run.
        let r = recorder.clone();
        target.on_restart_status(Arc::new(move |node, status, asked| {
            let _ = r.probe(node, status, asked);
        }));
    }
    let prober = tokio::spawn(probe::probe_loop(
        recorder.clone(),
        target.status_fn(),
        cfg.probe_interval,
        probes_stop.clone(),
    ));
    // Every node's /log, sampled as often as its status, for entries lost before the end.
    let sampler = {
        let source: Arc<dyn LogSource> = Arc::new(Client::new(
            target.adapter(),
            endpoints.clone(),
            cfg.request_timeout,
        )?);
        let (out, started, stop) = (
            dir.join(log_sampler::LOG_SAMPLES),
            recorder.started(),
            probes_stop.clone(),
        );
        let every = cfg.probe_interval;
        tokio::spawn(async move {
            log_sampler::sample_loop(source, &out, started, every, Bounds::DEFAULT, stop).await
        })
    };

    progress.set_phase("warm-up");
    let clients_started = Instant::now();
    let handles = clients::spawn_generated(&drive);
    phase_sleep(phases.warmup, &interrupted).await;

    progress.set_phase("faults");
    let sink: FaultSink = {
        let (rec, sched, prog, err) = (
            recorder.clone(),
            schedule.clone(),
            progress.clone(),
            history_error.clone(),
        );
        Arc::new(move |ev: FaultEvent| {
            let f = ev.f();
            if let Err(e) = rec.nemesis(&f, ev.history_value()) {
                err.lock().unwrap().get_or_insert(e);
            }
            prog.fault_event(&f);
            let mut s = sched.lock().unwrap();
            s.faults.push(ev.schedule_entry());
            let _ = s.save();
        })
    };
    let mut teardown_errors = Vec::new();
    let faults_started = if phases.faults > Duration::ZERO && !interrupted.load(Ordering::Relaxed) {
        match target
            .start_faults(cfg.seed, recorder.started(), sink)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                // No fault ran, or some did: stop clients, heal, keep the history, then fail.
                drive.stop.store(true, Ordering::Relaxed);
                let _ = clients::join(handles).await;
                let heal = target.heal().await;
                let _ = target.stop().await;
                return Err(RunError::Faults(match heal {
                    Ok(()) => e,
                    Err(h) => format!("{e}; healing also failed: {h}"),
                }));
            }
        }
    } else {
        false
    };
    phase_sleep(phases.faults, &interrupted).await;

    progress.set_phase("healing");
    if faults_started && let Err(e) = target.heal().await {
        teardown_errors.push(format!("heal: {e}"));
    }
    progress.set_phase("recovery");
    phase_sleep(phases.recovery, &interrupted).await;

    drive.stop.store(true, Ordering::Relaxed);
    let processes = clients::join(handles).await?;
    progress.set_phase("final reads");
    let finals = {
        let g = drive.generator.lock().unwrap();
        g.final_reads()
    };
    let reads = Arc::new(FinalReads::new(finals, 20, phases.final_reads));
    drive.stop.store(false, Ordering::Relaxed);
    let processes = clients::run_final_reads(&drive, &reads, &processes).await?;
    drop(processes);
    let client_secs = clients_started.elapsed().as_secs_f64();
    drive.stop.store(true, Ordering::Relaxed);
    probes_stop.store(true, Ordering::Relaxed);
    let _ = refresher.await;
    match prober.await {
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
        Ok(Ok(_)) => {}
    }
    if let Some(e) = history_error.lock().unwrap().take() {
        return Err(e.into());
    }
    recorder.sync()?;
    let samples = match sampler.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            teardown_errors.push(format!("sampling /log: {e}"));
            LogSamples::default()
        }
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };

    // `convergence` judges the replicas after heal, quiescence and anti-entropy: give the
    // system a quiet spell (no client ops) before its final state is collected.
    if cfg
        .workload
        .checkers
        .contains(&crate::workload::CheckerName::Convergence)
    {
        progress.set_phase("quiescence");
        phase_sleep(CONVERGENCE_QUIESCENCE, &interrupted).await;
    }
    // Judged before the logs' own errors join: a log that could not be fetched makes the
    // logs incomplete by itself.
    let healed = !teardown_errors.iter().any(|e| e.starts_with("heal"));
    progress.set_phase("collecting logs");
    let (logs, log_errors) = collect_logs(&drive, dir).await;
    teardown_errors.extend(log_errors);
    progress.set_phase("stopping nodes");
    if let Err(e) = target.stop().await {
        teardown_errors.push(format!("stop: {e}"));
    }
    progress.finish();

    // The verdict: from the fully flushed history, read back as any analysis would.
    let history = crate::report::run_dir::read_history(&dir.join(store::HISTORY))
        .map_err(|e| RunError::Io(e.to_string()))?
        .0;
    let ids: Vec<String> = endpoints.iter().map(|e| e.id.clone()).collect();
    let pinned = if cfg.pin_info {
        checks::pin_info(&history, &logs, &samples, &ids, healed)
    } else {
        Err(checks::PIN_OFF.into())
    };
    let mut verdicts: Vec<Verdict> = checks::check_run(
        pinned.as_ref().map_or(&history, |(h, _)| h),
        &cfg.workload,
        &logs,
        &samples,
        cfg.check_time_limit,
        &cfg.probes,
    );
    verdicts.extend(super::work_done::verdict(&history, dir, &ids));
    let counts = recorder.counts();
    let (valid, promise_fields) = promise::judge(cfg.promise.as_ref(), &verdicts);
    let mut results = RunResults {
        valid,
        seed: json!(cfg.seed),
        system: json!(cfg.system),
        workload: json!(cfg.workload.name),
        nemesis: json!(cfg.nemesis),
        nodes: json!(endpoints.iter().map(|e| e.id.clone()).collect::<Vec<_>>()),
        started_at: json!(store::rfc3339_utc(started_at)),
        elapsed_s: json!(t0.elapsed().as_secs_f64()),
        counts: counts.clone(),
        verdicts,
        extra: Default::default(),
    };
    let ops = counts.ok + counts.fail + counts.info;
    let x = &mut results.extra;
    x.insert(
        LEADERSHIP.into(),
        json!({"generation": cfg.probes.generation, "overlapping_reigns": cfg.probes.overlapping_reigns}),
    );
    x.insert(
        "ops_per_s".into(),
        json!(ops as f64 / client_secs.max(1e-9)),
    );
    x.insert("concurrency".into(), json!(cfg.concurrency));
    x.insert("rate".into(), json!(rate));
    x.insert("bugs".into(), json!(cfg.bugs));
    if !cfg.key_prefix.is_empty() {
        x.insert(KEY_PREFIX.into(), json!(cfg.key_prefix));
    }
    x.insert("final_reads_missed".into(), json!(reads.missed().len()));
    x.insert(
        "interrupted".into(),
        json!(interrupted.load(Ordering::Relaxed)),
    );
    x.insert(
        "log_sampling".into(),
        json!({"sightings": samples.sightings.len(), "per_poll": Bounds::DEFAULT.per_poll,
               "cap": Bounds::DEFAULT.cap, "capped_at_ns": samples.capped_at_ns}),
    );
    x.insert(
        checks::PINNING.into(),
        checks::pinning_field(pinned.as_ref().map(|(_, p)| p).map_err(String::as_str)),
    );
    x.insert("teardown_errors".into(), json!(teardown_errors));
    x.extend(promise_fields);
    let results_path = dir.join(store::RESULTS);
    let text = serde_json::to_vec_pretty(&results).map_err(|e| RunError::Io(e.to_string()))?;
    std::fs::write(&results_path, text)
        .map_err(|e| RunError::Io(format!("{}: {e}", results_path.display())))?;
    let report = crate::report::write_run_report(dir)
        .map(|f| f.html)
        .map_err(|e| e.to_string());
    Ok(RunOutcome {
        dir: dir.to_path_buf(),
        results,
        report,
    })
}

fn ops_of(spec: &WorkloadSpec) -> Vec<&'static str> {
    match spec.kind {
        Kind::Register => vec!["read", "write", "cas"],
        Kind::ListAppend => vec!["txn"],
        Kind::Set => vec!["add", "read"],
    }
}

/// Saves each node's final `/log` as `nodes/<id>/log.json`; returns them by node.
async fn collect_logs(drive: &Drive, dir: &Path) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, node) in drive.client.nodes().iter().enumerate() {
        let Some(log) = drive.client.log(i).await else {
            continue;
        };
        match log {
            Ok(v) => {
                let nd = dir.join(store::NODES).join(&node.id);
                let write = std::fs::create_dir_all(&nd)
                    .and_then(|()| std::fs::write(nd.join("log.json"), v.to_string()));
                if let Err(e) = write {
                    errors.push(format!("{}: log.json: {e}", node.id));
                }
                out.insert(node.id.clone(), v);
            }
            Err(e) => errors.push(format!("{}: /log: {e}", node.id)),
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_fill_the_time_limit() {
        let p = Phases::of(Duration::from_secs(60));
        assert_eq!(p.warmup, Duration::from_secs(5));
        assert_eq!(p.recovery, Duration::from_secs(10));
        assert_eq!(p.faults, Duration::from_secs(45));
        let short = Phases::of(Duration::from_secs(3));
        assert_eq!(
            short.warmup + short.faults + short.recovery,
            Duration::from_secs(3)
        );
        let tiny = Phases::of(Duration::from_millis(500));
        assert_eq!(tiny.faults, Duration::ZERO);
    }
}
