//! The nemesis executor against real clusters: a seeded schedule of every fault kind runs,
//! records matched start/stop events, and stop_and_heal leaves a healthy, fault-free cluster.
//! Clock schedules on etcd (a Go binary) are refused plainly.

mod common;

use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, ClusterConfig, NodeState, SystemDescriptor};
use faultline::nemesis::{self, Action, FaultKind, NemesisError, Plan, Schedule};

const FAST_MIXED: &str = r#"
description = "every fault kind, quickly"
start_after_s = 0.2
interval_s = [0.2, 0.3]
duration_s = [0.4, 0.6]

[[fault]]
kind = "partition"
grudge = "leader"

[[fault]]
kind = "partition"
grudge = "majorities-ring"

[[fault]]
kind = "pause"
targets = "leader"

[[fault]]
kind = "kill"
targets = "one"

[[fault]]
kind = "loss"
percent = 20

[[fault]]
kind = "clock"
targets = "minority"
mode = "bump"
offset_ms = [-5000, 5000]

[[fault]]
kind = "clock"
targets = "one"
mode = "strobe"
delta_ms = 1000
period_ms = 20
"#;

/// The nft ruleset inside a node's namespace.
fn ruleset(netns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Healed: everyone running, no rules, real clocks, one leader; then nothing of the run is
/// left after teardown.
async fn assert_healed_then_tear_down(c: Cluster) {
    for id in c.node_ids() {
        assert_eq!(c.node_state(&id).unwrap(), NodeState::Running, "{id}");
        assert_eq!(c.clock_offset_ms(&id).unwrap(), 0);
    }
    for n in c.nodes() {
        let text = ruleset(&n.netns);
        assert!(!text.contains("faultline"), "{}: rules left: {text}", n.id);
    }
    let ids = c.node_ids();
    common::eventually(Duration::from_secs(20), "convergence after heal", || {
        common::converged(&c, &ids)
    })
    .await;
    let short = c.short_id().to_string();
    c.teardown().await.unwrap();
    common::assert_gone(&short);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_schedule_runs_records_and_heals() {
    let Some((c, _dir)) = common::raft_cluster("nemesis", 3, &[]).await else {
        return;
    };
    c.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let schedule = Schedule::parse(FAST_MIXED, "fast-mixed", "test").unwrap();
    let seed = 7;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    let handle = nemesis::spawn(c.clone(), schedule.clone(), seed, t0, tx).unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let log = handle.stop_and_heal().await.unwrap();

    let mut streamed = Vec::new();
    while let Ok(e) = rx.try_recv() {
        streamed.push(e);
    }
    assert_eq!(streamed, log, "every event is streamed as it happens");
    assert!(log.len() >= 6, "{log:#?}");
    // Strictly alternating start/stop of the same fault, times increasing.
    for pair in log.chunks(2) {
        assert_eq!(pair[0].action, Action::Start);
        if let Some(stop) = pair.get(1) {
            assert_eq!(stop.action, Action::Stop);
            assert_eq!(stop.fault, pair[0].fault);
            assert_eq!(stop.targets, pair[0].targets);
        }
    }
    assert!(log.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    for e in &log {
        assert!(e.detail.get("error").is_none(), "{e:?}");
        assert!(e.detail["apply_us"].is_u64(), "{e:?}");
        assert!(e.f().starts_with("start-") || e.f().starts_with("stop-"));
    }
    // The faults chosen, in order, are exactly the seeded plan's.
    let mut plan = Plan::new(seed);
    let starts: Vec<FaultKind> = log
        .iter()
        .filter(|e| e.action == Action::Start)
        .map(|e| e.fault)
        .collect();
    let planned: Vec<FaultKind> = starts
        .iter()
        .map(|_| plan.next(&schedule.lanes[0]).unwrap().fault.kind())
        .collect();
    assert_eq!(starts, planned);
    let kinds: std::collections::BTreeSet<FaultKind> = starts.iter().copied().collect();
    assert!(kinds.len() >= 3, "several kinds exercised: {kinds:?}");

    assert_healed_then_tear_down(c).await;
}

/// Two lanes: partitions flip while one node's clock stays bumped, and a third lane pauses.
const LANES: &str = r#"
[[lane]]
name = "net"
start_after_s = 0.2
interval_s = [0.0, 0.1]
duration_s = [0.3, 0.5]
[[lane.fault]]
kind = "partition"
grudge = "leader"

[[lane]]
name = "clock"
start_after_s = 0.1
interval_s = [0.2, 0.2]
duration_s = [1.5, 1.5]
[[lane.fault]]
kind = "clock"
targets = "one"
mode = "bump"
offset_ms = [4000, 4000]

[[lane]]
name = "process"
start_after_s = 0.3
interval_s = [0.3, 0.3]
duration_s = [0.4, 0.4]
[[lane.fault]]
kind = "pause"
targets = "one"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_hold_faults_side_by_side_and_heal() {
    let Some((c, _dir)) = common::raft_cluster("nemesis-lanes", 3, &[]).await else {
        return;
    };
    c.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let schedule = Schedule::parse(LANES, "lanes", "test").unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = nemesis::spawn(c.clone(), schedule.clone(), 11, Instant::now(), tx).unwrap();
    // Sample while the lanes run: a clock offset and a partition rule must be in force at
    // the same moment.
    let mut both_seen = false;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let skewed = c
            .node_ids()
            .iter()
            .any(|id| c.clock_offset_ms(id).unwrap() != 0);
        let partitioned = c
            .nodes()
            .iter()
            .any(|n| ruleset(&n.netns).contains("saddr"));
        both_seen |= skewed && partitioned;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = handle.stop_and_heal().await.unwrap();
    assert!(
        both_seen,
        "a partition and a clock bump were never in force together"
    );
    assert!(log.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    for e in &log {
        assert!(e.detail.get("error").is_none(), "{e:?}");
    }
    // Each lane alternates start/stop of its own faults.
    for lane in &schedule.lanes {
        let kind = lane.faults[0].kind();
        let mine: Vec<_> = log.iter().filter(|e| e.fault == kind).collect();
        assert!(mine.len() >= 2, "lane {}: {mine:?}", lane.name);
        for pair in mine.chunks(2) {
            assert_eq!(pair[0].action, Action::Start);
            if let Some(stop) = pair.get(1) {
                assert_eq!(stop.action, Action::Stop, "lane {}", lane.name);
            }
        }
    }
    // The partitions started while the clock lane held its first bump.
    let clock_start = log
        .iter()
        .find(|e| e.fault == FaultKind::Clock)
        .unwrap()
        .at_ns;
    let clock_stop = log
        .iter()
        .find(|e| e.fault == FaultKind::Clock && e.action == Action::Stop)
        .unwrap()
        .at_ns;
    assert!(
        log.iter().any(|e| e.fault == FaultKind::Partition
            && e.action == Action::Start
            && (clock_start..clock_stop).contains(&e.at_ns)),
        "{log:#?}"
    );
    assert_healed_then_tear_down(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_faults_on_etcd_are_reported_unsupported() {
    if !common::capable("nemesis etcd clock") {
        return;
    }
    let dir = common::run_dir("nemesis-etcd");
    let c = Cluster::start(
        SystemDescriptor::load("etcd").unwrap(),
        ClusterConfig::new(1, dir.path()),
    )
    .await
    .unwrap();
    let schedule = Schedule::load("clock-drift").unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = nemesis::spawn(c.clone(), schedule.clone(), 1, Instant::now(), tx.clone())
        .err()
        .expect("clock schedule refused on etcd");
    assert!(matches!(err, NemesisError::Unsupported(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("clock faults unsupported for this system"),
        "{msg}"
    );
    assert!(msg.contains("Go program"), "{msg}");
    let direct = c
        .set_clock_offset("n1", 1000)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        direct.contains("clock faults unsupported for this system"),
        "{direct}"
    );
    // The rest of a mixed schedule still runs once clock faults are dropped.
    let mixed = Schedule::load("mixed").unwrap().without(FaultKind::Clock);
    let h = nemesis::spawn(c.clone(), mixed, 1, Instant::now(), tx).unwrap();
    h.stop_and_heal().await.unwrap();
    c.teardown().await.unwrap();
}

/// A protocol-clock drift (`clock = "protocol"`) reaches a kit node's clock file and moves
/// its clock at the scheduled rate (monotonic and wall together), the other nodes' clocks
/// stay real, and the heal puts the rate back to 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_clock_drift_runs_a_kit_nodes_clock_at_the_scheduled_rate() {
    let Some((c, _dir)) = common::raft_cluster("nemesis-protocol-clock", 3, &[]).await else {
        return;
    };
    c.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let schedule = Schedule::parse(
        r#"
description = "one node's protocol clock at half speed"
start_after_s = 0.1
interval_s = [100.0, 100.0]
duration_s = [6.0, 6.0]

[[fault]]
kind = "clock"
clock = "protocol"
targets = "one"
mode = "drift"
ms_per_s = -500.0
"#,
        "protocol-drift",
        "test",
    )
    .unwrap();
    nemesis::check_supported(&c, &schedule).expect("raft reads FAULTLINE_CLOCK_FILE");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = nemesis::spawn(c.clone(), schedule, 3, Instant::now(), tx).unwrap();
    let start = rx.recv().await.expect("the fault started");
    assert_eq!(start.detail["clock"], "protocol", "{start:?}");
    assert_eq!(start.detail["rate"], 0.5, "{start:?}");
    let target = start.targets[0].clone();
    let other = c.node_ids().into_iter().find(|n| *n != target).unwrap();
    assert_eq!(c.protocol_clock(&target).unwrap(), (0, 0.5));
    // Each node's clock advance over 3 s of harness time.
    let clock = |id: String| {
        let c = c.clone();
        async move { c.status(&id).await.unwrap()["clock_ms"].as_i64().unwrap() }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    let (a0, b0) = (clock(target.clone()).await, clock(other.clone()).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (a1, b1) = (clock(target.clone()).await, clock(other.clone()).await);
    let real = t0.elapsed().as_millis() as f64;
    let (ra, rb) = ((a1 - a0) as f64 / real, (b1 - b0) as f64 / real);
    assert!((0.35..0.65).contains(&ra), "{target} ran at {ra:.2}");
    assert!((0.85..1.15).contains(&rb), "{other} ran at {rb:.2}");
    handle.stop_and_heal().await.unwrap();
    for id in c.node_ids() {
        assert_eq!(c.protocol_clock(&id).unwrap(), (0, 1.0), "{id}");
    }
    assert_healed_then_tear_down(c).await;
}

/// A system whose descriptor names no `clock_file_env` is refused a protocol-clock schedule
/// before any fault, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_clock_faults_need_a_clock_file() {
    if !common::capable("nemesis no clock file") || !common::raft_available("no clock file") {
        return;
    }
    let dir = common::run_dir("nemesis-no-clock-file");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systems/raft.toml"),
    )
    .unwrap()
    .replace("clock_file_env = \"FAULTLINE_CLOCK_FILE\"", "");
    let path = dir.path().join("raft-no-clock-file.toml");
    std::fs::write(&path, text).unwrap();
    let desc = SystemDescriptor::load(path.to_str().unwrap()).unwrap();
    let c = Cluster::start(desc, ClusterConfig::new(3, dir.path().join("run")))
        .await
        .unwrap();
    let schedule = Schedule::load("protocol-clock-drift").unwrap();
    let err = nemesis::check_supported(&c, &schedule)
        .unwrap_err()
        .to_string();
    assert!(err.contains("clock_file_env"), "{err}");
    let short = c.short_id().to_string();
    c.teardown().await.unwrap();
    common::assert_gone(&short);
}
