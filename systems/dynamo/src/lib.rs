//! faultline's Dynamo-style quorum store: where a key lives (`ring`), how one replica stores
//! it and how one request is coordinated (`core`, ABD and LWW), and how replicas' versions
//! combine under vector clocks (`version`, not yet served by the node). No IO here; the
//! node shell (`main.rs`) serves the node protocol with parts of the kit (`faultline-node`).

pub mod core;
pub mod ring;
pub mod version;
