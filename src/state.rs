//! The state every part of the running server shares.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

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
    /// Endpoints disabled at runtime, (profile name lowercase, endpoint):
    /// written by the admin API, read by reloads (kept in the state file).
    pub overrides: Mutex<BTreeSet<(String, String)>>,
    /// Set once the DNS listeners (and the prober, when wanted) run; read
    /// by `/healthz`.
    pub ready: AtomicBool,
    /// The admin API's bearer token: written at start-up and by reloads,
    /// read by every admin request.
    pub admin_token: ArcSwapOption<crate::config::Secret>,
}

impl Shared {
    /// Shared state around a freshly loaded configuration.
    pub fn new(
        table: crate::routing::RoutingTable,
        geo: Option<std::sync::Arc<GeoDb>>,
        overrides: BTreeSet<(String, String)>,
    ) -> Shared {
        Shared {
            table: ArcSwap::from_pointee(table),
            geo: ArcSwapOption::new(geo),
            metrics: Metrics::default(),
            overrides: Mutex::new(overrides),
            ready: AtomicBool::new(false),
            admin_token: ArcSwapOption::empty(),
        }
    }
}
