//! What can stop a report from being written: a missing or malformed input file (named with
//! its line and field) or a failed write. Never a partial page silently.

use std::path::PathBuf;

use crate::history::HistoryError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {field}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        /// 1-based line in the file (0 when the whole file is at fault).
        line: usize,
        field: String,
        message: String,
    },
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl ReportError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn malformed(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ReportError::Malformed {
            path: path.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    /// True when the input was wrong (the CLI maps this to exit 254), false for IO failures.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ReportError::Io { .. })
            && !matches!(self, ReportError::History(HistoryError::Io { .. }))
    }
}
