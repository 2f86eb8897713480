//! Without root, `faultline cleanup` fails plainly (exit 255) naming what is missing.

use std::process::Command;

#[test]
fn cleanup_without_root_names_the_fix() {
    // Drop to nobody with util-linux's setpriv (only root can).
    if unsafe { libc::geteuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err()
    {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true: this test needs root and setpriv (util-linux)");
        }
        eprintln!("SKIP: needs root and setpriv");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .arg("cleanup")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
}
