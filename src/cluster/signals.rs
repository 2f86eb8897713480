//! SIGINT/SIGTERM: tear down every cluster of this process before exiting, so a ^C never
//! leaves namespaces, rules or node processes behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Spawns a task (on the current tokio runtime) that, on SIGINT or SIGTERM, runs
/// `on_signal` (e.g. the runner flushing its history), tears down every live cluster, and
/// exits with 128 + the signal number. Call once, early.
///
/// With `wind_down`, the first SIGINT only sets that flag (the caller ends its run early and
/// still heals, checks and reports what was recorded); a second SIGINT, or any SIGTERM,
/// tears down at once.
pub fn install_signal_teardown(
    wind_down: Option<Arc<AtomicBool>>,
    on_signal: impl FnOnce(i32) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let signo = loop {
            let signo = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            match &wind_down {
                Some(flag) if signo == libc::SIGINT && !flag.swap(true, Ordering::SeqCst) => {
                    eprintln!(
                        "faultline: interrupted: ending the run early, then healing and checking \
                         what was recorded (^C again to stop at once)"
                    );
                }
                _ => break signo,
            }
        };
        eprintln!("faultline: signal {signo}: healing and tearing down the cluster");
        on_signal(signo);
        tokio::task::spawn_blocking(super::cluster::teardown_all_live)
            .await
            .ok();
        std::process::exit(128 + signo);
    }))
}
