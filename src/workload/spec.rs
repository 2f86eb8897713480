//! Workloads described in TOML (`workloads/*.toml`), selectable by name or path. A parse
//! error names the file, the line and the field at fault.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What shape of operations a workload issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `read`, `write`, `cas` on one or many independent keys (register, cas-register, kv).
    Register,
    /// `txn` of `append` and `r` micro-ops over a few keys.
    ListAppend,
    /// `add` of unique elements, and `read` of the whole set.
    Set,
}

/// A checker a workload asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckerName {
    /// Linearizability per key, under `model`.
    Linearizable,
    /// Elle-style transaction graphs (list-append).
    Elle,
    /// Lost, duplicated and unexpected elements of a set.
    Set,
    /// Two leaders in one term (probes), divergent committed logs (`/log`).
    SplitBrain,
    /// Acknowledged writes missing from the final reads.
    LostWrites,
    /// Each key a multi-writer regular register (a read sees a write not overwritten by one
    /// completed before the read began; weak::read_after_write).
    ReadAfterWrite,
    /// Per client session, reads never go back to a write overwritten in real time.
    MonotonicReads,
    /// Each acknowledged write or add is in the final sibling set or causally superseded.
    SiblingLostWrites,
    /// After heal and quiescence every home replica of a key holds the same state (each
    /// node's final `/log`, in the Dynamo shape: `/replica/dump` answers).
    Convergence,
    /// k-staleness and time-visibility of reads: a figure, never a verdict.
    Staleness,
}

/// Relative weights of the operations a workload issues; absent means 0.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub read: u32,
    #[serde(default)]
    pub write: u32,
    #[serde(default)]
    pub cas: u32,
    /// list-append: weight of an `append` micro-op (against `read` for an `r`).
    #[serde(default)]
    pub append: u32,
    /// set: weight of an `add` (against `read`).
    #[serde(default)]
    pub add: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    #[serde(skip)]
    pub name: String,
    /// The TOML it was read from (stored in the run directory for `analyze`).
    #[serde(skip)]
    pub text: String,
    #[serde(default)]
    pub description: String,
    pub kind: Kind,
    pub checkers: Vec<CheckerName>,
    /// Model for the linearizability checker: `register` or `cas-register`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Keys in use at once.
    #[serde(default = "one")]
    pub keys: u32,
    /// A key retires after this many invocations and a fresh key takes its place (as Jepsen's
    /// `independent` generator does), so per-key histories stay small. 0: keys never retire.
    #[serde(default)]
    pub ops_per_key: u32,
    /// Written values (register kinds) are drawn from `0..values`.
    #[serde(default = "five")]
    pub values: u32,
    /// Micro-ops per transaction (list-append).
    #[serde(default = "one")]
    pub txn_min: u32,
    #[serde(default = "four")]
    pub txn_max: u32,
    /// Default total rate in ops/s (0: as fast as the clients go); `--rate` overrides.
    #[serde(default)]
    pub rate: f64,
    /// The `liveness` checker's T in seconds: while only a minority is down (or nothing),
    /// each op must be followed this soon by a success on its key. 0 turns it off.
    #[serde(default = "liveness_within_s")]
    pub liveness_within_s: f64,
    pub mix: Mix,
}

fn liveness_within_s() -> f64 {
    crate::checker::liveness::DEFAULT_WITHIN_MS as f64 / 1000.0
}

fn default_model() -> String {
    "cas-register".into()
}
fn one() -> u32 {
    1
}
fn four() -> u32 {
    4
}
fn five() -> u32 {
    5
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}:{line}: {field}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no workload named {name:?} (known: {known}); give a name or a .toml path")]
    Unknown { name: String, known: String },
}

/// The shipped workloads, built in so `faultline run` works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("register", include_str!("../../workloads/register.toml")),
    (
        "cas-register",
        include_str!("../../workloads/cas-register.toml"),
    ),
    ("kv", include_str!("../../workloads/kv.toml")),
    (
        "list-append",
        include_str!("../../workloads/list-append.toml"),
    ),
    ("set", include_str!("../../workloads/set.toml")),
    (
        "weak-register",
        include_str!("../../workloads/weak-register.toml"),
    ),
    ("siblings", include_str!("../../workloads/siblings.toml")),
];

impl WorkloadSpec {
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A path (contains `/` or ends in `.toml`), else a name: `workloads/NAME.toml` in the
    /// working directory if present, else a built-in workload.
    pub fn load(name_or_path: &str) -> Result<WorkloadSpec, SpecError> {
        let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/');
        let local = Path::new("workloads").join(format!("{name_or_path}.toml"));
        let path = if looks_like_path {
            PathBuf::from(name_or_path)
        } else if local.is_file() {
            local
        } else if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            let origin = PathBuf::from(format!("builtin:{name_or_path}"));
            return Self::parse(text, &origin, name_or_path);
        } else {
            return Err(SpecError::Unknown {
                name: name_or_path.into(),
                known: Self::builtin_names().join(", "),
            });
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Io {
            file: path.clone(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&text, &path, &stem)
    }

    /// Parses and validates a workload's TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path, name: &str) -> Result<WorkloadSpec, SpecError> {
        let mut spec: WorkloadSpec = toml::from_str(text).map_err(|e| {
            let (line, field) = locate(text, e.span());
            let field = field_in_message(e.message()).unwrap_or(field);
            SpecError::Invalid {
                file: file.to_path_buf(),
                line,
                field,
                message: e.message().trim().to_string(),
            }
        })?;
        spec.name = name.to_string();
        spec.text = text.to_string();
        spec.validate(text, file)?;
        Ok(spec)
    }

    fn validate(&self, text: &str, file: &Path) -> Result<(), SpecError> {
        let bad = |field: &str, message: String| SpecError::Invalid {
            file: file.to_path_buf(),
            line: line_of_key(text, field),
            field: field.to_string(),
            message,
        };
        let m = &self.mix;
        match self.kind {
            Kind::Register => {
                if m.read + m.write + m.cas == 0 {
                    return Err(bad(
                        "mix",
                        "a register workload needs read, write or cas weights".into(),
                    ));
                }
                if m.append + m.add > 0 {
                    return Err(bad(
                        "mix",
                        "append and add belong to list-append and set workloads".into(),
                    ));
                }
                if !matches!(self.model.as_str(), "register" | "cas-register") {
                    return Err(bad(
                        "model",
                        format!("must be register or cas-register, found {:?}", self.model),
                    ));
                }
                if m.cas > 0 && self.model == "register" {
                    return Err(bad("model", "cas ops need the cas-register model".into()));
                }
                if self.values == 0 {
                    return Err(bad("values", "must be at least 1".into()));
                }
            }
            Kind::ListAppend => {
                if m.read + m.append == 0 || m.write + m.cas + m.add > 0 {
                    return Err(bad(
                        "mix",
                        "a list-append workload weighs read and append only".into(),
                    ));
                }
                if self.txn_min == 0 || self.txn_min > self.txn_max {
                    return Err(bad(
                        "txn_min",
                        format!(
                            "need 1 <= txn_min <= txn_max, found {}..{}",
                            self.txn_min, self.txn_max
                        ),
                    ));
                }
            }
            Kind::Set => {
                if m.add == 0 || m.write + m.cas + m.append > 0 {
                    return Err(bad(
                        "mix",
                        "a set workload weighs add (and read) only".into(),
                    ));
                }
            }
        }
        if self.keys == 0 {
            return Err(bad("keys", "must be at least 1".into()));
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(bad(
                "rate",
                format!("must be a non-negative number, found {}", self.rate),
            ));
        }
        if !(self.liveness_within_s >= 0.0 && self.liveness_within_s.is_finite()) {
            return Err(bad(
                "liveness_within_s",
                format!(
                    "must be a non-negative number of seconds (0: off), found {}",
                    self.liveness_within_s
                ),
            ));
        }
        if self.checkers.is_empty() {
            return Err(bad("checkers", "name at least one checker".into()));
        }
        let fits = |c: &CheckerName| match c {
            CheckerName::Linearizable
            | CheckerName::LostWrites
            | CheckerName::ReadAfterWrite
            | CheckerName::MonotonicReads
            | CheckerName::Staleness => self.kind == Kind::Register,
            CheckerName::SiblingLostWrites => self.kind != Kind::ListAppend,
            CheckerName::Convergence => true,
            CheckerName::Elle => self.kind == Kind::ListAppend,
            CheckerName::Set => self.kind == Kind::Set,
            CheckerName::SplitBrain => true,
        };
        if let Some(c) = self.checkers.iter().find(|c| !fits(c)) {
            return Err(bad(
                "checkers",
                format!("{c:?} cannot judge a {:?} workload", self.kind),
            ));
        }
        Ok(())
    }
}

/// The 1-based line of a byte span, and the key written on that line (if any).
fn locate(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, String) {
    let Some(span) = span else {
        return (1, "toml".into());
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let field = match line_text.split_once('=') {
        Some((k, _)) => k.trim().to_string(),
        None => line_text.trim().trim_matches(['[', ']']).to_string(),
    };
    (
        line,
        if field.is_empty() {
            "toml".into()
        } else {
            field
        },
    )
}

/// serde names the field for missing and unknown fields; prefer that over the span's line.
fn field_in_message(msg: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.split(prefix).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// The line where `key` is assigned or its table opens (1 if it is absent).
fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
                || l.starts_with(&format!("[{key}]"))
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WorkloadSpec, SpecError> {
        WorkloadSpec::parse(text, Path::new("w.toml"), "w")
    }

    #[test]
    fn shipped_workloads_parse() {
        for n in ["register", "cas-register", "kv", "list-append", "set"] {
            let spec = WorkloadSpec::load(n).unwrap();
            assert_eq!(spec.name, n);
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("workloads/{n}.toml"));
            assert_eq!(WorkloadSpec::load(file.to_str().unwrap()).unwrap(), spec);
        }
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases = [
            (
                "kind = \"register\"\ncheckers = [\"linearizable\"]\nkeys = \"x\"\n[mix]\nread = 1\n",
                "w.toml:3: keys: ",
            ),
            (
                "kind = \"register\"\nchecker = [\"linearizable\"]\n",
                "w.toml:2: checker: unknown field",
            ),
            (
                "kind = \"register\"\n[mix]\nread = 1\n",
                "w.toml:1: checkers: missing field",
            ),
            ("kind = \"blob\"\n", "w.toml:1: kind: "),
            (
                "kind = \"register\"\ncheckers = [\"elle\"]\n[mix]\nread = 1\n",
                "w.toml:2: checkers: Elle cannot judge",
            ),
            (
                "kind = \"register\"\ncheckers = [\"linearizable\"]\nmodel = \"register\"\n[mix]\ncas = 1\n",
                "w.toml:3: model: cas ops",
            ),
            (
                "kind = \"set\"\ncheckers = [\"set\"]\n\n[mix]\nread = 1\n",
                "w.toml:4: mix: ",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = WorkloadSpec::load("nope").unwrap_err().to_string();
        assert!(err.contains("known: ") && err.contains("kv"), "{err}");
    }
}
