//! Operations and histories: the native event model, its JSONL reader and writer, and
//! importers from other tools' formats.

pub mod elle_json;
pub mod error;
pub mod event;
pub mod jsonl;
pub mod operation;

pub use error::HistoryError;
pub use event::{Event, EventType, Process};
pub use operation::{History, Operation, Outcome};
