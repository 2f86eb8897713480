//! `faultline shrink --schedule RUN_DIR [--budget S] [--tries K] [--confirm N]`: the fewest
//! faults, held the shortest, that still make the run fail the same way. Each candidate is a
//! `faultline replay RUN_DIR --faults CANDIDATE` child (so a wedged run takes nothing with
//! it); it reproduces when the replay is invalid with the original's fingerprint (or its
//! primary signature). The result is replayed `--confirm` more times, to say how reliably it
//! reproduces. Writes `RUN_DIR/shrunk/schedule.json` (replayable) and
//! `RUN_DIR/shrunk/schedule-shrink.json` (every replay tried), and keeps the replays under
//! `RUN_DIR/shrunk/replays/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use faultline::checker::Validity;
use faultline::nemesis::replay::{self, select, to_schedule_json};
use faultline::report::results::RunResults;
use faultline::runner::schedule_shrink::{Candidate, shrink};
use faultline::runner::store;
use faultline::suite::child::ChildRun;
use faultline::suite::fingerprint::Fingerprint;
use faultline::suite::outcome::RunRecord;

use super::BadInput;

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// When the original saw its primary anomaly: the latest time of the witness's events.
fn seen_ns(dir: &Path, r: &RunResults, fp: &Fingerprint) -> Option<u64> {
    let primary = fp.primary()?;
    let (history, _) = faultline::report::run_dir::read_history(&dir.join(store::HISTORY)).ok()?;
    let events: Vec<u64> = r
        .verdicts
        .iter()
        .flat_map(|v| v.anomalies.iter().map(move |a| (v, a)))
        .filter(|(v, a)| primary.starts_with(&format!("{}:{}", v.checker, a.kind)))
        .flat_map(|(_, a)| a.events.iter().copied())
        .collect();
    events
        .iter()
        .filter_map(|&i| history.events.get(i as usize).map(|e| e.time))
        .max()
}

/// Halved holds as {"fault index": ms}.
fn holds_ms(h: &std::collections::BTreeMap<usize, Duration>) -> serde_json::Value {
    h.iter()
        .map(|(k, v)| (k.to_string(), json!(v.as_millis() as u64)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The original's time limit (what its replays run for unless the candidate ends sooner).
fn time_limit(dir: &Path) -> f64 {
    std::fs::read_to_string(dir.join(store::INVOCATION))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.pointer("/args/time_limit").and_then(|t| t.as_f64()))
        .unwrap_or(60.0)
}

pub fn main(dir: &Path, budget: Duration, tries: usize, confirm: usize) -> anyhow::Result<u8> {
    let results = RunResults::read(&dir.join(store::RESULTS)).map_err(|e| {
        bad(format!(
            "{e} (a schedule is shrunk from a finished run directory)"
        ))
    })?;
    if results.valid != Validity::Invalid {
        return Err(bad(format!(
            "{}: the run was not invalid; there is no failure to keep",
            dir.display()
        )));
    }
    let target = Fingerprint::of(&results.verdicts);
    let sched = dir.join(store::SCHEDULE);
    let text =
        std::fs::read_to_string(&sched).with_context(|| format!("reading {}", sched.display()))?;
    let realised = replay::parse(&text, &sched.display().to_string()).map_err(bad)?;
    if realised.faults.is_empty() {
        return Err(bad(format!(
            "{}: no fault took effect; nothing to shrink",
            sched.display()
        )));
    }
    let out = dir.join("shrunk");
    let replays = out.join("replays");
    std::fs::create_dir_all(replays.join("logs"))
        .with_context(|| format!("creating {}", replays.display()))?;
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let full_limit = time_limit(dir);
    let seen = seen_ns(dir, &results, &target);
    let started = Instant::now();
    let mut attempts = Vec::new();
    let mut spent = false;
    let mut n = 0usize;

    // One replay of a candidate: reproduced or not, logged in `attempts`.
    let mut replay_once = |c: &Candidate, why: &str| -> bool {
        let faults = select(&realised.faults, &c.keep, &c.holds);
        // The replay needs to run only until its last fault ends (and the anomaly was seen),
        // plus the recovery that follows.
        let last_ns = faults
            .iter()
            .map(|f| f.stop_ns.unwrap_or(u64::MAX))
            .chain(seen)
            .max()
            // no fault and no time the anomaly was seen: as long as the original
            .unwrap_or(u64::MAX);
        let limit = (last_ns as f64 / 1e9 + 12.0).min(full_limit);
        n += 1;
        let file = replays.join(format!("candidate-{n:03}.json"));
        let body = to_schedule_json(realised.seed, &realised.nemesis, &faults);
        if std::fs::write(&file, format!("{body:#}\n")).is_err() {
            return false;
        }
        let child = ChildRun {
            exe: exe.clone(),
            args: vec![
                "replay".into(),
                dir.display().to_string(),
                "--faults".into(),
                file.display().to_string(),
                "--time-limit".into(),
                format!("{limit:.1}"),
            ],
            store: replays.clone(),
            log: replays.join("logs").join(format!("candidate-{n:03}.log")),
            wall_limit: Duration::from_secs_f64(2.0 * limit + 180.0),
        };
        let rec = child.run(RunRecord::default());
        let ok =
            rec.valid == Some(Validity::Invalid) && target.compare(&rec.fingerprint).reproduces();
        eprintln!(
            "faultline shrink: replay {n} ({why}): {} fault(s) {:?}{}, {limit:.0} s: {} ({})",
            c.keep.len(),
            c.keep,
            if c.holds.is_empty() {
                String::new()
            } else {
                format!(", {} hold(s) halved", c.holds.len())
            },
            if ok { "reproduced" } else { "not reproduced" },
            rec.fingerprint
        );
        attempts.push(json!({
            "candidate": n, "purpose": why, "keep": c.keep,
            "holds_ms": holds_ms(&c.holds),
            "time_limit": limit, "run_dir": rec.run_dir, "exit_code": rec.exit_code,
            "fingerprint": rec.fingerprint.id(), "reproduced": ok, "error": rec.error,
        }));
        ok
    };
    let mut test = |c: &Candidate| -> bool {
        if started.elapsed() >= budget {
            spent = true;
            return false;
        }
        (0..tries.max(1)).any(|_| replay_once(c, "candidate"))
    };

    let all = Candidate {
        keep: realised.faults.iter().map(|f| f.index).collect(),
        holds: Default::default(),
    };
    let outcome = if test(&all) {
        Some(shrink(&realised.faults, seen, &mut test))
    } else {
        None
    };
    // A candidate is kept on one reproducing replay: say how reliably the result reproduces.
    let confirmed = outcome.as_ref().map(|best| {
        (0..confirm)
            .filter(|_| replay_once(best, "confirm"))
            .count()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let log_path = out.join("schedule-shrink.json");
    let summary = json!({
        "run_dir": dir, "fingerprint": target.id(), "signatures": target.signatures,
        "original_faults": realised.faults.len(), "seen_ns": seen,
        "kept": outcome.as_ref().map(|c| &c.keep),
        "holds_ms": outcome.as_ref().map(|c| holds_ms(&c.holds)),
        "confirm_replays": confirm, "confirmed": confirmed,
        "replays": n, "elapsed_s": elapsed, "budget_s": budget.as_secs_f64(), "budget_spent": spent,
        "attempts": attempts,
    });
    std::fs::write(&log_path, format!("{summary:#}\n"))
        .with_context(|| format!("writing {}", log_path.display()))?;
    let Some(best) = outcome else {
        println!(
            "faultline shrink: {}: the full schedule did not reproduce {} on replay ({n} tried); \
             nothing shrunk (see {})",
            dir.display(),
            target,
            log_path.display()
        );
        return Ok(2);
    };
    let kept = select(&realised.faults, &best.keep, &best.holds);
    let path: PathBuf = out.join(store::SCHEDULE);
    let body = to_schedule_json(realised.seed, &realised.nemesis, &kept);
    std::fs::write(&path, format!("{body:#}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "faultline shrink: {}: schedule {} -> {} fault(s) {:?}, {} hold(s) halved, in {n} \
         replays ({elapsed:.0} s{}); reproduced in {} of {confirm} confirming replays; replay \
         it: faultline replay {} --faults {}",
        dir.display(),
        realised.faults.len(),
        best.keep.len(),
        best.keep,
        best.holds.len(),
        if spent {
            ", budget spent: the smallest found so far"
        } else {
            ""
        },
        confirmed.unwrap_or(0),
        dir.display(),
        path.display()
    );
    Ok(0)
}
