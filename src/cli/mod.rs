//! One file per subcommand. Each `main` returns the exit code of a finished job, or an
//! error that `exit_code_for` maps to 254 (bad input) or 255 (harness failure).

pub mod analyze;
pub mod check;
pub mod cleanup;
pub mod external;
pub mod replay;
pub mod report;
pub mod run;
pub mod serve;
pub mod shrink;
pub mod shrink_schedule;
pub mod suite;
pub mod summary;
pub mod systems;

use faultline::history::HistoryError;

pub const EXIT_BAD_INPUT: u8 = 254;
pub const EXIT_HARNESS_FAILURE: u8 = 255;

/// Marks an error as the user's input being wrong (exit 254) rather than the harness failing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    let bad_input = err
        .chain()
        .any(|c| c.is::<BadInput>() || c.is::<HistoryError>());
    if bad_input {
        EXIT_BAD_INPUT
    } else {
        EXIT_HARNESS_FAILURE
    }
}
