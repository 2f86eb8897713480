//! `write_run_report` and `faultline report` on fixture run directories written with the
//! real history writer: files, contents, results.json updates, errors and exit codes.

mod common;

use std::process::Command;

use common::{Fixture, build_run};
use faultline::report::{ReportInput, render_html, write_run_report};
use serde_json::Value;

/// Real checker verdicts up to a few thousand ops; planted ones beyond (checking is not
/// what these tests measure).
fn fixture(ops: usize, stale: bool) -> Fixture {
    Fixture {
        ops,
        concurrency: 5,
        seed: 7,
        stale_read: stale,
        two_leaders: stale,
        real_verdicts: ops <= 5000,
    }
}

#[test]
fn invalid_run_gets_a_counterexample_junit_failure_and_fixed_counts() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(
        store.path(),
        "raft-register",
        "20261122T140000",
        &fixture(600, true),
    );
    let files = write_run_report(&run.dir).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains(r#"id="overall-verdict">invalid<"#));
    assert!(
        html.contains(r#"class="porcupine""#),
        "counterexample drawn"
    );
    assert!(html.contains("cx-stuck"), "the unplaceable op is marked");
    assert!(html.contains("two-leaders-one-term"));
    assert!(html.contains("partition"));
    // Log excerpts around the anomaly come from the node logs, aligned by probe clocks.
    assert!(html.contains("node logs around this anomaly"));
    assert!(html.contains("nodes/n3/stderr.log ("));
    // Self-contained: nothing fetched from the network.
    for needle in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(needle), "{needle}");
    }
    let junit = std::fs::read_to_string(&files.junit).unwrap();
    assert!(junit.contains(r#"failures="2""#), "{junit}");
    assert!(junit.contains(r#"<property name="seed" value="7"/>"#));
    let results: Value = serde_json::from_slice(&std::fs::read(&files.results).unwrap()).unwrap();
    assert_eq!(results["valid"], Value::Bool(false));
    let c = &results["counts"];
    let total =
        c["ok"].as_u64().unwrap() + c["fail"].as_u64().unwrap() + c["info"].as_u64().unwrap();
    assert_eq!(total, 600, "counts recomputed from the history");
    assert_eq!(results["seed"], 7);
    assert_eq!(results["verdicts"].as_array().unwrap().len(), 2);
}

#[test]
fn valid_run_has_no_counterexample_and_passes_in_junit() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(
        store.path(),
        "raft-register",
        "20261122T140500",
        &fixture(400, false),
    );
    let files = write_run_report(&run.dir).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains(r#"id="overall-verdict">valid<"#));
    assert!(!html.contains(r#"class="porcupine""#));
    for id in [
        "latency-scatter",
        "latency-quantiles",
        "throughput",
        "timeline-data",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let junit = std::fs::read_to_string(&files.junit).unwrap();
    assert!(
        junit.contains(r#"tests="2" failures="0" errors="0""#),
        "{junit}"
    );
}

#[test]
fn malformed_inputs_are_named_by_file_line_and_field() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(store.path(), "t", "20261122T141000", &fixture(100, false));
    let results = run.dir.join("results.json");
    std::fs::write(
        &results,
        "{\n\"valid\": true,\n\"verdicts\": [{\"checker\": 5}]\n}",
    )
    .unwrap();
    let err = write_run_report(&run.dir).unwrap_err().to_string();
    assert!(err.contains("results.json:3: verdicts[0]:"), "{err}");
    assert!(!run.dir.join("report.html").exists(), "no partial report");

    let bin = env!("CARGO_BIN_EXE_faultline");
    let out = Command::new(bin)
        .arg("report")
        .arg(&run.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "bad input exits 254");
    assert!(String::from_utf8_lossy(&out.stderr).contains("verdicts[0]"));

    // A history line broken in the middle of the file is an error naming its line.
    let run2 = build_run(store.path(), "t", "20261122T141500", &fixture(100, false));
    let hist = run2.dir.join("history.jsonl");
    let text = std::fs::read_to_string(&hist).unwrap();
    let broken = text.replacen("\"type\":\"invoke\"", "\"type\":\"begin\"", 1);
    std::fs::write(&hist, broken).unwrap();
    let err = write_run_report(&run2.dir).unwrap_err().to_string();
    assert!(
        err.contains("history.jsonl:") && err.contains(": type: "),
        "{err}"
    );
}

#[test]
fn a_torn_last_line_is_left_out_and_said_so() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(store.path(), "t", "20261122T142000", &fixture(100, false));
    let hist = run.dir.join("history.jsonl");
    let mut text = std::fs::read_to_string(&hist).unwrap();
    text.push_str("{\"index\":99999,\"time\":");
    std::fs::write(&hist, text).unwrap();
    let files = write_run_report(&run.dir).unwrap();
    let html = std::fs::read_to_string(files.html).unwrap();
    assert!(html.contains("torn last line"));
}

#[test]
fn report_cli_rewrites_the_files_and_check_style_input_renders() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(store.path(), "t", "20261122T142500", &fixture(200, true));
    std::os::unix::fs::symlink(&run.dir, store.path().join("latest")).unwrap();
    let bin = env!("CARGO_BIN_EXE_faultline");
    let out = Command::new(bin)
        .args(["report", "latest", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(run.dir.join("report.html")).unwrap();
    assert!(
        page.contains("20261122T142500"),
        "named by the real run, not `latest`"
    );
    assert!(run.dir.join("junit.xml").is_file());
    let missing = Command::new(bin)
        .args(["report", "/nonexistent/run"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(254));

    // `faultline check --html` renders a history and verdicts with no run around them.
    let loaded = faultline::report::run_dir::load_run(&run.dir).unwrap();
    let html = render_html(&ReportInput::new(
        "history.jsonl",
        &loaded.history,
        &loaded.results.verdicts,
    ));
    assert!(html.contains(r#"id="overall-verdict">invalid<"#));
    assert!(html.contains("class=\"porcupine\""));
}

/// Must-show 3's size half (the time half is the `report_render` benchmark): a
/// 100,000-op history renders to a page under 10 MB.
#[test]
fn a_100k_op_history_renders_under_10_mb() {
    let store = tempfile::tempdir().unwrap();
    let run = build_run(
        store.path(),
        "big",
        "20261122T143000",
        &fixture(100_000, true),
    );
    let files = write_run_report(&run.dir).unwrap();
    println!("100k-op report: {} bytes", files.html_bytes);
    if let Ok(out) = std::env::var("REPORT_KEEP_BIG_HTML") {
        std::fs::copy(&files.html, out).unwrap();
    }
    assert!(files.html_bytes < 10_000_000, "{} bytes", files.html_bytes);
}

/// A graph checker's cycle, found by the real Elle checker on an elle-cli corpus history,
/// is drawn with its steps in words.
#[test]
fn elle_cycles_are_drawn_and_explained() {
    use faultline::checker::elle::{ElleModel, ElleOptions, check};
    use faultline::history::import::{Format, read_file};
    let path = common::corpora()
        .join("elle/elle-cli/list-append-anomaly-g1c-circular-information-flow.json");
    let path = path.as_path();
    if !path.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} missing",
            path.display()
        );
        eprintln!("skipping: {} is missing", path.display());
        return;
    }
    let history = read_file(path, Format::Auto).unwrap();
    let verdict = check(&history, &ElleOptions::new(ElleModel::ListAppend));
    assert!(!verdict.anomalies.is_empty(), "{verdict:?}");
    let verdicts = vec![verdict];
    let html = render_html(&ReportInput::new("g1c", &history, &verdicts));
    assert!(html.contains(r#"<svg class="cycle""#), "cycle drawn");
    assert!(
        html.contains(r#"<ol class="cycle-steps">"#),
        "steps in words"
    );
    assert!(html.contains("G1c"), "anomaly named");
    if let Ok(out) = std::env::var("REPORT_KEEP_HTML") {
        std::fs::write(out, &html).unwrap();
    }
}
