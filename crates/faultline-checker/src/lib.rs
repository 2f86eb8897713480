//! Checkers: pure functions from a history to a verdict. One folder or file per checker.

pub mod linearizable;
pub mod verdict;

pub use bad_op::BadOp;
pub use verdict::{Anomaly, Budget, Validity, Verdict};
pub mod bad_op;
pub mod bank;
pub mod counter;
pub mod elle;
pub mod fencing;
pub mod long_fork;
pub mod pin;
pub mod set;
pub mod shrink;
pub mod split_brain;
pub mod unique_ids;
pub mod weak;
pub mod witness;
