//! SIGTERM / SIGINT to a control process: it heals and tears its cluster down before exiting.

mod common;

fn run_and_signal(sig: i32) {
    let dir = common::run_dir("signal");
    let (mut control, short, pids) = common::spawn_control(
        &[
            "--system",
            "etcd",
            "--nodes",
            "3",
            "--nemesis",
            "partition-halves",
        ],
        dir.path(),
    );
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(control.id() as i32, sig) };
    let status = control.wait().unwrap();
    assert_eq!(status.code(), Some(128 + sig), "{status:?}");
    common::assert_gone(&short);
    for p in pids {
        assert!(
            faultline::cluster::procfs::start_ticks(p as i32).is_none(),
            "node {p} left"
        );
    }
}

#[test]
fn sigterm_tears_down() {
    if common::capable("SIGTERM teardown") {
        run_and_signal(libc::SIGTERM);
    }
}

#[test]
fn sigint_tears_down() {
    if common::capable("SIGINT teardown") {
        run_and_signal(libc::SIGINT);
    }
}
