//! The prober: one task per distinct probe target, each probing on its own
//! interval, publishing every decision straight into the endpoint's
//! [`HealthCell`] (so the DNS path sees it on the next query).
//!
//! Targets are independent: a slow or hanging backend only ever occupies its
//! own task for at most `timeout`, which is shorter than its interval, so it
//! never delays another target's probe or any DNS answer. On reload the set
//! of tasks is diffed by probe identity: unchanged targets keep probing on
//! their own rhythm, removed ones stop, new ones start.
//!
//! Every decision is published through one guard ([`super::freeze`]),
//! which holds it while the prober itself is the one failing (static
//! stability, [`super::impaired`]); the canaries, targets that belong to no
//! endpoint, are probed here too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use std::sync::atomic::Ordering;

use super::cert::{Certificate, Crossing, Watch};
pub use super::freeze::{ChangeHook, EpisodeHook};
use super::freeze::{Guard, Hooks, Impairment, User};
use super::impaired::{CanarySpec, Settings};
use super::probe::{Outcome, Target};
use super::spec::{MonitorSettings, ProbeKey, ProbeSpec};
use super::state::{Machine, Thresholds};
use super::tls::{ConfigCache, TlsKey};
use super::{HealthCell, ProberFaults};

/// Most probes in flight at once, whatever the configuration.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Start offsets are multiples of this, so probes due at nearly the same
/// moment wake the runtime once together instead of one by one; that
/// amortises the event-loop work over the batch (measured with
/// `benches/prober.sh`).
const START_QUANTUM: Duration = Duration::from_millis(25);

struct Running {
    /// The target's id with the [`Guard`].
    id: u64,
    cancel: CancellationToken,
    users: Arc<ArcSwap<Vec<User>>>,
}

/// The set of probing tasks.
pub struct Prober {
    running: HashMap<ProbeKey, Running>,
    faults: Arc<ProberFaults>,
    permits: Arc<Semaphore>,
    tls: ConfigCache,
    shutdown: CancellationToken,
    /// Whom decisions concern besides the cells.
    hooks: Hooks,
    /// What the server reads of the prober's own health.
    impairment: Arc<Impairment>,
    /// Every decision passes it (made at the first update, with the hooks).
    guard: Option<Arc<Guard>>,
    /// Ids for the guard.
    next_id: u64,
    /// Static stability: detection settings and canaries.
    stability: (Settings, Vec<CanarySpec>),
    /// The canaries' tasks.
    canaries: Vec<CancellationToken>,
    /// Told of each crossing of an HTTPS certificate's `cert_warning`.
    on_certificate: Option<CertHook>,
}

/// Told when an HTTPS endpoint's certificate crosses its `cert_warning`
/// threshold, once per endpoint sharing the probe: (profile, endpoint,
/// crossing, certificate). Each node tells of what its own probes see, in a
/// cluster too. Runs on the probe's task: it must not block.
pub type CertHook = Arc<dyn Fn(&str, &str, Crossing, &Certificate) + Send + Sync>;

/// What a probing task does with the certificates its probes see.
struct Certs {
    /// The monitor's `cert_warning`.
    warn_within: Duration,
    hook: Option<CertHook>,
    watch: Watch,
}

impl Certs {
    /// Records the certificate `outcome` saw, if any, and tells of a
    /// crossing of the threshold (one per crossing, not per probe).
    fn note(&mut self, outcome: &Outcome, cell: &HealthCell, users: &ArcSwap<Vec<User>>) {
        let Some(not_after) = outcome.cert_not_after else {
            return;
        };
        let cert = Certificate {
            not_after,
            warn_within: self.warn_within,
            seen: outcome.at,
        };
        cell.note_certificate(cert);
        let Some(crossing) = self.watch.observe(&cert, SystemTime::now()) else {
            return;
        };
        for u in users.load().iter() {
            match &self.hook {
                Some(hook) => hook(&u.profile, &u.endpoint, crossing, &cert),
                None => {
                    info!(profile = %u.profile, endpoint = %u.endpoint, certificate = %cert.describe(SystemTime::now()), crossing = crossing.as_str(), "certificate expiry crossed cert_warning");
                }
            }
        }
    }
}

fn quantize(offset: Duration) -> Duration {
    let q = START_QUANTUM.as_nanos();
    Duration::from_nanos((offset.as_nanos() / q * q) as u64)
}

fn users_of(spec: &ProbeSpec) -> Vec<User> {
    let endpoints = spec.labels.iter().map(|(profile, endpoint)| User {
        profile: profile.clone(),
        endpoint: endpoint.clone(),
        monitor: None,
    });
    let monitors = spec
        .monitor_labels
        .iter()
        .map(|(profile, endpoint, monitor)| User {
            profile: profile.clone(),
            endpoint: endpoint.clone(),
            monitor: Some(monitor.clone()),
        });
    endpoints.chain(monitors).collect()
}

impl Prober {
    /// An empty prober running at most `in_flight` probes at once (each
    /// holds a file descriptor; one that waits for a permit is not timed
    /// yet, so waiting never fails a probe). Every task stops when
    /// `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken, in_flight: usize) -> Prober {
        Prober {
            running: HashMap::new(),
            faults: Arc::default(),
            permits: Arc::new(Semaphore::new(in_flight.clamp(1, MAX_IN_FLIGHT))),
            tls: ConfigCache::default(),
            shutdown,
            hooks: Hooks::default(),
            impairment: Arc::default(),
            guard: None,
            next_id: 0,
            stability: (Settings::default(), Vec::new()),
            canaries: Vec::new(),
            on_certificate: None,
        }
    }

    /// Publishes the prober's own health into `impairment` (the server's).
    pub fn with_impairment(mut self, impairment: Arc<Impairment>) -> Prober {
        self.impairment = impairment;
        self
    }

    /// Tells `hook` when the prober becomes impaired and when it recovers.
    pub fn on_episode(mut self, hook: EpisodeHook) -> Prober {
        self.hooks.on_episode = Some(hook);
        self
    }

    /// Wakes `wake` at each status change of a named monitor (alone; in a
    /// cluster the quorum decides, and the cluster task wakes it).
    pub fn combining(mut self, wake: Arc<Notify>) -> Prober {
        self.hooks.combine = Some(wake);
        self
    }

    /// Runs as one node of a cluster: decisions are this node's own
    /// observations, and `decided` is woken at each.
    pub fn clustered(mut self, decided: Arc<Notify>) -> Prober {
        self.hooks.cluster = Some(decided);
        self
    }

    /// Tells `hook` of each decided status change (alone only: in a
    /// cluster the quorum decides, and the cluster task reports).
    pub fn on_change(mut self, hook: ChangeHook) -> Prober {
        self.hooks.on_change = Some(hook);
        self
    }

    /// Tells `hook` of each crossing of an HTTPS certificate's
    /// `cert_warning` (alone and in a cluster: certificates are no vote).
    pub fn on_certificate(mut self, hook: CertHook) -> Prober {
        self.on_certificate = Some(hook);
        self
    }

    /// Counts local faults into `faults` (the server's metrics).
    pub fn with_faults(mut self, faults: Arc<ProberFaults>) -> Prober {
        self.faults = faults;
        self
    }

    /// Number of targets being probed.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// True when nothing is probed.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The guard every decision passes, made with the hooks set so far.
    fn guard(&mut self) -> Arc<Guard> {
        let (impairment, hooks, stability) = (&self.impairment, &self.hooks, &self.stability);
        self.guard
            .get_or_insert_with(|| {
                let g = Guard::new(impairment.clone(), hooks.clone());
                g.configure(stability.0.clone(), &canary_names(&stability.1));
                Arc::new(g)
            })
            .clone()
    }

    /// Makes the running set match `specs`: keeps unchanged targets, stops
    /// removed ones, starts new ones (their first probes spread over one
    /// interval). Must be called inside a tokio runtime.
    pub fn update(&mut self, specs: &[ProbeSpec]) -> Result<(), String> {
        // Build every new target first, so a bad one changes nothing.
        let mut new = Vec::new();
        for spec in specs.iter().filter(|s| !self.running.contains_key(&s.key)) {
            let tls = match &spec.tls {
                Some(key) => Some(self.tls.get(key)?),
                None => None,
            };
            new.push((spec, Target::new(spec, tls)?));
        }
        let guard = self.guard();
        let wanted: std::collections::HashSet<&ProbeKey> = specs.iter().map(|s| &s.key).collect();
        self.running.retain(|key, r| {
            let keep = wanted.contains(key);
            if !keep {
                r.cancel.cancel();
                guard.unwatch(r.id);
            }
            keep
        });
        for spec in specs {
            if let Some(r) = self.running.get(&spec.key) {
                r.users.store(Arc::new(users_of(spec)));
                guard.rewatch(r.id);
            }
        }
        // Failures count as together within the longest interval plus
        // its timeout: the time every target takes to be probed once.
        let window = specs
            .iter()
            .map(|s| s.monitor.interval + s.monitor.timeout)
            .max()
            .unwrap_or(Duration::from_secs(1));
        guard.set_window(window);
        let n = new.len().max(1) as u32;
        for (i, (spec, target)) in new.into_iter().enumerate() {
            let cancel = self.shutdown.child_token();
            let users = Arc::new(ArcSwap::from_pointee(users_of(spec)));
            let offset = quantize(spec.monitor.interval * i as u32 / n);
            let id = self.next_id;
            self.next_id += 1;
            guard.watch(id, spec.cell.clone(), users.clone());
            tokio::spawn(run_target(
                Task {
                    id,
                    target,
                    cell: spec.cell.clone(),
                    users: users.clone(),
                    thresholds: Thresholds {
                        tolerated_failures: spec.monitor.tolerated_failures,
                        required_successes: spec.monitor.required_successes,
                    },
                    interval: spec.monitor.interval,
                    offset,
                    certs: Certs {
                        warn_within: spec.monitor.cert_warning,
                        hook: self.on_certificate.clone(),
                        watch: Watch::default(),
                    },
                },
                self.shared(&guard),
                cancel.clone(),
            ));
            self.running
                .insert(spec.key.clone(), Running { id, cancel, users });
        }
        debug!(targets = self.running.len(), "prober updated");
        Ok(())
    }

    /// What every task shares.
    fn shared(&self, guard: &Arc<Guard>) -> Shared {
        Shared {
            faults: self.faults.clone(),
            permits: self.permits.clone(),
            guard: guard.clone(),
            hooks: self.hooks.clone(),
        }
    }

    /// Sets static stability (`[prober] impaired_share`, canaries...): the
    /// detection settings apply at once; changed canaries start again.
    /// Must be called inside a tokio runtime.
    pub fn set_stability(
        &mut self,
        settings: Settings,
        canaries: &[CanarySpec],
    ) -> Result<(), String> {
        let changed = self.stability.1 != canaries;
        let mut targets = Vec::new();
        if changed {
            for c in canaries {
                let spec = canary_spec(c);
                let tls = match &spec.tls {
                    Some(key) => Some(self.tls.get(key)?),
                    None => None,
                };
                targets.push((Target::new(&spec, tls)?, c.interval));
            }
        }
        self.stability = (settings.clone(), canaries.to_vec());
        let guard = self.guard();
        guard.configure(settings, &canary_names(canaries));
        if !changed {
            return Ok(());
        }
        for c in self.canaries.drain(..) {
            c.cancel();
        }
        for (index, (target, interval)) in targets.into_iter().enumerate() {
            let cancel = self.shutdown.child_token();
            tokio::spawn(run_canary(
                index,
                target,
                interval,
                self.shared(&guard),
                cancel.clone(),
            ));
            self.canaries.push(cancel);
        }
        if !canaries.is_empty() {
            info!(canaries = ?canary_names(canaries), "prober canaries started");
        }
        Ok(())
    }
}

fn canary_names(canaries: &[CanarySpec]) -> Vec<String> {
    canaries.iter().map(|c| c.name.clone()).collect()
}

/// A canary as a probe: reachable is what counts, so any HTTP status
/// passes; verified TLS with the system's roots; from the prober's source
/// addresses like every probe.
fn canary_spec(c: &CanarySpec) -> ProbeSpec {
    let monitor = MonitorSettings {
        protocol: c.protocol,
        port: c.port,
        path: c.path.clone(),
        key: None,
        interval: c.interval,
        timeout: c.timeout,
        tolerated_failures: 0,
        required_successes: 1,
        expected_status: vec![100..=599],
        headers: Vec::new(),
        tls_verify: true,
        ca_cert: None,
        client_cert: None,
        client_key: None,
        body_match: None,
        cert_warning: Duration::ZERO,
        grpc_service: None,
        quorum: None,
        source_v4: c.source_v4,
        source_v6: c.source_v6,
        dns: None,
    };
    ProbeSpec {
        key: ProbeKey {
            host: c.host.clone(),
            port: c.port,
            path: c.path.clone(),
            headers: Vec::new(),
            default_host: None,
            monitor: monitor.clone(),
        },
        endpoints: Vec::new(),
        labels: Vec::new(),
        monitor_of: Vec::new(),
        monitor_labels: Vec::new(),
        cell: Arc::new(HealthCell::new()),
        host: c.host.clone(),
        port: c.port,
        path: c.path.clone(),
        headers: Vec::new(),
        default_host: None,
        tls: c.protocol.uses_tls().then_some(TlsKey {
            verify: true,
            ca_cert: None,
            identity: None,
        }),
        monitor: Arc::new(monitor),
    }
}

/// Starts probing every target in `specs` until `shutdown`. The first probes
/// go out at once, spread evenly over one interval.
pub fn spawn(specs: &[ProbeSpec], shutdown: CancellationToken) -> Result<Prober, String> {
    let mut p = Prober::new(shutdown, MAX_IN_FLIGHT);
    p.update(specs)?;
    info!(targets = p.len(), "prober started");
    Ok(p)
}

/// What every probing task shares.
struct Shared {
    faults: Arc<ProberFaults>,
    permits: Arc<Semaphore>,
    guard: Arc<Guard>,
    hooks: Hooks,
}

/// One target's task: what it probes and how it decides.
struct Task {
    id: u64,
    target: Target,
    cell: Arc<HealthCell>,
    users: Arc<ArcSwap<Vec<User>>>,
    thresholds: Thresholds,
    interval: Duration,
    offset: Duration,
    certs: Certs,
}

/// Runs one probe when a permit is free (`None`: cancelled).
async fn probe(
    target: &Target,
    permits: &Semaphore,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    let Ok(_permit) = permits.acquire().await else {
        return None;
    };
    tokio::select! {
        _ = cancel.cancelled() => None,
        o = target.run() => Some(o),
    }
}

async fn run_canary(
    index: usize,
    target: Target,
    interval: Duration,
    shared: Shared,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(outcome) = probe(&target, &shared.permits, &cancel).await else {
            return;
        };
        shared.guard.canary(index, &outcome);
    }
}

async fn run_target(task: Task, shared: Shared, cancel: CancellationToken) {
    let Task {
        id,
        target,
        cell,
        users,
        thresholds,
        interval,
        offset,
        mut certs,
    } = task;
    let clustered = shared.hooks.clustered();
    // A status restored from the state file is trusted alone; in a
    // cluster it is no vote, and this node decides afresh (its first
    // decision ends the restored status).
    let mut machine = if clustered && cell.is_restored() {
        Machine::resume(super::Status::CheckingEndpoint)
    } else {
        Machine::resume(cell.own())
    };
    let mut thaws = shared.guard.thaws();
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
    let mut last_fault_log: Option<Instant> = None;
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(outcome) = probe(&target, &shared.permits, &cancel).await else {
            return;
        };
        certs.note(&outcome, &cell, &users);
        let Some(healthy) = outcome.verdict() else {
            // A local fault (no descriptor, no buffers, no memory, no local
            // port) says nothing about the endpoint: it keeps its status,
            // and the fault is counted and logged as the prober's own.
            if let Some(f) = outcome.local_fault {
                shared.faults.0[f as usize].fetch_add(1, Ordering::Relaxed);
            }
            cell.note_probe(&outcome, machine.consecutive_failures(), None, clustered);
            if last_fault_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                last_fault_log = Some(Instant::now());
                let users = users.load();
                if let Some(u) = users.first() {
                    warn!(profile = %u.profile, endpoint = %u.endpoint, reason = %outcome.failure.as_ref().map_or("", |f| f.reason.as_str()), "prober fault: probe not sent (not counted against the endpoint)");
                }
            }
            continue;
        };
        // A reported load (or none) may change what the endpoint sheds.
        if cell.note_load(outcome.load)
            && let Some(wake) = &shared.hooks.combine
        {
            wake.notify_one();
        }
        // An episode of impairment ended: decide afresh from the status
        // it froze, on fresh probes only.
        let now = shared.guard.thaws();
        if now != thaws {
            thaws = now;
            machine = Machine::resume(cell.own());
        }
        let transition = machine.record(healthy, thresholds);
        // Published (first: the DNS path reads it on its next query)
        // unless the prober is impaired.
        let published = shared.guard.decide(id, healthy, transition);
        cell.note_probe(
            &outcome,
            machine.consecutive_failures(),
            published,
            clustered,
        );
        match (&published, &outcome.failure) {
            (Some(t), failure) => {
                let reason = failure
                    .as_ref()
                    .map_or("probe succeeded", |f| f.reason.as_str());
                shared.hooks.announce(&users.load(), *t, reason);
            }
            (None, Some(f)) => {
                let users = users.load();
                if let Some(u) = users.first() {
                    debug!(profile = %u.profile, endpoint = %u.endpoint, reason = %f, failures = machine.consecutive_failures(), "probe failed");
                }
            }
            (None, None) => {}
        }
    }
}
