//! Must-show 3: a 100,000-op history renders to a page under 10 MB in under 2 s.
//! `cargo bench --bench report_render` prints the page size, then criterion's timings of
//! `render_html` (history already in memory), `load_run` (parse the run directory) and
//! `write_run_report` (read the run
//! directory, render, write report.html, junit.xml and results.json).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use faultline::report::run_dir::load_run;
use faultline::report::{ReportInput, render_html, write_run_report};

fn bench(c: &mut Criterion) {
    let store = tempfile::tempdir().unwrap();
    let fx = common::Fixture {
        ops: 100_000,
        concurrency: 10,
        seed: 3,
        stale_read: true,
        two_leaders: true,
        real_verdicts: false,
    };
    let run = common::build_run(store.path(), "bench", "20261122T150000", &fx);
    let files = write_run_report(&run.dir).unwrap();
    let loaded = load_run(&run.dir).unwrap();
    eprintln!(
        "100k-op run: {} ops, {} events, report.html = {} bytes ({:.2} MB, limit 10 MB)",
        loaded.history.operations.len(),
        loaded.history.events.len(),
        files.html_bytes,
        files.html_bytes as f64 / 1e6
    );
    // Wall time suffers when other jobs share the 2 cores; this thread's CPU time does not,
    // so print its median over 5 runs as well.
    let cpu_s = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    let median_cpu = |f: &mut dyn FnMut()| {
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                let t = cpu_s();
                f();
                cpu_s() - t
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[2]
    };
    let render_cpu = median_cpu(&mut || {
        let mut input = ReportInput::new("bench", &loaded.history, &loaded.results.verdicts);
        input.results = Some(&loaded.results);
        input.node_logs = &loaded.node_logs;
        black_box(render_html(&input).len());
    });
    let write_cpu = median_cpu(&mut || {
        black_box(write_run_report(&run.dir).unwrap().html_bytes);
    });
    eprintln!(
        "CPU time, median of 5: render_html {render_cpu:.3} s, write_run_report {write_cpu:.3} s (limit 2 s)"
    );
    let mut g = c.benchmark_group("report_100k_ops");
    g.sample_size(10);
    g.bench_function("render_html", |b| {
        b.iter(|| {
            let mut input = ReportInput::new("bench", &loaded.history, &loaded.results.verdicts);
            input.results = Some(&loaded.results);
            input.node_logs = &loaded.node_logs;
            black_box(render_html(&input).len())
        })
    });
    g.bench_function("load_run", |b| {
        b.iter(|| black_box(load_run(&run.dir).unwrap().history.events.len()))
    });
    g.bench_function("write_run_report", |b| {
        b.iter(|| black_box(write_run_report(&run.dir).unwrap().html_bytes))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
