//! faultline-node: what every bundled node needs that is not its protocol.
//!
//! A system is a pure core plus one [`Replica`] impl; the kit gives it the node protocol
//! server (`/kv/*`, `/txn`, `/status`, `/log`, `/admin/failpoint`, forwarding to the
//! leader), the KV state machine with transactions and request-id dedupe, the WAL and
//! snapshots, the peer transport, timers and the protocol clock, RFC 3339 log stamps, the
//! common command line, and test helpers (`sim`: an in-memory network for cores;
//! `local_cluster`: real processes on loopback). It depends on nothing of the harness.
//!
//! ```text
//! fn main() -> anyhow::Result<()> {
//!     faultline_node::init()?;                       // first: libfaketime re-exec, panic hook
//!     let args = Args::parse();                      // flattens faultline_node::cli::NodeArgs
//!     let storage = faultline_node::open_storage::<MyRecord>(&args.node.id, &args.node.data_dir)?;
//!     let replica = MyReplica::recover(storage.records, storage.snapshot.as_ref(), ...);
//!     faultline_node::serve(&args.node, Service { replica, wal: storage.wal, snapshot: storage.snapshot,
//!                                                 peer_path: "/my/batch", ... })
//! }
//! ```

pub mod cli;
pub mod clock;
pub mod failpoint;
pub mod kv;
pub mod local_cluster;
pub mod node;
pub mod read_rounds;
pub mod refusals;
pub mod replica;
pub mod server;
pub mod sim;
pub mod solo;
pub mod transport;
pub mod wal;

pub use node::{LoopOptions, Node, Parts, Reply, Storage, View, open_storage};
pub use replica::{
    Committed, Effect, Index, Input, NodeId, Reject, Replica, ReplicaStatus, Role, snapshot_index,
};

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes one line to stderr, stamped with the protocol wall clock in RFC 3339 (UTC, ms), so
/// the harness's report can line node logs up with the history.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} {}", $crate::stamp(), format_args!($($arg)*))
    };
}

/// The current protocol wall-clock time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn stamp() -> String {
    faultline_proto::format_unix_ms(clock::wall_ms())
}

/// Call first in `main`: keeps the monotonic clock real under libfaketime (re-exec) and makes
/// a panic on any thread end the process instead of leaving a zombie server.
pub fn init() -> anyhow::Result<()> {
    if clock::keep_monotonic_clock_real()? {
        log!("libfaketime preloaded: wall clock faked, monotonic clock kept real");
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    Ok(())
}

/// What a system hands the kit to serve (see `Parts` for the fields).
pub type Service<R> = Parts<R>;

/// A node started in this process (tests, the harness's in-process node): its HTTP address.
/// The node loop runs on its own thread until the process ends; `server` serves HTTP on the
/// runtime it was started on.
pub struct Started {
    pub addr: std::net::SocketAddr,
    pub server: tokio::task::JoinHandle<()>,
}

/// Starts the node on the current tokio runtime: binds `service.listen` (port 0 picks one),
/// spawns the node loop thread and the HTTP server. `bugs` are the planted bugs' names, shown
/// in `/status`.
pub async fn start<R: Replica>(service: Service<R>, bugs: Vec<String>) -> anyhow::Result<Started> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(&service.listen)
        .await
        .with_context(|| format!("binding {}", service.listen))?;
    let addr = listener.local_addr()?;
    let mut service = service;
    service.listen = addr.to_string();
    let id = service.id.clone();
    let peer_path = service.peer_path;
    let request_timeout = service.opts.request_timeout;
    let view = Arc::new(Mutex::new(View::default()));
    let failpoints = Arc::new(failpoint::Failpoints::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let data_dir = service.data_dir.clone();
    let node = Node::new(
        service,
        tx.clone(),
        tokio::runtime::Handle::current(),
        view.clone(),
        failpoints.clone(),
    )
    .with_context(|| format!("opening data dir {}", data_dir.display()))?;
    let shared = Arc::new(server::Shared {
        id: id.clone(),
        bugs,
        events: tx,
        view,
        failpoints,
        request_timeout,
        inflight: AtomicUsize::new(0),
        max_inflight: 20_000,
        http: transport::http_client(),
        refusals: Mutex::new(refusals::Refusals::default()),
    });
    log!("[{id}] listening on {addr}");
    let node_id = id.clone();
    std::thread::Builder::new()
        .name("node-loop".into())
        .spawn(move || {
            if let Err(e) = node.run(rx) {
                log!("[{node_id}] fatal storage error: {e}");
                std::process::exit(1);
            }
        })?;
    let app = server::router(shared, peer_path);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            log!("[{id}] http server ended: {e}");
        }
    });
    Ok(Started { addr, server })
}

/// Serves the node until the process ends, on a small runtime of its own (a node's `main`).
pub fn serve<R: Replica>(service: Service<R>, bugs: Vec<String>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = start(service, bugs).await?;
        started.server.await?;
        Ok(())
    })
}

/// The loop options from the common command line.
pub fn loop_options(args: &cli::NodeArgs) -> LoopOptions {
    LoopOptions {
        snapshot_threshold: args.snapshot_threshold.max(1),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        tick: Duration::from_millis(10),
        lazy_wal: false,
        dedupe_requests: true,
    }
}
