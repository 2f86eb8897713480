//! System descriptors: how to start node i of a system, probe its readiness, and which client
//! and status adapters speak to it. TOML, so a user adds a system without writing Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::ClusterError;
use super::param_condition::Condition;
use super::template::{self, Vars};
use crate::nemesis::fault::FaultKind;

/// Descriptors shipped in the binary, so `--system raft` works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("raft", include_str!("../../systems/raft.toml")),
    ("etcd", include_str!("../../systems/etcd.toml")),
    ("paxos", include_str!("../../systems/paxos.toml")),
    ("election", include_str!("../../systems/election.toml")),
    ("bully", include_str!("../../systems/bully.toml")),
    ("ring", include_str!("../../systems/ring.toml")),
    (
        "bully-gated",
        include_str!("../../systems/bully-gated.toml"),
    ),
    ("ring-gated", include_str!("../../systems/ring-gated.toml")),
    ("dynamo", include_str!("../../systems/dynamo.toml")),
    ("dynamo-lww", include_str!("../../systems/dynamo-lww.toml")),
    (
        "dynamo-vclock",
        include_str!("../../systems/dynamo-vclock.toml"),
    ),
    (
        "dynamo-sloppy",
        include_str!("../../systems/dynamo-sloppy.toml"),
    ),
    (
        "dynamo-lww-r1w1",
        include_str!("../../systems/dynamo-lww-r1w1.toml"),
    ),
];

/// Which client speaks to the system's nodes (the workload picks its client by this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAdapter {
    /// DESIGN.md's node protocol (`/kv/*`, `/txn`).
    Native,
    /// etcd's v3 JSON gateway (`/v3/kv/*`).
    Etcd,
}

/// How the runtime reads a node's role, term and leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusAdapter {
    /// `GET /status` of the node protocol.
    Native,
    /// `POST /v3/maintenance/status` and `/v3/cluster/member/list`.
    Etcd,
}

/// Whether libfaketime can move the node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Inspect the binary: dynamically linked and not Go means faketime works.
    Auto,
    Faketime,
    Unsupported,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// The port clients (and the readiness probe) use.
    pub client: u16,
    /// A separate peer port, if the system has one (else peers use the client port).
    pub peer: Option<u16>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peers {
    /// One peer, e.g. `"{id}={addr}:{peer_port}"`.
    pub format: String,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Whether `{peers}` lists the node itself too (etcd's `--initial-cluster` does).
    #[serde(default)]
    pub include_self: bool,
    /// How the harness proxies peer links (see `faults::proxy`): `l7` (HTTP/1.1), `l4`
    /// (opaque TCP) or `off` (the default: a descriptor opts in). When on, `{addr}` in
    /// `format` and `{peer_addr}` anywhere name the node's proxy address.
    #[serde(default = "default_proxy")]
    pub proxy: crate::faults::proxy::ProxyMode,
    /// L7: the JSON field of a peer request that holds a batch of one-way messages, which the
    /// proxy acknowledges (204) and delivers one by one (the bundled Raft's `msgs`).
    #[serde(default)]
    pub batch: Option<String>,
}

fn default_proxy() -> crate::faults::proxy::ProxyMode {
    crate::faults::proxy::ProxyMode::Off
}

fn default_separator() -> String {
    ",".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// HTTP path on the client URL that answers 2xx once the node serves.
    pub path: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Request body for POST probes.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "default_ready_timeout")]
    pub timeout_s: f64,
}

impl Ready {
    /// The readiness probe of the node serving at `base_url`.
    pub fn request(&self, http: &reqwest::Client, base_url: &str) -> reqwest::RequestBuilder {
        let url = format!("{base_url}{}", self.path);
        if self.method == "POST" {
            http.post(url).body(self.body.clone().unwrap_or_default())
        } else {
            http.get(url)
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_ready_timeout() -> f64 {
    20.0
}
fn default_stop_timeout() -> f64 {
    5.0
}
fn default_client_url() -> String {
    "http://{addr}:{client_port}".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    binary: String,
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    client: ClientAdapter,
    status: StatusAdapter,
    #[serde(default = "default_client_url")]
    client_url: String,
    ports: Ports,
    peers: Peers,
    ready: Ready,
    #[serde(default)]
    bug_args: Option<Vec<String>>,
    #[serde(default = "default_clock")]
    clock: ClockMode,
    #[serde(default)]
    fake_monotonic: bool,
    #[serde(default)]
    clock_file_env: Option<String>,
    #[serde(default = "default_stop_timeout")]
    stop_timeout_s: f64,
    #[serde(default)]
    leadership: Leadership,
    #[serde(default)]
    node_choice: Option<crate::workload::NodeChoice>,
    /// The promise envelope: checker -> fault classes it must hold under.
    #[serde(default)]
    guarantees: Option<crate::runner::promise::Guarantees>,
    /// Envelopes for other settings: `params = "CONDITION"` plus checker -> fault classes.
    #[serde(default)]
    guarantees_when: Vec<toml::Table>,
}

fn default_clock() -> ClockMode {
    ClockMode::Auto
}

/// One key a descriptor may have: where it lives, whether it must be there, a value to show
/// (the default for an optional key, a typical value for a required one) and what it is for.
/// Missing-key messages and `faultline systems new` are made from this list.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The table holding it (`ports`, `peers`, `ready`), or None at the top level.
    pub table: Option<&'static str>,
    pub name: &'static str,
    pub required: bool,
    /// TOML text of a value.
    pub example: &'static str,
    pub doc: &'static str,
}

/// The tables a descriptor may have: (name, required, what it is for).
pub const TABLES: &[(&str, bool, &str)] = &[
    (
        "env",
        false,
        "extra environment variables for every node, e.g. RUST_LOG = \"info\"",
    ),
    (
        "params",
        false,
        "named settings with defaults, used in `args` as {NAME} and overridden per run with \
         `--param NAME=VALUE`, e.g. r = 2 for `\"--r\", \"{r}\"`",
    ),
    ("ports", true, "the ports each node listens on"),
    (
        "peers",
        true,
        "how each other node is written into `{peers}` in `args`",
    ),
    (
        "ready",
        true,
        "how faultline knows a node has started serving",
    ),
    (
        "leadership",
        false,
        "how the split-brain probes judge this system's /status (protocol v2)",
    ),
    (
        "guarantees",
        false,
        "the promise envelope: checker (or family, e.g. linearizable, split-brain) = the fault \
         classes it must hold under (the fault kinds: partition, loss, pause, kill, clock, \
         msg-delay, msg-dup, msg-drop, msg-hold, conn-reset, bandwidth); verdicts outside it \
         are shown, not counted; no table: everything is promised",
    ),
    (
        "guarantees_when",
        false,
        "envelopes for other [params] settings, the first whose `params` condition holds \
         replacing [guarantees], e.g. params = \"r + w <= n\" with convergence = [\"partition\"] \
         (conditions: names, integers, + -, < <= > >= == !=, \"text\", and)",
    ),
];

/// The placeholders every descriptor has; `[params]` may not reuse their names.
const BUILT_IN_PLACEHOLDERS: &[&str] = &[
    "id",
    "index",
    "addr",
    "client_port",
    "peer_port",
    "peer_addr",
    "peers",
    "data_dir",
    "cluster_token",
    "bug",
];

/// Every key of a descriptor, top-level keys first, in the order a skeleton lists them.
pub const KEYS: &[Key] = &[
    Key {
        table: None,
        name: "name",
        required: true,
        example: "\"mykv\"",
        doc: "the system's name, used in run directory names and reports",
    },
    Key {
        table: None,
        name: "description",
        required: false,
        example: "\"\"",
        doc: "one line about the system, for reports",
    },
    Key {
        table: None,
        name: "binary",
        required: true,
        example: "\"mykv\"",
        doc: "the node executable: an absolute path, or a name looked up in \
              $FAULTLINE_BIN_DIR, next to faultline, then $PATH",
    },
    Key {
        table: None,
        name: "args",
        required: true,
        example: "[\"--id\", \"{id}\", \"--listen\", \"{addr}:{client_port}\", \"--peers\", \"{peers}\", \"--data-dir\", \"{data_dir}\"]",
        doc: "node i's arguments; templates: {id} (n1, n2, ...), {index} (1, 2, ...), {addr}, \
              {client_port}, {peer_port}, {peers} (see [peers]), {peer_addr} (where peers \
              reach the node: its proxy address when [peers] proxy is on, else {addr}), \
              {data_dir} (kept across restarts), {cluster_token} (unique per run), and each \
              name in [params]",
    },
    Key {
        table: None,
        name: "client",
        required: true,
        example: "\"native\"",
        doc: "how clients talk to nodes: \"native\" (DESIGN.md's node protocol: /kv/*, /txn) \
              or \"etcd\" (etcd's v3 JSON gateway)",
    },
    Key {
        table: None,
        name: "status",
        required: true,
        example: "\"native\"",
        doc: "how faultline reads a node's role, term and leader: \"native\" (GET /status) or \
              \"etcd\"",
    },
    Key {
        table: None,
        name: "client_url",
        required: false,
        example: "\"http://{addr}:{client_port}\"",
        doc: "the base URL of node i for clients and probes",
    },
    Key {
        table: None,
        name: "bug_args",
        required: false,
        example: "[\"--bug\", \"{bug}\"]",
        doc: "arguments appended once per `--bug NAME` ({bug} is the name); leave out if the \
              system has no planted bugs",
    },
    Key {
        table: None,
        name: "clock",
        required: false,
        example: "\"auto\"",
        doc: "whether clock faults can reach the nodes through libfaketime: \"auto\" (inspect \
              the binary: dynamically linked and not Go), \"faketime\" or \"unsupported\"",
    },
    Key {
        table: None,
        name: "fake_monotonic",
        required: false,
        example: "false",
        doc: "clock faults move CLOCK_MONOTONIC too (timers, elections), not only the wall \
              clock; Python 3.11 nodes need it (README: clock faults)",
    },
    Key {
        table: None,
        name: "clock_file_env",
        required: false,
        example: "\"FAULTLINE_CLOCK_FILE\"",
        doc: "the environment variable through which the node reads a protocol-clock file \
              (one line `OFFSET_MS RATE`, re-read live; wall and monotonic readings both \
              move): clock faults with `clock = \"protocol\"` write it, so drift is a true \
              rate on timers and leases. Bundled kit systems read FAULTLINE_CLOCK_FILE",
    },
    Key {
        table: None,
        name: "stop_timeout_s",
        required: false,
        example: "5.0",
        doc: "seconds a node gets after SIGTERM before SIGKILL",
    },
    Key {
        table: None,
        name: "node_choice",
        required: false,
        example: "\"bound\"",
        doc: "which node each client sends to unless --node-choice says: \"bound\" (client i \
              to node i mod n), \"random\", \"sticky\" or \"leader\"",
    },
    Key {
        table: Some("ports"),
        name: "client",
        required: true,
        example: "7000",
        doc: "the port clients and the readiness probe use ({client_port})",
    },
    Key {
        table: Some("ports"),
        name: "peer",
        required: false,
        example: "7001",
        doc: "a separate port for node-to-node traffic ({peer_port}); without it peers use \
              the client port",
    },
    Key {
        table: Some("peers"),
        name: "format",
        required: true,
        example: "\"{id}={addr}:{client_port}\"",
        doc: "one peer as written into {peers}; templates {id}, {index}, {addr}, \
              {client_port}, {peer_port}",
    },
    Key {
        table: Some("peers"),
        name: "separator",
        required: false,
        example: "\",\"",
        doc: "what goes between peers in {peers}",
    },
    Key {
        table: Some("peers"),
        name: "include_self",
        required: false,
        example: "false",
        doc: "whether {peers} lists the node itself too (etcd's --initial-cluster does)",
    },
    Key {
        table: Some("peers"),
        name: "proxy",
        required: false,
        example: "\"off\"",
        doc: "the harness's peer proxy on every peer link, for message faults (msg-delay, \
              msg-dup, msg-drop, msg-hold, conn-reset, bandwidth): \"l7\" (HTTP/1.1, sees each \
              message), \"l4\" (opaque TCP: delay, reset, bandwidth only) or \"off\" (the \
              default); when on, {addr} in format and {peer_addr} anywhere name the node's \
              proxy address",
    },
    Key {
        table: Some("peers"),
        name: "batch",
        required: false,
        example: "\"msgs\"",
        doc: "l7 only: the JSON field of a peer request holding a batch of one-way messages, \
              which the proxy acknowledges at once (204) and delivers one by one, each with its \
              own fate (the bundled Raft's and Paxos's is msgs)",
    },
    Key {
        table: Some("ready"),
        name: "path",
        required: true,
        example: "\"/status\"",
        doc: "the HTTP path on the client URL that answers 2xx once the node serves",
    },
    Key {
        table: Some("ready"),
        name: "method",
        required: false,
        example: "\"GET\"",
        doc: "GET or POST",
    },
    Key {
        table: Some("ready"),
        name: "body",
        required: false,
        example: "\"{}\"",
        doc: "the request body of a POST probe",
    },
    Key {
        table: Some("ready"),
        name: "timeout_s",
        required: false,
        example: "20.0",
        doc: "seconds a node may take to answer 2xx before the run gives up",
    },
    Key {
        table: Some("leadership"),
        name: "generation",
        required: false,
        example: "\"term\"",
        doc: "what `generation` (v1: `term`) in /status counts: \"term\", \"ballot\", \"view\" \
              or \"epoch\"",
    },
    Key {
        table: Some("leadership"),
        name: "overlapping_reigns",
        required: false,
        example: "true",
        doc: "whether two leaders of different generations that both acknowledge writes while \
              their reigns overlap is a split brain (Raft, leases: yes; Paxos: no, it is legal)",
    },
];

/// The first required table or key absent from `text` (which parsed as TOML), as an error
/// naming the file, the table, the key and what it is for.
fn missing_key(text: &str, origin: &str, doc: &toml::Table) -> Option<ClusterError> {
    let example = |k: &Key| format!("{} = {}", k.name, k.example);
    for k in KEYS.iter().filter(|k| k.required && k.table.is_none()) {
        if !doc.contains_key(k.name) {
            return Some(ClusterError::Descriptor {
                file: origin.to_string(),
                field: k.name.to_string(),
                message: format!("missing: {}, e.g. {}", k.doc, example(k)),
            });
        }
    }
    for &(table, required, what) in TABLES {
        let keys = KEYS.iter().filter(|k| k.required && k.table == Some(table));
        match doc.get(table) {
            None if required => {
                let needs: Vec<String> = keys.map(example).collect();
                return Some(ClusterError::Descriptor {
                    file: origin.to_string(),
                    field: format!("[{table}]"),
                    message: format!(
                        "missing table: {what}; add it with at least: [{table}] {}",
                        needs.join(", ")
                    ),
                });
            }
            Some(toml::Value::Table(t)) => {
                for k in keys {
                    if !t.contains_key(k.name) {
                        let at = table_line(text, table)
                            .map(|l| format!("line {l}: "))
                            .unwrap_or_default();
                        return Some(ClusterError::Descriptor {
                            file: origin.to_string(),
                            field: format!("{at}[{table}]"),
                            message: format!(
                                "missing key `{}`: {}, e.g. {}",
                                k.name,
                                k.doc,
                                example(k)
                            ),
                        });
                    }
                }
            }
            // Absent optional tables and wrongly typed values: serde says what is wrong.
            _ => {}
        }
    }
    None
}

/// The line (from 1) of `[table]`'s header, if written as one.
fn table_line(text: &str, table: &str) -> Option<usize> {
    let header = format!("[{table}]");
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(&header)
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
        })
        .map(|i| i + 1)
}

/// A descriptor skeleton for a system called `name`: every key with what it is for (`# `
/// lines), required ones set to typical values, optional ones commented out at their
/// defaults (`#key = value`: delete the `#` to set one).
pub fn skeleton(name: &str) -> String {
    let mut out = format!(
        "# faultline system descriptor for `{name}`. Every key is explained above it; keys \
         commented out\n# (`#key = value`) show their defaults. Check it with `faultline run --system \
         {name}.toml --time-limit 10`.\n"
    );
    let wrap = |text: &str| -> String {
        let mut lines = Vec::new();
        let mut line = String::from("#");
        for w in text.split_whitespace() {
            if line.len() + 1 + w.len() > 96 && line.len() > 1 {
                lines.push(std::mem::replace(&mut line, String::from("#")));
            }
            line.push(' ');
            line.push_str(w);
        }
        lines.push(line);
        lines.join("\n") + "\n"
    };
    let key_lines = |out: &mut String, table: Option<&str>| {
        for k in KEYS.iter().filter(|k| k.table == table) {
            out.push_str(&wrap(&format!(
                "{}{}",
                if k.required { "(required) " } else { "" },
                k.doc
            )));
            let value = if k.table.is_none() && matches!(k.name, "name" | "binary") {
                format!("{name:?}")
            } else {
                k.example.to_string()
            };
            let prefix = if k.required { "" } else { "#" };
            out.push_str(&format!("{prefix}{} = {value}\n", k.name));
        }
    };
    out.push('\n');
    key_lines(&mut out, None);
    for &(table, required, what) in TABLES {
        out.push('\n');
        out.push_str(&wrap(&format!(
            "{}{what}",
            if required { "(required) " } else { "" }
        )));
        if table == "env" {
            out.push_str("#[env]\n#RUST_LOG = \"info\"\n");
            continue;
        }
        if table == "params" {
            out.push_str("#[params]\n#replicas = 3\n");
            continue;
        }
        if table == "guarantees_when" {
            out.push_str(
                "#[[guarantees_when]]\n#params = \"replicas < 3\"\n#convergence = [\"partition\"]\n",
            );
            continue;
        }
        out.push_str(&format!("[{table}]\n"));
        key_lines(&mut out, Some(table));
    }
    out
}

/// `[leadership]`: how split-brain probes judge this system's `/status` (protocol v2).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Leadership {
    /// What `generation` (v1: `term`) counts: `term`, `ballot`, `view` or `epoch`.
    #[serde(default = "default_generation")]
    pub generation: String,
    /// Whether two leaders of different generations that both acknowledge writes while
    /// their reigns overlap is a split brain (Raft, leases: yes; Paxos: no, it is legal).
    #[serde(default = "yes")]
    pub overlapping_reigns: bool,
}

fn default_generation() -> String {
    "term".into()
}

fn yes() -> bool {
    true
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            generation: default_generation(),
            overlapping_reigns: true,
        }
    }
}

impl Leadership {
    pub fn probe_options(&self) -> crate::checker::split_brain::ProbeOptions {
        crate::checker::split_brain::ProbeOptions {
            generation: self.generation.clone(),
            overlapping_reigns: self.overlapping_reigns,
        }
    }
}

/// A loaded, validated system descriptor.
#[derive(Clone, Debug)]
pub struct SystemDescriptor {
    pub name: String,
    pub description: String,
    /// Where it came from (a path, or `builtin:NAME`), for error messages.
    pub origin: String,
    pub binary: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// `[params]`: template variables with defaults, overridable per run (`--param`).
    pub params: BTreeMap<String, String>,
    pub client: ClientAdapter,
    pub status: StatusAdapter,
    pub client_url: String,
    pub ports: Ports,
    pub peers: Peers,
    pub ready: Ready,
    /// Args appended once per `--bug NAME` (`{bug}` is the name); None: no planted bugs.
    pub bug_args: Option<Vec<String>>,
    pub clock: ClockMode,
    /// Also fake CLOCK_MONOTONIC (timers, elections), not just the wall clock.
    pub fake_monotonic: bool,
    /// The variable naming the node's protocol-clock file, if it reads one.
    pub clock_file_env: Option<String>,
    pub stop_timeout: Duration,
    pub leadership: Leadership,
    /// Which node clients use unless `--node-choice` says (None: the harness default).
    pub node_choice: Option<crate::workload::NodeChoice>,
    /// The promise envelope for the current `params`: `[guarantees]`, or the first
    /// `[[guarantees_when]]` whose condition holds (None: all, always).
    pub guarantees: Option<crate::runner::promise::Guarantees>,
    /// When a `[[guarantees_when]]` chose `guarantees`: its condition and the params, e.g.
    /// "r + w <= n (n=3, r=1, w=1)".
    pub guarantees_chosen_by: Option<String>,
    envelopes: Envelopes,
}

/// An envelope and the condition (with the settings) that chose it.
type Chosen = (Option<crate::runner::promise::Guarantees>, Option<String>);

/// `[guarantees]` and the `[[guarantees_when]]` alternatives, to choose from when the
/// params change.
#[derive(Clone, Debug)]
struct Envelopes {
    default: Option<crate::runner::promise::Guarantees>,
    when: Vec<(Condition, crate::runner::promise::Guarantees)>,
}

impl Envelopes {
    /// The envelope for `params` and what chose it: the first alternative whose condition
    /// holds, else the default (chosen by nothing); an error (the condition's index and why)
    /// when a setting cannot be compared.
    fn select(&self, params: &BTreeMap<String, String>) -> Result<Chosen, (usize, String)> {
        for (i, (cond, g)) in self.when.iter().enumerate() {
            if cond.holds(params).map_err(|e| (i, e))? {
                let settings: Vec<String> =
                    params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let by = format!("{} ({})", cond.text(), settings.join(", "));
                return Ok((Some(g.clone()), Some(by)));
            }
        }
        Ok((self.default.clone(), None))
    }
}

/// One node's place in the cluster, as templates see it.
#[derive(Clone, Debug)]
pub struct NodeSlot {
    pub id: String,
    pub index: usize,
    pub addr: String,
    /// Where peers reach it: its proxy address when peers are proxied, else `addr`.
    pub peer_addr: String,
}

impl SystemDescriptor {
    /// Names of the descriptors built into the binary.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Loads `raft`, `etcd`, `paxos` (or another name with a `systems/NAME.toml` in the working
    /// directory), or a path to a descriptor file.
    pub fn load(name_or_path: &str) -> Result<Self, ClusterError> {
        let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
        if looks_like_path {
            return Self::from_file(Path::new(name_or_path));
        }
        let local = PathBuf::from("systems").join(format!("{name_or_path}.toml"));
        if local.is_file() {
            return Self::from_file(&local);
        }
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, &format!("builtin:{name_or_path}"));
        }
        Err(ClusterError::UnknownSystem(
            name_or_path.to_string(),
            Self::builtin_names().join(", "),
        ))
    }

    pub fn from_file(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClusterError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a descriptor; errors name the origin, line and field.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ClusterError> {
        let raw: Raw = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                // serde's "missing field" points at line 1; say which table and what for.
                if e.message().starts_with("missing field")
                    && let Ok(doc) = text.parse::<toml::Table>()
                    && let Some(missing) = missing_key(text, origin, &doc)
                {
                    return Err(missing);
                }
                return Err(toml_error(origin, text, &e));
            }
        };
        let bad = |field: &str, message: String| ClusterError::Descriptor {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        if raw.name.is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        if raw.binary.is_empty() {
            return Err(bad("binary", "must not be empty".into()));
        }
        if !raw.ready.path.starts_with('/') {
            return Err(bad("ready.path", "must start with `/`".into()));
        }
        if !matches!(
            raw.leadership.generation.as_str(),
            "term" | "ballot" | "view" | "epoch"
        ) {
            return Err(bad(
                "leadership.generation",
                format!(
                    "must be term, ballot, view or epoch, got {:?}",
                    raw.leadership.generation
                ),
            ));
        }
        if !matches!(raw.ready.method.as_str(), "GET" | "POST") {
            return Err(bad("ready.method", "must be GET or POST".into()));
        }
        for (field, secs) in [
            ("ready.timeout_s", raw.ready.timeout_s),
            ("stop_timeout_s", raw.stop_timeout_s),
        ] {
            if !(secs > 0.0 && secs <= 600.0) {
                return Err(bad(field, format!("must be in (0, 600], got {secs}")));
            }
        }
        // a run's fault classes are its schedule's kinds, message faults included
        let classes = FaultKind::ALL.map(FaultKind::as_str);
        let check_classes = |table: &str, g: &crate::runner::promise::Guarantees| {
            for (checker, kinds) in g {
                if let Some(k) = kinds.iter().find(|k| !classes.contains(&k.as_str())) {
                    return Err(bad(
                        &format!("{table}.{checker}"),
                        format!("unknown fault class {k:?} (one of {})", classes.join(", ")),
                    ));
                }
            }
            Ok(())
        };
        if let Some(g) = &raw.guarantees {
            check_classes("guarantees", g)?;
        }
        let mut params = BTreeMap::new();
        for (name, value) in raw.params {
            let field = format!("params.{name}");
            let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok_name {
                return Err(bad(
                    &field,
                    "a parameter name is lower case letters, digits and `_`".into(),
                ));
            }
            if BUILT_IN_PLACEHOLDERS.contains(&name.as_str()) {
                return Err(bad(
                    &field,
                    format!("`{{{name}}}` is a built-in placeholder; pick another name"),
                ));
            }
            let text = match value {
                toml::Value::String(v) => v,
                toml::Value::Integer(v) => v.to_string(),
                toml::Value::Float(v) => v.to_string(),
                toml::Value::Boolean(v) => v.to_string(),
                other => {
                    return Err(bad(
                        &field,
                        format!(
                            "must be a string, number or boolean, got a {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            params.insert(name, text);
        }
        let mut when = Vec::new();
        for (i, mut table) in raw.guarantees_when.into_iter().enumerate() {
            let field = format!("guarantees_when[{i}]");
            let cond = match table.remove("params") {
                Some(toml::Value::String(c)) => {
                    Condition::parse(&c, &params).map_err(|m| bad(&format!("{field}.params"), m))?
                }
                _ => {
                    return Err(bad(
                        &format!("{field}.params"),
                        "missing: the condition on [params] this envelope is for, e.g. \
                         params = \"r + w <= n\""
                            .into(),
                    ));
                }
            };
            let g: crate::runner::promise::Guarantees = toml::Value::Table(table)
                .try_into()
                .map_err(|e| bad(&field, format!("checker = [fault classes] expected: {e}")))?;
            check_classes(&field, &g)?;
            when.push((cond, g));
        }
        let envelopes = Envelopes {
            default: raw.guarantees,
            when,
        };
        let (guarantees, guarantees_chosen_by) = envelopes
            .select(&params)
            .map_err(|(i, m)| bad(&format!("guarantees_when[{i}].params"), m))?;
        let d = SystemDescriptor {
            name: raw.name,
            description: raw.description,
            origin: origin.to_string(),
            binary: raw.binary,
            args: raw.args,
            env: raw.env,
            params,
            client: raw.client,
            status: raw.status,
            client_url: raw.client_url,
            ports: raw.ports,
            peers: raw.peers,
            ready: raw.ready,
            bug_args: raw.bug_args,
            clock: raw.clock,
            fake_monotonic: raw.fake_monotonic,
            clock_file_env: raw.clock_file_env,
            stop_timeout: Duration::from_secs_f64(raw.stop_timeout_s),
            leadership: raw.leadership,
            node_choice: raw.node_choice,
            guarantees,
            guarantees_chosen_by,
            envelopes,
        };
        // Render every template against a sample cluster now, so a typo fails at load time.
        let slots = vec![
            NodeSlot {
                id: "n1".into(),
                index: 1,
                addr: "10.0.0.11".into(),
                peer_addr: "10.0.0.211".into(),
            },
            NodeSlot {
                id: "n2".into(),
                index: 2,
                addr: "10.0.0.12".into(),
                peer_addr: "10.0.0.212".into(),
            },
        ];
        let sample_bugs: Vec<String> = match d.bug_args {
            Some(_) => vec!["bug".into()],
            None => Vec::new(),
        };
        d.command_args(&slots, 0, Path::new("/data"), "fl-abcdef", &sample_bugs)
            .map_err(|(field, m)| bad(&field, m))?;
        d.client_url_for(&slots[0])
            .map_err(|m| bad("client_url", m))?;
        Ok(d)
    }

    fn peer_port(&self) -> u16 {
        self.ports.peer.unwrap_or(self.ports.client)
    }

    /// Overrides `[params]` defaults with `NAME=VALUE` settings (`--param`); an unknown name
    /// or a malformed setting is an error naming the known parameters.
    pub fn set_params(&mut self, settings: &[String]) -> Result<(), ClusterError> {
        let bad = |message: String| ClusterError::Descriptor {
            file: self.origin.clone(),
            field: "--param".into(),
            message,
        };
        let known = || {
            if self.params.is_empty() {
                format!("system `{}` has no [params]", self.name)
            } else {
                let names: Vec<&str> = self.params.keys().map(String::as_str).collect();
                format!("known: {}", names.join(", "))
            }
        };
        let mut params = self.params.clone();
        for s in settings {
            let Some((name, value)) = s.split_once('=') else {
                return Err(bad(format!("{s:?} is not NAME=VALUE ({})", known())));
            };
            let Some(slot) = params.get_mut(name.trim()) else {
                return Err(bad(format!(
                    "unknown parameter {:?} ({})",
                    name.trim(),
                    known()
                )));
            };
            *slot = value.trim().to_string();
        }
        (self.guarantees, self.guarantees_chosen_by) =
            self.envelopes.select(&params).map_err(|(i, m)| {
                bad(format!(
                    "guarantees_when[{i}] cannot judge this setting: {m}"
                ))
            })?;
        self.params = params;
        Ok(())
    }

    fn node_vars(&self, slot: &NodeSlot) -> Vars {
        let mut v: Vars = self.params.clone();
        v.insert("id".into(), slot.id.clone());
        v.insert("index".into(), slot.index.to_string());
        v.insert("addr".into(), slot.addr.clone());
        v.insert("client_port".into(), self.ports.client.to_string());
        v.insert("peer_port".into(), self.peer_port().to_string());
        v.insert("peer_addr".into(), slot.peer_addr.clone());
        v
    }

    /// The port peers connect to (the proxy listens on it at each node's proxy address).
    pub fn peer_port_number(&self) -> u16 {
        self.peer_port()
    }

    /// The base URL clients use for this node, e.g. `http://10.211.3.11:8000`.
    pub fn client_url_for(&self, slot: &NodeSlot) -> Result<String, String> {
        template::render(&self.client_url, &self.node_vars(slot))
    }

    /// The rendered argument list for node `me` of `slots`; on error, (field, message).
    pub fn command_args(
        &self,
        slots: &[NodeSlot],
        me: usize,
        data_dir: &Path,
        cluster_token: &str,
        bugs: &[String],
    ) -> Result<Vec<String>, (String, String)> {
        let slot = &slots[me];
        let mut peers = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            if i == me && !self.peers.include_self {
                continue;
            }
            // Peers see each other at their peer address (the proxy's, when proxied).
            let mut pv = self.node_vars(s);
            pv.insert("addr".into(), s.peer_addr.clone());
            peers.push(
                template::render(&self.peers.format, &pv)
                    .map_err(|m| ("peers.format".to_string(), m))?,
            );
        }
        let mut vars = self.node_vars(slot);
        vars.insert("peers".into(), peers.join(&self.peers.separator));
        vars.insert("data_dir".into(), data_dir.display().to_string());
        vars.insert("cluster_token".into(), cluster_token.to_string());
        let mut args = Vec::with_capacity(self.args.len());
        for (i, a) in self.args.iter().enumerate() {
            args.push(template::render(a, &vars).map_err(|m| (format!("args[{i}]"), m))?);
        }
        if !bugs.is_empty() {
            let Some(bug_args) = &self.bug_args else {
                return Err((
                    "bug_args".into(),
                    format!("system `{}` has no planted bugs", self.name),
                ));
            };
            for bug in bugs {
                let mut bv = vars.clone();
                bv.insert("bug".into(), bug.clone());
                for (i, a) in bug_args.iter().enumerate() {
                    args.push(template::render(a, &bv).map_err(|m| (format!("bug_args[{i}]"), m))?);
                }
            }
        }
        Ok(args)
    }

    /// Finds the executable: a path as given, else `$FAULTLINE_BIN_DIR`, the directory of the
    /// running executable and its parent (so tests in `target/*/deps` find workspace
    /// binaries), then `$PATH`.
    pub fn resolve_binary(&self) -> Result<PathBuf, ClusterError> {
        if self.binary.contains('/') {
            let p = PathBuf::from(&self.binary);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(ClusterError::Missing(format!(
                    "system `{}`: binary {} does not exist",
                    self.name, self.binary
                )))
            };
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("FAULTLINE_BIN_DIR") {
            dirs.push(d.into());
        }
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            dirs.push(dir.to_path_buf());
            if let Some(up) = dir.parent() {
                dirs.push(up.to_path_buf());
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        for d in &dirs {
            let p = d.join(&self.binary);
            if p.is_file() {
                return Ok(p);
            }
        }
        let hint = if self.binary == "faultline-raft" {
            "build it with `cargo build -p faultline-raft` (same profile/target dir) or set \
             FAULTLINE_BIN_DIR"
                .to_string()
        } else {
            "install it or set FAULTLINE_BIN_DIR / give an absolute `binary` path".to_string()
        };
        Err(ClusterError::Missing(format!(
            "system `{}`: binary `{}` not found in FAULTLINE_BIN_DIR, next to this executable \
             or in PATH; {hint}",
            self.name, self.binary
        )))
    }
}

fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> ClusterError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    ClusterError::Descriptor {
        file: origin.to_string(),
        field: match line {
            Some(l) => format!("line {l}"),
            None => "document".into(),
        },
        message: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(n: usize) -> Vec<NodeSlot> {
        (1..=n)
            .map(|i| NodeSlot {
                id: format!("n{i}"),
                index: i,
                addr: format!("10.9.9.{}", 10 + i),
                peer_addr: format!("10.9.9.{}", 10 + i),
            })
            .collect()
    }

    #[test]
    fn builtins_parse() {
        for name in SystemDescriptor::builtin_names() {
            let d =
                SystemDescriptor::parse(BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1, name)
                    .unwrap();
            assert_eq!(d.name, name);
        }
    }

    #[test]
    fn builtin_leadership_says_what_a_generation_is_and_where_reigns_may_overlap() {
        let leadership = |name: &str| {
            let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).unwrap();
            let d = SystemDescriptor::parse(text, name).unwrap();
            (d.leadership.generation, d.leadership.overlapping_reigns)
        };
        assert_eq!(leadership("raft"), ("term".into(), true));
        assert_eq!(leadership("etcd"), ("term".into(), true));
        assert_eq!(leadership("paxos"), ("ballot".into(), false));
    }

    #[test]
    fn guarantees_parse_and_a_bad_fault_class_is_named() {
        let base = BUILTIN[0].1;
        let d = SystemDescriptor::parse(
            &format!("{base}\n[guarantees]\nlinearizable = [\"pause\", \"kill\"]\n"),
            "x.toml",
        )
        .unwrap();
        let g = d.guarantees.unwrap();
        assert_eq!(g["linearizable"], ["pause", "kill"]);
        assert!(
            SystemDescriptor::parse(base, "raft")
                .unwrap()
                .guarantees
                .is_none()
        );
        let e = SystemDescriptor::parse(
            &format!("{base}\n[guarantees]\nlinearizable = [\"partitions\"]\n"),
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.toml") && e.contains("guarantees.linearizable"),
            "{e}"
        );
        assert!(e.contains("\"partitions\""), "{e}");
    }

    #[test]
    fn etcd_initial_cluster_lists_everyone() {
        let d = SystemDescriptor::parse(BUILTIN[1].1, "etcd").unwrap();
        let args = d
            .command_args(&slots(3), 1, Path::new("/d/n2"), "fl-x", &[])
            .unwrap();
        let joined = args.join(" ");
        assert!(
            joined.contains(
                "n1=http://10.9.9.11:2380,n2=http://10.9.9.12:2380,n3=http://10.9.9.13:2380"
            ),
            "{joined}"
        );
        assert!(joined.contains("--name n2"), "{joined}");
        assert!(joined.contains("/d/n2"), "{joined}");
        assert_eq!(d.client, ClientAdapter::Etcd);
    }

    #[test]
    fn raft_peers_exclude_self_and_bugs_append() {
        let d = SystemDescriptor::parse(BUILTIN[0].1, "raft").unwrap();
        let args = d
            .command_args(
                &slots(3),
                0,
                Path::new("/d"),
                "fl-x",
                &["stale-read".into()],
            )
            .unwrap();
        let joined = args.join(" ");
        assert!(!joined.contains("n1=10"), "{joined}");
        assert!(joined.contains("n2=10.9.9.12"), "{joined}");
        assert!(joined.ends_with("--bug stale-read"), "{joined}");
    }

    #[test]
    fn proxied_peers_are_named_by_their_proxy_address() {
        let mut d = SystemDescriptor::parse(BUILTIN[1].1, "etcd").unwrap();
        let mut s = slots(2);
        s[1].peer_addr = "10.9.9.212".into();
        let joined = d
            .command_args(&s, 0, Path::new("/d"), "t", &[])
            .unwrap()
            .join(" ");
        // {peers} names n2 by its peer (proxy) address; the node's own listen address stays.
        assert!(joined.contains("n2=http://10.9.9.212:2380"), "{joined}");
        assert!(!joined.contains("n2=http://10.9.9.12"), "{joined}");
        assert!(
            joined.contains("--listen-peer-urls http://10.9.9.11:2380"),
            "{joined}"
        );
        // A descriptor that does not say proxies nothing.
        let text = BUILTIN[1].1.replace("proxy = \"l4\"", "");
        d = SystemDescriptor::parse(&text, "etcd").unwrap();
        assert_eq!(d.peers.proxy, crate::faults::proxy::ProxyMode::Off);
    }

    #[test]
    fn bugs_rejected_without_bug_args() {
        let d = SystemDescriptor::parse(BUILTIN[1].1, "etcd").unwrap();
        let e = d
            .command_args(&slots(3), 0, Path::new("/d"), "t", &["x".into()])
            .unwrap_err();
        assert_eq!(e.0, "bug_args");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "name = \"x\"\nbinary = 3\n";
        let e = SystemDescriptor::parse(text, "sys.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sys.toml: line 2:"), "{e}");

        let text = BUILTIN[1].1.replace("{data_dir}", "{datadir}");
        let e = SystemDescriptor::parse(&text, "sys.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("args["), "{e}");
        assert!(e.contains("{datadir}"), "{e}");
    }

    #[test]
    fn a_third_system_is_just_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mykv.toml");
        std::fs::write(
            &path,
            r#"
name = "mykv"
binary = "/usr/bin/env"
client = "native"
status = "native"
args = ["mykv", "--me", "{id}@{addr}:{client_port}", "--join", "{peers}", "--dir", "{data_dir}"]
[ports]
client = 7000
[peers]
format = "{addr}:{client_port}"
[ready]
path = "/status"
"#,
        )
        .unwrap();
        let d = SystemDescriptor::load(path.to_str().unwrap()).unwrap();
        assert_eq!(d.name, "mykv");
        assert_eq!(d.node_choice, None);
        let leader = std::fs::read_to_string(&path).unwrap().replace(
            "client = \"native\"",
            "client = \"native\"\nnode_choice = \"leader\"",
        );
        let l = SystemDescriptor::parse(&leader, "mykv.toml").unwrap();
        assert_eq!(l.node_choice, Some(crate::workload::NodeChoice::Leader));
        assert_eq!(d.clock, ClockMode::Auto);
        let args = d
            .command_args(&slots(2), 1, Path::new("/d"), "t", &[])
            .unwrap();
        assert_eq!(
            args,
            [
                "mykv",
                "--me",
                "n2@10.9.9.12:7000",
                "--join",
                "10.9.9.11:7000",
                "--dir",
                "/d"
            ]
        );
        assert_eq!(
            d.client_url_for(&slots(1)[0]).unwrap(),
            "http://10.9.9.11:7000"
        );
    }

    /// The field names serde's derive asks a deserializer for, i.e. the struct's keys.
    fn fields_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        struct Capture(Vec<&'static str>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Capture {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0.extend(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut c = Capture(Vec::new());
        let _ = T::deserialize(&mut c);
        c.0
    }

    #[test]
    fn every_descriptor_key_is_documented() {
        let documented = |table: Option<&str>| -> Vec<&str> {
            let mut v: Vec<&str> = KEYS
                .iter()
                .filter(|k| k.table == table)
                .map(|k| k.name)
                .collect();
            if table.is_none() {
                v.extend(TABLES.iter().map(|t| t.0));
            }
            v.sort();
            v
        };
        let sorted = |mut v: Vec<&'static str>| {
            v.sort();
            v
        };
        assert_eq!(sorted(fields_of::<Raw>()), documented(None));
        assert_eq!(sorted(fields_of::<Ports>()), documented(Some("ports")));
        assert_eq!(sorted(fields_of::<Peers>()), documented(Some("peers")));
        assert_eq!(sorted(fields_of::<Ready>()), documented(Some("ready")));
        assert_eq!(
            sorted(fields_of::<Leadership>()),
            documented(Some("leadership"))
        );
        for k in KEYS {
            assert!(!k.doc.is_empty() && !k.example.is_empty(), "{k:?}");
        }
    }

    #[test]
    fn the_skeleton_parses_as_written_and_with_every_key_set() {
        let text = skeleton("mykv");
        let d = SystemDescriptor::parse(&text, "mykv.toml").unwrap();
        assert_eq!((d.name.as_str(), d.binary.as_str()), ("mykv", "mykv"));
        assert_eq!(d.ports.client, 7000);
        for k in KEYS {
            assert!(
                text.contains(&format!("{} = ", k.name)),
                "skeleton omits {k:?}"
            );
        }
        // Uncommenting every optional key (the [env] example too) still parses, so every
        // example is a valid value of a known key.
        let all: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let d = SystemDescriptor::parse(&all, "mykv.toml").unwrap_or_else(|e| panic!("{e}\n{all}"));
        assert_eq!(d.ports.peer, Some(7001));
        assert_eq!(d.env["RUST_LOG"], "info");
        assert_eq!(d.node_choice, Some(crate::workload::NodeChoice::Bound));
    }

    #[test]
    fn a_missing_table_or_key_is_named_with_what_it_is_for() {
        let text = BUILTIN[0].1;
        let without = |t: &str, section: &str| -> String {
            // drop the section's header and keys up to the next blank line
            let start = t.find(section).unwrap();
            let end = t[start..].find("\n\n").map_or(t.len(), |e| start + e);
            format!("{}{}", &t[..start], &t[end..])
        };
        let e = SystemDescriptor::parse(&without(text, "[peers]"), "raft.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "raft.toml: [peers]: missing table: how each other node is written into `{peers}` \
             in `args`; add it with at least: [peers] format = \"{id}={addr}:{client_port}\""
        );
        let e = SystemDescriptor::parse(&text.replace("path = \"/status\"\n", ""), "raft.toml")
            .unwrap_err();
        assert!(e.is_bad_input());
        let line = text.lines().position(|l| l == "[ready]").unwrap() + 1;
        assert_eq!(
            e.to_string(),
            format!(
                "raft.toml: line {line}: [ready]: missing key `path`: the HTTP path on the \
                 client URL that answers 2xx once the node serves, e.g. path = \"/status\""
            )
        );
        let e = SystemDescriptor::parse(&text.replace("binary = ", "#binary = "), "raft.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("raft.toml: binary: missing: the node executable: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_name_lists_builtins() {
        let e = SystemDescriptor::load("nosuchsystem").unwrap_err();
        assert!(e.to_string().contains("raft, etcd"), "{e}");
        assert!(e.is_bad_input());
    }
    #[test]
    fn params_fill_args_and_runs_override_them() {
        let text = r#"
name = "q"
binary = "/usr/bin/env"
client = "native"
status = "native"
args = ["q", "--id", "{id}", "--r", "{r}", "--w", "{w}", "--mode", "{mode}"]
[params]
r = 2
w = 2
mode = "lww"
[ports]
client = 7000
[peers]
format = "{addr}:{client_port}"
[ready]
path = "/status"
"#;
        let mut d = SystemDescriptor::parse(text, "q.toml").unwrap();
        let args = |d: &SystemDescriptor| {
            d.command_args(&slots(2), 0, Path::new("/d"), "t", &[])
                .unwrap()
                .join(" ")
        };
        assert_eq!(args(&d), "q --id n1 --r 2 --w 2 --mode lww");
        d.set_params(&["r=1".into(), " w = 1".into()]).unwrap();
        assert_eq!(args(&d), "q --id n1 --r 1 --w 1 --mode lww");
        // Mistakes name the option and what is known; nothing is half-applied.
        let e = d.set_params(&["n=5".into()]).unwrap_err().to_string();
        assert!(
            e.contains("--param") && e.contains("\"n\"") && e.contains("known: mode, r, w"),
            "{e}"
        );
        let e = d.set_params(&["r".into()]).unwrap_err().to_string();
        assert!(e.contains("NAME=VALUE"), "{e}");
        assert_eq!(args(&d), "q --id n1 --r 1 --w 1 --mode lww");
        let raft = SystemDescriptor::load("raft").unwrap();
        let e = raft.clone().set_params(&["r=1".into()]).unwrap_err();
        assert!(e.to_string().contains("has no [params]"), "{e}");
        // A parameter may not shadow a built-in placeholder, and must be a scalar.
        let e = SystemDescriptor::parse(&text.replace("r = 2", "id = 2"), "q.toml").unwrap_err();
        assert!(e.to_string().contains("params.id"), "{e}");
        let e = SystemDescriptor::parse(&text.replace("r = 2", "r = [2]"), "q.toml").unwrap_err();
        assert!(e.to_string().contains("params.r"), "{e}");
        // A template naming no parameter still fails at load time.
        let e = SystemDescriptor::parse(&text.replace("{w}", "{ww}"), "q.toml").unwrap_err();
        assert!(e.to_string().contains("{ww}"), "{e}");
    }

    #[test]
    fn the_envelope_follows_the_params() {
        let text = r#"
name = "q"
binary = "/usr/bin/env"
client = "native"
status = "native"
args = ["q", "--r", "{r}", "--w", "{w}", "--repair", "{repair}"]
[params]
n = 3
r = 2
w = 2
repair = "async"
[ports]
client = 7000
[peers]
format = "{addr}:{client_port}"
[ready]
path = "/status"
[guarantees]
read-after-write = ["partition"]
convergence = ["partition"]
[[guarantees_when]]
params = "r + w <= n"
convergence = ["partition"]
[[guarantees_when]]
params = 'repair == "blocking"'
read-after-write = ["partition"]
monotonic-reads = ["partition"]
convergence = ["partition"]
"#;
        let promised = |d: &SystemDescriptor| -> Vec<String> {
            d.guarantees.as_ref().unwrap().keys().cloned().collect()
        };
        let d = SystemDescriptor::parse(text, "q.toml").unwrap();
        assert_eq!(promised(&d), ["convergence", "read-after-write"]);
        let with = |settings: &[&str]| {
            let mut d = d.clone();
            let s: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
            d.set_params(&s).map(|()| promised(&d))
        };
        assert_eq!(with(&["r=1"]).unwrap(), ["convergence"]);
        let mut r1 = d.clone();
        r1.set_params(&["r=1".into()]).unwrap();
        assert_eq!(
            r1.guarantees_chosen_by.as_deref(),
            Some("r + w <= n (n=3, r=1, repair=async, w=2)")
        );
        assert_eq!(d.guarantees_chosen_by, None);
        // the first alternative that holds wins
        assert_eq!(with(&["r=1", "repair=blocking"]).unwrap(), ["convergence"]);
        assert_eq!(
            with(&["repair=blocking"]).unwrap(),
            ["convergence", "monotonic-reads", "read-after-write"]
        );
        assert_eq!(
            with(&["r=1", "r=2"]).unwrap(),
            ["convergence", "read-after-write"]
        );
        // a setting the condition cannot compare is refused, naming the condition
        let e = with(&["r=two"]).unwrap_err().to_string();
        assert!(
            e.contains("--param") && e.contains("guarantees_when[0]") && e.contains("`two`"),
            "{e}"
        );
        // bad alternatives are named at load time
        for (from, to, says) in [
            ("r + w <= n", "r + x <= n", "guarantees_when[0].params"),
            ("params = \"r + w <= n\"\n", "", "guarantees_when[0].params"),
            (
                "monotonic-reads = [\"partition\"]",
                "monotonic-reads = [\"split\"]",
                "guarantees_when[1].monotonic-reads",
            ),
            (
                "monotonic-reads = [\"partition\"]",
                "monotonic-reads = 3",
                "guarantees_when[1]",
            ),
        ] {
            let e = SystemDescriptor::parse(&text.replace(from, to), "q.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("q.toml") && e.contains(says),
                "{from} -> {to}: {e}"
            );
        }
    }
}
