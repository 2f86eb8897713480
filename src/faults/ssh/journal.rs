//! The fault journal kept on every host: before a fault is applied, a line with the exact
//! shell script that undoes it is appended (in the same remote command, so nothing is in
//! force that the journal does not name); once undone, an `undone` line. `faultline cleanup
//! --cluster` reads the journals a dead controller left and runs the pending undo scripts,
//! newest first. The format and its parsing are pure:
//!
//! ```text
//! run <run> <controller host> <controller pid> <controller start ticks>
//! apply <id> <hex(undo script)> <hex(what)>
//! undone <id>
//! ```

use crate::external::inventory::sh_quote;

pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The journal file of `run` in `dir` on the host `dest` (`host-port`: hosts that share a
/// file system, an NFS /var/tmp or network namespaces on one machine, keep theirs apart).
pub fn path(dir: &str, run: &str, dest: &str) -> String {
    format!("{dir}/{run}@{}.journal", dest_key(dest))
}

/// `host:port` as a file-name part.
pub fn dest_key(dest: &str) -> String {
    dest.replace(
        |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "_",
    )
}

/// The run and host key of a journal file name made by `path`.
pub fn parse_name(name: &str) -> Option<(&str, &str)> {
    name.strip_suffix(".journal")?.split_once('@')
}

/// Who wrote a journal: a controller that is still alive owns it, and cleanup leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    pub host: String,
    pub pid: u32,
    pub start_ticks: u64,
}

impl Controller {
    pub fn this_process() -> Controller {
        let pid = std::process::id();
        Controller {
            host: local_hostname(),
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
        }
    }
    /// True if this controller is a live process on this machine.
    pub fn is_alive_here(&self) -> bool {
        self.host == local_hostname()
            && self.pid > 0
            && start_ticks(self.pid) == Some(self.start_ticks)
    }
}

pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
        .replace(char::is_whitespace, "_")
}

/// Field 22 of /proc/PID/stat: the process start time, which tells a pid's reuse apart.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_ticks(&s)
}

pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A shell snippet printing the start ticks of the process `$1`-style `pid_expr` (same
/// field as `parse_start_ticks`).
pub fn start_ticks_shell(pid_expr: &str) -> String {
    format!("sed 's/.*) //' /proc/{pid_expr}/stat 2>/dev/null | cut -d' ' -f20")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub undo: String,
    pub what: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    pub run: Option<String>,
    pub controller: Option<Controller>,
    /// Applied and not undone, oldest first.
    pub pending: Vec<Entry>,
    /// Lines that are none of the above (a torn write): reported, never acted on.
    pub unreadable: Vec<String>,
}

impl Journal {
    pub fn parse(text: &str) -> Journal {
        let mut j = Journal::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["run", run, host, pid, ticks] => {
                    j.run = Some(run.to_string());
                    j.controller = Some(Controller {
                        host: host.to_string(),
                        pid: pid.parse().unwrap_or(0),
                        start_ticks: ticks.parse().unwrap_or(0),
                    });
                }
                ["apply", id, undo, what] => match (id.parse(), unhex(undo), unhex(what)) {
                    (Ok(id), Some(undo), Some(what)) => {
                        j.pending.retain(|e: &Entry| e.id != id);
                        j.pending.push(Entry { id, undo, what })
                    }
                    _ => j.unreadable.push(line.to_string()),
                },
                ["undone", id] => match id.parse::<u64>() {
                    Ok(id) => j.pending.retain(|e| e.id != id),
                    Err(_) => j.unreadable.push(line.to_string()),
                },
                _ => j.unreadable.push(line.to_string()),
            }
        }
        j
    }
}

/// A script that appends `line` to the journal `file` in `dir` (making the directory).
pub fn append(dir: &str, file: &str, line: &str) -> String {
    format!(
        "mkdir -p {d} && printf '%s\\n' {l} >> {f}",
        d = sh_quote(dir),
        l = sh_quote(line),
        f = sh_quote(file)
    )
}

pub fn header(run: &str, c: &Controller) -> String {
    format!("run {run} {} {} {}", c.host, c.pid, c.start_ticks)
}

pub fn apply_line(id: u64, undo: &str, what: &str) -> String {
    format!("apply {id} {} {}", hex(undo), hex(what))
}

pub fn undone_line(id: u64) -> String {
    format!("undone {id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let s = "nft delete table inet fl-x; echo 'é'";
        assert_eq!(unhex(&hex(s)).as_deref(), Some(s));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn pending_entries() {
        let text = format!(
            "run r1 box 42 99\n{}\n{}\n{}\ngarbage\n",
            apply_line(1, "undo one", "partition"),
            apply_line(2, "undo two", "pause n1"),
            undone_line(1)
        );
        let j = Journal::parse(&text);
        assert_eq!(j.run.as_deref(), Some("r1"));
        assert_eq!(
            j.controller,
            Some(Controller {
                host: "box".into(),
                pid: 42,
                start_ticks: 99
            })
        );
        assert_eq!(
            j.pending,
            vec![Entry {
                id: 2,
                undo: "undo two".into(),
                what: "pause n1".into()
            }]
        );
        assert_eq!(j.unreadable, vec!["garbage".to_string()]);
    }

    #[test]
    fn stat_field() {
        let stat = "1234 (a b) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 100 10";
        assert_eq!(parse_start_ticks(stat), Some(777));
        let me = start_ticks(std::process::id());
        assert!(me.is_some());
        assert!(Controller::this_process().is_alive_here());
    }

    #[test]
    fn append_quotes() {
        let f = path("/var/tmp/j", "r1", "root@10.0.0.1:22");
        assert_eq!(f, "/var/tmp/j/r1@root_10.0.0.1_22.journal");
        assert_eq!(
            parse_name("r1@root_10.0.0.1_22.journal"),
            Some(("r1", "root_10.0.0.1_22"))
        );
        assert_eq!(
            append("/var/tmp/j", &f, "undone 3"),
            "mkdir -p '/var/tmp/j' && printf '%s\\n' 'undone 3' >> \
             '/var/tmp/j/r1@root_10.0.0.1_22.journal'"
        );
    }
}
