//! The node protocol's wire types (DESIGN.md, "Node protocol"), shared by the harness and
//! every bundled node so the two sides cannot drift, plus the RFC 3339 stamps node log lines
//! start with.

pub mod stamp;
pub mod wire;

pub use stamp::{compact_unix_secs, format_unix_ms, format_unix_secs, parse_rfc3339_ms, unix_ms};
pub use wire::{
    ErrorBody, LogEntry, NodeStatus, REQUEST_ID, ROLE_CANDIDATE, ROLE_FOLLOWER, ROLE_LEADER,
};
