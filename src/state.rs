//! The state every part of the running server shares.

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::geo::GeoDb;
use crate::metrics::Metrics;
use crate::routing::RoutingTable;

/// Shared by the DNS listeners (readers) and the loader and watchers
/// (writers). Readers load one snapshot per query; writers swap whole
/// values, never mutate in place.
#[derive(Debug)]
pub struct Shared {
    /// The routing table: written by start-up and reloads.
    pub table: ArcSwap<RoutingTable>,
    /// The GeoIP database: written by start-up and the file watcher.
    pub geo: ArcSwapOption<GeoDb>,
    /// Counters: bumped by the answer path, read by the admin API.
    pub metrics: Metrics,
}
