//! The run sequence end to end against an in-process node on loopback (real sockets, real
//! files; no namespaces needed): the store layout of the shared conventions, a history that
//! validates, fault events in history and schedule.json, probes, final reads, results.json.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use faultline::history::Process;
use faultline::nemesis::{Action, FaultEvent, FaultKind};
use faultline::runner::loopback_node;
use faultline::runner::run::{RunConfig, execute};
use faultline::runner::target::{FaultSink, StatusFn, Target};
use faultline::workload::{Adapter, Endpoint, NodeChoice, WorkloadSpec};
use serde_json::{Value, json};

/// One loopback node; its "faults" are recorded events only, which is what this test checks.
struct Loopback {
    endpoints: Vec<Endpoint>,
    sink: Option<FaultSink>,
    stopped: bool,
}

impl Target for Loopback {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.endpoints.clone()
    }
    fn adapter(&self) -> Adapter {
        Adapter::Native
    }
    fn status_fn(&self) -> StatusFn {
        let url = format!("{}/status", self.endpoints[0].base_url);
        Arc::new(move || {
            let url = url.clone();
            Box::pin(async move {
                let r = async {
                    let http = reqwest::Client::builder().no_proxy().build().unwrap();
                    let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                    resp.json::<Value>().await.map_err(|e| e.to_string())
                }
                .await;
                vec![("n1".to_string(), r)]
            })
        })
    }
    async fn start_faults(
        &mut self,
        _seed: u64,
        _run_start: std::time::Instant,
        sink: FaultSink,
    ) -> Result<(), String> {
        sink(FaultEvent {
            at_ns: 0,
            action: Action::Start,
            fault: FaultKind::Pause,
            targets: vec!["n1".into()],
            detail: json!({"note": "recorded only"}),
        });
        self.sink = Some(sink);
        Ok(())
    }
    async fn heal(&mut self) -> Result<(), String> {
        if let Some(sink) = self.sink.take() {
            sink(FaultEvent {
                at_ns: 0,
                action: Action::Stop,
                fault: FaultKind::Pause,
                targets: vec!["n1".into()],
                detail: Value::Null,
            });
        }
        Ok(())
    }
    async fn stop(&mut self) -> Result<(), String> {
        self.stopped = true;
        Ok(())
    }
}

fn spec(name: &str) -> WorkloadSpec {
    WorkloadSpec::load(name).unwrap()
}

async fn run_once(workload: &str) -> (tempfile::TempDir, std::path::PathBuf, Loopback) {
    let (addr, server) = loopback_node::serve("n1").await.unwrap();
    let store = tempfile::tempdir().unwrap();
    let dir = faultline::runner::store::create_run_dir(store.path(), "loopback").unwrap();
    let mut target = Loopback {
        endpoints: vec![Endpoint {
            id: "n1".into(),
            base_url: format!("http://{addr}"),
        }],
        sink: None,
        stopped: false,
    };
    let cfg = RunConfig {
        seed: 42,
        system: "loopback".into(),
        workload: spec(workload),
        nemesis: "test".into(),
        concurrency: 4,
        rate: 300.0,
        time_limit: Duration::from_secs(4),
        node_choice: NodeChoice::Leader,
        request_timeout: Duration::from_secs(1),
        probe_interval: Duration::from_millis(250),
        check_time_limit: Duration::from_secs(20),
        bugs: vec![],
        probes: Default::default(),
        promise: None,
        key_prefix: String::new(),
        pin_info: true,
    };
    let out = execute(&cfg, &dir, &mut target, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    server.abort();
    assert_eq!(out.dir, dir);
    (store, dir, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaves_the_conventional_store() {
    let (store, dir, target) = run_once("kv").await;
    assert!(target.stopped);
    let latest = std::fs::canonicalize(store.path().join("latest")).unwrap();
    assert_eq!(latest, std::fs::canonicalize(&dir).unwrap());

    let h = faultline::history::jsonl::read_path(&dir.join("history.jsonl")).unwrap();
    assert!(h.operations.len() > 300, "{} ops", h.operations.len());
    assert!(
        h.operations.iter().all(|o| o.ret.is_some()),
        "all completed"
    );
    let named = |p: &str, f: &str| {
        h.events
            .iter()
            .filter(|e| e.process == Process::Named(p.into()) && e.f.starts_with(f))
            .count()
    };
    assert_eq!(named("nemesis", "start-pause"), 1);
    assert_eq!(named("nemesis", "stop-pause"), 1);
    assert!(named("probe", "status") >= 4);
    let probe = h
        .events
        .iter()
        .find(|e| e.process == Process::probe())
        .unwrap();
    assert_eq!(probe.node.as_deref(), Some("n1"));
    assert_eq!(probe.value["role"], "leader");
    let start = h.events.iter().find(|e| e.f == "start-pause").unwrap();
    assert_eq!(
        start.value,
        json!({"targets": ["n1"], "note": "recorded only"})
    );

    let sched: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("schedule.json")).unwrap()).unwrap();
    assert_eq!(sched["seed"], 42);
    assert_eq!(sched["faults"][0]["action"], "start");
    assert_eq!(sched["faults"][1]["action"], "stop");

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    for field in [
        "valid",
        "seed",
        "system",
        "workload",
        "nemesis",
        "nodes",
        "started_at",
        "elapsed_s",
        "counts",
        "verdicts",
    ] {
        assert!(results.get(field).is_some(), "results.json lacks {field}");
    }
    assert_eq!(
        results["counts"]["ok"],
        h.operations
            .iter()
            .filter(|o| o.outcome == faultline::history::Outcome::Ok)
            .count()
    );
    assert_eq!(results["final_reads_missed"], 0);
    // final reads: the last ops read every key the run touched
    let keys: std::collections::BTreeSet<_> = h.operations.iter().map(|o| o.key.clone()).collect();
    let tail: std::collections::BTreeSet<_> = h.operations[h.operations.len() - keys.len()..]
        .iter()
        .map(|o| {
            assert_eq!(o.f, "read");
            o.key.clone()
        })
        .collect();
    assert_eq!(tail, keys);
    assert!(dir.join("workload.toml").is_file());
    assert!(dir.join("nodes/n1/log.json").is_file());
    assert!(dir.join("report.html").is_file());
    // every acknowledged write reached the node's log under its request id
    let log: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("nodes/n1/log.json")).unwrap())
            .unwrap();
    let rids: std::collections::BTreeSet<&str> = log
        .iter()
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    let writes: Vec<_> = h
        .operations
        .iter()
        .filter(|o| o.outcome == faultline::history::Outcome::Ok && o.f != "read")
        .collect();
    assert!(!writes.is_empty());
    for o in writes {
        let rid = o
            .request_id
            .as_deref()
            .expect("every client op has a request id");
        assert!(rids.contains(rid), "{rid} not in the node's /log");
    }
    assert_eq!(
        results["leadership"],
        json!({"generation": "term", "overlapping_reigns": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_and_set_runs_record_their_shapes() {
    let (_s, dir, _) = run_once("list-append").await;
    let h = faultline::history::jsonl::read_path(&dir.join("history.jsonl")).unwrap();
    assert!(h.operations.iter().all(|o| o.f == "txn"));
    let some_read = h
        .operations
        .iter()
        .flat_map(|o| o.value.as_array().unwrap().clone())
        .any(|m| m[0] == "r" && m[2].is_array());
    assert!(some_read, "reads return lists");

    let (_s, dir, _) = run_once("set").await;
    let h = faultline::history::jsonl::read_path(&dir.join("history.jsonl")).unwrap();
    let last = h.operations.last().unwrap();
    assert_eq!(last.f, "read");
    let adds = h.operations.iter().filter(|o| o.f == "add").count();
    assert_eq!(
        last.value.as_array().unwrap().len(),
        adds,
        "final read sees every add"
    );

    // a set workload over several keys: every op names its key, a final read reads each
    let (_s, dir, _) = run_once("siblings").await;
    let h = faultline::history::jsonl::read_path(&dir.join("history.jsonl")).unwrap();
    let mut adds: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut last_read: std::collections::BTreeMap<&str, usize> = Default::default();
    for o in &h.operations {
        let key = o.key.as_deref().expect("every set op names its key");
        match o.f.as_str() {
            "add" => *adds.entry(key).or_default() += 1,
            "read" => {
                last_read.insert(key, o.value.as_array().unwrap().len());
            }
            f => panic!("unexpected op {f}"),
        }
    }
    assert!(adds.len() > 1, "adds go to several keys: {adds:?}");
    assert_eq!(last_read, adds, "each key's final read sees its adds");
    let results: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let set = results["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["checker"] == "set")
        .unwrap();
    assert_eq!(set["valid"], json!(true), "{set}");
}
