//! faultline against an external cluster, for real: network namespaces stand in for remote
//! hosts on a private subnet (10.213.X.0/24, apart from the harness's own 10.211.0.0/16),
//! each running Debian's `sshd` on its own address with a host key and an authorized key
//! made for the test. The bundled Raft nodes (or Debian's etcd) are started on those hosts
//! over SSH; faultline then reaches them through SSH alone (`run --cluster`,
//! `cleanup --cluster`).
//!
//! Needs root, `sshd` (openssh-server), `ssh`, `nft`, `ip` and a release build of
//! `faultline-raft` (the etcd test: `/usr/bin/etcd`, etcd-server); without them the tests
//! skip, and under CI=true they fail.
//!
//! Namespaces are named `sx<tag>h<i>` (not `fl-`: `faultline cleanup` of local runs removes
//! orphaned `fl-` namespaces, and these are no run's).

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn need(test: &str) -> bool {
    need_also(test, &[])
}

/// `need`, and the extra `(binary, package)` pairs too.
fn need_also(test: &str, extra: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root".to_string());
    }
    for (bin, pkg) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/sbin/nft", "nftables"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        if !Path::new(bin).exists() {
            missing.push(format!("{bin} ({pkg}; scripts/install-deps)"));
        }
    }
    if !raft_bin().exists() {
        missing.push(format!(
            "{} (cargo build --release -p faultline-raft)",
            raft_bin().display()
        ));
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: CI=true and this machine lacks {}",
            missing.join(", ")
        );
    }
    eprintln!("SKIP {test}: missing {}", missing.join(", "));
    false
}

fn raft_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/faultline-raft")
}

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Hosts on one bridge, each a namespace with its own sshd.
struct Hosts {
    tag: String,
    dir: tempfile::TempDir,
    octet: u8,
    ns: Vec<String>,
    sshd: Vec<Child>,
    ids: Vec<String>,
}

impl Hosts {
    /// `n` hosts; `no_nft` lists hosts (1-based) whose ssh sessions get a PATH without nft.
    fn new(n: usize, test_no: u8, no_nft: &[usize]) -> Hosts {
        let pid = std::process::id() % 10_000;
        let tag = format!("{pid}{}", (b'a' + test_no) as char);
        let used = sh_ok("ip -4 route show table all; ip -4 -o addr");
        let octet = (20..250)
            .map(|o| ((o as u32 + pid * 7 + test_no as u32 * 37) % 230 + 20) as u8)
            .find(|o| !used.contains(&format!("10.213.{o}.")))
            .expect("a free 10.213.X.0/24");
        let dir = tempfile::Builder::new()
            .prefix("fl-test-ssh-")
            .tempdir()
            .unwrap();
        let mut h = Hosts {
            tag,
            dir,
            octet,
            ns: Vec::new(),
            sshd: Vec::new(),
            ids: (1..=n).map(|i| format!("n{i}")).collect(),
        };
        let d = h.dir.path().to_path_buf();
        sh_ok(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f {d}/host_key && \
             ssh-keygen -q -t ed25519 -N '' -f {d}/id && cp {d}/id.pub {d}/authorized_keys && \
             mkdir -p /run/sshd && chmod 0755 /run/sshd",
            d = d.display()
        ));
        let hostpub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let br = h.bridge();
        sh_ok(&format!(
            "ip link add {br} type bridge && ip addr add 10.213.{octet}.1/24 dev {br} && \
             ip link set {br} up"
        ));
        let mut known = String::new();
        for i in 1..=n {
            let ns = format!("sx{}h{i}", h.tag);
            let veth = format!("sx{}v{i}", h.tag);
            let a = h.addr(i);
            sh_ok(&format!(
                "ip netns add {ns} && ip link add {veth} type veth peer name eth0 netns {ns} && \
                 ip link set {veth} master {br} up && ip -n {ns} addr add {a}/24 dev eth0 && \
                 ip -n {ns} link set eth0 up && ip -n {ns} link set lo up"
            ));
            h.ns.push(ns.clone());
            let mut cfg = format!(
                "ListenAddress {a}\nPort 22\nHostKey {d}/host_key\nPidFile {d}/sshd{i}.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nMaxSessions 64\nMaxStartups 64\nLogLevel ERROR\n",
                d = d.display()
            );
            if no_nft.contains(&i) {
                cfg.push_str("SetEnv PATH=/usr/bin:/bin\n");
            }
            let cfg_path = d.join(format!("sshd{i}.conf"));
            std::fs::write(&cfg_path, cfg).unwrap();
            let log = std::fs::File::create(d.join(format!("sshd{i}.log"))).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            h.sshd.push(child);
            known.push_str(&format!("{a} {hostpub}"));
            std::fs::create_dir_all(d.join(format!("h{i}"))).unwrap();
        }
        std::fs::write(d.join("known_hosts"), known).unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host 10.213.{octet}.*\n  User root\n  IdentityFile {d}/id\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                d = d.display()
            ),
        )
        .unwrap();
        // sshd is up when a command goes through
        let t = Instant::now();
        for i in 1..=n {
            loop {
                let o = h.ssh(i, "true");
                if o.status.success() {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(15),
                    "sshd on host {i} did not answer: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        h
    }

    fn bridge(&self) -> String {
        format!("sx{}br", self.tag)
    }

    fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.octet, 10 + i as u8)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cmd` on host `i` over ssh (the test's own client, not faultline's).
    fn ssh(&self, i: usize, cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.path().join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=3"])
            .arg(self.addr(i).to_string())
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ssh_ok(&self, i: usize, cmd: &str) -> String {
        let o = self.ssh(i, cmd);
        assert!(
            o.status.success(),
            "host {i}: `{cmd}`: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The shell command that starts node `i` on its host (daemonised, pid in a file).
    fn start_cmd(&self, i: usize, data: &str, bugs: &[&str]) -> String {
        let peers: Vec<String> = (1..=self.ids.len())
            .filter(|j| *j != i)
            .map(|j| format!("n{j}={}:8000", self.addr(j)))
            .collect();
        let h = self.path().join(format!("h{i}"));
        let bug_args: String = bugs.iter().map(|b| format!(" --bug {b}")).collect();
        format!(
            "cd {h} || exit 1; setsid {bin} --id n{i} --listen {a}:8000 --peers {p} --data-dir {h}/{data}{bug_args} \
             </dev/null >>{h}/node.log 2>&1 & echo $! > {h}/node.pid",
            h = h.display(),
            bin = raft_bin().display(),
            a = self.addr(i),
            p = peers.join(",")
        )
    }

    /// Starts every Raft node over SSH.
    fn start_raft(&self, data: &str, bugs: &[&str]) {
        for i in 1..=self.ids.len() {
            self.ssh_ok(i, &self.start_cmd(i, data, bugs));
        }
    }

    fn raft_pid(&self, i: usize) -> Option<i32> {
        pid_in(&self.path().join(format!("h{i}/node.pid")))
    }

    /// A fresh cluster (the old one stopped): an external cluster keeps its data between
    /// runs, and a run's history starts from empty registers.
    fn fresh_raft(&self, data: &str, bugs: &[&str]) {
        self.stop_raft();
        self.start_raft(data, bugs);
    }

    /// Stops every Raft node this test started (by pid; resumed first if stopped).
    fn stop_raft(&self) {
        for i in 1..=self.ids.len() {
            if let Some(pid) = self.raft_pid(i) {
                kill_ours(pid, &raft_bin().display().to_string());
            }
        }
    }

    /// An inventory for these hosts: with ssh (and a pid file and restart command), or
    /// endpoints only.
    fn inventory(&self, name: &str, with_ssh: bool, data: &str, bugs: &[&str]) -> PathBuf {
        let mut t = format!(
            "# made by tests/cluster_ssh.rs\nsystem = \"raft\"\nssh_config = \"ssh_config\"\n\
             journal_dir = \"{}/journal\"\nssh_timeout_s = 10\n",
            self.path().display()
        );
        for i in 1..=self.ids.len() {
            t.push_str(&format!(
                "\n[[node]]\nid = \"n{i}\"\nclient_url = \"http://{}:8000\"\n",
                self.addr(i)
            ));
            if with_ssh {
                t.push_str(&format!(
                    "ssh = \"root@{}\"\npid_file = \"{h}/node.pid\"\nstart = {:?}\n\
                     logs = [\"{h}/node.log\"]\ndata_dir = \"{h}/{data}\"\n",
                    self.addr(i),
                    self.start_cmd(i, data, bugs),
                    h = self.path().join(format!("h{i}")).display()
                ));
            }
        }
        let p = self.path().join(name);
        std::fs::write(&p, t).unwrap();
        p
    }

    /// The shell command that starts Debian's etcd on host `i` (daemonised, pid in a file).
    /// Members are named `etcd-<i>`, not the inventory's `n<i>`: the harness must name them
    /// by their client URLs.
    fn etcd_start_cmd(&self, i: usize) -> String {
        let peers: Vec<String> = (1..=self.ids.len())
            .map(|j| format!("etcd-{j}=http://{}:2380", self.addr(j)))
            .collect();
        let h = self.path().join(format!("h{i}"));
        format!(
            "cd {h} || exit 1; setsid {ETCD} --name etcd-{i} --data-dir {h}/etcd-data \
             --listen-client-urls http://{a}:2379 --advertise-client-urls http://{a}:2379 \
             --listen-peer-urls http://{a}:2380 --initial-advertise-peer-urls http://{a}:2380 \
             --initial-cluster {p} --initial-cluster-state new --initial-cluster-token sx{t} \
             --heartbeat-interval 100 --election-timeout 1000 --logger zap --log-outputs stderr \
             </dev/null >>{h}/etcd.log 2>&1 & echo $! > {h}/etcd.pid",
            h = h.display(),
            a = self.addr(i),
            p = peers.join(","),
            t = self.tag
        )
    }

    /// Starts etcd on every host over SSH and waits until every member says it is healthy.
    fn start_etcd(&self) {
        for i in 1..=self.ids.len() {
            self.ssh_ok(i, &self.etcd_start_cmd(i));
        }
        let t = Instant::now();
        for i in 1..=self.ids.len() {
            loop {
                let out = sh_ok(&format!(
                    "curl -s -m 2 http://{}:2379/health || true",
                    self.addr(i)
                ));
                if out.contains("\"health\":\"true\"") {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "etcd on host {i} not healthy: {out}\n{}",
                    std::fs::read_to_string(self.path().join(format!("h{i}/etcd.log")))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn etcd_pid(&self, i: usize) -> Option<i32> {
        pid_in(&self.path().join(format!("h{i}/etcd.pid")))
    }

    /// Stops every etcd this test started (by the pid its start command wrote).
    fn stop_etcd(&self) {
        for i in 1..=self.ids.len() {
            if let Some(pid) = self.etcd_pid(i) {
                kill_ours(pid, ETCD);
            }
        }
    }

    /// An inventory for etcd on these hosts, over SSH (pid file, start and restart).
    fn etcd_inventory(&self, name: &str) -> PathBuf {
        let mut t = format!(
            "# made by tests/cluster_ssh.rs\nsystem = \"etcd\"\nssh_config = \"ssh_config\"\n\
             journal_dir = \"{}/journal\"\nssh_timeout_s = 10\n",
            self.path().display()
        );
        for i in 1..=self.ids.len() {
            let start = self.etcd_start_cmd(i);
            t.push_str(&format!(
                "\n[[node]]\nid = \"n{i}\"\nclient_url = \"http://{a}:2379\"\nssh = \"root@{a}\"\n\
                 pid_file = \"{h}/etcd.pid\"\nstart = {start:?}\nrestart = {start:?}\n\
                 logs = [\"{h}/etcd.log\"]\ndata_dir = \"{h}/etcd-data\"\n",
                a = self.addr(i),
                h = self.path().join(format!("h{i}")).display()
            ));
        }
        let p = self.path().join(name);
        std::fs::write(&p, t).unwrap();
        p
    }

    fn nft_tables(&self, i: usize) -> String {
        sh_ok(&format!("ip netns exec {} nft list tables", self.ns[i - 1]))
    }

    fn journals(&self) -> Vec<String> {
        std::fs::read_dir(self.path().join("journal"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if std::env::var_os("FL_SSH_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept {}", self.dir.path().display());
        }
        self.stop_raft();
        self.stop_etcd();
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.ns {
            let _ = sh(&format!("ip netns delete {ns}"));
        }
        let _ = sh(&format!("ip link delete {}", self.bridge()));
    }
}

const ETCD: &str = "/usr/bin/etcd";

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// SIGKILLs `pid` (resumed first, in case it is stopped) if it is still the process this
/// test started (its command line names `bin`), and waits for it to die.
fn kill_ours(pid: i32, bin: &str) {
    if faultline::cluster::procfs::start_ticks(pid).is_some() && cmdline(pid).contains(bin) {
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGKILL);
        }
        let t = Instant::now();
        while faultline::cluster::procfs::start_ticks(pid).is_some()
            && proc_state(pid) != Some('Z')
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// `faultline run --cluster INV ARGS... --store STORE` in `cwd`.
fn run_cluster(inv: &str, store: &str, args: &[&str], cwd: &Path) -> (i32, String) {
    let mut all = vec!["run", "--cluster", inv];
    all.extend_from_slice(args);
    all.extend(["--store", store]);
    faultline(&all, cwd)
}

fn faultline(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    common::code_and_text(&out)
}

fn results(store: &Path) -> Value {
    let p = store.join("latest/results.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn schedule(store: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(store.join("latest/schedule.json")).unwrap()).unwrap()
}

/// apply_us of every start event of `kinds` in a run's schedule.json.
fn apply_us(store: &Path, kinds: &[&str]) -> Vec<u64> {
    schedule(store)["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "start" && kinds.contains(&f["fault"].as_str().unwrap_or("")))
        .filter(|f| f["detail"].get("error").is_none())
        .filter_map(|f| f["detail"]["apply_us"].as_u64())
        .collect()
}

/// Every kill's stop event says how long each killed node took to answer its readiness probe
/// after the restart: the undo waited for it, as a local restart does.
fn assert_restarts_waited_until_ready(store: &Path) {
    let sched = schedule(store);
    let stops: Vec<&Value> = sched["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "stop" && f["fault"] == "kill")
        .collect();
    assert!(!stops.is_empty(), "no kill was undone");
    let mut waits = Vec::new();
    for s in stops {
        assert!(s["detail"].get("not_ready").is_none(), "{s}");
        for t in s["targets"].as_array().unwrap() {
            let id = t.as_str().unwrap();
            let ms = s["detail"]["ready_ms"][id].as_u64();
            waits.push(ms.unwrap_or_else(|| panic!("{id} not waited for: {s}")));
        }
    }
    let (median, p90, n) = median_p90(waits);
    eprintln!("restart to ready over ssh: median {median} ms, p90 {p90} ms (n={n})");
}

fn median_p90(mut v: Vec<u64>) -> (u64, u64, usize) {
    v.sort();
    if v.is_empty() {
        return (0, 0, 0);
    }
    (
        v[v.len() / 2],
        v[(v.len() * 9 / 10).min(v.len() - 1)],
        v.len(),
    )
}

const MIXED: &str = r#"description = "partitions in one lane; pause the leader and kill+restart one node in the other"
start_after_s = 2.0
interval_s = [1.0, 2.0]
duration_s = [2.0, 3.5]

[[fault]]
kind = "partition"
grudge = "random-halves"

[[fault]]
kind = "partition"
grudge = "leader"

[[lane]]
name = "process"
start_after_s = 3.0
interval_s = [1.0, 2.0]
duration_s = [1.0, 2.5]

[[lane.fault]]
kind = "pause"
targets = "leader"

[[lane.fault]]
kind = "kill"
targets = "one"
"#;

/// Must-show 1 (Raft) and 5: a 5-node Raft over SSH under partition, pause and kill+restart
/// is VALID; with `stale-local-read` planted the anomaly is caught; the fault latency over
/// SSH against the same schedule on a local cluster.
#[test]
fn raft_over_ssh_valid_then_planted_bug_caught() {
    if !need("raft over ssh") {
        return;
    }
    let hosts = Hosts::new(5, 0, &[]);
    let work = hosts.path().to_path_buf();
    std::fs::write(work.join("mixed-ssh.toml"), MIXED).unwrap();
    hosts.start_raft("data", &[]);
    let inv = hosts.inventory("raft.toml", true, "data", &[]);
    let store = work.join("store");
    let s = store.display().to_string();
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &[
            "--workload",
            "kv",
            "--nemesis",
            "mixed-ssh.toml",
            "--time-limit",
            "20",
            "--seed",
            "3",
        ],
        &work,
    );
    eprintln!("{text}");
    assert_eq!(code, 0, "expected VALID over ssh:\n{text}");
    assert!(
        text.contains("n1: can kill, loss, partition, pause"),
        "{text}"
    );
    let r = results(&store);
    assert_eq!(r["valid"], true);
    assert!(r["counts"]["ok"].as_u64().unwrap() > 100, "{}", r["counts"]);
    assert_eq!(
        r["cluster"]["capabilities"]["n3"]["partition"]["available"],
        true
    );
    let sched = schedule(&store);
    let kinds: Vec<&str> = sched["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "start" && f["detail"].get("error").is_none())
        .filter_map(|f| f["fault"].as_str())
        .collect();
    for k in ["partition", "pause", "kill"] {
        assert!(kinds.contains(&k), "no {k} fault realised: {kinds:?}");
    }
    let remote_log = std::fs::read_to_string(store.join("latest/remote.log")).unwrap();
    assert!(
        remote_log.contains("nft"),
        "remote.log names the nft commands"
    );
    assert!(
        remote_log.contains("kill -STOP"),
        "remote.log names the signals"
    );
    assert_restarts_waited_until_ready(&store);
    assert!(
        store.join("latest/nodes/n1/node.log").exists(),
        "node log collected"
    );
    for i in 1..=5 {
        assert!(!hosts.nft_tables(i).contains("fl-"), "host {i}: table left");
        let pid = hosts.raft_pid(i).unwrap();
        assert_ne!(proc_state(pid), Some('T'), "host {i}: node left stopped");
    }
    assert!(
        hosts.journals().is_empty(),
        "journals left: {:?}",
        hosts.journals()
    );
    let ssh_lat = median_p90(apply_us(&store, &["partition", "pause", "kill"]));
    let ssh_part = median_p90(apply_us(&store, &["partition"]));

    // The same schedule on a local cluster, for the latency figure.
    let local_store = work.join("local-store");
    let (code, text) = faultline(
        &[
            "run",
            "--system",
            "raft",
            "--nodes",
            "5",
            "--workload",
            "kv",
            "--nemesis",
            "mixed-ssh.toml",
            "--time-limit",
            "20",
            "--seed",
            "3",
            "--store",
            local_store.to_str().unwrap(),
        ],
        &work,
    );
    assert_eq!(code, 0, "local run:\n{text}");
    let local_lat = median_p90(apply_us(&local_store, &["partition", "pause", "kill"]));
    let local_part = median_p90(apply_us(&local_store, &["partition"]));
    eprintln!(
        "FIGURE fault decision-to-in-force, 5 nodes, seed 3 (machine shared, loaded):\n  \
         ssh   all faults median {} us p90 {} us (n={}); partitions median {} us p90 {} us (n={})\n  \
         local all faults median {} us p90 {} us (n={}); partitions median {} us p90 {} us (n={})",
        ssh_lat.0,
        ssh_lat.1,
        ssh_lat.2,
        ssh_part.0,
        ssh_part.1,
        ssh_part.2,
        local_lat.0,
        local_lat.1,
        local_lat.2,
        local_part.0,
        local_part.1,
        local_part.2
    );

    // The planted bug, over SSH: the nodes restarted with it on fresh data dirs.
    let mut caught = false;
    for seed in ["6", "7", "8"] {
        let data = format!("data-bug{seed}");
        hosts.fresh_raft(&data, &["stale-local-read"]);
        let inv = hosts.inventory("raft-bug.toml", true, &data, &["stale-local-read"]);
        let (code, text) = run_cluster(
            inv.to_str().unwrap(),
            &s,
            &[
                "--workload",
                "kv",
                "--nemesis",
                "partition-leader",
                "--node-choice",
                "random",
                "--time-limit",
                "20",
                "--seed",
                seed,
            ],
            &work,
        );
        eprintln!("stale-local-read seed {seed}: exit {code}");
        assert!(code == 0 || code == 1, "{text}");
        if code == 1 {
            assert_eq!(results(&store)["valid"], false);
            caught = true;
            break;
        }
    }
    assert!(caught, "stale-local-read not caught over ssh in 3 seeds");
    assert!(
        hosts.journals().is_empty(),
        "journals left: {:?}",
        hosts.journals()
    );
}

const HOLD: &str = r#"description = "a partition and a pause, each held far longer than the test waits"
start_after_s = 0.5
interval_s = [1.0, 1.0]
duration_s = [120.0, 120.0]

[[fault]]
kind = "partition"
grudge = "halves"

[[lane]]
name = "process"
start_after_s = 0.5
interval_s = [1.0, 1.0]
duration_s = [120.0, 120.0]

[[lane.fault]]
kind = "pause"
targets = "one"
"#;

/// Must-show 2: the controller SIGKILLed while a partition and a pause are in force;
/// `cleanup --cluster` leaves no fl- table, no stopped process and no journal, a second
/// cleanup is a no-op, and a foreign nft table made before the run is untouched.
#[test]
fn sigkilled_controller_then_cleanup_undoes_exactly_its_faults() {
    if !need("sigkill + cleanup over ssh") {
        return;
    }
    let hosts = Hosts::new(3, 1, &[]);
    let work = hosts.path().to_path_buf();
    std::fs::write(work.join("hold.toml"), HOLD).unwrap();
    hosts.start_raft("data", &[]);
    for i in 1..=3 {
        sh_ok(&format!(
            "ip netns exec {} nft 'add table inet foreign; add chain inet foreign c {{ type filter hook input priority 5 ; policy accept ; }}; add rule inet foreign c tcp dport 9 drop'",
            hosts.ns[i - 1]
        ));
    }
    let foreign_before = sh_ok(&format!(
        "ip netns exec {} nft list table inet foreign",
        hosts.ns[0]
    ));
    let inv = hosts.inventory("raft.toml", true, "data", &[]);
    let store = work.join("store");
    let mut control = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "run",
            "--cluster",
            inv.to_str().unwrap(),
            "--nemesis",
            "hold.toml",
        ])
        .args(["--time-limit", "300", "--seed", "4", "--store"])
        .arg(&store)
        .current_dir(&work)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("control.err")).unwrap())
        .spawn()
        .unwrap();
    // wait until both faults are in force (schedule.json names their starts)
    let t = Instant::now();
    loop {
        let s = std::fs::read_to_string(store.join("latest/schedule.json")).unwrap_or_default();
        if s.contains("\"partition\"") && s.contains("\"pause\"") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "faults not started: {}",
            std::fs::read_to_string(work.join("control.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    control.kill().unwrap(); // SIGKILL: nothing healed
    control.wait().unwrap();
    let tables: Vec<String> = (1..=3).map(|i| hosts.nft_tables(i)).collect();
    assert!(
        tables.iter().any(|t| t.contains("fl-")),
        "no fl- table in force: {tables:?}"
    );
    let stopped: Vec<usize> = (1..=3)
        .filter(|i| proc_state(hosts.raft_pid(*i).unwrap()) == Some('T'))
        .collect();
    assert_eq!(stopped.len(), 1, "one node paused");
    assert_eq!(
        hosts.journals().len(),
        3,
        "a journal per host: {:?}",
        hosts.journals()
    );

    let (code, text) = faultline(&["cleanup", "--cluster", inv.to_str().unwrap()], &work);
    eprintln!("{text}");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("undid"), "{text}");
    for i in 1..=3 {
        let t = hosts.nft_tables(i);
        assert!(!t.contains("fl-"), "host {i}: {t}");
        assert!(
            t.contains("table inet foreign"),
            "host {i}: foreign table gone: {t}"
        );
        assert_ne!(
            proc_state(hosts.raft_pid(i).unwrap()),
            Some('T'),
            "host {i} still stopped"
        );
    }
    assert_eq!(
        sh_ok(&format!(
            "ip netns exec {} nft list table inet foreign",
            hosts.ns[0]
        )),
        foreign_before,
        "foreign table changed"
    );
    assert!(
        hosts.journals().is_empty(),
        "journals left: {:?}",
        hosts.journals()
    );
    let (code, text) = faultline(&["cleanup", "--cluster", inv.to_str().unwrap()], &work);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("nothing left"),
        "second cleanup not a no-op: {text}"
    );
    // the cluster works again: every node answers
    for i in 1..=3 {
        let out = sh_ok(&format!(
            "curl -s -m 3 http://{}:8000/status || true",
            hosts.addr(i)
        ));
        assert!(out.contains("\"role\""), "host {i} /status: {out}");
    }
}

/// Must-show 3 and 4: endpoints only, `--nemesis none` is checked and reported; a partition
/// schedule is refused before any op naming the missing access; a host without nft (its
/// sessions' PATH lacks it) makes the probe say so and the run is refused up front.
#[test]
fn endpoints_only_and_probe_refusals() {
    if !need("endpoints only") {
        return;
    }
    let hosts = Hosts::new(3, 2, &[3]);
    let work = hosts.path().to_path_buf();
    hosts.start_raft("data", &[]);
    let inv = hosts.inventory("endpoints.toml", false, "data", &[]);
    let store = work.join("store");
    let s = store.display().to_string();
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &["--nemesis", "none", "--time-limit", "8"],
        &work,
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(results(&store)["valid"], true);
    assert!(store.join("latest/report.html").exists());
    let runs_before = std::fs::read_dir(store.join("raft-kv-none").parent().unwrap())
        .unwrap()
        .count();
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &["--nemesis", "partition-halves", "--time-limit", "8"],
        &work,
    );
    assert_eq!(code, 254, "{text}");
    assert!(text.contains("partition"), "{text}");
    assert!(text.contains("endpoints only"), "{text}");
    assert!(text.contains("no `ssh`"), "{text}");
    assert!(
        !store.join("raft-kv-partition-halves").exists(),
        "no run was made"
    );
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), runs_before);

    // ... but the path between the clients and the nodes is the harness's own: delays and
    // resets there run, through a proxy on loopback, and the run stays VALID
    std::fs::write(
        work.join("client-path.toml"),
        "start_after_s = 1.0\ninterval_s = [0.5, 1.0]\nduration_s = [1.5, 2.5]\n\
         [[fault]]\nkind = \"msg-delay\"\nlinks = \"all\"\ndist = \"fixed\"\nms = 150.0\n\
         [[fault]]\nkind = \"conn-reset\"\nlinks = \"one\"\n",
    )
    .unwrap();
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &[
            "--nemesis",
            "client-path.toml",
            "--trace-messages",
            "--time-limit",
            "10",
            "--seed",
            "2",
        ],
        &work,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("through a proxy"), "{text}");
    let sched = schedule(&store);
    let mut kinds = std::collections::BTreeSet::new();
    for f in sched["faults"].as_array().unwrap() {
        assert!(f["detail"].get("error").is_none(), "{f}");
        if f["action"] == "stop" {
            assert!(f["detail"]["client_path"].is_array(), "{f}");
            kinds.insert(f["fault"].as_str().unwrap().to_string());
        }
    }
    assert!(kinds.contains("msg-delay"), "{sched}");
    let trace = std::fs::read_to_string(store.join("latest/messages.jsonl")).unwrap();
    let delayed = trace
        .lines()
        .filter(|l| l.contains("\"clients\"") && l.contains("\"delayed\""))
        .count();
    assert!(delayed > 10, "client requests delayed: {delayed}");

    // with ssh, host 3's sessions have no nft on PATH
    hosts.fresh_raft("d3", &[]);
    let inv = hosts.inventory("ssh.toml", true, "d3", &[]);
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &["--nemesis", "partition-halves", "--time-limit", "8"],
        &work,
    );
    assert_eq!(code, 254, "{text}");
    assert!(text.contains("n3: no `nft` on the host"), "{text}");
    assert!(
        text.contains("no partition"),
        "the probe table says so: {text}"
    );
    // pause needs no nft: that schedule runs
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &["--nemesis", "pause-leader", "--time-limit", "10"],
        &work,
    );
    assert_eq!(code, 0, "{text}");
    // --skip-unavailable drops the partitions and says so
    hosts.fresh_raft("d4", &[]);
    let inv = hosts.inventory("ssh4.toml", true, "d4", &[]);
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &[
            "--nemesis",
            "partition-halves",
            "--skip-unavailable",
            "--time-limit",
            "6",
        ],
        &work,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("dropping partition faults"), "{text}");
    for i in 1..=3 {
        assert!(!hosts.nft_tables(i).contains("fl-"));
    }
    assert!(
        hosts.journals().is_empty(),
        "journals left: {:?}",
        hosts.journals()
    );
}

/// A bad inventory: exit 254 naming the file, line and field, before anything is made.
#[test]
fn bad_inventory_names_file_line_field() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("bad.toml");
    std::fs::write(
        &inv,
        "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://10.9.9.9:8000\"\n\
         ssh = \"root@\"\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let (code, text) = faultline(
        &[
            "run",
            "--cluster",
            inv.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 254, "{text}");
    assert!(text.contains("bad.toml:5: `ssh`"), "{text}");
    assert!(!store.exists(), "nothing made");
    // every example in clusters/ parses
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters");
    let mut n = 0;
    for e in std::fs::read_dir(&examples).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "toml") {
            faultline::external::Inventory::load(&e.path()).unwrap_or_else(|err| panic!("{err}"));
            n += 1;
        }
    }
    assert!(n >= 2, "examples in clusters/");
}

/// A run's own key namespace: two runs on one Raft cluster that keeps its data (same nodes,
/// same data dirs, nothing restarted between them) are both VALID. Without the per-run
/// prefix the second run would send the first run's keys ("0", "1", ...) and request ids
/// ("0:0", ...): its first reads would see the first run's values (which no op of its
/// history wrote) and the nodes would answer its ops from their request-id cache without
/// applying them.
#[test]
fn two_runs_on_one_kept_cluster_are_both_valid() {
    if !need("two runs on a kept cluster") {
        return;
    }
    let hosts = Hosts::new(3, 3, &[]);
    let work = hosts.path().to_path_buf();
    hosts.start_raft("data", &[]);
    let pids: Vec<i32> = (1..=3).map(|i| hosts.raft_pid(i).unwrap()).collect();
    let inv = hosts.inventory("raft.toml", true, "data", &[]);
    let store = work.join("store");
    let s = store.display().to_string();
    let mut prefixes = Vec::new();
    for (seed, nemesis) in [("3", "none"), ("4", "partition-halves")] {
        let (code, text) = run_cluster(
            inv.to_str().unwrap(),
            &s,
            &[
                "--workload",
                "kv",
                "--nemesis",
                nemesis,
                "--time-limit",
                "12",
                "--seed",
                seed,
            ],
            &work,
        );
        eprintln!("{text}");
        assert_eq!(code, 0, "run with seed {seed} on the kept cluster:\n{text}");
        let r = results(&store);
        assert_eq!(r["valid"], true);
        assert!(r["counts"]["ok"].as_u64().unwrap() > 50, "{}", r["counts"]);
        let p = r["key_prefix"].as_str().unwrap().to_string();
        assert_eq!(r["cluster"]["key_prefix"], p.as_str());
        assert!(p.starts_with("fl") && p.ends_with('-'), "{p}");
        assert!(text.contains(&format!("keys prefixed `{p}`")), "{text}");
        // every key the history names is in the run's namespace
        let history = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap();
        for line in history.lines().filter(|l| l.contains("\"invoke\"")) {
            let ev: Value = serde_json::from_str(line).unwrap();
            if let Some(k) = ev.get("key").and_then(Value::as_str) {
                assert!(k.starts_with(&p), "key {k} outside {p}: {line}");
            }
        }
        prefixes.push(p);
    }
    assert_ne!(prefixes[0], prefixes[1], "each run its own namespace");
    // the same processes served both runs: the data was kept
    let after: Vec<i32> = (1..=3).map(|i| hosts.raft_pid(i).unwrap()).collect();
    assert_eq!(pids, after, "a node was restarted between the runs");
    for (i, pid) in after.iter().enumerate() {
        assert!(
            matches!(proc_state(*pid), Some(c) if c != 'Z' && c != 'T'),
            "host {}: node not running",
            i + 1
        );
        assert!(!hosts.nft_tables(i + 1).contains("fl-"));
    }
    assert!(hosts.journals().is_empty(), "{:?}", hosts.journals());
}

/// A kill with `wipe = true` over SSH: the killed node's data dir (the inventory's
/// `data_dir`) is emptied before the restart, and only the killed node's; the node comes back
/// and serves, and the run leaves no fl- table, journal or stopped process behind.
#[test]
fn a_wiping_kill_over_ssh_empties_only_the_victims_data_dir() {
    if !need("wipe over ssh") {
        return;
    }
    let hosts = Hosts::new(3, 5, &[]);
    let work = hosts.path().to_path_buf();
    let marker = |i: usize| hosts.path().join(format!("h{i}/data/marker"));
    for i in 1..=3 {
        std::fs::create_dir_all(marker(i).parent().unwrap()).unwrap();
        std::fs::write(marker(i), "kept unless wiped").unwrap();
    }
    hosts.start_raft("data", &[]);
    let inv = hosts.inventory("raft.toml", true, "data", &[]);
    let store = work.join("store");
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &store.display().to_string(),
        &[
            "--workload",
            "kv",
            "--nemesis",
            "kill-wipe",
            "--time-limit",
            "10",
            "--seed",
            "5",
        ],
        &work,
    );
    eprintln!("{text}");
    // a blank member may lose acknowledged writes (Raft assumes stable storage): the verdict
    // is the run's business, the mechanism is this test's
    assert!(code == 0 || code == 1, "exit {code}:\n{text}");
    let sched = schedule(&store);
    let kills: Vec<&Value> = sched["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "start" && f["fault"] == "kill")
        .collect();
    assert!(!kills.is_empty(), "no kill in 10 s: {sched}");
    let mut wiped = std::collections::BTreeSet::new();
    for k in &kills {
        assert_eq!(k["detail"]["wipe"], true, "{k}");
        assert!(k["detail"].get("error").is_none(), "{k}");
        for t in k["targets"].as_array().unwrap() {
            wiped.insert(t.as_str().unwrap()[1..].parse::<usize>().unwrap());
        }
    }
    for i in 1..=3 {
        assert_eq!(
            marker(i).exists(),
            !wiped.contains(&i),
            "host {i}: wiped {wiped:?}"
        );
    }
    let remote_log = std::fs::read_to_string(store.join("latest/remote.log")).unwrap();
    assert!(remote_log.contains("-mindepth 1 -delete"), "{remote_log}");
    assert_restarts_waited_until_ready(&store);
    for i in 1..=3 {
        let pid = hosts.raft_pid(i).unwrap();
        assert!(
            matches!(proc_state(pid), Some(c) if c != 'Z' && c != 'T'),
            "host {i}: node not running"
        );
        assert!(!hosts.nft_tables(i).contains("fl-"));
    }
    assert!(hosts.journals().is_empty(), "{:?}", hosts.journals());
}

/// Clock faults over SSH: faultline uploads the Raft binary to each host, starts it there
/// under libfaketime (`faketime = true`), moves one node's wall clock at a time while other
/// nodes are killed and restarted (under libfaketime again), and stops what it started when
/// the run ends. The probes' `clock_ms` show each bump; afterwards no node, upload, offset
/// file, journal or fl- table is left.
#[test]
fn clock_faults_over_ssh_on_nodes_faultline_starts_under_libfaketime() {
    if !need_also(
        "clock over ssh",
        &[(
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "libfaketime",
        )],
    ) {
        return;
    }
    let hosts = Hosts::new(3, 6, &[]);
    let work = hosts.path().to_path_buf();
    let mut t = format!(
        "system = \"raft\"\nssh_config = \"ssh_config\"\njournal_dir = \"{}/journal\"\n\
         ssh_timeout_s = 10\n",
        work.display()
    );
    for i in 1..=3 {
        let h = work.join(format!("h{i}"));
        let bin = h.join("bin/faultline-raft");
        let start = hosts.start_cmd(i, "data", &[]).replace(
            &raft_bin().display().to_string(),
            &bin.display().to_string(),
        );
        t.push_str(&format!(
            "\n[[node]]\nid = \"n{i}\"\nclient_url = \"http://{a}:8000\"\nssh = \"root@{a}\"\n\
             pid_file = \"{h}/node.pid\"\nstart = {start:?}\nfaketime = true\n\
             upload = {up:?}\nupload_to = \"{bin}\"\n",
            a = hosts.addr(i),
            h = h.display(),
            up = raft_bin().display().to_string(),
            bin = bin.display()
        ));
        std::fs::create_dir_all(h.join("bin")).unwrap();
    }
    let inv = work.join("faketime.toml");
    std::fs::write(&inv, t).unwrap();
    std::fs::write(
        work.join("clock-and-kill.toml"),
        "start_after_s = 1.0\ninterval_s = [1.0, 2.0]\nduration_s = [2.0, 3.0]\n\
         [[fault]]\nkind = \"clock\"\ntargets = \"one\"\nmode = \"bump\"\noffset_ms = [6000, 9000]\n\
         [[lane]]\nstart_after_s = 2.0\ninterval_s = [2.0, 3.0]\nduration_s = [1.0, 2.0]\n\
         [[lane.fault]]\nkind = \"kill\"\ntargets = \"one\"\n",
    )
    .unwrap();
    let store = work.join("store");
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &store.display().to_string(),
        &[
            "--workload",
            "kv",
            "--nemesis",
            "clock-and-kill.toml",
            "--time-limit",
            "14",
            "--seed",
            "8",
        ],
        &work,
    );
    eprintln!("{text}");
    assert_eq!(code, 0, "{text}");
    let caps: Value =
        serde_json::from_slice(&std::fs::read(store.join("latest/capabilities.json")).unwrap())
            .unwrap();
    for i in 1..=3 {
        assert_eq!(
            caps["nodes"][format!("n{i}")]["clock"]["available"],
            true,
            "{caps}"
        );
    }
    // each bump shows in the bumped node's clock_ms, against the run's own clock
    let mut skew: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap();
    for line in history.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let (Some(id), Some(clock)) =
            (ev["value"]["id"].as_str(), ev["value"]["clock_ms"].as_f64())
        else {
            continue;
        };
        if ev["process"] != "probe" {
            continue;
        }
        let d = clock - ev["time"].as_f64().unwrap() / 1e6;
        let e = skew.entry(id.to_string()).or_insert((d, d));
        *e = (e.0.min(d), e.1.max(d));
    }
    let sched = schedule(&store);
    let mut bumps = 0;
    let mut kills = 0;
    for f in sched["faults"].as_array().unwrap() {
        if f["action"] != "start" {
            continue;
        }
        assert!(f["detail"].get("error").is_none(), "{f}");
        if f["fault"] == "kill" {
            kills += 1;
        }
        if f["fault"] != "clock" {
            continue;
        }
        for (id, off) in f["detail"]["offset_ms"].as_object().unwrap() {
            let off = off.as_f64().unwrap().abs();
            let (lo, hi) = skew[id];
            assert!(
                hi - lo >= 0.8 * off,
                "{id}: bumped {off} ms, clock_ms spread {}",
                hi - lo
            );
            bumps += 1;
        }
    }
    assert!(
        bumps > 0 && kills > 0,
        "bumps {bumps}, kills {kills}: {sched}"
    );
    // a killed node came back under libfaketime too
    let remote_log = std::fs::read_to_string(store.join("latest/remote.log")).unwrap();
    assert!(remote_log.contains("LD_PRELOAD="), "{remote_log}");
    assert!(remote_log.contains("upload of"), "{remote_log}");
    for i in 1..=3 {
        let h = work.join(format!("h{i}"));
        let pid = hosts.raft_pid(i).unwrap();
        assert!(
            matches!(proc_state(pid), None | Some('Z') | Some('X')),
            "host {i}: the node faultline started is still running"
        );
        assert!(
            !h.join("bin/faultline-raft").exists(),
            "host {i}: upload left"
        );
        assert!(!hosts.nft_tables(i).contains("fl-"));
    }
    let left: Vec<_> = std::fs::read_dir(work.join("journal"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "journal dir: {left:?}");
}

/// Must-show 1 (etcd): a 3-node Debian etcd started over SSH (members named etcd-<i>, not
/// the inventory's ids) is VALID under partitions, pause and kill+restart in one schedule
/// with two lanes; clock faults are reported unavailable (etcd is a Go binary). Afterwards
/// no fl- table, no stopped process, no journal, and every member is up. A second run (set
/// workload) on the kept data is VALID too.
#[test]
fn etcd_over_ssh_valid_under_partition_pause_kill() {
    if !need_also("etcd over ssh", &[(ETCD, "etcd-server")]) {
        return;
    }
    let hosts = Hosts::new(3, 4, &[]);
    let work = hosts.path().to_path_buf();
    std::fs::write(work.join("mixed-ssh.toml"), MIXED).unwrap();
    hosts.start_etcd();
    let inv = hosts.etcd_inventory("etcd.toml");
    let store = work.join("store");
    let s = store.display().to_string();
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &[
            "--workload",
            "kv",
            "--nemesis",
            "mixed-ssh.toml",
            "--time-limit",
            "25",
            "--seed",
            "5",
        ],
        &work,
    );
    eprintln!("{text}");
    assert_eq!(code, 0, "expected VALID for etcd over ssh:\n{text}");
    let r = results(&store);
    assert_eq!(r["valid"], true);
    assert_eq!(r["system"], "etcd");
    assert!(r["counts"]["ok"].as_u64().unwrap() > 100, "{}", r["counts"]);
    let caps = &r["cluster"]["capabilities"];
    for n in ["n1", "n2", "n3"] {
        for k in ["partition", "pause", "kill"] {
            assert_eq!(caps[n][k]["available"], true, "{n} {k}: {caps}");
        }
        assert_eq!(caps[n]["clock"]["available"], false, "{n} clock: {caps}");
    }
    let sched = schedule(&store);
    let started: Vec<&Value> = sched["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "start" && f["detail"].get("error").is_none())
        .collect();
    let kinds: Vec<&str> = started.iter().filter_map(|f| f["fault"].as_str()).collect();
    for k in ["partition", "pause", "kill"] {
        assert!(kinds.contains(&k), "no {k} fault realised: {kinds:?}");
    }
    // `leader` targets resolved to inventory ids although the members are named etcd-<i>
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap();
    assert!(
        history.contains("\"leader\":\"n"),
        "no probe named a leader by inventory id"
    );
    assert!(
        !history.contains("\"leader\":\"etcd-"),
        "an etcd name leaked"
    );
    let remote_log = std::fs::read_to_string(store.join("latest/remote.log")).unwrap();
    assert!(
        remote_log.contains("kill -KILL"),
        "remote.log names the kill"
    );
    assert_restarts_waited_until_ready(&store);
    assert!(
        store.join("latest/nodes/n1/etcd.log").exists(),
        "node log collected"
    );
    let lat = median_p90(apply_us(&store, &["partition", "pause", "kill"]));
    eprintln!(
        "FIGURE etcd over ssh, 3 nodes, seed 5: fault decision-to-in-force median {} us p90 {} us (n={}); ops ok {} fail {} info {}",
        lat.0, lat.1, lat.2, r["counts"]["ok"], r["counts"]["fail"], r["counts"]["info"]
    );
    let check_clean = |when: &str| {
        for i in 1..=3 {
            let t = hosts.nft_tables(i);
            assert!(!t.contains("fl-"), "{when}: host {i}: table left: {t}");
            let pid = hosts.etcd_pid(i).unwrap();
            let st = proc_state(pid);
            assert!(
                matches!(st, Some(c) if c != 'T' && c != 'Z') && cmdline(pid).contains(ETCD),
                "{when}: host {i}: etcd pid {pid} not running ({st:?})"
            );
        }
        assert!(
            hosts.journals().is_empty(),
            "{when}: journals left: {:?}",
            hosts.journals()
        );
    };
    check_clean("after the kv run");
    let prefix1 = r["key_prefix"].as_str().unwrap().to_string();

    // The kept cluster again, with the set workload (its storage key in the namespace).
    let (code, text) = run_cluster(
        inv.to_str().unwrap(),
        &s,
        &[
            "--workload",
            "set",
            "--nemesis",
            "partition-halves",
            "--time-limit",
            "12",
            "--seed",
            "6",
        ],
        &work,
    );
    eprintln!("{text}");
    assert_eq!(code, 0, "set run on the kept etcd:\n{text}");
    let r = results(&store);
    assert_eq!(r["valid"], true);
    assert_ne!(r["key_prefix"].as_str().unwrap(), prefix1);
    check_clean("after the set run");
}
