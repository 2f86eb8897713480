//! SIGKILL a control process mid-run, then `faultline cleanup`: afterwards no namespace,
//! link or process of that run exists, and a live run started alongside is untouched.

mod common;

use std::process::Command;
use std::time::Duration;

use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};

fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn alive(pid: u32) -> bool {
    faultline::cluster::procfs::start_ticks(pid as i32).is_some()
}

/// Processes whose command line mentions `needle`.
fn procs_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
                && alive(*pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_everything_of_a_sigkilled_run_and_nothing_else() {
    if !common::capable("cleanup after SIGKILL") {
        return;
    }
    // etcd is always installed here; the bundled Raft may not be built in this profile.
    let system = "etcd";
    let dir = common::run_dir("sigkill");
    let (mut control, short, pids) =
        common::spawn_control(&["--system", system, "--nodes", "3"], dir.path());
    assert_eq!(pids.len(), 3);

    // A live run of our own, which cleanup must leave alone.
    let live_dir = common::run_dir("sigkill-live");
    let live = Cluster::start(
        SystemDescriptor::load(system).unwrap(),
        ClusterConfig::new(1, live_dir.path()),
    )
    .await
    .unwrap();

    control.kill().unwrap(); // SIGKILL: no chance to clean up
    control.wait().unwrap();

    // The dead run really left things behind.
    assert!(ip_output(&["netns", "list"]).contains(&short));
    assert!(ip_output(&["link"]).contains(&short));
    assert!(
        pids.iter().all(|p| alive(*p)),
        "nodes outlive their control process"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cleanup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == short.as_str()),
        "{report}"
    );

    assert!(!ip_output(&["netns", "list"]).contains(&short));
    assert!(!ip_output(&["link"]).contains(&short));
    for p in &pids {
        assert!(!alive(*p), "node process {p} survived cleanup");
    }
    let dir_text = dir.path().to_string_lossy().into_owned();
    assert_eq!(procs_mentioning(&dir_text), Vec::<u32>::new());
    common::assert_gone(&short);

    // The live run is intact and still serving.
    let id = live.node_ids()[0].clone();
    assert!(live.pid(&id).is_some_and(alive));
    assert!(ip_output(&["netns", "list"]).contains(live.short_id()));
    live.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let live_short = live.short_id().to_string();
    live.teardown().await.unwrap();
    common::assert_gone(&live_short);
}
