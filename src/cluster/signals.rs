//! SIGINT/SIGTERM: tear down every cluster of this process before exiting, so a ^C never
//! leaves namespaces, rules or node processes behind.

/// Spawns a task (on the current tokio runtime) that, on SIGINT or SIGTERM, runs
/// `on_signal` (e.g. the runner flushing its history), tears down every live cluster, and
/// exits with 128 + the signal number. Call once, early.
pub fn install_signal_teardown(
    on_signal: impl FnOnce(i32) + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let signo = tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
        };
        eprintln!("faultline: signal {signo}: healing and tearing down the cluster");
        on_signal(signo);
        tokio::task::spawn_blocking(super::cluster::teardown_all_live)
            .await
            .ok();
        std::process::exit(128 + signo);
    }))
}
