//! Shared by the cluster integration tests: capability gating and run directories.
#![allow(dead_code)]

use std::path::Path;

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
    let d = faultline::cluster::SystemDescriptor::load("raft").unwrap();
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
