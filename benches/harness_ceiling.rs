//! The harness's own ceiling: client tasks driving a node that answers at once (an
//! in-process node-protocol server on loopback), with every event recorded and flushed to
//! a real history file, as in a run. Prints completed ops/s per concurrency level; the
//! target is that the harness is never the bottleneck below 20k ops/s.
//!
//!     cargo bench --bench harness_ceiling [-- SECONDS]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline::runner::clients::{self, Drive, Pacer};
use faultline::runner::{loopback_node, recorder::Recorder};
use faultline::workload::{Adapter, Client, Endpoint, Generator, NodeChoice, WorkloadSpec};

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = WorkloadSpec::load("kv").unwrap();
    println!(
        "harness ceiling: kv workload, unpaced, {secs} s per level, history flushed per event"
    );
    for concurrency in [10, 32, 64] {
        let mut rates: Vec<f64> = (0..3)
            .map(|_| rt.block_on(measure(&spec, concurrency, Duration::from_secs_f64(secs))))
            .collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "concurrency {concurrency:>3}: median {:>7.0} ops/s (runs: {:.0}, {:.0}, {:.0})",
            rates[1], rates[0], rates[1], rates[2]
        );
    }
}

async fn measure(spec: &WorkloadSpec, concurrency: usize, dur: Duration) -> f64 {
    let (addr, server) = loopback_node::serve("n1").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::create(&tmp.path().join("history.jsonl")).unwrap());
    let nodes = vec![Endpoint {
        id: "n1".into(),
        base_url: format!("http://{addr}"),
    }];
    let drive = Arc::new(Drive {
        recorder: recorder.clone(),
        client: Client::new(Adapter::Native, nodes, Duration::from_secs(5)).unwrap(),
        generator: std::sync::Mutex::new(Generator::new(spec, 1)),
        pacer: Pacer::new(0.0),
        choice: NodeChoice::Sticky,
        seed: 1,
        concurrency,
        stop: AtomicBool::new(false),
        started: Default::default(),
    });
    let handles = clients::spawn_generated(&drive);
    // let connections warm up, then count completions over `dur`
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c0 = recorder.counts();
    let t0 = Instant::now();
    tokio::time::sleep(dur).await;
    let c1 = recorder.counts();
    let took = t0.elapsed().as_secs_f64();
    drive.stop.store(true, Ordering::Relaxed);
    clients::join(handles).await.unwrap();
    server.abort();
    let done = (c1.ok + c1.fail + c1.info) - (c0.ok + c0.fail + c0.info);
    // the history must be complete and valid, or the figure means nothing
    let h = faultline::history::jsonl::read_path(&tmp.path().join("history.jsonl")).unwrap();
    assert!(h.operations.iter().all(|o| o.ret.is_some()));
    done as f64 / took
}
