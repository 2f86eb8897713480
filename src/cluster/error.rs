//! Errors of the local cluster runtime.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A descriptor (or other TOML input) is malformed; names the file and field.
    #[error("{file}: {field}: {message}")]
    Descriptor {
        file: String,
        field: String,
        message: String,
    },
    /// No descriptor of that name exists.
    #[error("unknown system `{0}`: expected one of {1} or a path to a .toml descriptor")]
    UnknownSystem(String, String),
    /// The machine lacks something the runtime needs; the message names the fix.
    #[error("{0}")]
    Missing(String),
    /// An external command (ip, nft) failed.
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    /// A node answered its readiness probe, but not with 2xx, for longer than a node could
    /// take to start: `[ready]` names a path or method the node does not serve.
    #[error(
        "{file}: [ready]: {answer}; the node runs and is reachable, so `path` (or `method`) \
         in [ready] names something it does not serve with 2xx"
    )]
    ReadyRefused {
        file: String,
        /// Which node answered which probe with what: `node n1 answered the readiness
        /// probe GET URL with 404 Not Found (empty body)`.
        answer: String,
    },
    #[error("node {node}: {message}")]
    Node { node: String, message: String },
    #[error("no such node `{0}`")]
    NoSuchNode(String),
    #[error("no free private /24 subnet left in {0}")]
    NoSubnet(String),
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: String, ms: u64 },
    #[error("clock faults unsupported for this system: {0}")]
    ClockUnsupported(String),
    #[error("cluster already torn down")]
    TornDown,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ClusterError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClusterError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the cause is the user's input (a descriptor, a name), not the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ClusterError::Descriptor { .. }
                | ClusterError::UnknownSystem(..)
                | ClusterError::ReadyRefused { .. }
        )
    }
}
