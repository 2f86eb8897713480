//! Starts real node processes on loopback (for multi-process tests and benchmarks), any
//! binary taking the kit's common command line. Each node logs to `DIR/<id>.stderr`; every
//! child is killed on drop.

use serde_json::Value;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalNode {
    pub id: String,
    pub addr: String,
    pub dir: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl LocalNode {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

pub struct LocalCluster {
    pub nodes: Vec<LocalNode>,
    bin: PathBuf,
    base: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    client: reqwest::Client,
}

/// Free loopback ports (bound then released: good enough for tests on one machine).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// How often `start` tries fresh ports before giving up.
const START_ATTEMPTS: usize = 5;

/// The `id` in `GET /status` at `addr` (plain HTTP/1.0 on a blocking socket, so `start` can
/// stay synchronous), or None when nothing answers with a JSON status.
fn status_id(addr: &str) -> Option<String> {
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let body = reply.split_once("\r\n\r\n")?.1;
    let v: Value = serde_json::from_str(body).ok()?;
    v["id"].as_str().map(str::to_string)
}

impl LocalCluster {
    /// Starts `n` nodes `n1..`, data under `base`, each with `extra` arguments (e.g. `--bug`).
    pub fn start(bin: &Path, n: usize, base: &Path, extra: &[String]) -> std::io::Result<Self> {
        Self::start_with_env(bin, n, base, extra, &[])
    }

    /// As `start`, with extra environment variables for every node (e.g. LD_PRELOAD); `{id}` in
    /// a value becomes the node's id (e.g. one libfaketime offset file per node).
    pub fn start_with_env(
        bin: &Path,
        n: usize,
        base: &Path,
        extra: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        // A port from `free_ports` can be taken (e.g. as some connection's ephemeral port)
        // before its node binds it; that node exits, so the cluster starts again on new ports.
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let mut c = Self::spawn(bin, n, base, extra, env)?;
            match c.wait_started(Duration::from_secs(10)) {
                Ok(()) => return Ok(c),
                Err(e) => last = Some(e),
            }
            let dirs: Vec<PathBuf> = c.nodes.iter().map(|n| n.dir.clone()).collect();
            drop(c);
            for d in dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no start attempt")))
    }

    fn spawn(
        bin: &Path,
        n: usize,
        base: &Path,
        extra: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        let ports = free_ports(n)?;
        let nodes = (0..n)
            .map(|i| LocalNode {
                id: format!("n{}", i + 1),
                addr: format!("127.0.0.1:{}", ports[i]),
                dir: base.join(format!("n{}", i + 1)),
                child: None,
                paused: false,
            })
            .collect();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(std::io::Error::other)?;
        let mut c = LocalCluster {
            nodes,
            bin: bin.to_path_buf(),
            base: base.to_path_buf(),
            extra: extra.to_vec(),
            env: env.to_vec(),
            client,
        };
        for i in 0..n {
            c.restart(i)?;
        }
        Ok(c)
    }

    /// Blocks until every node answers `/status` with its own id (so no other process holds
    /// its port); a node that exited first is an error naming it, with its stderr's last line.
    fn wait_started(&mut self, timeout: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.nodes.len() {
            loop {
                let node = &mut self.nodes[i];
                if let Some(child) = node.child.as_mut()
                    && let Some(status) = child.try_wait()?
                {
                    let id = node.id.clone();
                    let stderr = self.stderr(i);
                    let last = stderr.lines().last().unwrap_or("").to_string();
                    return Err(std::io::Error::other(format!(
                        "{id} exited at start ({status}): {last}"
                    )));
                }
                if status_id(&node.addr).as_deref() == Some(node.id.as_str()) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("{} did not answer /status within {timeout:?}", node.id),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// (Re)starts node `i` on its data directory.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.id != self.nodes[i].id)
            .map(|n| format!("{}={}", n.id, n.addr))
            .collect();
        let node = &self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.base.join(format!("{}.stderr", node.id)))?;
        let child = Command::new(&self.bin)
            .args([
                "--id",
                &node.id,
                "--listen",
                &node.addr,
                "--peers",
                &peers.join(","),
            ])
            .arg("--data-dir")
            .arg(&node.dir)
            .args(&self.extra)
            .envs(
                self.env
                    .iter()
                    .map(|(k, v)| (k, v.replace("{id}", &node.id))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// SIGKILL node `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if self.nodes[i].paused {
            let _ = self.pause(i, false);
        }
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) node `i` (our own child, by pid).
    pub fn pause(&mut self, i: usize, stop: bool) -> std::io::Result<()> {
        let Some(pid) = self.nodes[i].pid() else {
            return Ok(());
        };
        let sig = if stop { "-STOP" } else { "-CONT" };
        let st = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()?;
        if !st.success() {
            return Err(std::io::Error::other(format!("kill {sig} {pid} failed")));
        }
        self.nodes[i].paused = stop;
        Ok(())
    }

    pub fn stderr(&self, i: usize) -> String {
        std::fs::read_to_string(self.base.join(format!("{}.stderr", self.nodes[i].id)))
            .unwrap_or_default()
    }

    pub async fn post(&self, i: usize, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let url = format!("http://{}{path}", self.nodes[i].addr);
        let resp = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, v))
    }

    pub async fn get(&self, i: usize, path: &str) -> Result<Value, String> {
        let url = format!("http://{}{path}", self.nodes[i].addr);
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        resp.json::<Value>().await.map_err(|e| e.to_string())
    }

    /// Waits for a running node that calls itself leader and is acknowledged by a majority.
    pub async fn wait_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut views = Vec::new();
            for (i, n) in self.nodes.iter().enumerate() {
                if n.child.is_some()
                    && !n.paused
                    && let Ok(s) = self.get(i, "/status").await
                {
                    views.push((i, s));
                }
            }
            for (i, s) in &views {
                let id = &self.nodes[*i].id;
                let term = &s["term"];
                let backers = views
                    .iter()
                    .filter(|(_, v)| v["leader"] == *id.as_str() && v["term"] == *term)
                    .count();
                if s["role"] == "leader" && backers > self.nodes.len() / 2 {
                    return Some(*i);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits until node `i` has applied at least `index`.
    pub async fn wait_applied(&self, i: usize, index: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(s) = self.get(i, "/status").await
                && s["applied_index"].as_u64().unwrap_or(0) >= index
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_exits_at_start_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = LocalCluster::start(Path::new("/bin/false"), 2, tmp.path(), &[])
            .err()
            .expect("a cluster of /bin/false does not start");
        assert!(err.to_string().starts_with("n1 exited at start"), "{err}");
    }

    #[test]
    fn status_id_reads_whoever_holds_the_port() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\n{\"id\":\"someone-else\"}")
                .unwrap();
        });
        assert_eq!(status_id(&addr).as_deref(), Some("someone-else"));
        server.join().unwrap();
        let closed = free_ports(1).unwrap()[0];
        assert_eq!(status_id(&format!("127.0.0.1:{closed}")), None);
    }
}
