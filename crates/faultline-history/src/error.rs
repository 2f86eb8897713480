//! Malformed input is an error that names the file, the line and the field; never a verdict.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{}:{line}: {field}: {message}", file.display())]
    Malformed {
        file: PathBuf,
        /// 1-based line number in the input.
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
}

impl HistoryError {
    pub fn malformed(
        file: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        HistoryError::Malformed {
            file: file.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn io(file: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HistoryError::Io {
            file: file.into(),
            source,
        }
    }
}
