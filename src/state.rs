//! The state every part of the running server shares.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::geo::GeoDb;
use crate::metrics::Metrics;
use crate::net::slots::Slots;
use crate::snapshot::Snapshot;

/// Overrides kept in the history.
pub const HISTORY_KEPT: usize = 50;

/// What the DNS answer path reads, and nothing more: the UDP and TCP
/// workers hold only this. Readers load one snapshot per query; writers
/// (start-up, reloads, the file watcher, the cluster task) swap whole
/// values, never mutate in place.
#[derive(Debug, Default)]
pub struct Serving {
    /// The compiled configuration: written by start-up and reloads.
    pub table: ArcSwap<Snapshot>,
    /// The GeoIP database: written by start-up and the file watcher.
    pub geo: ArcSwapOption<GeoDb>,
    /// Response rate limiting (`None`: off): written by start-up and
    /// reloads that change `[dns.rate_limit]`, read by the UDP workers.
    pub rrl: ArcSwapOption<crate::dns::rrl::RateLimiter>,
    /// Counters: bumped by the answer path, read by the admin API.
    pub metrics: Metrics,
    /// Whether answers wait for the cluster to re-sync after a stall:
    /// armed by the cluster task, checked by every receive loop.
    pub gate: crate::stall::AnswerGate,
    /// Lookups of real-user-measurement token names: written by the answer
    /// path and the cluster task, read by the beacon handler and the
    /// cluster task (lock-free, fixed size).
    pub sightings: crate::sightings::Sightings,
    /// The latency table performance routing reads: written by real user
    /// measurements, the admin API, the latency file watcher and the
    /// cluster task (each through its own writer lock, never the DNS
    /// path's), read lock-free by the answer path.
    pub latency: Arc<crate::latency::Latency>,
    /// The Traffic View's queue: the receive loops push what they
    /// answered, the drain task ([`Shared::traffic`]) pops.
    pub traffic: crate::traffic::Recorder,
}

/// The state the running server shares: what the answer path reads
/// ([`Serving`]), and what the control plane (admin API, reloads, the
/// prober, the cluster task, notifications) keeps beside it.
#[derive(Debug)]
pub struct Shared {
    /// What the answer path reads.
    pub serving: Arc<Serving>,
    /// Runtime overrides, every endpoint's latest (disabled or enabled
    /// again): written by the admin API and the cluster task, read by
    /// reloads; kept in the state file.
    pub overrides: Mutex<crate::overrides::Overrides>,
    /// This node's name in override records (`cluster.node`, or `local`).
    pub node: String,
    /// Set once the DNS listeners (and the prober, when wanted) run; read
    /// by `/healthz`.
    pub ready: AtomicBool,
    /// The admin API's bearer token: written at start-up and by reloads,
    /// read by every admin request.
    pub admin_token: ArcSwapOption<crate::secret::Secret>,
    /// The named admin tokens (`[admin.tokens]`), likewise.
    pub admin_tokens: ArcSwap<Vec<(String, crate::secret::Secret)>>,
    /// DNS over TCP connection slots: set when the listeners start, read
    /// by metrics.
    pub dns_slots: OnceLock<Arc<Slots>>,
    /// Admin API connection slots: set when the API starts, read by
    /// metrics.
    pub admin_slots: OnceLock<Arc<Slots>>,
    /// Which path answers UDP queries: set when the listeners start, read
    /// by status and metrics.
    pub udp_path: OnceLock<UdpPath>,
    /// Problems an operator should see on the status page (a state file
    /// moved aside, overrides not saved), newest last: written when they
    /// happen, read by the status API.
    pub problems: Mutex<VecDeque<(SystemTime, String)>>,
    /// The latest runtime overrides made or received, oldest first (the
    /// last [`HISTORY_KEPT`]): the status page's history; kept in the
    /// state file.
    pub history: Mutex<VecDeque<(crate::snapshot::EndpointKey, crate::overrides::Override)>>,
    /// The probes of the running configuration: written by start-up and
    /// reloads, read by the cluster task.
    pub probes: ArcSwap<Vec<crate::health::spec::ProbeSpec>>,
    /// The running configuration's digest ([`crate::cluster::config_digest`]).
    pub config_digest: ArcSwap<String>,
    /// Wakes the cluster task: this node decided something, or gossip
    /// brought news.
    pub cluster_wake: Arc<tokio::sync::Notify>,
    /// Wakes the task that writes endpoints' combined statuses (named
    /// monitors): a monitor's served status changed, or the configuration.
    pub combine_wake: Arc<tokio::sync::Notify>,
    /// Pushed health (`PUT /api/v1/health/...`, Alertmanager), this node's
    /// and, in a cluster, every node's.
    pub pushes: Mutex<crate::health::push::Store>,
    /// The cluster as this node sees it (`None` alone): written by the
    /// cluster task, read by the admin API.
    pub cluster: ArcSwapOption<ClusterSummary>,
    /// Gossip counters, once the cluster runs: read by metrics.
    pub cluster_stats: OnceLock<Arc<crate::metrics::GossipStats>>,
    /// Notification webhooks (`[[notify]]`): events are emitted here by
    /// the prober, reloads, overrides and the cluster task.
    pub notify: crate::notify::Notifier,
    /// The prober's own health (static stability): written by the prober,
    /// read by the admin API, metrics, explain and the cluster task.
    pub impairment: Arc<crate::health::freeze::Impairment>,
    /// The Traffic View's figures: written by the drain task (from
    /// [`Serving::traffic`]), read by the admin API and metrics.
    pub traffic: Mutex<crate::traffic::view::Views>,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone)]
pub struct ClusterSummary {
    /// This node's name.
    pub node: String,
    /// The cluster's default quorum.
    pub quorum: crate::health::quorum::Quorum,
    /// The configuration digest most live nodes run (drift is measured
    /// against it).
    pub majority_digest: String,
    /// Every node gossip knows of, this one included, by name.
    pub nodes: Vec<ClusterNode>,
    /// Probe targets by each node's observed status: (node, status, count).
    pub observations: Vec<(String, &'static str, u64)>,
}

/// One node of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// Its name.
    pub name: String,
    /// Its gossip address.
    pub address: std::net::SocketAddr,
    /// Alive: heard within `cluster.dead_after`, or trusted by the failure
    /// detector (this node always is).
    pub alive: bool,
    /// Live, but silent for more than five gossip rounds.
    pub suspect: bool,
    /// Dead, but its last observations still count for this long
    /// (`cluster.vote_hold`).
    pub vote_held_for: Option<std::time::Duration>,
    /// Another live process gossips under this name, at this address.
    pub twin: Option<std::net::SocketAddr>,
    /// How long since its heartbeat last advanced (as of the last round).
    pub last_heard: std::time::Duration,
    /// This is the node answering.
    pub this_node: bool,
    /// Its configuration digest.
    pub digest: String,
    /// Its configuration differs from the one most live nodes run.
    pub drifted: bool,
    /// Its software version.
    pub version: String,
    /// Its gossip heartbeat counter.
    pub heartbeat: u64,
    /// Its prober is impaired, so it does not vote: why, in words.
    pub impaired: Option<String>,
}

/// Problems kept for the status page.
const PROBLEMS_KEPT: usize = 20;

impl Shared {
    /// Shared state around a freshly loaded configuration.
    pub fn new(
        table: crate::snapshot::Snapshot,
        geo: Option<std::sync::Arc<GeoDb>>,
        overrides: crate::overrides::Overrides,
        node: String,
    ) -> Shared {
        Shared {
            serving: Arc::new(Serving {
                table: ArcSwap::from_pointee(table),
                geo: ArcSwapOption::new(geo),
                rrl: ArcSwapOption::empty(),
                metrics: Metrics::default(),
                gate: Default::default(),
                sightings: Default::default(),
                latency: Arc::default(),
                traffic: Default::default(),
            }),
            overrides: Mutex::new(overrides),
            node,
            ready: AtomicBool::new(false),
            admin_token: ArcSwapOption::empty(),
            admin_tokens: ArcSwap::from_pointee(Vec::new()),
            dns_slots: OnceLock::new(),
            admin_slots: OnceLock::new(),
            udp_path: OnceLock::new(),
            problems: Mutex::new(VecDeque::new()),
            history: Mutex::new(VecDeque::new()),
            probes: ArcSwap::from_pointee(Vec::new()),
            config_digest: ArcSwap::from_pointee(String::new()),
            cluster_wake: Arc::default(),
            combine_wake: Arc::default(),
            pushes: Default::default(),
            cluster: ArcSwapOption::empty(),
            cluster_stats: OnceLock::new(),
            notify: crate::notify::Notifier::new(),
            impairment: Arc::default(),
            traffic: Mutex::new(crate::traffic::view::Views::new(
                crate::traffic::DEFAULT_NETWORKS,
            )),
        }
    }

    /// With a Traffic View queue of `capacity` runs of answers (`[traffic]
    /// queue`), before the server starts.
    pub fn with_traffic_queue(mut self, capacity: usize) -> Shared {
        if let Some(serving) = Arc::get_mut(&mut self.serving) {
            serving.traffic = crate::traffic::Recorder::new(capacity);
        }
        self
    }

    /// Applies `[traffic]` (at start and on reloads): recording on or off
    /// (off forgets what was recorded: nothing is kept that the operator
    /// turned off), and the counters per network sketch.
    pub fn configure_traffic(&self, enabled: bool, networks: usize) {
        self.serving.traffic.set_on(enabled);
        let mut views = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        views.set_k(networks);
        if !enabled {
            while self.serving.traffic.pop().is_some() {}
            views.clear();
        }
    }

    /// Records a state file problem: counted, and shown on the status page.
    pub fn report_state_problem(&self, problem: String) {
        self.serving
            .metrics
            .state_file_problems
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.notify
            .emit(crate::notify::Event::state_file(problem.clone()));
        self.report_problem(problem);
    }

    /// Takes off the status page the problems that start with `prefix`
    /// (a rejected reload, once a reload succeeds).
    pub fn resolve_problems(&self, prefix: &str) {
        let mut p = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        p.retain(|(_, message)| !message.starts_with(prefix));
    }

    /// A copy of every override record.
    pub fn overrides_now(&self) -> crate::overrides::Overrides {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds an override made or received to the history (once: a record
    /// already there is not added again).
    pub fn record_history(
        &self,
        key: &crate::snapshot::EndpointKey,
        record: &crate::overrides::Override,
    ) {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.iter()
            .any(|(k, r)| k == key && r.version() == record.version())
        {
            return;
        }
        // In time order, whatever order gossip brings them in; when full,
        // the oldest goes (never a newer one for an older arrival).
        let at = h.partition_point(|(_, r)| r.version() <= record.version());
        if h.len() == HISTORY_KEPT {
            if at == 0 {
                return;
            }
            h.pop_front();
            h.insert(at - 1, (key.clone(), record.clone()));
        } else {
            h.insert(at, (key.clone(), record.clone()));
        }
    }

    /// Applies `[latency]`: the policy, and the latency file when it
    /// changed (or is new). A file that cannot be used is reported (log and
    /// status page) and the last good one stays: it never stops a reload.
    pub fn apply_latency(&self, settings: &crate::config::LatencySettings) {
        use crate::latency::FileTable;
        let latency = &self.serving.latency;
        latency.set_policy(settings.policy.clone());
        let current = latency.file();
        let Some(path) = &settings.file else {
            if current.path.is_some() {
                latency.set_file(FileTable::default());
                tracing::info!("latency file no longer configured: its rows are dropped");
            }
            return;
        };
        let stamp = crate::latency::file_stamp(path);
        if current.path.as_deref() == Some(path.as_path())
            && stamp.is_some()
            && current.stamp == stamp
        {
            return;
        }
        drop(current);
        match FileTable::read(path) {
            Ok(t) => {
                tracing::info!(file = %path.display(), rows = t.len(), "latency file loaded");
                latency.set_file(t);
                self.resolve_problems("latency file");
            }
            Err(e) => {
                tracing::warn!(error = %e, "latency file not loaded: the last good one stays in use");
                self.resolve_problems("latency file");
                self.report_problem(format!(
                    "latency file not loaded (the last good one stays in use): {e}"
                ));
            }
        }
    }

    /// Shows a problem on the status page (newest last, the last 20 kept).
    pub fn report_problem(&self, problem: String) {
        let mut p = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        if p.len() == PROBLEMS_KEPT {
            p.pop_front();
        }
        p.push_back((SystemTime::now(), problem));
    }
}

/// Which path answers UDP queries.
#[derive(Debug)]
pub enum UdpPath {
    /// The sockets of `dns.listen` (no `[dns.xdp]`).
    Sockets,
    /// `[dns.xdp]` could not start and `fallback = "sockets"`: the sockets
    /// answer; why XDP did not start.
    Fallback(String),
    /// The XDP path answers on its addresses (the sockets answer the rest).
    Xdp(Arc<dyn XdpView>),
}

/// What the XDP path shows status and metrics (implemented by
/// `server::xdp`).
pub trait XdpView: Send + Sync + std::fmt::Debug {
    /// Each interface: its name, mode (`native`/`generic`) and queues.
    fn interfaces(&self) -> Vec<(String, &'static str, Vec<u32>)>;
    /// The addresses answered through XDP.
    fn listen(&self) -> Vec<std::net::SocketAddr>;
    /// Frames so far, by action: `[pass, redirect, answer, drop]`.
    fn packets(&self) -> [u64; 4];
}

/// The `action` labels of `switchyard_xdp_packets_total`, in the order of
/// [`XdpView::packets`].
pub const XDP_ACTIONS: [&str; 4] = ["pass", "redirect", "answer", "drop"];
