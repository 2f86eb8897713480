//! Suites: a file of rows (system x workload x nemesis x bugs x seeds) run as `faultline run`
//! children, each judged against what its row expects, with fingerprints that group failures
//! across nights, reruns that tell reproducible from flaky, and a JUnit file and summary.

pub mod child;
pub mod fingerprint;
pub mod outcome;
pub mod report;
pub mod spec;
pub mod table;

pub use fingerprint::{Fingerprint, Match};
pub use outcome::{Classification, Judgement, RunRecord};
pub use spec::{Case, Expect, Row, Suite};
