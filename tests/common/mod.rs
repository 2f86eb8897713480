//! Shared by the integration tests. Capability gating and run directories (cluster tests,
//! at the foot), and fixture run directories for the report tests and the rendering benchmark: a simulated
//! single-register (cas-register) run, written with the real `HistoryWriter`, with a
//! partition band, status probes, node logs, and optionally a planted stale read and a
//! planted second leader. Verdicts come from the real checkers (linearizability on the
//! cas-register model, split-brain from the probes).
#![allow(dead_code)]

pub mod pbkv;

use std::path::{Path, PathBuf};

use faultline::checker::{Anomaly, Validity, Verdict, linearizable, split_brain};
use faultline::history::jsonl::HistoryWriter;
use faultline::history::{Event, EventType, Process};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

pub struct Fixture {
    pub ops: usize,
    pub concurrency: u64,
    pub seed: u64,
    /// Plant a read that returns the value before the latest completed write.
    pub stale_read: bool,
    /// Plant a second node claiming leadership in the leader's term during the partition.
    pub two_leaders: bool,
    /// Run the real checkers; otherwise write verdicts for what was planted (for histories
    /// too large to check quickly).
    pub real_verdicts: bool,
}

/// 2026-11-22T14:00:00Z, the fixture's wall clock at history time 0.
pub const STARTED_MS: u64 = 1_795_356_000_000;
pub const NODES: [&str; 3] = ["n1", "n2", "n3"];

struct SimOp {
    process: u64,
    f: &'static str,
    invoke: Value,
    result: Value,
    call: u64,
    ret: u64,
    lp: u64,
    kind: EventType,
    /// For info ops: whether it took effect.
    applied: bool,
}

pub struct Built {
    pub dir: PathBuf,
    /// Invoke event index of the planted stale read.
    pub stale_read_event: Option<u64>,
    pub end_ns: u64,
}

fn ev(time: u64, process: Process, kind: EventType, f: &str, value: Value) -> Event {
    Event {
        request_id: None,
        index: 0,
        time,
        process,
        kind,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

/// Writes `store/<test>/<stamp>/` with history.jsonl, schedule.json, results.json and node
/// logs, and returns it.
pub fn build_run(store: &Path, test: &str, stamp: &str, fx: &Fixture) -> Built {
    let dir = store.join(test).join(stamp);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(fx.seed);
    // ~2 ms mean latency, 1 ms think time: a realistic pace for a local cluster.
    let per_proc = fx.ops / fx.concurrency as usize;
    let run_ns = (per_proc as u64) * 3_000_000;
    let (part_start, part_end) = (run_ns * 3 / 10, run_ns * 55 / 100);
    let mut ops: Vec<SimOp> = Vec::with_capacity(fx.ops);
    let mut next_fresh = fx.concurrency;
    for lane in 0..fx.concurrency {
        let mut process = lane;
        let mut t = rng.random_range(0..1_000_000u64);
        for _ in 0..per_proc {
            let in_partition = t >= part_start && t < part_end;
            let (f, invoke) = match rng.random_range(0..10u32) {
                0..5 => ("read", Value::Null),
                5..8 => ("write", json!(rng.random_range(0..5u32))),
                _ => (
                    "cas",
                    json!([rng.random_range(0..5u32), rng.random_range(0..5u32)]),
                ),
            };
            let mut lat = 300_000 + (rng.random_range(0.0..1.0f64).powi(4) * 8e6) as u64;
            let timed_out = in_partition && rng.random_range(0..4u32) == 0;
            if in_partition {
                lat *= 3;
            }
            if timed_out {
                lat = 50_000_000;
            }
            let lp = t + rng.random_range(1..lat);
            ops.push(SimOp {
                process,
                f,
                invoke: invoke.clone(),
                result: invoke,
                call: t,
                ret: t + lat,
                lp,
                kind: if timed_out {
                    EventType::Info
                } else {
                    EventType::Ok
                },
                applied: !timed_out || rng.random_range(0..2u32) == 0,
            });
            t += lat + rng.random_range(200_000..1_500_000u64);
            if timed_out {
                process = next_fresh;
                next_fresh += 1;
            }
        }
    }
    // Apply in linearization-point order: reads see the register, cas may fail.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].lp, i));
    let mut reg = Value::Null;
    let mut prev_state_of: Vec<Value> = vec![Value::Null; ops.len()];
    let mut states: Vec<(usize, Value)> = Vec::new(); // (op, state after), effective ops only
    // Written values are unique (a counter in linearization order), so a stale read is
    // unambiguous; a cas usually names the current value, as a client that just read would.
    let mut counter = 1u64;
    for &i in &order {
        prev_state_of[i] = reg.clone();
        let op = &mut ops[i];
        match op.f {
            "write" => {
                op.invoke = json!(counter);
                counter += 1;
            }
            "cas" => {
                let old = if rng.random_range(0..10u32) < 6 {
                    reg.clone()
                } else {
                    json!(rng.random_range(0..counter))
                };
                op.invoke = json!([old, counter]);
                counter += 1;
            }
            _ => {}
        }
        op.result = op.invoke.clone();
        if op.kind == EventType::Info && !op.applied {
            continue;
        }
        match op.f {
            "read" => op.result = reg.clone(),
            "write" => reg = op.invoke.clone(),
            _ => {
                if reg == op.invoke[0] {
                    reg = op.invoke[1].clone();
                } else if op.kind == EventType::Ok {
                    op.kind = EventType::Fail;
                }
            }
        }
        if op.kind != EventType::Fail {
            states.push((i, reg.clone()));
        }
    }
    // Plant a stale read: a read in the second half, after a write that changed the value,
    // returns the value from before that write.
    let mut stale: Option<usize> = None;
    if fx.stale_read {
        let mid = order.len() * 7 / 10;
        for w in 1..order.len() - mid {
            let i = order[mid + w];
            let prev = order[mid + w - 1];
            let write_done_before = ops[prev].f == "write"
                && ops[prev].kind == EventType::Ok
                && ops[prev].ret < ops[i].call
                && ops[i].f == "read"
                && ops[i].kind == EventType::Ok
                && prev_state_of[prev] != ops[prev].invoke
                && !prev_state_of[prev].is_null();
            // No op that could write the old value again may fall between the write and
            // the read, or the stale read would still linearize.
            let old = &prev_state_of[prev];
            let rewritable = ops.iter().any(|o| {
                let writes_old =
                    (o.f == "write" && o.invoke == *old) || (o.f == "cas" && o.invoke[1] == *old);
                let could_follow = o.kind == EventType::Info || o.ret > ops[prev].call;
                writes_old && o.kind != EventType::Fail && o.call < ops[i].ret && could_follow
            });
            if write_done_before && !rewritable {
                ops[i].result = prev_state_of[prev].clone();
                stale = Some(i);
                break;
            }
        }
        assert!(stale.is_some(), "fixture: no place to plant a stale read");
    }

    // Events in time order.
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    for op in ops.iter() {
        let key = Some("r".to_string());
        let node = Some(NODES[(op.process % 3) as usize].to_string());
        let mut inv = ev(
            op.call,
            Process::Client(op.process),
            EventType::Invoke,
            op.f,
            op.invoke.clone(),
        );
        inv.key = key.clone();
        inv.node = node.clone();
        events.push((op.call, 1, inv));
        let value = if op.kind == EventType::Ok {
            op.result.clone()
        } else {
            op.invoke.clone()
        };
        let mut done = ev(op.ret, Process::Client(op.process), op.kind, op.f, value);
        done.key = key;
        done.node = node;
        if op.kind == EventType::Info {
            done.error = Some("timeout".into());
        }
        if op.kind == EventType::Fail {
            done.error = Some("precondition-failed".into());
        }
        events.push((op.ret, 0, done));
    }
    let grudge = json!({"targets":["n3"],"grudge":{"n3":["n1","n2"],"n1":["n3"],"n2":["n3"]}});
    events.push((
        part_start,
        2,
        ev(
            part_start,
            Process::nemesis(),
            EventType::Info,
            "start-partition",
            grudge.clone(),
        ),
    ));
    events.push((
        part_end,
        2,
        ev(
            part_end,
            Process::nemesis(),
            EventType::Info,
            "stop-partition",
            json!({"targets":["n3"]}),
        ),
    ));
    // About 40 probe rounds per run; n3 runs 250 ms fast. With two_leaders, n3 claims
    // term 2 too while partitioned away.
    let probe_every = (run_ns / 40).max(10_000_000);
    let mut t = 0;
    while t < run_ns {
        for (k, node) in NODES.iter().enumerate() {
            let skew = if *node == "n3" { 250 } else { 0 };
            let partitioned = t >= part_start && t < part_end;
            let role = if k == 0 || (fx.two_leaders && partitioned && *node == "n3") {
                "leader"
            } else {
                "follower"
            };
            let mut p = ev(
                t + k as u64 * 1000,
                Process::probe(),
                EventType::Info,
                "status",
                json!({"id": node, "role": role, "term": 2, "leader": if role == "leader" { *node } else { "n1" },
                       "commit_index": t / 1_000_000, "applied_index": t / 1_000_000,
                       "clock_ms": STARTED_MS + (t + k as u64 * 1000) / 1_000_000 + skew}),
            );
            p.node = Some(node.to_string());
            events.push((p.time, 3, p));
        }
        t += probe_every;
    }
    events.sort_by_key(|(t, pri, _)| (*t, *pri));
    let mut w = HistoryWriter::create(&dir.join("history.jsonl")).unwrap();
    let op_at: std::collections::HashMap<(u64, u64), usize> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| ((o.process, o.call), i))
        .collect();
    let mut call_event_of_op = vec![0u64; ops.len()];
    let mut ret_event_of_op = vec![0u64; ops.len()];
    let mut open: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (_, _, e) in events {
        let (time, process, kind) = (e.time, e.process.clone(), e.kind);
        let idx = w.append(e).unwrap();
        if let Process::Client(p) = process {
            if kind == EventType::Invoke {
                let i = op_at[&(p, time)];
                call_event_of_op[i] = idx;
                open.insert(p, i);
            } else if let Some(i) = open.remove(&p) {
                ret_event_of_op[i] = idx;
            }
        }
    }
    let stale_read_event = stale.map(|s| call_event_of_op[s]);
    let end_ns = ops.iter().map(|o| o.ret).max().unwrap_or(0).max(run_ns);

    // Node logs: RFC 3339 stamped, a line per 100 ms per node, plus leadership lines.
    for (k, node) in NODES.iter().enumerate() {
        let nd = dir.join("nodes").join(node);
        std::fs::create_dir_all(nd.join("data")).unwrap();
        let mut log = String::new();
        let mut t = 0u64;
        while t < end_ns {
            let ms = STARTED_MS + t / 1_000_000 + if *node == "n3" { 250 } else { 0 };
            let what = if t == 0 && k == 0 {
                "became leader term=2".to_string()
            } else if fx.two_leaders
                && *node == "n3"
                && t >= part_start
                && t < part_start + 100_000_000
            {
                "election timeout; became leader term=2 (planted bug: voted twice)".to_string()
            } else {
                format!("applied index={}", t / 1_000_000)
            };
            log.push_str(&format!("{} INFO {node}: {what}\n", rfc3339(ms)));
            t += 100_000_000;
        }
        std::fs::write(nd.join("stderr.log"), log).unwrap();
        std::fs::write(nd.join("stdout.log"), "").unwrap();
    }

    std::fs::write(
        dir.join("schedule.json"),
        serde_json::to_vec_pretty(&json!({"seed": fx.seed, "nemesis": "partition-majorities",
            "faults": [{"at_ns": part_start, "action": "start", "fault": "partition", "targets": ["n3"], "detail": grudge},
                       {"at_ns": part_end, "action": "stop", "fault": "partition", "targets": ["n3"], "detail": {}}]}))
        .unwrap(),
    )
    .unwrap();

    let verdicts = if fx.real_verdicts {
        // Verdicts computed by the real checkers on the history as written.
        let history = faultline::history::jsonl::read_path(&dir.join("history.jsonl")).unwrap();
        let verdicts = vec![
            linearizable::check_with(
                &history,
                &linearizable::Options::new(linearizable::Model::CasRegister),
            ),
            split_brain::check_probes(&history),
        ];
        verdicts
    } else {
        planted_verdicts(
            &ops,
            &states,
            &call_event_of_op,
            &ret_event_of_op,
            &prev_state_of,
            stale,
            fx,
            run_ns,
            part_start,
            part_end,
        )
    };
    let valid = verdicts
        .iter()
        .map(|v| v.valid)
        .reduce(Validity::and)
        .unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&json!({
            "valid": valid, "seed": fx.seed, "system": "raft", "workload": "register",
            "nemesis": "partition-majorities", "nodes": NODES, "started_at": rfc3339(STARTED_MS),
            "elapsed_s": end_ns as f64 / 1e9, "counts": {"ok": 0, "fail": 0, "info": 0},
            "verdicts": verdicts,
        }))
        .unwrap(),
    )
    .unwrap();
    Built {
        dir,
        stale_read_event,
        end_ns,
    }
}

/// Verdicts for what was planted, in the checkers' data shapes, for histories too big to
/// check within a test or a benchmark (the rendering cost is what is measured there).
#[allow(clippy::too_many_arguments)]
fn planted_verdicts(
    ops: &[SimOp],
    states: &[(usize, Value)],
    call_event_of_op: &[u64],
    ret_event_of_op: &[u64],
    prev_state_of: &[Value],
    stale: Option<usize>,
    fx: &Fixture,
    run_ns: u64,
    part_start: u64,
    part_end: u64,
) -> Vec<Verdict> {
    let mut verdicts = vec![];
    let lin = match stale {
        None => Verdict {
            checker: "linearizable/cas-register".into(),
            valid: Validity::Valid,
            anomalies: vec![],
            explanation: format!("All {} operations on 1 key linearize.", ops.len()),
            stats: json!({"keys": 1, "ops": ops.len(), "elapsed_ms": 12}),
        },
        Some(s) => {
            let prefix: Vec<Value> = states
                .iter()
                .take_while(|(i, _)| ops[*i].lp < ops[s].lp)
                .map(|(i, st)| json!({"op": {"process": ops[*i].process, "f": ops[*i].f, "call": call_event_of_op[*i]}, "state": st}))
                .collect();
            Verdict {
                checker: "linearizable/cas-register".into(),
                valid: Validity::Invalid,
                anomalies: vec![Anomaly {
                    kind: "nonlinearizable".into(),
                    key: Some("r".into()),
                    description: format!(
                        "process {} read {} at {:.3} s, but the register held {} since a write completed before the read began",
                        ops[s].process,
                        ops[s].result,
                        ops[s].call as f64 / 1e9,
                        prev_state_of[s]
                    ),
                    events: vec![call_event_of_op[s], ret_event_of_op[s]],
                    data: json!({"witness": "linearizability", "model": "cas-register", "key": "r", "prefix": prefix, "state": prev_state_of[s].clone(), "unplaceable": [{"process": ops[s].process, "f": "read", "call": call_event_of_op[s]}]}),
                }],
                explanation:
                    "Key r is not linearizable: a read returned a value already overwritten.".into(),
                stats: json!({"keys": 1, "ops": ops.len(), "elapsed_ms": 31}),
            }
        }
    };
    verdicts.push(lin);
    if fx.two_leaders {
        verdicts.push(Verdict {
            checker: "split-brain/probes".into(),
            valid: Validity::Invalid,
            anomalies: vec![Anomaly {
                kind: "two-leaders-one-term".into(),
                key: None,
                description: "n1 and n3 both reported role leader in term 2 during the partition".into(),
                events: vec![],
                data: json!({"term": 2, "nodes": ["n1", "n3"], "from_s": part_start as f64 / 1e9, "to_s": part_end as f64 / 1e9}),
            }],
            explanation: "Two nodes claimed leadership of the same term.".into(),
            stats: json!({"probes": run_ns / (run_ns / 40).max(10_000_000) * 3}),
        });
    } else {
        verdicts.push(Verdict {
            checker: "split-brain/probes".into(),
            valid: Validity::Valid,
            anomalies: vec![],
            explanation: "At most one leader per term.".into(),
            stats: json!({}),
        });
    }
    verdicts
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(ms: u64) -> String {
    faultline::runner::store::rfc3339_utc_ms(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
}

// ----- capability gating and run directories (cluster and run tests) -----
/// True if the test may run. Without root/nft/ip it skips with a printed reason, unless
/// `CI=true`, where a missing capability is a failure.
pub fn capable(test: &str) -> bool {
    match faultline::cluster::caps::check() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: CI=true and the machine cannot run a local cluster: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

/// Is the bundled Raft binary built where the runtime looks for it?
pub fn raft_available(test: &str) -> bool {
    system_available(test, "raft")
}

/// Is the binary of the bundled system `name` built where the runtime looks for it?
pub fn system_available(test: &str, name: &str) -> bool {
    let d = faultline::cluster::SystemDescriptor::load(name).unwrap();
    match d.resolve_binary() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

/// A finished command's exit code and its stdout then stderr, as one text for messages.
pub fn code_and_text(out: &std::process::Output) -> (i32, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

pub fn run_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("fl-test-{name}-"))
        .tempdir()
        .unwrap()
}

/// Nothing of run `short` is left on the machine: namespaces, links, registry record.
pub fn assert_gone(short: &str) {
    let ns = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(short))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(ns.is_empty(), "namespaces left: {ns:?}");
    let links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(short))
        .collect();
    assert!(links.is_empty(), "links left: {links:?}");
    assert!(
        !Path::new(&format!("/run/faultline/runs/{short}.json")).exists(),
        "registry record left"
    );
}

use std::time::{Duration, Instant};

use faultline::cluster::{Cluster, NodeStatus};

/// A started cluster of the bundled Raft with `bugs` planted, or None (after saying why)
/// where this machine cannot run one; under CI=true that is a failure instead.
pub async fn raft_cluster(
    name: &str,
    nodes: usize,
    bugs: &[&str],
) -> Option<(Cluster, tempfile::TempDir)> {
    if !capable(name) || !raft_available(name) {
        return None;
    }
    let dir = run_dir(name);
    let mut cfg = faultline::cluster::ClusterConfig::new(nodes, dir.path());
    cfg.bugs = bugs.iter().map(|b| b.to_string()).collect();
    let c = Cluster::start(
        faultline::cluster::SystemDescriptor::load("raft").unwrap(),
        cfg,
    )
    .await
    .unwrap();
    Some((c, dir))
}

/// Statuses of every node that answers.
pub async fn statuses(c: &Cluster) -> std::collections::BTreeMap<String, Option<NodeStatus>> {
    c.statuses()
        .await
        .into_iter()
        .map(|(id, r)| (id, r.ok().and_then(|v| NodeStatus::from_value(&v))))
        .collect()
}

/// Polls `f` every `every` until it yields Some; None once `limit` has passed.
pub async fn poll<T, F, Fut>(limit: Duration, every: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `f` every 100 ms until it yields Some, panicking with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll(limit, Duration::from_millis(100), f)
        .await
        .unwrap_or_else(|| panic!("timed out after {limit:?}: {what}"))
}

/// Every node in `ids` answers and names the same leader, which is one of them.
pub async fn converged(c: &Cluster, ids: &[String]) -> Option<String> {
    let s = statuses(c).await;
    let mut leader = None;
    for id in ids {
        let st = s.get(id)?.as_ref()?;
        let l = st.leader.clone()?;
        if leader.get_or_insert(l.clone()) != &l {
            return None;
        }
    }
    leader.filter(|l| ids.contains(l))
}

/// Writes key=value through the node protocol, following not-leader redirects and retrying
/// indefinite failures, until `limit`. Returns whether it committed (200).
pub async fn write(c: &Cluster, key: &str, value: i64, limit: Duration) -> bool {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + limit;
    let mut target = c.leader().await.unwrap_or_else(|| c.node_ids()[0].clone());
    while Instant::now() < deadline {
        let url = c.node(&target).unwrap().url;
        let resp = http
            .post(format!("{url}/kv/write"))
            .json(&serde_json::json!({"key": key, "value": value}))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if let Some(l) = body["leader"].as_str()
                    && c.node_ids().iter().any(|n| n == l)
                {
                    target = l.to_string();
                } else if let Some(l) = c.leader().await {
                    target = l;
                }
            }
            Err(_) => {
                if let Some(l) = c.leader().await {
                    target = l;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The reference corpora: `FAULTLINE_CORPORA`, else `shared/corpora` beside the repository
/// (or its worktree).
pub fn corpora() -> PathBuf {
    if let Ok(dir) = std::env::var("FAULTLINE_CORPORA") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpora"))
        .find(|p| p.join("EXPECTED.tsv").exists())
        .expect("shared/corpora not found; set FAULTLINE_CORPORA")
}

/// Starts a `faultline-cluster` control process with `args` and `--run-dir dir`, and waits
/// for the line describing its cluster: (the process, the run's short id, the node pids).
pub fn spawn_control(args: &[&str], dir: &Path) -> (std::process::Child, String, Vec<u32>) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut control = Command::new(env!("CARGO_BIN_EXE_faultline-cluster"))
        .args(args)
        .arg("--run-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(control.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("control process did not describe its cluster ({e}): {line:?}"));
    let short = info["short_id"].as_str().unwrap().to_string();
    let pids = info["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect();
    (control, short, pids)
}

/// The grudge that splits the cluster into `parts` (each part reaches only itself).
pub fn split(parts: &[&[&String]]) -> std::collections::BTreeMap<String, Vec<String>> {
    let comps: Vec<Vec<String>> = parts
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    faultline::nemesis::grudge::from_components(&comps)
}

/// Sends a write of `value` to `key` on node `id` without waiting: the node takes it, and it
/// may never be chosen.
pub fn fire_write(c: &Cluster, id: &str, key: &str, value: i64) {
    let url = format!("{}/kv/write", c.node(id).unwrap().url);
    let body = json!({"key": key, "value": value});
    tokio::spawn(async move {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let _ = http
            .post(url)
            .json(&body)
            .timeout(Duration::from_secs(3))
            .send()
            .await;
    });
}

/// Every node's whole committed log (`/log?from=0`) judged by the split-brain log checker;
/// then the cluster is torn down and checked gone.
pub async fn committed_logs_then_teardown(c: Cluster) -> Verdict {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut logs = std::collections::BTreeMap::new();
    for id in c.node_ids() {
        let url = format!("{}/log?from=0", c.node(&id).unwrap().url);
        let body: Vec<split_brain::LogEntry> =
            http.get(url).send().await.unwrap().json().await.unwrap();
        logs.insert(id, body);
    }
    let verdict = split_brain::check_logs(&logs);
    let short = c.short_id().to_string();
    c.teardown().await.unwrap();
    assert_gone(&short);
    verdict
}
