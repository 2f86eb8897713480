//! `faultline run` for real: the bundled Raft in namespaces under a partition schedule,
//! a control node killed with SIGKILL mid-run whose history `faultline analyze` reads, a
//! first ^C that ends a run early but still checks it, and etcd under list-append (Elle).
//! Needs root, nftables and the `faultline-raft` binary (`cargo build -p faultline-raft`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn ready(test: &str) -> bool {
    common::capable(test) && common::raft_available(test)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn only_run_dir(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).unwrap()
}

/// The latest run's directory once it is well under way: more than `events` history lines
/// and a partition recorded (within 40 s).
fn under_way(store: &Path, events: usize) -> PathBuf {
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(40), "run never got going");
        std::thread::sleep(Duration::from_millis(200));
        let Ok(dir) = std::fs::canonicalize(store.join("latest")) else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        if text.lines().count() > events && text.contains("start-partition") {
            return dir;
        }
    }
}

#[test]
fn a_short_raft_run_is_valid_and_stored() {
    if !ready("raft run") {
        return;
    }
    let store = common::run_dir("run-raft");
    let out = faultline()
        .args(["run", "--nodes", "3", "--time-limit", "8", "--seed", "7"])
        .args([
            "--nemesis",
            "partition-halves",
            "--concurrency",
            "5",
            "--store",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = only_run_dir(store.path());
    let results = read_json(&dir.join("results.json"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nresults: {results:#}"
    );
    assert!(
        stdout.contains("verdict: VALID") && stdout.contains("seed: 7"),
        "{stdout}"
    );
    assert_eq!(results["seed"], 7);
    assert_eq!(results["valid"], true);
    assert!(
        results["counts"]["ok"].as_u64().unwrap() > 100,
        "{results:#}"
    );
    let sched = read_json(&dir.join("schedule.json"));
    assert_eq!(sched["seed"], 7);
    assert_eq!(sched["nemesis"], "partition-halves");
    assert!(!sched["faults"].as_array().unwrap().is_empty(), "{sched:#}");
    for n in ["n1", "n2", "n3"] {
        let nd = dir.join("nodes").join(n);
        assert!(nd.join("stderr.log").is_file());
        assert!(read_json(&nd.join("log.json")).is_array(), "{n}: log.json");
    }
    assert!(dir.join("report.html").is_file() && dir.join("junit.xml").is_file());
    // the run can be re-checked from the store, with the same verdict
    let again = faultline()
        .args(["analyze", "--store"])
        .arg(store.path())
        .arg("latest")
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn a_sigkilled_control_node_leaves_a_history_analyze_reads() {
    if !ready("raft sigkill") {
        return;
    }
    let store = common::run_dir("run-kill");
    let mut child = faultline()
        .args(["run", "--nodes", "3", "--time-limit", "30", "--seed", "11"])
        .args([
            "--nemesis",
            "partition-halves",
            "--concurrency",
            "8",
            "--store",
        ])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = under_way(store.path(), 400);
    let history = dir.join("history.jsonl");
    // SIGKILL: no handler runs, nothing is flushed after this
    child.kill().unwrap();
    child.wait().unwrap();
    let cleaned = faultline::cluster::cleanup_dead_runs().unwrap();
    assert!(
        !cleaned.runs.is_empty(),
        "the dead run's cluster is found and removed"
    );
    assert!(!dir.join("results.json").exists());

    let text = std::fs::read_to_string(&history).unwrap();
    let invokes = text
        .lines()
        .filter(|l| l.contains("\"type\":\"invoke\""))
        .count();
    let completions = text
        .lines()
        .filter(|l| {
            l.contains("\"process\":")
                && !l.contains("\"process\":\"")
                && !l.contains("\"type\":\"invoke\"")
        })
        .count();
    let out = faultline().arg("analyze").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "analyze: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("results.json is missing"), "{stderr}");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["seed"], 11);
    assert_ne!(results["valid"], false, "{results:#}");
    let c = &results["counts"];
    let total =
        c["ok"].as_u64().unwrap() + c["fail"].as_u64().unwrap() + c["info"].as_u64().unwrap();
    // every op recorded is judged; only ops in flight lack a completion (at most one a client)
    assert_eq!(total as usize, invokes);
    assert!(
        invokes - completions <= 8,
        "{invokes} invokes, {completions} completions"
    );
}

#[test]
fn a_first_sigint_ends_the_run_early_and_still_checks_and_reports() {
    if !ready("raft sigint") {
        return;
    }
    let store = common::run_dir("run-sigint");
    let child = faultline()
        .args(["run", "--nodes", "3", "--time-limit", "120", "--seed", "12"])
        .args(["--nemesis", "partition-halves", "--store"])
        .arg(store.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let dir = under_way(store.path(), 300);
    let (records, _) = faultline::cluster::registry::list();
    let rec = records
        .into_iter()
        .find(|r| std::fs::canonicalize(&r.run_dir).ok().as_deref() == Some(dir.as_path()))
        .expect("the run's cluster is registered");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A 120 s run ended within seconds of the ^C, with a verdict on what was recorded.
    assert!(t.elapsed() < Duration::from_secs(70), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("ending the run early"), "{stderr}");
    assert!(
        stdout.contains("interrupted: ended early by ^C"),
        "{stdout}"
    );
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["interrupted"], true, "{results:#}");
    assert_eq!(results["valid"], true, "{results:#}");
    assert!(results["elapsed_s"].as_f64().unwrap() < 60.0, "{results:#}");
    assert!(dir.join("report.html").is_file());
    // The heal happened: the schedule's last fault was stopped.
    let sched = read_json(&dir.join("schedule.json"));
    let faults = sched["faults"].as_array().unwrap();
    assert_eq!(faults.last().unwrap()["action"], "stop", "{sched:#}");
    common::assert_gone(&rec.short_id);
}

#[test]
fn an_etcd_list_append_run_is_checked_by_elle() {
    if !common::capable("etcd list-append run") {
        return;
    }
    let store = common::run_dir("run-etcd-append");
    let out = faultline()
        .args(["run", "--system", "etcd", "--nodes", "3", "--seed", "5"])
        .args(["--workload", "list-append", "--nemesis", "partition-halves"])
        .args(["--time-limit", "12", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let dir = only_run_dir(store.path());
    let results = read_json(&dir.join("results.json"));
    let elle = results["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["checker"] == "elle/list-append")
        .unwrap_or_else(|| panic!("no Elle verdict: {results:#}"));
    assert_eq!(elle["valid"], true, "{elle:#}");
    // Transactions that appended and read landed, under a partition.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let ok_appends = history
        .lines()
        .filter(|l| l.contains("\"type\":\"ok\"") && l.contains("[\"append\""))
        .count();
    let ok_reads = history
        .lines()
        .filter(|l| l.contains("\"type\":\"ok\"") && l.contains("[\"r\",") && !l.contains("null]"))
        .count();
    assert!(
        ok_appends > 50 && ok_reads > 50,
        "{ok_appends} appends, {ok_reads} reads"
    );
    assert!(history.contains("start-partition"));
}
