//! Must-show 1: generated reports opened in headless Chromium (Debian's `chromium`) run
//! their script without console errors and show the timeline, the plots and, for an
//! invalid run, the counterexample. Also takes the screenshots of must-show 2 (copied to
//! `$REPORT_SCREENSHOT_DIR` when set). Without Chromium the test skips, unless `CI=true`,
//! where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, build_run};
use faultline::report::write_run_report;

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{} is missing (scripts/install-deps installs it); CI=true requires it",
            p.display()
        );
    }
    eprintln!(
        "skipping: {} is missing (apt-get install chromium)",
        p.display()
    );
    None
}

/// Runs Chromium headless on `url` with `extra` flags; returns (stdout, console lines).
/// A run that exceeds 60 s is killed by its pid and fails the test.
fn run_chromium(bin: &Path, url: &str, size: &str, extra: &[String]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = std::fs::read_to_string(out_path).unwrap();
    let console = std::fs::read_to_string(err_path)
        .unwrap()
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(String::from)
        .collect();
    (stdout, console)
}

fn check_page(bin: &Path, report: &Path, invalid: bool) -> String {
    let url = format!("file://{}", report.display());
    let (dom, console) = run_chromium(bin, &url, "1400,2400", &["--dump-dom".to_string()]);
    assert!(
        console.is_empty(),
        "console messages on {url}: {console:#?}"
    );
    assert!(
        dom.contains(r#"data-rendered="ok""#),
        "the script ran to its end"
    );
    assert!(
        dom.contains(r#"<div id="js-errors"></div>"#),
        "no script errors caught"
    );
    // Timeline drawn by the script: lanes of op rectangles and the partition band.
    let timeline = &dom[dom.find(r#"<div id="timeline">"#).expect("timeline div")..];
    assert!(
        timeline.starts_with(r#"<div id="timeline"><svg"#),
        "timeline svg drawn"
    );
    assert!(timeline.contains(r#"class="op op-ok"#), "ok ops drawn");
    assert!(timeline.contains(r#"class="band""#), "nemesis band drawn");
    for id in ["latency-scatter", "latency-quantiles", "throughput"] {
        assert!(dom.contains(&format!(r#"<svg id="{id}""#)), "plot {id}");
    }
    assert!(dom.contains("<circle cx="), "latency dots");
    assert_eq!(
        dom.contains(r#"class="porcupine""#),
        invalid,
        "counterexample iff invalid"
    );
    if invalid {
        assert!(
            dom.contains(r#"class="cx-stuck""#),
            "the op that cannot be placed"
        );
        assert!(dom.contains("model state after"));
    }
    dom
}

fn screenshot(bin: &Path, report: &Path, name: &str, fragment: &str, size: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let png = dir.join(name);
    let url = format!("file://{}{fragment}", report.display());
    let (_, console) = run_chromium(
        bin,
        &url,
        size,
        &[format!("--screenshot={}", png.display())],
    );
    assert!(console.is_empty(), "{console:#?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "a real picture"
    );
    if let Ok(keep) = std::env::var("REPORT_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png, Path::new(&keep).join(name)).unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
    png
}

#[test]
fn reports_render_in_chromium_without_errors() {
    let Some(bin) = chromium() else { return };
    let store = tempfile::tempdir().unwrap();
    let valid = build_run(
        store.path(),
        "raft-register",
        "20261122T140000",
        &Fixture {
            ops: 2000,
            concurrency: 5,
            seed: 11,
            stale_read: false,
            two_leaders: false,
            real_verdicts: true,
        },
    );
    let invalid = build_run(
        store.path(),
        "raft-register",
        "20261122T141000",
        &Fixture {
            ops: 2000,
            concurrency: 5,
            seed: 12,
            stale_read: true,
            two_leaders: true,
            real_verdicts: true,
        },
    );
    let valid_html = write_run_report(&valid.dir).unwrap().html;
    let invalid_html = write_run_report(&invalid.dir).unwrap().html;
    check_page(&bin, &valid_html, false);
    check_page(&bin, &invalid_html, true);

    // Opening at an anomaly zooms the timeline to its ops and highlights them.
    let url = format!("file://{}#mark=a0-0", invalid_html.display());
    let (dom, console) = run_chromium(&bin, &url, "1400,2400", &["--dump-dom".to_string()]);
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.contains(r#"class="op op-ok hl""#), "highlighted op");
    assert!(dom.contains(r#" dim""#), "other ops dimmed");
    // A split-brain finding names probe events: drawn as lines at their times.
    let url = format!("file://{}#mark=a1-0", invalid_html.display());
    let (dom, console) = run_chromium(&bin, &url, "1400,2400", &["--dump-dom".to_string()]);
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.contains(r#"class="mark-time""#), "probe times marked");

    screenshot(&bin, &valid_html, "report-valid.png", "", "1400,2600");
    screenshot(
        &bin,
        &invalid_html,
        "report-invalid.png",
        "#mark=a0-0",
        "1400,3400",
    );
}
