//! One `faultline run` as a child process of this same binary: its own process, so a run
//! that wedges or dies takes nothing else with it; bounded by a wall-clock limit (then ^C,
//! which still heals and checks, then SIGTERM, then SIGKILL); read back from its run
//! directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fingerprint::Fingerprint;
use super::outcome::RunRecord;
use crate::report::results::RunResults;
use crate::runner::store;

/// How long a run gets after each signal before the next, harsher one.
const AFTER_INTERRUPT: Duration = Duration::from_secs(60);
const AFTER_TERM: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct ChildRun {
    /// The `faultline` binary.
    pub exe: PathBuf,
    /// `run ...` arguments, `--store` excluded.
    pub args: Vec<String>,
    pub store: PathBuf,
    /// Where the child's stdout and stderr go.
    pub log: PathBuf,
    pub wall_limit: Duration,
}

/// The run directory the child announced (`faultline: seed N; run directory D`).
pub fn announced_run_dir(output: &str) -> Option<PathBuf> {
    output
        .lines()
        .find_map(|l| l.split_once("; run directory "))
        .map(|(_, d)| PathBuf::from(d.trim()))
}

/// Faults of a schedule.json that took effect: start events without an error.
pub fn realised_faults(dir: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(dir.join(store::SCHEDULE)) else {
        return 0;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return 0;
    };
    v.get("faults").and_then(|f| f.as_array()).map_or(0, |fs| {
        fs.iter()
            .filter(|f| f.get("action").and_then(|a| a.as_str()) == Some("start"))
            .filter(|f| f.pointer("/detail/error").is_none())
            .count() as u64
    })
}

/// Fills a record from a finished run directory (what results.json and schedule.json say).
pub fn read_run_dir(dir: &Path, rec: &mut RunRecord) -> Result<(), String> {
    let r = RunResults::read(&dir.join(store::RESULTS)).map_err(|e| e.to_string())?;
    rec.valid = Some(r.valid);
    rec.ok_ops = r.counts.ok;
    rec.fingerprint = Fingerprint::of(&r.verdicts);
    rec.faults = realised_faults(dir);
    Ok(())
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Waits for `child` until `deadline`; None if it is still running then.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` non-empty lines of `text` that are not progress phases.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| l.contains("error") || l.contains("failed") || l.contains("faultline: "))
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

impl ChildRun {
    /// Runs it to the end (or the limit) and reads back what it left. `rec` arrives with its
    /// case, seed and command set.
    pub fn run(&self, mut rec: RunRecord) -> RunRecord {
        let t0 = Instant::now();
        let outcome = self.spawn_and_wait();
        rec.elapsed_s = t0.elapsed().as_secs_f64();
        let mut output = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut output);
        }
        match outcome {
            Ok((code, timed_out)) => {
                rec.exit_code = code;
                rec.timed_out = timed_out;
            }
            Err(e) => {
                rec.error = Some(format!("could not start {}: {e}", self.exe.display()));
                return rec;
            }
        }
        let Some(dir) = announced_run_dir(&output) else {
            rec.error = Some(tail(&output, 3));
            return rec;
        };
        rec.run_dir = Some(dir.display().to_string());
        if let Err(e) = read_run_dir(&dir, &mut rec) {
            rec.error = Some(format!("{e}; {}", tail(&output, 3)));
        } else if rec.exit_code == Some(255) {
            rec.error = Some(tail(&output, 3));
        }
        rec
    }

    /// (exit code, whether it was stopped for running past the limit).
    fn spawn_and_wait(&self) -> std::io::Result<(Option<i32>, bool)> {
        let log = std::fs::File::create(&self.log)?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args)
            .arg("--store")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A suite started in the background (`nohup faultline suite ... &`, a CI step) has
        // SIGINT ignored, and a child inherits that: the ^C below would do nothing for 60 s.
        // SAFETY: signal(2) is async-signal-safe; it resets only the child's disposition.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::signal(libc::SIGINT, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let start = Instant::now();
        if let Some(st) = wait_until(&mut child, start + self.wall_limit)? {
            return Ok((st.code(), false));
        }
        // past the limit: a first ^C ends the run early and still heals, checks and reports
        signal(pid, nix::sys::signal::Signal::SIGINT);
        if let Some(st) = wait_until(&mut child, Instant::now() + AFTER_INTERRUPT)? {
            return Ok((st.code(), true));
        }
        signal(pid, nix::sys::signal::Signal::SIGTERM);
        if let Some(st) = wait_until(&mut child, Instant::now() + AFTER_TERM)? {
            return Ok((st.code(), true));
        }
        let _ = child.kill();
        let st = child.wait()?;
        Ok((st.code(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_announced_run_directory() {
        let out =
            "faultline: warm-up\nfaultline: seed 7; run directory store/raft-kv/20260101T000000\n";
        assert_eq!(
            announced_run_dir(out),
            Some(PathBuf::from("store/raft-kv/20260101T000000"))
        );
        assert_eq!(announced_run_dir("nothing"), None);
    }

    #[test]
    fn counts_faults_that_took_effect() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("schedule.json"),
            r#"{"faults":[{"action":"start","detail":{}},{"action":"stop","detail":{}},
                {"action":"start","detail":{"error":"nft failed"}},{"action":"start","detail":{}}]}"#,
        )
        .unwrap();
        assert_eq!(realised_faults(d.path()), 2);
        assert_eq!(realised_faults(&d.path().join("missing")), 0);
    }

    #[test]
    fn a_run_past_its_limit_is_interrupted() {
        // a shell sleeping stands in for a wedged run (it ignores `--store DIR`, its $0 $1)
        let d = tempfile::tempdir().unwrap();
        let c = ChildRun {
            exe: "sh".into(),
            args: vec!["-c".into(), "exec sleep 30".into()],
            store: d.path().into(),
            log: d.path().join("log"),
            wall_limit: Duration::from_millis(300),
        };
        let t0 = Instant::now();
        let rec = c.run(RunRecord::default());
        assert!(rec.timed_out, "{rec:?}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(rec.exit_code, None, "killed by a signal");
        assert!(rec.run_dir.is_none());
    }
}
