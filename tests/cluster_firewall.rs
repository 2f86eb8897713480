//! The persistent nft shell inside a node namespace: commits rules, reports errors without
//! hanging, and recovers through the one-shot fallback.

mod common;

use faultline::cluster::firewall::{self, NetFaults, NftShell};
use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};

fn ruleset(ns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_commits_reports_errors_and_falls_back() {
    if !common::capable("nft shell") {
        return;
    }
    let dir = common::run_dir("firewall");
    let c = Cluster::start(
        SystemDescriptor::load("etcd").unwrap(),
        ClusterConfig::new(1, dir.path()),
    )
    .await
    .unwrap();
    let ns = c.nodes()[0].netns.clone();
    let faults = NetFaults {
        drop_from: vec!["10.211.9.9".parse().unwrap()],
        loss_percent: 7,
    };
    let mut shell = NftShell::spawn(&ns).unwrap();
    shell
        .apply(
            &firewall::render(&faults),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    let rules = ruleset(&ns);
    assert!(rules.contains("ip saddr 10.211.9.9 drop"), "{rules}");
    assert!(rules.contains("numgen random mod 100 < 7 drop"), "{rules}");

    let err = shell
        .apply(
            "add rule inet nosuch input drop",
            std::time::Duration::from_secs(2),
        )
        .unwrap_err();
    assert!(err.starts_with("Error:"), "{err}");
    // The shell still works after an error.
    shell
        .apply(
            &firewall::render(&NetFaults::default()),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    assert!(!ruleset(&ns).contains("faultline"));

    // Through apply_via, a bad script is an error naming nft's complaint, not a hang.
    let mut slot = Some(shell);
    let e = firewall::apply_via(&mut slot, &ns, "add rule inet nosuch input drop")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nft -f"), "{e}");
    assert!(slot.is_none(), "a failed shell is dropped");
    firewall::apply_via(&mut slot, &ns, &firewall::render(&faults)).unwrap();
    assert!(slot.is_some(), "a fresh shell is spawned on demand");
    assert!(ruleset(&ns).contains("10.211.9.9"));
    c.teardown().await.unwrap();
}
