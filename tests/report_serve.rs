//! `faultline serve` for real: the binary on a loopback port, fetched over TCP. Runs are
//! listed newest first with their verdicts, reports and files are served, and paths that
//! leave the store are refused. Suites stored over several nights are drawn side by side.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Fixture, build_run};
use faultline::report::write_run_report;

/// Kills the server (by its pid, via `Child::kill`) however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `faultline serve --port 0 --store STORE`, and the address it says it listens on.
fn start(store: &Path) -> (Server, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback by default: {addr}"
    );
    (server, addr)
}

#[test]
fn serves_the_store_newest_first_on_loopback() {
    let store = tempfile::tempdir().unwrap();
    let fx = |stale| Fixture {
        ops: 300,
        concurrency: 3,
        seed: 5,
        stale_read: stale,
        two_leaders: false,
        real_verdicts: true,
    };
    let old = build_run(store.path(), "raft-register", "20261122T120000", &fx(false));
    let new = build_run(store.path(), "raft-register", "20261122T130000", &fx(true));
    write_run_report(&old.dir).unwrap();
    write_run_report(&new.dir).unwrap();
    // A run that died before writing results is still listed, marked as such.
    let dead = store.path().join("etcd-kv/20261122T110000");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("history.jsonl"), "").unwrap();
    std::os::unix::fs::symlink(&new.dir, store.path().join("latest")).unwrap();

    let (_server, addr) = start(store.path());

    let (status, index) = get(&addr, "/");
    assert_eq!(status, 200);
    let (i_new, i_old, i_dead) = (
        index.find("20261122T130000").unwrap(),
        index.find("20261122T120000").unwrap(),
        index.find("20261122T110000").unwrap(),
    );
    assert!(i_new < i_old && i_old < i_dead, "newest first");
    assert!(index.contains(r#"<tr class="invalid">"#) && index.contains(r#"<tr class="valid">"#));
    assert!(
        index.contains(r#"<tr class="none">"#),
        "run without results listed"
    );
    assert!(
        index.contains("3 run(s)"),
        "latest symlink not listed twice"
    );

    let (status, report) = get(&addr, "/runs/raft-register/20261122T130000/report.html");
    assert_eq!(status, 200);
    assert!(report.contains("content-type: text/html"));
    assert!(report.contains(r#"id="overall-verdict">invalid<"#));
    let (status, listing) = get(&addr, "/runs/raft-register/20261122T130000/");
    assert_eq!(status, 200);
    assert!(listing.contains("history.jsonl") && listing.contains("nodes/"));
    let (status, hist) = get(&addr, "/runs/raft-register/20261122T130000/history.jsonl");
    assert_eq!(status, 200);
    assert!(hist.contains("\"type\":\"invoke\""));

    for evil in [
        "/runs/../../etc/passwd",
        "/runs/raft-register/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/runs/%2fetc/passwd",
    ] {
        let (status, body) = get(&addr, evil);
        assert_eq!(status, 404, "{evil}");
        assert!(!body.contains("root:"), "{evil}");
    }
}

/// A stored night: `store/suites/ci/STAMP/summary.json` as `faultline suite` writes it.
fn write_night(store: &Path, stamp: &str, exit: u8, cases: &[serde_json::Value]) {
    let dir = store.join("suites/ci").join(stamp);
    std::fs::create_dir_all(&dir).unwrap();
    let s = serde_json::json!({
        "suite": "ci", "file": "suites/ci.toml", "seed": 17,
        "started_at": "2026-12-01T02:00:00Z", "elapsed_s": 180.0, "time_budget_s": 600.0,
        "exit_code": exit, "passed": 2, "failed": usize::from(exit != 0), "quarantined": 1,
        "canaries_caught": true, "cases": cases,
    });
    std::fs::write(dir.join("summary.json"), s.to_string()).unwrap();
    std::fs::write(dir.join("junit.xml"), "<testsuites/>").unwrap();
}

/// A case of a night, with a fake run dir (a report) under the store.
fn case(
    store: &Path,
    run: &str,
    row: &str,
    seed: u64,
    outcome: &str,
    sigs: &[&str],
    absolute: bool,
) -> serde_json::Value {
    let dir = store.join(run);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), "{}").unwrap();
    std::fs::write(dir.join("report.html"), format!("<p>report of {run}</p>")).unwrap();
    // as the child announced it: relative to the suite's working directory, or absolute
    let run_dir = if absolute {
        dir.display().to_string()
    } else {
        format!("store/{run}")
    };
    serde_json::json!({
        "row": row, "case": format!("{row}/seed={seed}"), "seed": seed,
        "canary": row.starts_with("canary"), "command": format!("faultline run --seed {seed}"),
        "run_dir": run_dir, "valid": "valid", "ok_ops": 900, "faults": 3,
        "fingerprint": {"signatures": sigs}, "elapsed_s": 25.0,
        "judgement": {"outcome": outcome, "why": "checked"},
    })
}

#[test]
fn shows_two_nights_of_a_suite_side_by_side() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let sig = "linearizable/kv:nonlinearizable:read";
    let x = faultline::suite::Fingerprint {
        signatures: vec![sig.into()],
    }
    .id();
    write_night(
        st,
        "20261201T020000",
        0,
        &[
            case(
                st,
                "raft-kv/20261201T020100",
                "raft-partition-leader",
                1,
                "pass",
                &[],
                true,
            ),
            case(
                st,
                "raft-kv/20261201T020200",
                "canary-stale-local-read",
                6,
                "pass",
                &[sig],
                true,
            ),
            case(
                st,
                "raft-kv/20261201T020300",
                "commit-prior-term",
                9,
                "quarantined",
                &[],
                true,
            ),
        ],
    );
    write_night(
        st,
        "20261202T020000",
        1,
        &[
            case(
                st,
                "raft-kv/20261202T020100",
                "raft-partition-leader",
                1,
                "anomaly",
                &[sig],
                false,
            ),
            case(
                st,
                "raft-kv/20261202T020200",
                "canary-stale-local-read",
                6,
                "pass",
                &[sig],
                false,
            ),
            case(
                st,
                "raft-kv/20261202T020300",
                "commit-prior-term",
                9,
                "quarantined",
                &[],
                false,
            ),
        ],
    );
    // a third night whose summary is broken
    std::fs::create_dir_all(st.join("suites/ci/20261130T020000")).unwrap();
    std::fs::write(
        st.join("suites/ci/20261130T020000/summary.json"),
        "{\"suite\": 3",
    )
    .unwrap();

    let (_server, addr) = start(st);
    let (status, index) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(index.contains(r#"<a href="/suites/">"#), "{index}");

    let (status, list) = get(&addr, "/suites/");
    assert_eq!(status, 200);
    assert!(list.contains(r#"<a href="/suites/ci/">ci</a>"#), "{list}");
    assert!(list.contains("<td>3 <span class=\"err\">(1 without a readable summary)</span></td><td>20261202T020000</td>"), "{list}");

    let (status, page) = get(&addr, "/suites/ci/");
    assert_eq!(status, 200);
    let (i_new, i_old) = (
        page.find(r#"<a href="/runs/suites/ci/20261202T020000/">"#)
            .unwrap(),
        page.find(r#"<a href="/runs/suites/ci/20261201T020000/">"#)
            .unwrap(),
    );
    assert!(i_new < i_old, "newest night first: {page}");
    assert!(
        page.contains("<code>suites/ci/20261130T020000/summary.json</code>: not a suite summary"),
        "{page}"
    );
    // the row that failed on the new night: fail with X, linked; pass the night before
    assert!(page.contains(&format!(
        r#"<td class="cell fail" data-night="20261202T020000"><span class="status">fail</span><a class="run fail" href="/runs/raft-kv/20261202T020100/report.html" title="checked">seed 1: anomaly {x}</a></td>"#
    )), "{page}");
    assert!(page.contains(r#"<td class="cell pass" data-night="20261201T020000"><span class="status">pass</span><a class="run pass" href="/runs/raft-kv/20261201T020100/report.html" title="checked">seed 1: pass</a></td>"#), "{page}");
    assert!(page.contains(r#"<td class="cell quarantined" data-night="20261202T020000">"#));
    assert!(page.contains(r#"<td class="cell quarantined" data-night="20261201T020000">"#));
    // per row: X once on the failing row, twice (as a catch) on the canary
    assert!(
        page.contains(&format!(
            r#"<li><span class="fp">{x}</span> × 1 night: {sig}</li>"#
        )),
        "{page}"
    );
    assert!(page.contains(&format!(r#"<li><span class="fp">{x}</span> × 2 nights <span class="muted">(not a failure)</span>: {sig}</li>"#)), "{page}");
    assert_eq!(page.matches("<tr data-row=").count(), 3);

    // the links lead to the reports, and the night's files are served
    let (status, report) = get(&addr, "/runs/raft-kv/20261202T020100/report.html");
    assert_eq!(status, 200);
    assert!(report.contains("report of raft-kv/20261202T020100"));
    let (status, files) = get(&addr, "/runs/suites/ci/20261202T020000/");
    assert_eq!(status, 200);
    assert!(files.contains("junit.xml") && files.contains("summary.json"));

    for missing in ["/suites/nope/", "/suites/%2e%2e/", "/suites/..%2fraft-kv/"] {
        let (status, _) = get(&addr, missing);
        assert_eq!(status, 404, "{missing}");
    }
}
