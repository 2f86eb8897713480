//! The report of a run: one self-contained HTML page (verdict, seed, faults, a windowed
//! timeline of every op with nemesis bands, latency and throughput plots, counterexamples
//! drawn from checker witnesses, node log excerpts), JUnit XML for CI, `results.json`, and
//! the index of stored runs that `faultline serve` shows.
//!
//! `write_run_report(run_dir)` is called by the runner at the end of every run and by
//! `faultline report`; `render_html(&ReportInput::new(title, &history, &verdicts))` serves
//! `faultline check --html`.

mod anomalies;
mod chart;
mod counterexample;
mod cycle_drawing;
pub mod error;
pub mod escape;
pub mod fault_bands;
mod html;
pub mod input;
pub mod junit;
pub mod node_logs;
pub mod plots;
pub mod results;
pub mod run_dir;
pub mod server;
pub mod space_time;
pub mod store_index;
pub mod suite_history;
pub mod timeline;
pub mod witness;

pub use error::ReportError;
pub use html::render_html;
pub use input::ReportInput;
pub use junit::junit_xml;
pub use results::RunResults;
pub use run_dir::{ReportFiles, write_run_report, write_run_report_windows};
