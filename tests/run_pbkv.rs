//! faultline against a system it did not write, known only by a descriptor: `pbkv`
//! (examples/pbkv.rs), primary-backup with a bully primary choice and no quorum, async
//! replication, reads anywhere. With the default options (clients bound to nodes) its split
//! brain must be caught under partition-halves and partition-leader; its single-owner
//! variant must be valid; nodes that never have a leader make the run `unknown`; a descriptor
//! naming a missing binary is bad input before any run directory exists.
//! Needs root and nftables; `cargo test` builds the example.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `target/<profile>/examples/pbkv`, next to this test's `deps/` directory.
fn pbkv_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("pbkv");
    assert!(
        p.is_file(),
        "{} missing: cargo test builds examples",
        p.display()
    );
    p
}

/// systems/pbkv.toml with an absolute binary and `extra` args, written into `dir`.
fn descriptor(dir: &Path, binary: &Path, extra: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systems/pbkv.toml"))
        .unwrap()
        .replace(
            "binary = \"pbkv\"",
            &format!("binary = {:?}", binary.display().to_string()),
        )
        .replace(
            "\"{peers}\"]",
            &format!(
                "\"{{peers}}\"{}]",
                extra.iter().map(|a| format!(", {a:?}")).collect::<String>()
            ),
        );
    let p = dir.join("pbkv.toml");
    std::fs::write(&p, text).unwrap();
    p
}

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
