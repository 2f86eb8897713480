//! The local cluster runtime: system descriptors, one network namespace and process per node
//! on a per-run bridge and private /24, network/process/clock fault primitives, teardown, and
//! the registry that lets `faultline cleanup` remove what dead runs left.
//!
//! Typical use (async, tokio):
//! ```no_run
//! # async fn f() -> Result<(), faultline::cluster::ClusterError> {
//! use faultline::cluster::{Cluster, ClusterConfig, SystemDescriptor};
//! let desc = SystemDescriptor::load("etcd")?;
//! let cluster = Cluster::start(desc, ClusterConfig::new(3, "store/t/run1")).await?;
//! for n in cluster.nodes() { println!("{} at {}", n.id, n.url); }
//! cluster.teardown().await?;
//! # Ok(()) }
//! ```

pub mod caps;
pub mod cleanup;
pub mod clock;
#[allow(clippy::module_inception)]
pub mod cluster;
pub mod descriptor;
pub mod error;
pub mod firewall;
pub mod netns;
pub mod node;
pub mod param_condition;
pub mod procfs;
pub mod registry;
pub mod signals;
pub mod status;
pub mod subnet;
pub mod template;

pub use cleanup::{CleanupReport, cleanup_dead_runs};
pub use clock::ClockSupport;
pub use cluster::{
    Cluster, ClusterConfig, NodeInfo, NodeState, StatusSink, join_all, teardown_all_live,
};
pub use descriptor::{ClientAdapter, ClockMode, StatusAdapter, SystemDescriptor};
pub use error::ClusterError;
pub use firewall::NetFaults;
pub use signals::install_signal_teardown;
pub use status::NodeStatus;
pub use subnet::Subnet;
