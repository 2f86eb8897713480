//! Errors of schedules and the nemesis.

use crate::cluster::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A schedule is malformed; names the file, line or field.
    #[error("{file}: {field}: {message}")]
    Schedule {
        file: String,
        field: String,
        message: String,
    },
    #[error("unknown nemesis `{0}`: expected one of {1} or a path to a .toml schedule")]
    UnknownSchedule(String, String),
    /// The schedule needs a fault this system cannot take.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Faults(#[from] crate::faults::FaultsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl NemesisError {
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            NemesisError::Schedule { .. }
                | NemesisError::UnknownSchedule(..)
                | NemesisError::Unsupported(..)
        )
    }
}
