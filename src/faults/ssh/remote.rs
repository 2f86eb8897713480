//! Commands on a remote host through the OpenSSH client binary: `ssh` honours
//! `~/.ssh/config` (or the inventory's `ssh_config`), the agent and the user's keys. One
//! ControlMaster per host multiplexes every command over one connection; each command has a
//! timeout; every command and its result is appended to `remote.log`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::external::inventory::{SshDest, sh_quote};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{host}: cannot run `ssh`: {source}")]
    Spawn {
        host: String,
        source: std::io::Error,
    },
    #[error("{host}: `{command}` took longer than {ms} ms")]
    Timeout {
        host: String,
        command: String,
        ms: u64,
    },
    #[error("{host}: unreachable over ssh: {stderr}")]
    Unreachable { host: String, stderr: String },
    #[error("{host}: `{command}` exited {code}: {stderr}")]
    Failed {
        host: String,
        command: String,
        code: i32,
        stderr: String,
    },
}

/// What a remote command printed and how it ended.
#[derive(Clone, Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `remote.log` in the run directory (or wherever cleanup writes it): one block per command.
#[derive(Clone)]
pub struct RemoteLog(Option<Arc<Mutex<std::fs::File>>>);

impl RemoteLog {
    pub fn create(path: &Path) -> std::io::Result<RemoteLog> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RemoteLog(Some(Arc::new(Mutex::new(f)))))
    }
    pub fn none() -> RemoteLog {
        RemoteLog(None)
    }
    fn write(&self, host: &str, command: &str, result: &str, took: Duration) {
        let Some(f) = &self.0 else { return };
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            f,
            "[{at:.3}] {host} ({} ms)\n$ {}\n{}",
            took.as_millis(),
            command.replace('\n', "\n  "),
            result.trim_end()
        );
        let _ = f.flush();
    }
}

/// A long-lived `sh` on the host, read from our pipe: a command through it costs no
/// process start on either side (on a loaded machine, most of an ssh command's time).
struct Shell {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    out: tokio::io::BufReader<tokio::process::ChildStdout>,
    err: tokio::io::BufReader<tokio::process::ChildStderr>,
    n: u64,
}

enum ShellError {
    /// The command was never sent: running it another way is safe.
    NotSent,
    /// Sent, then the shell went away: the command may have run.
    Lost(String),
}

impl Shell {
    async fn exec(&mut self, script: &str) -> Result<Output, ShellError> {
        use tokio::io::AsyncWriteExt;
        self.n += 1;
        let marker = format!("__faultline_end_{}_{}", std::process::id(), self.n);
        let cmd = format!(
            "( {script}\n) </dev/null; printf '\\n{marker} %d\\n' $?; printf '\\n{marker}\\n' >&2\n"
        );
        if self.stdin.write_all(cmd.as_bytes()).await.is_err() || self.stdin.flush().await.is_err()
        {
            return Err(ShellError::NotSent);
        }
        let m = marker.as_str();
        let read_out = lines_until(&mut self.out, |l| {
            l.strip_prefix(m)
                .map(|rc| rc.trim().parse::<i32>().unwrap_or(-1))
        });
        let read_err = lines_until(&mut self.err, |l| (l == m).then_some(()));
        let (o, e) = tokio::join!(read_out, read_err);
        let ((mut out, code), (mut err, ())) =
            (o.map_err(ShellError::Lost)?, e.map_err(ShellError::Lost)?);
        // the marker's own leading newline
        if out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        if err.last().is_some_and(|l| l.is_empty()) {
            err.pop();
        }
        let join = |v: Vec<String>| {
            if v.is_empty() {
                String::new()
            } else {
                v.join("\n") + "\n"
            }
        };
        Ok(Output {
            code,
            stdout: join(out),
            stderr: join(err),
        })
    }
}

/// The lines read from `r` up to the one `end` recognises (not kept), and what it made of it.
async fn lines_until<R, T>(
    r: &mut R,
    end: impl Fn(&str) -> Option<T>,
) -> Result<(Vec<String>, T), String>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).await.map_err(|e| e.to_string())? == 0 {
            return Err("the remote shell ended".to_string());
        }
        let l = l.trim_end_matches('\n');
        if let Some(t) = end(l) {
            return Ok((lines, t));
        }
        lines.push(l.to_string());
    }
}

/// One host, reached through `ssh`.
pub struct Remote {
    pub dest: SshDest,
    config: Option<PathBuf>,
    control: PathBuf,
    log: RemoteLog,
    pub timeout: Duration,
    master: Mutex<bool>,
    shell: tokio::sync::Mutex<Option<Shell>>,
}

/// The exit status ssh itself uses for connection failures.
const SSH_FAILED: i32 = 255;

impl Remote {
    /// `control_dir` holds the ControlMaster socket (keep its path short: sockets are
    /// limited to ~100 bytes).
    pub fn new(
        dest: SshDest,
        config: Option<PathBuf>,
        control_dir: &Path,
        log: RemoteLog,
        timeout: Duration,
    ) -> Remote {
        let name = format!(
            "{}-{}",
            dest.host.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            dest.port.unwrap_or(22)
        );
        Remote {
            control: control_dir.join(name),
            dest,
            config,
            log,
            timeout,
            master: Mutex::new(false),
            shell: tokio::sync::Mutex::new(None),
        }
    }

    fn spawn_shell(&self) -> std::io::Result<Shell> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.base_args())
            .args(["-o", "ControlMaster=no"])
            .arg(self.dest.target())
            .arg("--")
            .arg("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        Ok(Shell {
            stdin: child.stdin.take().expect("piped"),
            out: tokio::io::BufReader::new(child.stdout.take().expect("piped")),
            err: tokio::io::BufReader::new(child.stderr.take().expect("piped")),
            child,
            n: 0,
        })
    }

    fn log_output(&self, script: &str, o: &Output, took: Duration) {
        self.log.write(
            &self.host(),
            script,
            &format!(
                "exit {}{}{}",
                o.code,
                if o.stdout.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nstdout: {}", o.stdout.trim())
                },
                if o.stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nstderr: {}", o.stderr.trim())
                }
            ),
            took,
        );
    }

    pub fn host(&self) -> String {
        self.dest.to_string()
    }

    /// A command that ran past `timeout` (started at `t`), logged.
    fn timed_out(&self, script: &str, timeout: Duration, t: Instant) -> RemoteError {
        self.log.write(
            &self.host(),
            script,
            &format!("timed out after {} ms", timeout.as_millis()),
            t.elapsed(),
        );
        RemoteError::Timeout {
            host: self.host(),
            command: script.into(),
            ms: timeout.as_millis() as u64,
        }
    }

    /// `user@host:port` with the port always given: names this host's journal.
    pub fn key(&self) -> String {
        format!("{}:{}", self.dest.target(), self.dest.port.unwrap_or(22))
    }

    fn base_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(c) = &self.config {
            a.push("-F".into());
            a.push(c.display().to_string());
        }
        if let Some(p) = self.dest.port {
            a.push("-p".into());
            a.push(p.to_string());
        }
        for o in [
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={}", self.timeout.as_secs().clamp(1, 30)),
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=2".into(),
            format!("ControlPath={}", self.control.display()),
        ] {
            a.push("-o".into());
            a.push(o);
        }
        a
    }

    /// Starts the host's ControlMaster (once); later commands share its connection. A
    /// failure is returned, and commands then connect one by one.
    pub async fn connect(&self) -> Result<(), RemoteError> {
        if *self.master.lock().unwrap() {
            return Ok(());
        }
        let t = Instant::now();
        // `-f` backgrounds the master after authentication: its stdio must not be our pipes
        // (a ControlPersist master holding them would keep every read open), so stderr goes
        // to a file read afterwards.
        let err_path = self.control.with_extension("err");
        let err_file = std::fs::File::create(&err_path).map_err(|e| RemoteError::Spawn {
            host: self.host(),
            source: e,
        })?;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.base_args())
            .args([
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=300",
                "-N",
                "-f",
            ])
            .arg(self.dest.target())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .kill_on_drop(true);
        let status = tokio::time::timeout(self.timeout, cmd.status()).await;
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let _ = std::fs::remove_file(&err_path);
        let shown = "ssh -o ControlMaster=yes -o ControlPersist=300 -N -f (master)";
        match status {
            Err(_) => {
                self.log
                    .write(&self.host(), shown, "timed out", t.elapsed());
                Err(RemoteError::Timeout {
                    host: self.host(),
                    command: shown.into(),
                    ms: self.timeout.as_millis() as u64,
                })
            }
            Ok(Err(e)) => Err(RemoteError::Spawn {
                host: self.host(),
                source: e,
            }),
            Ok(Ok(s)) if s.success() => {
                self.log.write(&self.host(), shown, "ok", t.elapsed());
                *self.master.lock().unwrap() = true;
                Ok(())
            }
            Ok(Ok(s)) => {
                self.log.write(
                    &self.host(),
                    shown,
                    &format!("exit {:?}\n{stderr}", s.code()),
                    t.elapsed(),
                );
                Err(RemoteError::Unreachable {
                    host: self.host(),
                    stderr: stderr.trim().to_string(),
                })
            }
        }
    }

    /// Runs `script` with `sh -c` on the host within `timeout` (default: the host's). An exit
    /// status of 255 from ssh is a connection failure; other statuses are the script's.
    pub async fn run_for(&self, script: &str, timeout: Duration) -> Result<Output, RemoteError> {
        let t = Instant::now();
        if *self.master.lock().unwrap() {
            let mut g = self.shell.lock().await;
            if g.is_none() {
                *g = self.spawn_shell().ok();
            }
            if let Some(sh) = g.as_mut() {
                match tokio::time::timeout(timeout, sh.exec(script)).await {
                    Ok(Ok(o)) => {
                        self.log_output(script, &o, t.elapsed());
                        return Ok(o);
                    }
                    Ok(Err(ShellError::NotSent)) => {
                        *g = None; // try once more the one-shot way, below
                    }
                    Ok(Err(ShellError::Lost(why))) => {
                        *g = None;
                        self.log.write(&self.host(), script, &why, t.elapsed());
                        return Err(RemoteError::Unreachable {
                            host: self.host(),
                            stderr: why,
                        });
                    }
                    Err(_) => {
                        *g = None;
                        return Err(self.timed_out(script, timeout, t));
                    }
                }
            }
        }
        self.one_shot(script, Stdio::null(), timeout, t).await
    }

    /// `script` in an ssh process of its own, `stdin` its standard input.
    async fn one_shot(
        &self,
        script: &str,
        stdin: Stdio,
        timeout: Duration,
        t: Instant,
    ) -> Result<Output, RemoteError> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.base_args())
            .args(["-o", "ControlMaster=no"])
            .arg(self.dest.target())
            .arg("--")
            .arg(format!("sh -c {}", sh_quote(script)))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| RemoteError::Spawn {
            host: self.host(),
            source: e,
        })?;
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Err(_) => return Err(self.timed_out(script, timeout, t)),
            Ok(Err(e)) => {
                return Err(RemoteError::Spawn {
                    host: self.host(),
                    source: e,
                });
            }
            Ok(Ok(o)) => o,
        };
        let o = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.log_output(script, &o, t.elapsed());
        if o.code == SSH_FAILED {
            return Err(RemoteError::Unreachable {
                host: self.host(),
                stderr: o.stderr.trim().to_string(),
            });
        }
        Ok(o)
    }

    /// Copies the local file `from` to `to` on the host, executable, replacing it at once
    /// (written beside it, then renamed); logged like a command.
    pub async fn upload(&self, from: &Path, to: &str) -> Result<(), RemoteError> {
        let spawn = |e| RemoteError::Spawn {
            host: self.host(),
            source: e,
        };
        let file = std::fs::File::open(from).map_err(spawn)?;
        let tmp = format!("{to}.fl-upload");
        let script = format!(
            "cat > {t} && chmod 755 {t} && mv -f {t} {to} # upload of {}",
            from.display(),
            t = sh_quote(&tmp),
            to = sh_quote(to)
        );
        let o = self
            .one_shot(
                &script,
                Stdio::from(file),
                self.timeout.max(Duration::from_secs(120)),
                Instant::now(),
            )
            .await?;
        if o.code != 0 {
            return Err(RemoteError::Failed {
                host: self.host(),
                command: script,
                code: o.code,
                stderr: o.stderr.trim().to_string(),
            });
        }
        Ok(())
    }

    pub async fn run(&self, script: &str) -> Result<Output, RemoteError> {
        self.run_for(script, self.timeout).await
    }

    /// `run`, with a non-zero exit an error.
    pub async fn check(&self, script: &str) -> Result<String, RemoteError> {
        let o = self.run(script).await?;
        if o.code != 0 {
            return Err(RemoteError::Failed {
                host: self.host(),
                command: script.into(),
                code: o.code,
                stderr: o.stderr.trim().to_string(),
            });
        }
        Ok(o.stdout)
    }

    /// The same host with its control socket in another directory (a dead run's).
    pub fn sibling(&self, control_dir: &Path) -> Remote {
        Remote::new(
            self.dest.clone(),
            self.config.clone(),
            control_dir,
            self.log.clone(),
            self.timeout,
        )
    }

    /// Whether a control socket exists for this host.
    pub fn has_socket(&self) -> bool {
        self.control.exists()
    }

    /// Stops the remote shell and the ControlMaster, if this started them.
    pub async fn close(&self) {
        if let Some(mut sh) = self.shell.lock().await.take() {
            drop(sh.stdin);
            let _ = tokio::time::timeout(Duration::from_secs(2), sh.child.wait()).await;
            let _ = sh.child.kill().await;
        }
        if !std::mem::take(&mut *self.master.lock().unwrap()) {
            return;
        }
        self.exit_master().await;
    }

    /// Asks a ControlMaster on this host's socket to exit (whoever started it).
    pub async fn exit_master(&self) {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.base_args())
            .args(["-O", "exit"])
            .arg(self.dest.target())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), cmd.status()).await;
        self.log
            .write(&self.host(), "ssh -O exit (master)", "done", Duration::ZERO);
    }
}
