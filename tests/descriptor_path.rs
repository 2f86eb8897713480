//! The descriptor path of a new user, mistake by mistake: each is bad input (exit 254) with a
//! message naming the file, the table and key or the node's answer, and leaves no run
//! directory (nor a store, nor `store/latest`) behind. Also: `faultline systems new` writes a
//! skeleton that parses, and libfaketime is preloaded only when the schedule has clock
//! faults. The tests that start nodes need root and nftables; `cargo test` builds pbkv.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::pbkv::{descriptor, descriptor_text, pbkv_binary};
use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};

/// `faultline run --system SYSTEM --nemesis NEMESIS --time-limit T --store STORE`.
fn run(store: &Path, system: &Path, nemesis: &str, time_limit: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--system"])
        .arg(system)
        .args([
            "--nemesis",
            nemesis,
            "--time-limit",
            time_limit,
            "--seed",
            "1",
        ])
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn says(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Bad input: exit 254, stderr exactly `faultline: {message}`, and no store was made.
fn assert_refused(out: &Output, store: &Path, message: &str) {
    assert_eq!(out.status.code(), Some(254), "{}", says(out));
    assert_eq!(
        stderr(out),
        format!("faultline: {message}"),
        "{}",
        says(out)
    );
    assert!(
        !store.exists(),
        "no run directory (nor store) was made: {:?}",
        std::fs::read_dir(store).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
}

/// `http://10.211.3.11:7000/x` -> `http://ADDR:7000/x` (the run's subnet is picked at start).
fn without_addresses(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("http://") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n > 0 {
            out.push_str("ADDR");
        }
        rest = &rest[n..];
    }
    out + rest
}

#[test]
fn a_descriptor_without_peers_names_the_table_and_what_it_is_for() {
    let tmp = common::run_dir("desc-no-peers");
    let text = descriptor_text(Path::new("/bin/true"), &[])
        .replace("[peers]\nformat = \"{id}={addr}:{client_port}\"\n", "");
    let sys = tmp.path().join("pbkv.toml");
    std::fs::write(&sys, text).unwrap();
    let store = tmp.path().join("store");
    let out = run(&store, &sys, "none", "1");
    assert_refused(
        &out,
        &store,
        &format!(
            "{}: [peers]: missing table: how each other node is written into `{{peers}}` in \
             `args`; add it with at least: [peers] format = \"{{id}}={{addr}}:{{client_port}}\"",
            sys.display()
        ),
    );
}

#[test]
fn a_ready_table_without_path_names_the_line_table_and_key() {
    let tmp = common::run_dir("desc-no-path");
    let text = descriptor_text(Path::new("/bin/true"), &[]).replace("path = \"/status\"\n", "");
    let line = text.lines().position(|l| l == "[ready]").unwrap() + 1;
    let sys = tmp.path().join("pbkv.toml");
    std::fs::write(&sys, text).unwrap();
    let store = tmp.path().join("store");
    let out = run(&store, &sys, "none", "1");
    assert_refused(
        &out,
        &store,
        &format!(
            "{}: line {line}: [ready]: missing key `path`: the HTTP path on the client URL \
             that answers 2xx once the node serves, e.g. path = \"/status\"",
            sys.display()
        ),
    );
}

#[test]
fn clock_faults_on_a_system_they_cannot_reach_are_refused_in_words() {
    let tmp = common::run_dir("desc-clock");
    let sys = descriptor(tmp.path(), Path::new("/bin/true"), &[]);
    let store = tmp.path().join("store");
    let out = run(&store, &sys, "clock-strobe", "1");
    assert_refused(
        &out,
        &store,
        "clock faults unsupported for this system (pbkv): the system descriptor says \
         `clock = \"unsupported\"`; nemesis `clock-strobe` has clock faults: pick one without \
         (none, flip-and-crash, kill-leader-long, kill-majority, kill-random, kill-wipe, \
         leader-flip, \
         leader-link, loss, partition-and-crash, partition-flip, partition-halves, partition-leader, \
         partition-ring, pause-leader, pause-leader-long) \
         or a schedule file without `clock` faults",
    );
    assert!(!stderr(&out).contains("::"), "no Rust API names");
}

#[test]
fn a_readiness_probe_answered_404_is_bad_input_and_leaves_no_run_directory() {
    if !common::capable("readiness 404") {
        return;
    }
    let tmp = common::run_dir("desc-ready-404");
    let text =
        descriptor_text(&pbkv_binary(), &[]).replace("path = \"/status\"", "path = \"/statuz\"");
    let sys = tmp.path().join("pbkv.toml");
    std::fs::write(&sys, text).unwrap();
    let store = tmp.path().join("store");
    let out = run(&store, &sys, "none", "2");
    assert_eq!(out.status.code(), Some(254), "{}", says(&out));
    assert_eq!(
        without_addresses(&stderr(&out)),
        format!(
            "faultline: {}: [ready]: node n1 answered the readiness probe GET \
             http://ADDR:7000/statuz with 404 Not Found (empty body); the node runs and is \
             reachable, so `path` (or `method`) in [ready] names something it does not serve \
             with 2xx",
            sys.display()
        ),
        "{}",
        says(&out)
    );
    assert!(
        !store.exists(),
        "the run directory, and the store it made, are gone"
    );

    // With a store that already holds a run, `latest` keeps pointing at that run.
    std::fs::create_dir_all(store.join("old/run1")).unwrap();
    std::os::unix::fs::symlink("old/run1", store.join("latest")).unwrap();
    let out = run(&store, &sys, "none", "2");
    assert_eq!(out.status.code(), Some(254), "{}", says(&out));
    assert_eq!(
        std::fs::read_link(store.join("latest")).unwrap(),
        Path::new("old/run1")
    );
    let left: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["latest", "old"], "no run directory left");
}

#[test]
fn systems_new_writes_a_skeleton_that_parses_and_never_overwrites() {
    let tmp = common::run_dir("systems-new");
    let new = || {
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["systems", "new", "mykv", "--dir"])
            .arg(tmp.path())
            .output()
            .unwrap()
    };
    let out = new();
    assert_eq!(out.status.code(), Some(0), "{}", says(&out));
    let path = tmp.path().join("mykv.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "binary",
        "args",
        "[peers]",
        "[ready]",
        "timeout_s",
        "node_choice",
    ] {
        assert!(text.contains(key), "skeleton mentions {key}:\n{text}");
    }
    // With the binary filled in it is a descriptor faultline loads.
    let filled = text.replace("binary = \"mykv\"", "binary = \"/bin/true\"");
    assert_ne!(filled, text);
    std::fs::write(&path, &filled).unwrap();
    let d = SystemDescriptor::load(path.to_str().unwrap()).unwrap();
    assert_eq!(d.name, "mykv");
    assert_eq!(d.resolve_binary().unwrap(), Path::new("/bin/true"));

    let again = new();
    assert_eq!(again.status.code(), Some(254), "{}", says(&again));
    assert_eq!(
        stderr(&again),
        format!(
            "faultline: {} exists; not overwriting it (remove it or pick another name)",
            path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), filled, "untouched");

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Test your own system"))
        .expect("README has a section `Test your own system`");
    assert!(
        section.contains("faultline systems new"),
        "the section mentions `faultline systems new`"
    );
}

/// The environment a running process was started with.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libfaketime_is_preloaded_only_for_clock_faults() {
    if !common::capable("faketime preload") {
        return;
    }
    let tmp = common::run_dir("faketime-preload");
    // pbkv is dynamically linked: with `clock = "auto"` libfaketime could reach it.
    let text =
        descriptor_text(&pbkv_binary(), &[]).replace("clock = \"unsupported\"", "clock = \"auto\"");
    let desc = SystemDescriptor::parse(&text, "pbkv.toml").unwrap();
    for clock_faults in [false, true] {
        let dir = tmp.path().join(format!("clock-{clock_faults}"));
        let mut cfg = ClusterConfig::new(1, &dir);
        cfg.clock_faults = clock_faults;
        let c = Cluster::start(desc.clone(), cfg).await.unwrap();
        let env = environ(c.pid("n1").unwrap());
        let preloaded = env
            .iter()
            .any(|v| v.starts_with("LD_PRELOAD=") && v.contains("faketime"));
        assert_eq!(preloaded, clock_faults, "{env:?}");
        assert_eq!(c.clock_support().is_supported(), clock_faults);
        c.teardown().await.unwrap();
    }

    // `faultline run` without clock faults starts nodes without it (their launch record
    // says what they were started with), with clock faults, with it.
    let sys = tmp.path().join("pbkv.toml");
    std::fs::write(&sys, &text).unwrap();
    for (nemesis, preloaded) in [("none", false), ("clock-strobe", true)] {
        let store = tmp.path().join(nemesis);
        let out = run(&store, &sys, nemesis, "2");
        assert!(matches!(out.status.code(), Some(0..=2)), "{}", says(&out));
        let launch: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(store.join("latest/nodes/n1/launch.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            launch["env"].get("LD_PRELOAD").is_some(),
            preloaded,
            "{nemesis}: {launch:#}"
        );
    }
}
