//! Elle benchmark figures (a bench binary printing medians, not a timed test):
//!   1. `huge-scc.edn` (10,254 txns, one SCC of 1,161): import, check, total.
//!   2. generated list-append histories of 1,000,000 strictly serializable txns (valid),
//!      and the same with stale reads planted (invalid): txns checked per second.
//!   3. converting a `History` of txn ops to the compact form (the `check` entry point
//!      does this first): txns per second.
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench --bench elle` (ELLE_BENCH_TXNS to resize).

use std::path::Path;
use std::time::Instant;

use faultline::checker::Validity;
use faultline::checker::elle::generate::{GenOptions, list_append};
use faultline::checker::elle::{self, ElleModel, ElleOptions};
use faultline::history::{Event, EventType, Format, History, Process, read_file};
use serde_json::{Value, json};

/// CPU time of this process (SCCs of big graphs run on a helper thread): the machine is shared (other builds run), so wall time
/// overstates cost; both are reported.
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    // cargo bench passes --bench; ignore arguments.
    let n: usize = std::env::var("ELLE_BENCH_TXNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let opts = ElleOptions::new(ElleModel::ListAppend);

    // 1. huge-scc.
    // The corpora sit beside the project root (`../shared/corpora`).
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/elle/jepsen-io/huge-scc.edn");
    let path = path.as_path();
    if path.exists() && std::env::var_os("ELLE_BENCH_SKIP_HUGE").is_none() {
        let (mut imp, mut chk, mut tot, mut cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut kinds = String::new();
        for _ in 0..5 {
            let c0 = cpu_now();
            let t0 = Instant::now();
            let h = read_file(path, Format::Edn).expect("huge-scc parses");
            let t1 = Instant::now();
            let v = elle::check(&h, &opts);
            let t2 = Instant::now();
            imp.push((t1 - t0).as_secs_f64());
            chk.push((t2 - t1).as_secs_f64());
            tot.push((t2 - t0).as_secs_f64());
            cpu.push(cpu_now() - c0);
            kinds = v.stats["anomaly_types"].to_string();
        }
        println!(
            "huge-scc.edn: import {:.3} s, check {:.3} s, total {:.3} s wall, {:.3} s CPU (medians of 5); anomaly types {kinds}",
            median(imp),
            median(chk),
            median(tot),
            median(cpu)
        );
    }

    // 2. Generated histories.
    for (label, stale_every) in [("valid", 0usize), ("stale reads planted", 2_000usize)] {
        let g = GenOptions {
            txns: n,
            stale_every,
            seed: 42,
            ..Default::default()
        };
        let t0 = Instant::now();
        let txns = list_append(&g);
        let gen_s = t0.elapsed().as_secs_f64();
        let mut times = Vec::new();
        let mut cpus = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            let c = cpu_now();
            let t = Instant::now();
            let v = elle::check_txns(&txns, &opts);
            times.push(t.elapsed().as_secs_f64());
            cpus.push(cpu_now() - c);
            last = Some(v);
        }
        let cpu = median(cpus);
        let v = last.unwrap();
        let s = median(times);
        assert!(
            stale_every > 0 || v.valid == Validity::Valid,
            "generated history must be valid: {}",
            v.explanation
        );
        println!(
            "{n} generated list-append txns ({label}; {} mops, {} edges, generated in {gen_s:.2} s): check {s:.3} s wall = {:.0} txns/s, {cpu:.3} s CPU = {:.0} txns/s (medians of 3); inference {:.0} ms, graph {:.0} ms; verdict {:?} {}",
            txns.mops.len(),
            v.stats["edges"],
            n as f64 / s,
            n as f64 / cpu,
            v.stats["inference_ms"].as_f64().unwrap_or(0.0),
            v.stats["graph_ms"].as_f64().unwrap_or(0.0),
            v.valid,
            v.stats["anomaly_types"]
        );
    }

    // 3. History -> compact txns, on a tenth of the size (a History of JSON values is
    // large: every micro-op is a serde_json::Value).
    let m = (n / 10).max(1000);
    let txns = list_append(&GenOptions {
        txns: m,
        seed: 7,
        ..Default::default()
    });
    let h = to_history(&txns);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let back = elle::Txns::from_history(&h).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(back.len(), m);
    }
    let s = median(times);
    println!(
        "History -> compact txns: {m} txns in {s:.3} s = {:.0} txns/s",
        m as f64 / s
    );
}

/// The generated txns as a History (invoke + ok events), for the conversion figure.
fn to_history(t: &elle::Txns) -> History {
    use faultline::checker::elle::txns::{MopKind, MopValue};
    let mut events: Vec<(u64, Event)> = Vec::with_capacity(t.len() * 2);
    for i in 0..t.len() {
        let x = &t.txns[i];
        let mut inv = Vec::new();
        let mut ok = Vec::new();
        for m in t.mops(i) {
            let k = t.scalar_json(t.keys[m.key as usize]);
            match (m.kind, m.value) {
                (MopKind::Append, MopValue::One(v)) => {
                    inv.push(json!(["append", k, t.scalar_json(v)]));
                    ok.push(json!(["append", k, t.scalar_json(v)]));
                }
                (_, MopValue::List { start, len }) => {
                    inv.push(json!(["r", k, null]));
                    let l: Vec<Value> = t
                        .list(start, len)
                        .iter()
                        .map(|e| t.scalar_json(*e))
                        .collect();
                    ok.push(json!(["r", k, l]));
                }
                _ => {}
            }
        }
        let ev = |index: u64, kind, value| Event {
            request_id: None,
            index,
            time: index,
            process: Process::Client(x.process),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
        };
        events.push((x.call, ev(x.call, EventType::Invoke, Value::Array(inv))));
        events.push((x.ret, ev(x.ret, EventType::Ok, Value::Array(ok))));
    }
    events.sort_by_key(|e| e.0);
    History::from_events(
        events.into_iter().map(|e| e.1).collect(),
        Path::new("generated"),
        None,
    )
    .unwrap()
}
