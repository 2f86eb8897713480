//! `faultline serve` for real: the binary on a loopback port, fetched over TCP. Runs are
//! listed newest first with their verdicts, reports and files are served, and paths that
//! leave the store are refused.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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

    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--port", "0", "--store"])
        .arg(store.path())
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
