//! faultline's Dynamo-style quorum store: where a key lives (`ring`), how one replica stores
//! it and how one request is coordinated (`core`: ABD, LWW, vector clocks), how replicas'
//! versions combine under vector clocks (`version`) and how two replicas find where they
//! differ (`merkle`, anti-entropy). No IO here; the node shell (`main.rs`) serves the node
//! protocol with parts of the kit (`faultline-node`).

pub mod core;
pub mod merkle;
pub mod ring;
pub mod version;
