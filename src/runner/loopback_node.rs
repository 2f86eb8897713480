//! An in-process node speaking DESIGN.md's node protocol: the node kit's server over its
//! `Solo` replica, in memory (nothing persisted, no fsync). It exists to measure the
//! harness's own ceiling (nothing to wait for but the harness and one node loop) and to
//! exercise the client path over real sockets in tests.

use std::net::SocketAddr;
use std::time::Duration;

use faultline_node::solo::Solo;
use faultline_node::{LoopOptions, Parts};

/// Aborts the server when the task holding it ends or is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves until the returned handle is aborted or the runtime ends.
pub async fn serve(id: &str) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let dir = tempfile::tempdir()?;
    let storage = faultline_node::open_storage::<faultline_node::solo::Record>(id, dir.path())
        .map_err(std::io::Error::other)?;
    let (replica, recovered) = Solo::recover(id, false, Vec::new(), 0);
    let parts = Parts {
        id: id.to_string(),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        replica,
        wal: storage.wal,
        snapshot: None,
        peer_path: "/solo/batch",
        is_large: |_| false,
        opts: LoopOptions {
            snapshot_threshold: u64::MAX,
            request_timeout: Duration::from_secs(5),
            tick: Duration::from_millis(10),
            lazy_wal: false,
            dedupe_requests: true,
        },
        recovered,
    };
    let started = faultline_node::start(parts, Vec::new())
        .await
        .map_err(std::io::Error::other)?;
    let addr = started.addr;
    let handle = tokio::spawn(async move {
        let _dir = dir;
        let mut server = AbortOnDrop(started.server);
        let _ = (&mut server.0).await;
    });
    Ok((addr, handle))
}
