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
