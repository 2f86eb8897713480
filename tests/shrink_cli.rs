//! `faultline shrink` end to end: the real binary on a fixture run directory and on reference
//! histories; the shrunk history is checked again by `faultline check`.

mod common;

use std::process::{Command, Output};

use common::{Fixture, build_run, corpora};
use serde_json::Value;

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs faultline")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_run_directory_shrinks_to_its_stale_read_and_the_result_is_still_rejected() {
    let store = tempfile::tempdir().unwrap();
    let fx = Fixture {
        ops: 600,
        concurrency: 5,
        seed: 7,
        stale_read: true,
        two_leaders: false,
        real_verdicts: true,
    };
    let run = build_run(store.path(), "raft-register", "20261202T010000", &fx);
    let workload =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/cas-register.toml");
    std::fs::copy(workload, run.dir.join("workload.toml")).unwrap();

    let out = faultline(&["shrink", "--json", run.dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["finding"], "linearizable/cas-register:nonlinearizable");
    let after = line["ops_after"].as_u64().unwrap();
    assert!(after <= 5, "{line}");
    assert!(line["ops_before"].as_u64().unwrap() >= 500, "{line}");

    let shrunk = run.dir.join("shrunk/history.jsonl");
    assert!(run.dir.join("shrunk/report.html").is_file());
    let check = faultline(&["check", "--model", "cas-register", shrunk.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(
        text(&check).contains(&format!("{after} ops")),
        "{}",
        text(&check)
    );
}

#[test]
fn a_reference_history_shrinks_to_a_stale_read_with_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = corpora().join("knossos/cas-register/bad/rethink-fail.edn");
    let out = faultline(&[
        "shrink",
        "--model",
        "cas-register",
        "--out",
        dir.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("250 ops on 1 key(s) -> 3 ops on 1 key(s)"),
        "{t}"
    );
    let h = faultline::history::jsonl::read_path(&dir.path().join("history.jsonl")).unwrap();
    // every value read or cas'ed from was written by a kept op: not a read of nothing
    let written: Vec<String> = h
        .operations
        .iter()
        .filter(|o| o.f == "write")
        .map(|o| o.invoke_value.to_string())
        .collect();
    for o in h.operations.iter().filter(|o| o.f == "read") {
        assert!(
            o.value.is_null() || written.contains(&o.value.to_string()),
            "{t}"
        );
    }
}

#[test]
fn a_valid_history_has_nothing_to_shrink_and_a_missing_one_is_bad_input() {
    let valid = corpora().join("porcupine/etcd/etcd_002.log");
    let out = faultline(&["shrink", valid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to shrink"), "{}", text(&out));

    let out = faultline(&["shrink", "no-such-history.jsonl"]);
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(
        text(&out).contains("no-such-history.jsonl"),
        "{}",
        text(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    let out = faultline(&["shrink", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("not a run directory"), "{}", text(&out));
}
