//! The inventory of an external cluster (`faultline run --cluster FILE.toml`): per node its
//! id, client URL and, optionally, how to reach its host over SSH and which process there to
//! fault. Parsing and validation are pure; every error names the file, the line and the
//! field.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// Where on each host the fault journals live unless the inventory says otherwise.
pub const DEFAULT_JOURNAL_DIR: &str = "/var/tmp/faultline-journal";
/// Per remote command, unless the inventory says otherwise.
pub const DEFAULT_SSH_TIMEOUT_S: f64 = 10.0;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}:{line}: `{field}`: {message}")]
pub struct InventoryError {
    pub file: String,
    /// From 1; 0 when the whole file is at fault (unreadable).
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// How a node's host is reached: `user@host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshDest {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshDest {
    pub fn parse(s: &str) -> Result<SshDest, String> {
        let (user, rest) = match s.split_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err("empty user before `@`".into()),
            None => (None, s),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| format!("port `{p}` is not a number in 1..65535"))?;
                if port == 0 {
                    return Err("port 0".into());
                }
                (h, Some(port))
            }
            None => (rest, None),
        };
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
        {
            return Err(format!("`{s}` is not user@host[:port]"));
        }
        Ok(SshDest {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// `user@host` (or `host`), what `ssh` is given; the port goes in `-p`.
    pub fn target(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl std::fmt::Display for SshDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.target())?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Which process on the host is the node (to pause or kill), found afresh when needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidSource {
    /// A file holding the pid.
    File(String),
    /// A shell command printing the pid.
    Cmd(String),
    /// A systemd unit (its MainPID).
    Unit(String),
}

impl PidSource {
    /// A shell snippet printing the pid (nothing if there is none).
    pub fn shell(&self) -> String {
        match self {
            PidSource::File(f) => format!("cat {} 2>/dev/null", sh_quote(f)),
            PidSource::Cmd(c) => format!("sh -c {}", sh_quote(c)),
            PidSource::Unit(u) => format!(
                "systemctl show -p MainPID --value {} 2>/dev/null | grep -v '^0$'",
                sh_quote(u)
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    pub id: String,
    /// `http://host:port`, no trailing slash.
    pub client_url: String,
    pub ssh: Option<SshDest>,
    pub pid: Option<PidSource>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub restart: Option<String>,
    pub logs: Vec<String>,
    pub data_dir: Option<String>,
    /// faultline starts this node itself (with `start`) under libfaketime, so clock faults
    /// can move its wall clock, and stops it when the run ends.
    pub faketime: bool,
    /// A local file copied to the host (made executable) before faultline starts the node,
    /// and removed after.
    pub upload: Option<Upload>,
    /// The addresses this node's traffic to its peers comes from: what its peers drop in a
    /// partition. Default: the client URL's host, else the SSH host, when an IPv4 literal.
    pub peer_addrs: Vec<Ipv4Addr>,
    /// The line of this node's `[[node]]` header.
    pub line: usize,
}

/// `upload` (local, relative to the inventory) and `upload_to` (on the host).
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    pub from: PathBuf,
    pub to: String,
}

impl NodeSpec {
    /// The command that brings the node back after a kill: `restart`, else `start`.
    pub fn restart_cmd(&self) -> Option<&str> {
        self.restart.as_deref().or(self.start.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub file: PathBuf,
    /// An adapter family (`native`, `etcd`) or a system descriptor name or path.
    pub system: String,
    /// `ssh -F FILE` (relative paths are relative to the inventory); None: ~/.ssh/config.
    pub ssh_config: Option<PathBuf>,
    pub ssh_timeout_s: f64,
    pub journal_dir: String,
    pub nodes: Vec<NodeSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    system: Spanned<String>,
    ssh_config: Option<Spanned<String>>,
    ssh_timeout_s: Option<Spanned<f64>>,
    journal_dir: Option<Spanned<String>>,
    #[serde(default)]
    node: Vec<Spanned<RawNode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Spanned<String>,
    client_url: Spanned<String>,
    ssh: Option<Spanned<String>>,
    pid_file: Option<Spanned<String>>,
    pid_cmd: Option<Spanned<String>>,
    unit: Option<Spanned<String>>,
    start: Option<Spanned<String>>,
    stop: Option<Spanned<String>>,
    restart: Option<Spanned<String>>,
    #[serde(default)]
    logs: Vec<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    peer_addrs: Option<Spanned<Vec<Spanned<String>>>>,
    faketime: Option<Spanned<bool>>,
    upload: Option<Spanned<String>>,
    upload_to: Option<Spanned<String>>,
}

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The host of an `http://host:port` URL and its port, if it is one.
pub(crate) fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if !rest[authority.len()..].trim_matches('/').is_empty() {
        return Err(format!("`{url}`: give the base URL only (no path)"));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("`{url}` has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{url}`: port `{port}` is not a number"))?;
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok((host.to_string(), port))
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
            file: path.display().to_string(),
            line: 0,
            field: "file".into(),
            message: e.to_string(),
        })?;
        Inventory::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
        let file = path.display().to_string();
        let err = |line: usize, field: &str, message: String| InventoryError {
            file: file.clone(),
            line,
            field: field.to_string(),
            message,
        };
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            // serde names the field in its message ("missing field `id`", "unknown field")
            let field = e
                .message()
                .split('`')
                .nth(1)
                .unwrap_or("document")
                .to_string();
            err(line, &field, e.message().to_string())
        })?;
        let at = |s: std::ops::Range<usize>| line_of(text, s.start);
        let system = raw.system.get_ref().trim().to_string();
        if system.is_empty() {
            return Err(err(
                at(raw.system.span()),
                "system",
                "empty; give an adapter family (native, etcd) or a system descriptor".into(),
            ));
        }
        let ssh_timeout_s = match &raw.ssh_timeout_s {
            Some(t) if !(t.get_ref().is_finite() && *t.get_ref() > 0.0) => {
                return Err(err(
                    at(t.span()),
                    "ssh_timeout_s",
                    "must be a positive number of seconds".into(),
                ));
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_SSH_TIMEOUT_S,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let ssh_config = raw.ssh_config.as_ref().map(|c| base.join(c.get_ref()));
        let journal_dir = match &raw.journal_dir {
            Some(d) if !d.get_ref().starts_with('/') || d.get_ref().contains('\'') => {
                return Err(err(
                    at(d.span()),
                    "journal_dir",
                    "must be an absolute path without quotes".into(),
                ));
            }
            Some(d) => d.get_ref().trim_end_matches('/').to_string(),
            None => DEFAULT_JOURNAL_DIR.to_string(),
        };
        if raw.node.is_empty() {
            return Err(err(
                text.lines().count().max(1),
                "node",
                "no [[node]] tables: an inventory names at least one node".into(),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut nodes = Vec::new();
        for n in raw.node {
            let line = at(n.span());
            let n = n.into_inner();
            let id = n.id.get_ref().clone();
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(err(
                    at(n.id.span()),
                    "id",
                    format!("`{id}`: 1-32 letters, digits, `-` or `_`"),
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(err(
                    at(n.id.span()),
                    "id",
                    format!("`{id}` names two nodes"),
                ));
            }
            let url = n.client_url.get_ref().trim_end_matches('/').to_string();
            let (url_host, _) =
                parse_url(&url).map_err(|m| err(at(n.client_url.span()), "client_url", m))?;
            let ssh = match &n.ssh {
                Some(s) => {
                    Some(SshDest::parse(s.get_ref()).map_err(|m| err(at(s.span()), "ssh", m))?)
                }
                None => None,
            };
            let pids: Vec<(&str, &Spanned<String>)> = [
                ("pid_file", &n.pid_file),
                ("pid_cmd", &n.pid_cmd),
                ("unit", &n.unit),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
            if pids.len() > 1 {
                return Err(err(
                    at(pids[1].1.span()),
                    pids[1].0,
                    format!(
                        "give one of pid_file, pid_cmd, unit (also {} here)",
                        pids[0].0
                    ),
                ));
            }
            let pid = pids.first().map(|(k, v)| {
                let s = v.get_ref().clone();
                match *k {
                    "pid_file" => PidSource::File(s),
                    "pid_cmd" => PidSource::Cmd(s),
                    _ => PidSource::Unit(s),
                }
            });
            let needs_ssh = [
                ("pid_file", n.pid_file.as_ref()),
                ("pid_cmd", n.pid_cmd.as_ref()),
                ("unit", n.unit.as_ref()),
                ("start", n.start.as_ref()),
                ("stop", n.stop.as_ref()),
                ("restart", n.restart.as_ref()),
                ("data_dir", n.data_dir.as_ref()),
                ("upload", n.upload.as_ref()),
                ("upload_to", n.upload_to.as_ref()),
            ];
            if ssh.is_none()
                && let Some((k, v)) = needs_ssh
                    .iter()
                    .find_map(|(k, v)| v.map(|v| (*k, v)))
                    .or(n.logs.first().map(|v| ("logs", v)))
            {
                return Err(err(
                    at(v.span()),
                    k,
                    format!("node `{id}` has no `ssh`: nothing on its host can be reached"),
                ));
            }
            let faketime = n.faketime.as_ref().is_some_and(|f| *f.get_ref());
            if let Some(f) = n.faketime.as_ref().filter(|_| faketime) {
                let why = if ssh.is_none() {
                    Some("needs `ssh`: faultline starts the node on its host")
                } else if n.start.is_none() {
                    Some("needs `start`: the command faultline runs under libfaketime")
                } else if n.pid_file.is_none() && n.pid_cmd.is_none() {
                    Some("needs `pid_file` or `pid_cmd` naming the process `start` makes")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(err(at(f.span()), "faketime", why.into()));
                }
            }
            let upload = match (&n.upload, &n.upload_to) {
                (None, None) => None,
                (Some(u), None) => {
                    return Err(err(at(u.span()), "upload", "give `upload_to` too".into()));
                }
                (None, Some(t)) => {
                    return Err(err(at(t.span()), "upload_to", "give `upload` too".into()));
                }
                (Some(u), Some(t)) => {
                    if !faketime {
                        return Err(err(
                            at(u.span()),
                            "upload",
                            "goes with `faketime = true` (faultline starts what it uploads)".into(),
                        ));
                    }
                    let to = t.get_ref();
                    if !to.starts_with('/') || to.ends_with('/') {
                        return Err(err(
                            at(t.span()),
                            "upload_to",
                            format!("`{to}`: give an absolute file path on the host"),
                        ));
                    }
                    let from = base.join(u.get_ref());
                    if !from.is_file() {
                        return Err(err(
                            at(u.span()),
                            "upload",
                            format!("{}: no such file", from.display()),
                        ));
                    }
                    Some(Upload {
                        from,
                        to: to.clone(),
                    })
                }
            };
            let peer_addrs = match &n.peer_addrs {
                Some(list) => {
                    let mut v = Vec::new();
                    for a in list.get_ref() {
                        v.push(a.get_ref().parse::<Ipv4Addr>().map_err(|_| {
                            err(
                                at(a.span()),
                                "peer_addrs",
                                format!("`{}` is not an IPv4 address", a.get_ref()),
                            )
                        })?);
                    }
                    v
                }
                None => url_host
                    .parse::<Ipv4Addr>()
                    .ok()
                    .or_else(|| ssh.as_ref().and_then(|s| s.host.parse().ok()))
                    .into_iter()
                    .collect(),
            };
            let s = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
            nodes.push(NodeSpec {
                id,
                client_url: url,
                ssh,
                pid,
                start: s(&n.start),
                stop: s(&n.stop),
                restart: s(&n.restart),
                logs: n.logs.iter().map(|l| l.get_ref().clone()).collect(),
                data_dir: s(&n.data_dir),
                faketime,
                upload,
                peer_addrs,
                line,
            });
        }
        Ok(Inventory {
            file: path.to_path_buf(),
            system,
            ssh_config,
            ssh_timeout_s,
            journal_dir,
            nodes,
        })
    }

    /// No node has SSH: clients, checkers and reports only.
    pub fn endpoints_only(&self) -> bool {
        self.nodes.iter().all(|n| n.ssh.is_none())
    }

    /// Every address the harness may send to: client URL hosts and SSH hosts.
    pub fn named_hosts(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        for n in &self.nodes {
            if let Ok((h, _)) = parse_url(&n.client_url) {
                s.insert(h);
            }
            if let Some(d) = &n.ssh {
                s.insert(d.host.clone());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(t, Path::new("c.toml"))
    }

    #[test]
    fn smallest_is_endpoints_only() {
        let i = parse(
            "system = \"etcd\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://10.0.0.11:2379/\"\n",
        )
        .unwrap();
        assert!(i.endpoints_only());
        assert_eq!(i.nodes[0].client_url, "http://10.0.0.11:2379");
        assert_eq!(i.nodes[0].peer_addrs, vec![Ipv4Addr::new(10, 0, 0, 11)]);
        assert_eq!(i.journal_dir, DEFAULT_JOURNAL_DIR);
    }

    #[test]
    fn full_node() {
        let i = parse(
            "system = \"raft\"\nssh_config = \"cfg\"\n[[node]]\nid = \"n1\"\n\
             client_url = \"http://db1:8000\"\nssh = \"root@10.0.0.11:2222\"\n\
             pid_file = \"/run/n1.pid\"\nrestart = \"systemctl restart raft\"\n\
             logs = [\"/var/log/raft.log\"]\npeer_addrs = [\"10.0.1.11\"]\n",
        )
        .unwrap();
        let n = &i.nodes[0];
        assert_eq!(
            n.ssh,
            Some(SshDest {
                user: Some("root".into()),
                host: "10.0.0.11".into(),
                port: Some(2222)
            })
        );
        assert_eq!(n.pid, Some(PidSource::File("/run/n1.pid".into())));
        assert_eq!(n.peer_addrs, vec![Ipv4Addr::new(10, 0, 1, 11)]);
        assert_eq!(n.restart_cmd(), Some("systemctl restart raft"));
        assert_eq!(i.ssh_config, Some(PathBuf::from("cfg")));
        assert_eq!(n.line, 3);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse("system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"10.0.0.1\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (4, "client_url"), "{e}");
        let e = parse(
            "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\n\
             [[node]]\nid = \"n1\"\nclient_url = \"http://b:1\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "id"), "{e}");
        let e = parse(
            "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\n\
             pid_file = \"/p\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (5, "pid_file"), "{e}");
        assert!(e.message.contains("no `ssh`"), "{e}");
        let e = parse(
            "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\nsssh = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "sssh", "{e}");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.to_string().starts_with("c.toml:5: `sssh`"), "{e}");
        let e = parse(
            "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\n\
             ssh = \"r@h\"\npid_file = \"/p\"\nunit = \"u\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (7, "unit"), "{e}");
        let e = parse("system = \"raft\"\n").unwrap_err();
        assert_eq!(e.field, "node");
        let e = parse(
            "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\n\
             ssh = \"r@h\"\npeer_addrs = [\"nope\"]\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "peer_addrs"), "{e}");
    }

    #[test]
    fn faketime_nodes_need_ssh_start_and_a_pid_file_and_uploads_a_real_file() {
        let head = "system = \"raft\"\n[[node]]\nid = \"n1\"\nclient_url = \"http://a:1\"\n";
        let e = parse(&format!(
            "{head}ssh = \"r@h\"\npid_file = \"/p\"\nfaketime = true\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (7, "faketime"), "{e}");
        assert!(e.message.contains("`start`"), "{e}");
        let e = parse(&format!(
            "{head}ssh = \"r@h\"\nstart = \"s\"\nfaketime = true\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("pid_file"), "{e}");
        let ok =
            format!("{head}ssh = \"r@h\"\nstart = \"s\"\npid_file = \"/p\"\nfaketime = true\n");
        assert!(parse(&ok).unwrap().nodes[0].faketime);
        let e = parse(&format!(
            "{ok}upload = \"nope/bin\"\nupload_to = \"/opt/x\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (9, "upload"), "{e}");
        assert!(e.message.contains("no such file"), "{e}");
        let e = parse(&format!("{ok}upload = \"c.toml\"\n")).unwrap_err();
        assert!(e.message.contains("upload_to"), "{e}");
        let e = parse(&format!(
            "{ok}upload = \"Cargo.toml\"\nupload_to = \"opt/x\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.field, "upload_to", "{e}");
        let n = parse(&format!(
            "{ok}upload = \"Cargo.toml\"\nupload_to = \"/opt/x\"\n"
        ))
        .unwrap()
        .nodes
        .remove(0);
        assert_eq!(n.upload.map(|u| u.to), Some("/opt/x".into()));
        let e = parse(&format!(
            "{head}ssh = \"r@h\"\nupload = \"Cargo.toml\"\nupload_to = \"/opt/x\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("faketime = true"), "{e}");
    }

    #[test]
    fn ssh_dest() {
        assert_eq!(SshDest::parse("h").unwrap().target(), "h");
        assert_eq!(SshDest::parse("u@h:22").unwrap().to_string(), "u@h:22");
        assert!(SshDest::parse("u@").is_err());
        assert!(SshDest::parse("u@h:x").is_err());
        assert!(SshDest::parse("@h").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(
            PidSource::File("/run/x y".into()).shell(),
            "cat '/run/x y' 2>/dev/null"
        );
    }
}
