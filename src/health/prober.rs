//! The prober: one task per distinct probe target, each probing on its own
//! interval, publishing every decision straight into the endpoint's
//! [`HealthCell`] (so the DNS path sees it on the next query).
//!
//! Targets are independent: a slow or hanging backend only ever occupies its
//! own task for at most `timeout`, which is shorter than its interval, so it
//! never delays another target's probe or any DNS answer. On reload the set
//! of tasks is diffed by probe identity: unchanged targets keep probing on
//! their own rhythm, removed ones stop, new ones start.

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
use super::probe::{Outcome, Target};
use super::spec::{ProbeKey, ProbeSpec};
use super::state::{Machine, Thresholds};
use super::tls::ConfigCache;
use super::{HealthCell, ProberFaults};

/// Most probes in flight at once, whatever the configuration.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Start offsets are multiples of this, so probes due at nearly the same
/// moment wake the runtime once together instead of one by one; that
/// amortises the event-loop work over the batch (measured with
/// `benches/prober.sh`).
const START_QUANTUM: Duration = Duration::from_millis(25);

/// Who a target's status belongs to, for log lines.
#[derive(Clone, Debug)]
struct User {
    profile: Arc<str>,
    endpoint: Arc<str>,
    /// Set when the probe is one named monitor of the endpoint: its
    /// status is an input of the endpoint's, not the endpoint's.
    monitor: Option<Arc<str>>,
}

struct Running {
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
    /// In a cluster: woken at each own decision (the cluster shares it and
    /// applies the quorum rule); the prober then never sets what is served.
    cluster: Option<Arc<Notify>>,
    /// Told of each decided status change (notifications).
    on_change: Option<ChangeHook>,
    /// Woken when (alone) a named monitor's status changes: the endpoints
    /// combining it are recomputed.
    combine: Option<Arc<Notify>>,
    /// Told of each crossing of an HTTPS certificate's `cert_warning`.
    on_certificate: Option<CertHook>,
}

/// Told of each status change the prober decides, once per endpoint
/// sharing the probe: (profile, endpoint, from, to, reason). Runs on the
/// probe's task: it must not block.
pub type ChangeHook = Arc<dyn Fn(&str, &str, super::Status, super::Status, &str) + Send + Sync>;

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
            cluster: None,
            on_change: None,
            combine: None,
            on_certificate: None,
        }
    }

    /// Wakes `wake` at each status change of a named monitor (alone; in a
    /// cluster the quorum decides, and the cluster task wakes it).
    pub fn combining(mut self, wake: Arc<Notify>) -> Prober {
        self.combine = Some(wake);
        self
    }

    /// Runs as one node of a cluster: decisions are this node's own
    /// observations, and `decided` is woken at each.
    pub fn clustered(mut self, decided: Arc<Notify>) -> Prober {
        self.cluster = Some(decided);
        self
    }

    /// Tells `hook` of each decided status change (alone only: in a
    /// cluster the quorum decides, and the cluster task reports).
    pub fn on_change(mut self, hook: ChangeHook) -> Prober {
        self.on_change = Some(hook);
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
        let wanted: std::collections::HashSet<&ProbeKey> = specs.iter().map(|s| &s.key).collect();
        self.running.retain(|key, r| {
            let keep = wanted.contains(key);
            if !keep {
                r.cancel.cancel();
            }
            keep
        });
        for spec in specs {
            if let Some(r) = self.running.get(&spec.key) {
                r.users.store(Arc::new(users_of(spec)));
            }
        }
        let n = new.len().max(1) as u32;
        for (i, (spec, target)) in new.into_iter().enumerate() {
            let cancel = self.shutdown.child_token();
            let users = Arc::new(ArcSwap::from_pointee(users_of(spec)));
            let offset = quantize(spec.monitor.interval * i as u32 / n);
            tokio::spawn(run_target(
                target,
                self.faults.clone(),
                spec.cell.clone(),
                users.clone(),
                Thresholds {
                    tolerated_failures: spec.monitor.tolerated_failures,
                    required_successes: spec.monitor.required_successes,
                },
                spec.monitor.interval,
                offset,
                self.permits.clone(),
                self.cluster.clone(),
                self.on_change.clone(),
                self.combine.clone(),
                Certs {
                    warn_within: spec.monitor.cert_warning,
                    hook: self.on_certificate.clone(),
                    watch: Watch::default(),
                },
                cancel.clone(),
            ));
            self.running
                .insert(spec.key.clone(), Running { cancel, users });
        }
        debug!(targets = self.running.len(), "prober updated");
        Ok(())
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

#[allow(clippy::too_many_arguments)]
async fn run_target(
    target: Target,
    faults: Arc<ProberFaults>,
    cell: Arc<HealthCell>,
    users: Arc<ArcSwap<Vec<User>>>,
    thresholds: Thresholds,
    interval: Duration,
    offset: Duration,
    permits: Arc<Semaphore>,
    cluster: Option<Arc<Notify>>,
    on_change: Option<ChangeHook>,
    combine: Option<Arc<Notify>>,
    mut certs: Certs,
    cancel: CancellationToken,
) {
    let clustered = cluster.is_some();
    // A status restored from the state file is trusted alone; in a
    // cluster it is no vote, and this node decides afresh (its first
    // decision ends the restored status).
    let mut machine = if clustered && cell.is_restored() {
        Machine::resume(super::Status::CheckingEndpoint)
    } else {
        Machine::resume(cell.own())
    };
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
    let mut last_fault_log: Option<Instant> = None;
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let outcome = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                o = target.run() => o,
            }
        };
        certs.note(&outcome, &cell, &users);
        let Some(healthy) = outcome.verdict() else {
            // A local fault (no descriptor, no buffers, no memory, no local
            // port) says nothing about the endpoint: it keeps its status,
            // and the fault is counted and logged as the prober's own.
            if let Some(f) = outcome.local_fault {
                faults.0[f as usize].fetch_add(1, Ordering::Relaxed);
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
            && let Some(wake) = &combine
        {
            wake.notify_one();
        }
        let transition = machine.record(healthy, thresholds);
        if let Some(t) = transition {
            // Publish first: the DNS path reads this atomic on its next query.
            cell.decide(t.to, clustered);
        }
        cell.note_probe(
            &outcome,
            machine.consecutive_failures(),
            transition,
            clustered,
        );
        if transition.is_some()
            && let Some(decided) = &cluster
        {
            decided.notify_one();
        }
        let users = users.load();
        match (&transition, &outcome.failure) {
            (Some(t), failure) => {
                let reason = failure
                    .as_ref()
                    .map_or("probe succeeded", |f| f.reason.as_str());
                let mut monitors = false;
                for u in users.iter() {
                    if let Some(monitor) = &u.monitor {
                        monitors = true;
                        let theirs = if clustered {
                            " (the cluster's quorum decides it)"
                        } else {
                            ""
                        };
                        if t.to == super::Status::Degraded {
                            warn!(profile = %u.profile, endpoint = %u.endpoint, %monitor, old = %t.from, new = %t.to, reason, "monitor changed{theirs}: one input of the endpoint's health");
                        } else {
                            info!(profile = %u.profile, endpoint = %u.endpoint, %monitor, old = %t.from, new = %t.to, reason, "monitor changed{theirs}: one input of the endpoint's health");
                        }
                        continue;
                    }
                    match on_change.as_ref().filter(|_| !clustered) {
                        // Alone, the decision is the status: the one sink
                        // logs and notifies it.
                        Some(hook) => hook(&u.profile, &u.endpoint, t.from, t.to, reason),
                        None if t.to == super::Status::Degraded => {
                            warn!(profile = %u.profile, endpoint = %u.endpoint, old = %t.from, new = %t.to, reason, "this node's observation changed (the cluster's quorum decides the status)");
                        }
                        None => {
                            info!(profile = %u.profile, endpoint = %u.endpoint, old = %t.from, new = %t.to, reason, "this node's observation changed (the cluster's quorum decides the status)");
                        }
                    }
                }
                if monitors
                    && !clustered
                    && let Some(wake) = &combine
                {
                    wake.notify_one();
                }
            }
            (None, Some(f)) => {
                if let Some(u) = users.first() {
                    debug!(profile = %u.profile, endpoint = %u.endpoint, reason = %f, failures = machine.consecutive_failures(), "probe failed");
                }
            }
            (None, None) => {}
        }
    }
}
