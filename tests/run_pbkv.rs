//! faultline against a system it did not write, known only by a descriptor: `pbkv`
//! (examples/pbkv.rs), primary-backup with a bully primary choice and no quorum, async
//! replication, reads anywhere. With the default options (clients bound to nodes) its split
//! brain must be caught under partition-halves and partition-leader; its single-owner
//! variant must be valid; nodes that never have a leader make the run `unknown`; a descriptor
//! naming a missing binary is bad input before any run directory exists.
//! Needs root and nftables; `cargo test` builds the example.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::pbkv::{descriptor, pbkv_binary};
use serde_json::Value;

/// `faultline run` with the default options except a short time limit and the seed.
fn run(store: &Path, system: &Path, nemesis: &str, seed: u64) -> (Output, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--system"])
        .arg(system)
        .args(["--nemesis", nemesis, "--time-limit", "10", "--seed"])
        .arg(seed.to_string())
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    let results = std::fs::canonicalize(store.join("latest"))
        .ok()
        .and_then(|d| std::fs::read_to_string(d.join("results.json")).ok())
        .map_or(Value::Null, |t| serde_json::from_str(&t).unwrap());
    (out, results)
}

fn says(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn split_brained_pbkv_is_caught_with_default_options() {
    if !common::capable("pbkv split brain") {
        return;
    }
    let store = common::run_dir("pbkv");
    let sys = descriptor(store.path(), &pbkv_binary(), &[]);
    for nemesis in ["partition-halves", "partition-leader"] {
        let (out, results) = run(&store.path().join(nemesis), &sys, nemesis, 1);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{nemesis}: {}\n{results:#}",
            says(&out)
        );
        assert_eq!(results["valid"], false, "{nemesis}");
    }
}

#[test]
fn logs_overwritten_on_heal_are_caught_diverging_by_sampling_during_the_run() {
    if !common::capable("pbkv heal overwrites") {
        return;
    }
    let store = common::run_dir("pbkv-overwrite");
    let sys = descriptor(store.path(), &pbkv_binary(), &["--heal-overwrites"]);
    let (out, results) = run(store.path(), &sys, "partition-halves", 1);
    assert_eq!(out.status.code(), Some(1), "{}\n{results:#}", says(&out));
    let logs = results["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["checker"] == "split-brain/logs")
        .expect("a split-brain/logs verdict");
    assert_eq!(logs["valid"], false, "{logs:#}");
    assert!(
        logs["stats"]["divergent_indexes_seen_only_while_running"].as_u64() > Some(0),
        "{logs:#}"
    );
    assert!(
        logs["explanation"]
            .as_str()
            .unwrap()
            .contains("not in its final log"),
        "{logs:#}"
    );
    // The end-of-run logs alone agree: without the samples this split brain left no trace
    // in the logs.
    let dir = std::fs::canonicalize(store.path().join("latest")).unwrap();
    let mut finals = std::collections::BTreeMap::new();
    for n in results["nodes"].as_array().unwrap() {
        let id = n.as_str().unwrap();
        let text = std::fs::read_to_string(dir.join("nodes").join(id).join("log.json")).unwrap();
        finals.insert(id.to_string(), serde_json::from_str(&text).unwrap());
    }
    let last = faultline::checker::split_brain::check_logs(&finals);
    assert_eq!(
        last.valid,
        faultline::checker::Validity::Valid,
        "{}",
        last.explanation
    );
    assert!(dir.join("log-samples.jsonl").is_file());
}

#[test]
fn single_owner_pbkv_is_valid() {
    if !common::capable("pbkv single owner") {
        return;
    }
    let store = common::run_dir("pbkv-single");
    let sys = descriptor(store.path(), &pbkv_binary(), &["--single-owner"]);
    let (out, results) = run(store.path(), &sys, "partition-halves", 1);
    assert_eq!(out.status.code(), Some(0), "{}\n{results:#}", says(&out));
}

#[test]
fn nodes_that_never_have_a_leader_make_the_run_unknown() {
    if !common::capable("pbkv no leader") {
        return;
    }
    let store = common::run_dir("pbkv-leaderless");
    let sys = descriptor(
        store.path(),
        &pbkv_binary(),
        &["--single-owner", "--owner", "nobody"],
    );
    let (out, results) = run(store.path(), &sys, "none", 1);
    assert_eq!(out.status.code(), Some(2), "{}\n{results:#}", says(&out));
    assert_eq!(results["valid"], "unknown");
    let work = results["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["checker"] == "work-done")
        .expect("a work-done verdict");
    let why = work["explanation"].as_str().unwrap();
    assert!(why.contains("no write was acknowledged"), "{why}");
    assert!(why.contains("no node ever reported itself leader"), "{why}");
    assert!(
        why.contains("pbkv n1 listening"),
        "the nodes' stderr tails: {why}"
    );
}

#[test]
fn a_missing_binary_is_bad_input_before_any_run_directory() {
    let store = common::run_dir("pbkv-nobinary");
    let sys = descriptor(store.path(), Path::new("/nonexistent/pbkv"), &[]);
    let runs = store.path().join("runs");
    let (out, _) = run(&runs, &sys, "none", 1);
    assert_eq!(out.status.code(), Some(254), "{}", says(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "faultline: system `pbkv`: binary /nonexistent/pbkv does not exist",
        "{}",
        says(&out)
    );
    assert!(!runs.exists(), "no run directory (nor store) was made");
}
