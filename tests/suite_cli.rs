//! `faultline suite` end to end: a bad file is refused before any run (exit 254, file, line,
//! field); a row expected valid with a bug switched on fails with exit 1 and a JUnit failure
//! naming the seed and the reproduce command; a row that did too little work fails as such.

mod common;

use std::path::Path;
use std::process::Command;

fn suite(file: &Path, store: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("suite")
        .arg(file)
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .unwrap();
    common::code_and_text(&out)
}

#[test]
fn a_bad_suite_file_is_refused_before_any_run() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.toml");
    std::fs::write(
        &f,
        "time_budget_s = 60\n[[row]]\nsystem = \"raft\"\nseeds = [1]\nexpect = \"valid\"\nmin_ok_ops = -3\n",
    )
    .unwrap();
    let (code, text) = suite(&f, &d.path().join("store"), &[]);
    assert_eq!(code, 254, "{text}");
    assert!(
        text.contains("bad.toml: line 6: row[0].min_ok_ops:"),
        "{text}"
    );
    assert!(
        !d.path().join("store").exists(),
        "nothing is created before the file is good"
    );
}

#[test]
fn a_bug_under_an_expected_valid_row_fails_and_an_idle_row_did_nothing() {
    if !common::capable("suite_cli") || !common::raft_available("suite_cli") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("t.toml");
    std::fs::write(
        &f,
        r#"time_budget_s = 120
[[row]]
name = "bug-expected-valid"
system = "raft"
nemesis = "partition-leader"
bug = "stale-local-read"
node_choice = "random"
nodes = 3
seeds = [6]
time_limit = 12
expect = "valid"

[[row]]
name = "idle"
system = "raft"
nemesis = "none"
nodes = 3
seeds = [1]
time_limit = 3
expect = "valid"
min_ok_ops = 1000000
"#,
    )
    .unwrap();
    let store = d.path().join("store");
    let junit = d.path().join("junit.xml");
    // each row alone, so each exit code is its own
    let (code, text) = suite(
        &f,
        &store,
        &[
            "--filter",
            "bug-expected-valid",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("<failure message=\"anomaly: "), "{x}");
    assert!(x.contains("seed: 6"), "{x}");
    assert!(
        x.contains("reproduce: faultline run --system raft --workload kv --nemesis partition-leader --time-limit 12 --seed 6 --bug stale-local-read --node-choice random --nodes 3"),
        "{x}"
    );
    assert!(
        x.contains("linearizable/"),
        "the fingerprint names the checker: {x}"
    );
    let (code, text) = suite(
        &f,
        &store,
        &["--filter", "idle", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{text}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("<error message=\"did nothing: "), "{x}");
    assert!(x.contains("the row needs at least 1000000"), "{x}");
    let nights = std::fs::read_dir(store.join("suites/t")).unwrap().count();
    assert_eq!(nights, 2, "one summary per suite run");
}
