//! The `jepsen-misc/` corpus (elle-cli's bank, long-fork and set histories) through
//! `faultline check`, with the verdicts elle-cli's own `*-result.json` files record:
//! `bank-neg.edn` valid (one read), `bank-negative-balances.json` invalid with one
//! `negative-value`, `long-fork.edn` invalid with one fork, `set.edn` a valid set. The
//! model is inferred from the ops, so this also pins `--model auto`. A missing file
//! skips the case, except under `CI=true`, where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn corpus_file(rel: &str) -> Option<PathBuf> {
    let path = common::corpora().join(rel);
    if path.exists() {
        return Some(path);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{} is missing",
        path.display()
    );
    eprintln!("SKIP: {} is missing", path.display());
    None
}

/// `faultline check --json FILE`: the exit code and the file's JSON line.
fn check(path: &PathBuf, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg("--json")
        .args(extra)
        .arg(path)
        .output()
        .expect("runs faultline");
    let text = String::from_utf8_lossy(&out.stdout);
    let line: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text} / {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), line)
}

fn kinds(v: &Value) -> Vec<String> {
    v["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bank_neg_is_valid() {
    let Some(path) = corpus_file("jepsen-misc/bank-neg.edn") else {
        return;
    };
    let (code, v) = check(&path, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["model"], "bank");
    assert_eq!(v["valid"], Value::Bool(true));
    assert_eq!(v["stats"]["read_count"], 1);
    assert_eq!(v["stats"]["expected_total"], 30);
}

#[test]
fn bank_negative_balances_has_one_negative_value() {
    let Some(path) = corpus_file("jepsen-misc/bank-negative-balances.json") else {
        return;
    };
    let (code, v) = check(&path, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["model"], "bank");
    assert_eq!(kinds(&v), ["negative-value"]);
    let a = &v["anomalies"][0];
    assert_eq!(a["data"]["negative"], serde_json::json!([-1]));
    assert_eq!(a["data"]["accounts"], serde_json::json!(["7"]));
    // The second read (input index 3) is the bad one; both reads total 100.
    assert_eq!(a["data"]["value"]["0"], 101);
    assert_eq!(v["stats"]["read_count"], 2);
    // Allowed negative balances make it valid; a different given total makes both reads wrong.
    let (code, v) = check(&path, &["--negative-balances"]);
    assert_eq!(code, 0, "{v}");
    let (code, v) = check(&path, &["--initial", "90"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(kinds(&v), ["wrong-total", "wrong-total"]);
}

#[test]
fn long_fork_has_one_fork() {
    let Some(path) = corpus_file("jepsen-misc/long-fork.edn") else {
        return;
    };
    let (code, v) = check(&path, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["model"], "long-fork");
    assert_eq!(kinds(&v), ["long-fork"]);
    assert_eq!(v["stats"]["reads_count"], 2);
    assert_eq!(v["stats"]["early_read_count"], 0);
    assert_eq!(v["stats"]["late_read_count"], 0);
    let a = &v["anomalies"][0];
    // The first read saw key 1's write and not key 2's; the second the reverse.
    assert_eq!(a["data"]["first_only"], serde_json::json!(["1"]));
    assert_eq!(a["data"]["second_only"], serde_json::json!(["2"]));
}

#[test]
fn set_is_a_valid_set_not_a_counter() {
    let Some(path) = corpus_file("jepsen-misc/set.edn") else {
        return;
    };
    let (code, v) = check(&path, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["model"], "set");
    // Forced through the counter checker, a read of a list is bad input naming the op.
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "--model", "counter"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("event 6 (read)"), "{err}");
}
