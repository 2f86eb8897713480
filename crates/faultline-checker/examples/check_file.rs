//! Checks a recorded history file with the library API, as a Rust project would from its own
//! tooling: any format `faultline check` reads (native JSONL, Jepsen EDN / JSON / log lines,
//! Porcupine kv), loaded compact, decided per key.
//!
//!     cargo run --release -p faultline-checker --example check_file -- FILE [MODEL]
//!
//! MODEL is a linearizability model (`cas-register` by default, `register`, `kv`,
//! `append-kv`, `multi-register`, `mutex`, `set`, `queue`). Exits 0 valid, 1 invalid,
//! 2 unknown, 254 unreadable input, like `faultline check`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use faultline_checker::Budget;
use faultline_checker::linearizable::{self, Model};
use faultline_history::Format;
use faultline_history::compact::{self, LoadLimits};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: check_file FILE [MODEL]");
        return ExitCode::from(254);
    };
    let model: Model = match args.get(1).map_or("cas-register", String::as_str).parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(254);
        }
    };
    let history = match compact::load(Path::new(file), Format::Auto, &LoadLimits::default()) {
        Ok((h, _stats)) => h,
        // The error names the file, line and field.
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(254);
        }
    };
    // Every budget has a limit: past it the verdict is `unknown`, with what was decided.
    let budget = Budget {
        time_limit: Some(Duration::from_secs(60)),
        memory_limit_bytes: Some(1 << 30),
    };
    let verdict = linearizable::check(&history, model, &budget);
    println!("{file}: {:?}: {}", verdict.valid, verdict.explanation);
    for a in &verdict.anomalies {
        let key = a.key.as_deref().unwrap_or("-");
        println!("  {} on key {key}: {}", a.kind, a.description);
    }
    ExitCode::from(verdict.valid.exit_code())
}
