//! Operations and histories: the native event model, its JSONL reader and writer, and
//! importers from other tools' formats.

pub mod compact;
pub mod cores;
pub mod edn;
pub mod edn_export;
pub mod error;
pub mod event;
pub mod import;
pub mod jepsen_log;
pub mod jepsen_op;
pub mod jsonl;
pub mod operation;
pub mod subset;
pub mod testkit;

pub use error::HistoryError;
pub use event::{Event, EventType, Process};
pub use import::{Format, read_file};
pub use operation::{History, Operation, Outcome};
