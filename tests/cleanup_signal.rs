//! SIGTERM / SIGINT to a control process: it heals and tears its cluster down before exiting.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn run_and_signal(sig: i32) {
    let dir = common::run_dir("signal");
    let mut control = Command::new(env!("CARGO_BIN_EXE_faultline-cluster"))
        .args([
            "--system",
            "etcd",
            "--nodes",
            "3",
            "--nemesis",
            "partition-halves",
            "--run-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(control.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let short = info["short_id"].as_str().unwrap().to_string();
    let pids: Vec<i32> = info["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect();
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(control.id() as i32, sig) };
    let status = control.wait().unwrap();
    assert_eq!(status.code(), Some(128 + sig), "{status:?}");
    common::assert_gone(&short);
    for p in pids {
        assert!(
            faultline::cluster::procfs::start_ticks(p).is_none(),
            "node {p} left"
        );
    }
}

#[test]
fn sigterm_tears_down() {
    if common::capable("SIGTERM teardown") {
        run_and_signal(libc::SIGTERM);
    }
}

#[test]
fn sigint_tears_down() {
    if common::capable("SIGINT teardown") {
        run_and_signal(libc::SIGINT);
    }
}
