//! The store: `store/<test>/<YYYYmmddTHHMMSS>/` per run and a `store/latest` symlink.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const HISTORY: &str = "history.jsonl";
pub const SCHEDULE: &str = "schedule.json";
/// The run's options as given, for `faultline replay`.
pub const INVOCATION: &str = "invocation.json";
/// A replay's comparison with the run it replayed.
pub const REPLAY: &str = "replay.json";
pub const RESULTS: &str = "results.json";
pub const WORKLOAD: &str = "workload.toml";
pub const NODES: &str = "nodes";

/// Creates a fresh run directory and points `store/latest` at it.
pub fn create_run_dir(store: &Path, test: &str) -> std::io::Result<PathBuf> {
    let dir = new_run_dir(store, test)?;
    point_latest(store, &dir)?;
    Ok(dir)
}

/// Creates a fresh run directory `store/<test>/<stamp>/` (with `nodes/`) without listing it
/// as `store/latest`.
pub fn new_run_dir(store: &Path, test: &str) -> std::io::Result<PathBuf> {
    let stamp = compact_utc(SystemTime::now());
    let test_dir = store.join(test);
    std::fs::create_dir_all(&test_dir)?;
    let mut name = stamp.clone();
    let mut n = 1;
    // Two runs within one second get -2, -3, ...
    let dir = loop {
        let dir = test_dir.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                n += 1;
                name = format!("{stamp}-{n}");
            }
            Err(e) => return Err(e),
        }
    };
    std::fs::create_dir_all(dir.join(NODES))?;
    Ok(dir)
}

/// Points `store/latest` at `dir`, a run directory `store/<test>/<name>` (atomically).
pub fn point_latest(store: &Path, dir: &Path) -> std::io::Result<()> {
    let rel = dir.strip_prefix(store).map_err(|_| {
        std::io::Error::other(format!(
            "{} is not under {}",
            dir.display(),
            store.display()
        ))
    })?;
    let latest = store.join("latest");
    let tmp = store.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(rel, &tmp)?;
    // rename over the old link is atomic: readers never see no `latest`
    std::fs::rename(&tmp, &latest)
}

/// `latest` (under `store`), or a run directory path.
pub fn resolve_run_dir(store: &Path, arg: &str) -> PathBuf {
    if arg == "latest" {
        let link = store.join("latest");
        std::fs::canonicalize(&link).unwrap_or(link)
    } else {
        PathBuf::from(arg)
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    faultline_proto::stamp::unix_ms(t).div_euclid(1000)
}

/// `YYYYmmddTHHMMSS` in UTC.
pub fn compact_utc(t: SystemTime) -> String {
    faultline_proto::compact_unix_secs(unix_secs(t))
}

/// RFC 3339 in UTC, seconds precision.
pub fn rfc3339_utc(t: SystemTime) -> String {
    faultline_proto::format_unix_secs(unix_secs(t))
}

/// RFC 3339 in UTC, millisecond precision (`YYYY-MM-DDTHH:MM:SS.mmmZ`), as node log lines.
pub fn rfc3339_utc_ms(t: SystemTime) -> String {
    faultline_proto::format_unix_ms(faultline_proto::stamp::unix_ms(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339_utc(t), "2026-11-18T11:06:40Z");
        assert_eq!(
            rfc3339_utc_ms(t + Duration::from_millis(7)),
            "2026-11-18T11:06:40.007Z"
        );
        assert_eq!(compact_utc(t), "20261118T110640");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn run_dirs_are_unique_and_latest_follows() {
        let store = tempfile::tempdir().unwrap();
        let a = create_run_dir(store.path(), "raft-kv").unwrap();
        let b = create_run_dir(store.path(), "raft-kv").unwrap();
        assert_ne!(a, b);
        assert!(b.join(NODES).is_dir());
        let latest = resolve_run_dir(store.path(), "latest");
        assert_eq!(latest, std::fs::canonicalize(&b).unwrap());
        assert_eq!(resolve_run_dir(store.path(), "x/y"), PathBuf::from("x/y"));
        let c = new_run_dir(store.path(), "raft-kv").unwrap();
        assert!(c.join(NODES).is_dir());
        assert_eq!(
            resolve_run_dir(store.path(), "latest"),
            std::fs::canonicalize(&b).unwrap(),
            "an unlisted run directory is not latest"
        );
        point_latest(store.path(), &c).unwrap();
        assert_eq!(
            resolve_run_dir(store.path(), "latest"),
            std::fs::canonicalize(&c).unwrap()
        );
    }
}
