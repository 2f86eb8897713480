//! Checkers: pure functions from a history to a verdict. One folder or file per checker.
//!
//! A history comes from `faultline_history` (read from a file in any format `faultline check`
//! reads, loaded compact for large files, or built from events). Every checker returns a
//! [`Verdict`]: valid, invalid with typed [`witness`]es attached to its anomalies, or
//! unknown when its [`Budget`] ran out. A malformed history is an error before any verdict.
//!
//! ```
//! use faultline_checker::linearizable::{self, Model};
//! use faultline_checker::{Budget, Validity};
//! use faultline_history::testkit::{history_of, push_client};
//! use faultline_history::EventType::{Invoke, Ok};
//! use serde_json::json;
//!
//! // A write of 1 completes, then a read returns the old value 0.
//! let mut events = Vec::new();
//! push_client(&mut events, 0, Invoke, "write", Some("x"), json!(1));
//! push_client(&mut events, 0, Ok, "write", Some("x"), json!(1));
//! push_client(&mut events, 1, Invoke, "read", Some("x"), json!(null));
//! push_client(&mut events, 1, Ok, "read", Some("x"), json!(0));
//! let verdict = linearizable::check(&history_of(events), Model::CasRegister, &Budget::default());
//! assert_eq!(verdict.valid, Validity::Invalid);
//! assert_eq!(verdict.anomalies[0].kind, "nonlinearizable");
//! ```
//!
//! `examples/check_file.rs` checks a recorded file; `examples/in_memory.rs` builds the
//! events by hand.

pub mod linearizable;
pub mod verdict;

pub use bad_op::BadOp;
pub use verdict::{Anomaly, Budget, Validity, Verdict};
pub mod bad_op;
pub mod bank;
pub mod counter;
pub mod elle;
pub mod fencing;
pub mod liveness;
pub mod long_fork;
pub mod pin;
pub mod registry;
pub mod set;
pub mod shrink;
pub mod split_brain;
pub mod unique_ids;
pub mod weak;
pub mod witness;
