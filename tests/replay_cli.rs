//! `faultline replay` and `faultline shrink --schedule` end to end: a run records its
//! invocation; its replay puts the same faults in force at the recorded times (replay.json
//! says how closely) and compares verdict and fingerprint; the schedule shrinker replays
//! candidates and writes a replayable shrunk schedule. Bad input is refused with 254.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn faultline(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap();
    common::code_and_text(&out)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .unwrap()
}

fn announced(text: &str) -> PathBuf {
    let line = text
        .lines()
        .rfind(|l| l.contains("; run directory "))
        .unwrap_or_else(|| panic!("no run directory announced:\n{text}"));
    PathBuf::from(line.split_once("; run directory ").unwrap().1.trim())
}

#[test]
fn bad_input_is_refused_naming_the_file_and_field() {
    let d = tempfile::tempdir().unwrap();
    let (code, text) = faultline(&["replay", "/nonexistent/run"]);
    assert_eq!(code, 254, "{text}");
    // a run directory whose schedule.json is malformed
    let run = d.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("results.json"),
        json!({"valid": false, "seed": 3, "system": "raft", "workload": "kv",
               "nemesis": "partition-leader", "nodes": ["n1","n2","n3"]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        run.join("schedule.json"),
        json!({"seed": 3, "faults": [{"at_ns": 1, "action": "start", "fault": "partition",
               "targets": ["n1"], "detail": {"grudge": "everyone"}}]})
        .to_string(),
    )
    .unwrap();
    let r = run.display().to_string();
    let (code, text) = faultline(&[
        "replay",
        &r,
        "--store",
        &d.path().join("s").display().to_string(),
    ]);
    assert_eq!(code, 254, "{text}");
    assert!(
        text.contains("schedule.json: faults[0].detail.grudge:"),
        "{text}"
    );
    assert!(
        !d.path().join("s").exists(),
        "nothing is created before the input is good"
    );
    let (code, text) = faultline(&["shrink", "--schedule", &r]);
    assert_eq!(code, 254, "{text}");
    // a valid run has no failure to keep
    std::fs::write(
        run.join("results.json"),
        json!({"valid": true, "seed": 3}).to_string(),
    )
    .unwrap();
    let (code, text) = faultline(&["shrink", "--schedule", &r]);
    assert_eq!(code, 254, "{text}");
    assert!(text.contains("not invalid"), "{text}");
    let (code, text) = faultline(&["shrink", "--schedule", &d.path().display().to_string()]);
    assert_eq!(code, 254, "{text}");
    assert!(text.contains("no schedule.json"), "{text}");
}

#[test]
fn a_replay_repeats_the_realised_faults_and_the_shrinker_replays_candidates() {
    if !common::capable("replay_cli") || !common::raft_available("replay_cli") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store").display().to_string();
    let (code, text) = faultline(&[
        "run",
        "--bug",
        "stale-local-read",
        "--nemesis",
        "partition-leader",
        "--node-choice",
        "random",
        "--nodes",
        "3",
        "--time-limit",
        "12",
        "--seed",
        "6",
        "--store",
        &store,
    ]);
    assert!(code == 0 || code == 1, "{text}");
    let run = announced(&text);
    let inv = read_json(&run.join("invocation.json"));
    assert_eq!(inv["args"]["seed"], json!(6));
    assert_eq!(inv["args"]["bugs"], json!(["stale-local-read"]));
    let original = read_json(&run.join("schedule.json"));
    let starts = |s: &Value| {
        s["faults"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["action"] == "start")
            .cloned()
            .collect::<Vec<_>>()
    };
    let recorded = starts(&original);
    assert!(
        !recorded.is_empty(),
        "the run realised no fault: {original}"
    );

    let (code, text) = faultline(&["replay", &run.display().to_string()]);
    assert!(code == 0 || code == 1, "{text}");
    assert!(text.contains("faultline replay: verdict "), "{text}");
    let replay = announced(&text);
    assert_ne!(replay, run);
    let r = read_json(&replay.join("replay.json"));
    assert_eq!(r["schedule"]["recorded"], json!(recorded.len()), "{r}");
    assert_eq!(r["schedule"]["replayed"], json!(recorded.len()), "{r}");
    assert!(r["reproduced"].is_boolean(), "{r}");
    let delta = r["schedule"]["start_delta_ms"]["max"].as_f64().unwrap();
    assert!(
        delta < 500.0,
        "faults started {delta} ms off their recorded times: {r}"
    );
    // each replayed fault names the one it repeats, at (about) its time
    let again = starts(&read_json(&replay.join("schedule.json")));
    for (i, f) in again.iter().enumerate() {
        assert_eq!(f["detail"]["replay_of"], json!(i), "{f}");
        let was = recorded[i]["at_ns"].as_f64().unwrap();
        assert!(
            (f["at_ns"].as_f64().unwrap() - was).abs() < 5e8,
            "{f} vs {}",
            recorded[i]
        );
    }
    // the same seed and options as the original
    let args = |p: &Path| {
        let mut a = read_json(&p.join("invocation.json"))["args"].clone();
        a.as_object_mut().unwrap().remove("store");
        a
    };
    assert_eq!(args(&replay), args(&run));

    let orig_valid = read_json(&run.join("results.json"))["valid"].clone();
    let (code, text) = faultline(&[
        "shrink",
        "--schedule",
        &run.display().to_string(),
        "--budget",
        "90",
        "--confirm",
        "1",
    ]);
    if orig_valid == json!(true) {
        assert_eq!(code, 254, "a valid run is not shrunk: {text}");
        return;
    }
    assert!(code == 0 || code == 2, "{text}");
    let log = read_json(&run.join("shrunk/schedule-shrink.json"));
    let attempts = log["attempts"].as_array().unwrap();
    assert!(!attempts.is_empty(), "{log}");
    assert!(attempts.iter().all(|a| a["run_dir"].is_string()), "{log}");
    if code == 0 {
        let shrunk = read_json(&run.join("shrunk/schedule.json"));
        let kept = starts(&shrunk);
        // stale-local-read needs no fault at all (a lagging follower's local read), so an
        // empty schedule is a right answer here
        assert!(kept.len() <= recorded.len(), "{shrunk}");
        assert_eq!(log["kept"].as_array().unwrap().len(), kept.len(), "{log}");
        // the candidate that was accepted reproduced, and was replayed once more
        assert!(
            attempts.iter().any(|a| a["reproduced"] == json!(true)),
            "{log}"
        );
        assert!(log["confirmed"].as_u64().is_some_and(|c| c <= 1), "{log}");
        let confirms = attempts
            .iter()
            .filter(|a| a["purpose"] == "confirm")
            .count();
        assert_eq!(confirms, 1, "{log}");
    }
}
