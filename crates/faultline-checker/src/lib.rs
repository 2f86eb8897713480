//! Checkers: pure functions from a history to a verdict. One folder or file per checker.

pub mod linearizable;
pub mod verdict;

pub use verdict::{Anomaly, Budget, Validity, Verdict};
pub mod elle;
pub mod fencing;
pub mod set;
pub mod shrink;
pub mod split_brain;
pub mod weak;
