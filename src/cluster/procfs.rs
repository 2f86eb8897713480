//! Process identity from /proc: a pid plus its start time names one process, even after the
//! kernel reuses the pid.

/// Start time (clock ticks since boot, field 22 of /proc/PID/stat) of a live, non-zombie
/// process; None if it is gone or a zombie.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<u64> {
    let fields = stat_fields(stat)?;
    // fields[0] is field 3 (state); field 22 is fields[19].
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The fields of a /proc stat line from field 3 (state) on. The command name (field 2) may
/// hold spaces and parentheses: fields resume after the last ')'.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// True once every thread of `pid` has stopped (state `T`). SIGSTOP is asynchronous: `kill`
/// returns before the threads stop, and until they do the process may still answer.
pub fn is_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if stat_fields(&stat).and_then(|f| f.first().copied()) != Some("T") {
            return false;
        }
        any = true;
    }
    any
}

/// True if `pid` still is the process that started at `ticks`.
pub fn is_same_process(pid: i32, ticks: u64) -> bool {
    start_ticks(pid) == Some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_after_odd_comm() {
        let s = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(s), Some(98765));
        let z = "42 (x) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(z), None);
    }

    #[test]
    fn a_sigstopped_child_is_seen_stopped_and_a_running_one_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!is_stopped(pid));
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_stopped(pid) {
            assert!(std::time::Instant::now() < deadline, "never seen stopped");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_stopped(pid), "a reaped process is not stopped");
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let t = start_ticks(me).unwrap();
        assert!(is_same_process(me, t));
        assert!(!is_same_process(me, t + 1));
    }
}
