//! Info ops pinned by the nodes' logs, for real: a 3-node Raft run under kills of a majority
//! (which leaves requests of unknown outcome), its results.json `pinning` counts checked
//! against an independent reading of the stored history and logs, and `faultline analyze`
//! with and without `--no-pin-info`. Needs root, nftables and the `faultline-raft` binary.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// What the stored run says, read without the checker crate: the client ops of unknown
/// outcome (request id and f), and per request id whether a final log entry took effect.
struct Stored {
    info: Vec<(String, String)>,
    took_effect: HashMap<String, bool>,
    invokes: Vec<Option<String>>,
}

fn stored(dir: &Path) -> Stored {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let mut info = Vec::new();
    let mut invokes = Vec::new();
    let mut open: HashMap<u64, (String, String)> = HashMap::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let Some(p) = e["process"].as_u64() else {
            continue;
        };
        let rid = e["request_id"].as_str().map(String::from);
        match e["type"].as_str().unwrap() {
            "invoke" => {
                invokes.push(rid.clone());
                open.insert(
                    p,
                    (rid.unwrap_or_default(), e["f"].as_str().unwrap().into()),
                );
            }
            "info" => info.push(open.remove(&p).unwrap()),
            _ => {
                open.remove(&p);
            }
        }
    }
    // Never completed: as unknown as an info.
    info.extend(open.into_values());
    let mut took_effect = HashMap::new();
    for entry in std::fs::read_dir(dir.join("nodes")).unwrap().flatten() {
        let p = entry.path().join("log.json");
        if !p.exists() {
            continue;
        }
        for e in read_json(&p).as_array().unwrap() {
            if let Some(rid) = e["request_id"].as_str() {
                let t = took_effect.entry(rid.to_string()).or_insert(false);
                *t |= e["took_effect"] == Value::Bool(true);
            }
        }
    }
    Stored {
        info,
        took_effect,
        invokes,
    }
}

#[test]
fn info_ops_are_resolved_by_the_logs_and_can_be_switched_off() {
    if !(common::capable("pin info") && common::raft_available("pin info")) {
        return;
    }
    let store = common::run_dir("pin-info");
    let out = faultline()
        .args(["run", "--nodes", "3", "--time-limit", "10", "--seed", "1"])
        .args(["--nemesis", "kill-majority", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = std::fs::canonicalize(store.path().join("latest")).unwrap();
    let results = read_json(&dir.join("results.json"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pinning = &results["pinning"];
    assert_eq!(pinning["enabled"], true, "{results:#}");
    let summary = pinning["summary"].as_str().unwrap();
    assert!(stdout.contains(&format!("info ops: {summary}")), "{stdout}");

    // Every client op carries a request id of its own: what the logs are matched by.
    let s = stored(&dir);
    assert!(s.invokes.len() > 100, "{} invokes", s.invokes.len());
    let ids: HashSet<&String> = s.invokes.iter().map(|r| r.as_ref().unwrap()).collect();
    assert_eq!(ids.len(), s.invokes.len(), "request ids repeat");

    // The counts, read again from the files: an info write/cas whose id took effect in a
    // final log is ok; with complete logs, one that took effect nowhere is fail; reads are
    // never pinned (they leave no entry).
    assert_eq!(pinning["indeterminate_total"], s.info.len() as u64);
    let logged = |f: &str| matches!(f, "write" | "cas");
    let ok = s
        .info
        .iter()
        .filter(|(rid, f)| logged(f) && s.took_effect.get(rid) == Some(&true))
        .count();
    assert_eq!(pinning["resolved_ok"], ok as u64, "{pinning:#}");
    let fail = s
        .info
        .iter()
        .filter(|(rid, f)| logged(f) && s.took_effect.get(rid) != Some(&true))
        .count();
    if pinning.get("incomplete").is_none() {
        assert_eq!(pinning["resolved_fail"], fail as u64, "{pinning:#}");
    } else {
        assert_eq!(pinning["resolved_fail"], 0, "{pinning:#}");
    }

    // analyze pins the same ops again; --no-pin-info leaves them open, and the verdict of
    // the correct Raft does not change.
    let again = faultline().arg("analyze").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(read_json(&dir.join("results.json"))["pinning"], *pinning);
    let off = faultline()
        .args(["analyze", "--no-pin-info"])
        .arg(&dir)
        .output()
        .unwrap();
    let off_out = String::from_utf8_lossy(&off.stdout);
    assert_eq!(off.status.code(), Some(0), "{off_out}");
    let r = read_json(&dir.join("results.json"));
    assert_eq!(r["pinning"]["enabled"], false, "{r:#}");
    assert!(
        off_out.contains("info ops: no info op resolved by the logs: off (--no-pin-info)"),
        "{off_out}"
    );
    assert_eq!(r["valid"], true);
}

#[test]
fn a_run_started_without_pinning_records_it_and_analyze_keeps_it_off() {
    if !(common::capable("pin off") && common::raft_available("pin off")) {
        return;
    }
    let store = common::run_dir("pin-off");
    let out = faultline()
        .args(["run", "--nodes", "3", "--time-limit", "4", "--seed", "2"])
        .args(["--nemesis", "partition-leader", "--no-pin-info", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = std::fs::canonicalize(store.path().join("latest")).unwrap();
    assert_eq!(
        read_json(&dir.join("results.json"))["pinning"]["enabled"],
        false
    );
    let again = faultline().arg("analyze").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        read_json(&dir.join("results.json"))["pinning"]["enabled"],
        false
    );
}
