//! Endpoint health: the statuses operators see, and the cells the prober
//! writes and the DNS path reads.
//!
//! The DNS path never takes a lock to learn whether an endpoint may be
//! answered: each monitored endpoint points at a [`HealthCell`], a single
//! atomic written by the prober and read with a relaxed load per query.

pub mod cert;
pub mod combine;
pub mod freeze;
pub mod impaired;
pub mod probe;
pub mod prober;
pub mod push;
pub mod quorum;
pub mod spec;
pub mod state;
pub mod tls;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

/// Endpoint status, named as in Azure Traffic Manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Status {
    /// Enabled and monitored, no probe result yet. Answerable.
    CheckingEndpoint = 0,
    /// Last decision: healthy. Answerable.
    Online = 1,
    /// `tolerated_failures + 1` consecutive failed probes. Answerable only under fail-open.
    Degraded = 2,
    /// `enabled = false` (never probed), or disabled at runtime (still
    /// probed, so it comes back with a known status). Never answered.
    Disabled = 3,
    /// The profile is disabled. Never answered.
    Inactive = 4,
    /// A nested endpoint whose child profile is disabled or inactive.
    Stopped = 5,
    /// `always_serve = true`: not probed, always answerable.
    Unmonitored = 6,
    /// Online again after being Degraded, in a profile with `failback =
    /// "manual"`: kept out until resumed (or `failback_after` passes).
    /// Routed like Degraded (answerable only under fail-open). Never a
    /// probe's status: derived per endpoint.
    Held = 7,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 8] = [
        Status::CheckingEndpoint,
        Status::Online,
        Status::Degraded,
        Status::Disabled,
        Status::Inactive,
        Status::Stopped,
        Status::Unmonitored,
        Status::Held,
    ];

    /// True for the statuses routing may pick without fail-open.
    pub fn is_answerable(self) -> bool {
        matches!(
            self,
            Status::CheckingEndpoint | Status::Online | Status::Unmonitored
        )
    }

    /// True for the statuses that take part in routing at all (everything but
    /// Disabled, Inactive and Stopped).
    pub fn is_eligible(self) -> bool {
        !matches!(self, Status::Disabled | Status::Inactive | Status::Stopped)
    }

    /// The name used in the API, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::CheckingEndpoint => "CheckingEndpoint",
            Status::Online => "Online",
            Status::Degraded => "Degraded",
            Status::Disabled => "Disabled",
            Status::Inactive => "Inactive",
            Status::Stopped => "Stopped",
            Status::Unmonitored => "Unmonitored",
            Status::Held => "Online (held)",
        }
    }

    fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Online,
            2 => Status::Degraded,
            3 => Status::Disabled,
            4 => Status::Inactive,
            5 => Status::Stopped,
            6 => Status::Unmonitored,
            7 => Status::Held,
            _ => Status::CheckingEndpoint,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Probes the prober could not make for local reasons, by
/// [`probe::LocalFault`] (in its declaration order): written by the
/// prober, read by metrics.
#[derive(Debug, Default)]
pub struct ProberFaults(pub [std::sync::atomic::AtomicU64; probe::LocalFault::ALL.len()]);

/// Transitions kept per cell for the status page.
pub const TRANSITIONS_KEPT: usize = 10;

/// The observed health of one probe target (shared by every endpoint that
/// probes the same thing).
///
/// `status` is written by the prober (one writer per cell) and read by every
/// DNS worker with one relaxed load. `details` is for the admin API only and
/// is never touched on the answer path.
#[derive(Debug)]
pub struct HealthCell {
    /// What the DNS path serves with: this node's decision, or in a
    /// cluster what the quorum rule made of every node's.
    status: AtomicU8,
    /// This node's own decision (its prober's), which a cluster shares.
    own: AtomicU8,
    /// `own` was restored from the state file and not decided since: in a
    /// cluster it is not a vote (it may be minutes old).
    restored: std::sync::atomic::AtomicBool,
    /// When `status` last changed (Unix seconds; 0: not since start), for
    /// the answer path's `ttl_degraded` (one relaxed load).
    changed: std::sync::atomic::AtomicU32,
    /// When `status` last went from Degraded to Online (ms since the
    /// epoch; 0: not known to have), for `failback = "manual"`.
    recovered: std::sync::atomic::AtomicU64,
    details: Mutex<Details>,
    /// The load the last judged probe reported, in thousandths
    /// (`u32::MAX`: none).
    load: std::sync::atomic::AtomicU32,
    /// Counters for metrics, written by the prober.
    pub stats: ProbeStats,
}

/// Probe counters of one target, for `/metrics`.
#[derive(Debug)]
pub struct ProbeStats {
    /// Status changes.
    pub transitions: std::sync::atomic::AtomicU64,
    /// Failed probes, by [`probe::FailureKind`] (in its declaration order).
    pub failures: [std::sync::atomic::AtomicU64; 6],
    /// Probe latency.
    pub duration: prometheus_client::metrics::histogram::Histogram,
}

impl Default for ProbeStats {
    fn default() -> Self {
        ProbeStats {
            transitions: Default::default(),
            failures: Default::default(),
            duration: prometheus_client::metrics::histogram::Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        }
    }
}

/// What the admin API shows about a probe target.
#[derive(Clone, Debug)]
pub struct Details {
    /// When the current status began.
    pub since: SystemTime,
    /// When this node's own decision began (differs from `since` in a
    /// cluster).
    pub own_since: SystemTime,
    /// The last probe, if any.
    pub last_probe: Option<probe::Outcome>,
    /// For a cell no probe writes (a combination, a push monitor): what it
    /// says now, in words.
    pub note: Option<String>,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Recent transitions, newest last: (when, from, to, reason).
    pub transitions: VecDeque<(SystemTime, Status, Status, String)>,
    /// In a cluster: how the nodes' observations combined, last time.
    pub cluster: Option<ClusterView>,
    /// HTTPS: the certificate the endpoint last presented (kept while
    /// probes fail before the handshake).
    pub certificate: Option<cert::Certificate>,
}

/// How a cluster decided a probe target's status.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    /// The rule applied.
    pub quorum: quorum::Quorum,
    /// Its outcome.
    pub verdict: quorum::Verdict,
    /// Every node's observation, this node's first.
    pub observations: Vec<Observation>,
}

impl ClusterView {
    /// Why the cluster decided so, in words: "2 of 3 deciding nodes see it
    /// Degraded (quorum majority needs 2): ns2 and ns3".
    pub fn describe(&self) -> String {
        let mut down: Vec<&str> = self
            .observations
            .iter()
            .filter(|o| o.counted && o.status == Status::Degraded)
            .map(|o| o.node.as_str())
            .collect();
        down.sort_unstable();
        let mut s = self.verdict.text(self.quorum);
        match down.as_slice() {
            [] => {}
            [one] => s.push_str(&format!(": {one}")),
            [rest @ .., last] => s.push_str(&format!(": {} and {last}", rest.join(", "))),
        }
        let impaired: Vec<&str> = self
            .observations
            .iter()
            .filter(|o| o.impaired)
            .map(|o| o.node.as_str())
            .collect();
        if !impaired.is_empty() {
            s.push_str(&format!(
                "; {} not counted (prober impaired)",
                impaired.join(", ")
            ));
        }
        let other = self
            .observations
            .iter()
            .filter(|o| !o.counted && !o.impaired)
            .count();
        if other > 0 {
            s.push_str(&format!(
                "; {other} node{} not counted (a different probe, or none)",
                if other == 1 { "" } else { "s" }
            ));
        }
        s
    }
}

/// One node's observation of a probe target, as gossip brought it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The node's name.
    pub node: String,
    /// Its decided status (CheckingEndpoint: not decided yet).
    pub status: Status,
    /// Since when.
    pub since: SystemTime,
    /// Its last probe, in one line.
    pub summary: String,
    /// Counted by the quorum rule: the node is live and probes this target
    /// identically. `false` with a reason otherwise.
    pub counted: bool,
    /// Why it is not counted, or why it still is (a node no longer heard
    /// whose last observation is held).
    pub note: Option<String>,
    /// Not counted because the node's prober is impaired (static
    /// stability): it stopped voting.
    pub impaired: bool,
}

impl HealthCell {
    /// A cell for an endpoint that has not been probed yet.
    pub fn new() -> HealthCell {
        HealthCell {
            status: AtomicU8::new(Status::CheckingEndpoint as u8),
            own: AtomicU8::new(Status::CheckingEndpoint as u8),
            restored: Default::default(),
            changed: Default::default(),
            recovered: Default::default(),
            details: Mutex::new(Details {
                since: SystemTime::now(),
                own_since: SystemTime::now(),
                last_probe: None,
                consecutive_failures: 0,
                transitions: VecDeque::new(),
                cluster: None,
                certificate: None,
                note: None,
            }),
            stats: ProbeStats::default(),
            load: std::sync::atomic::AtomicU32::new(u32::MAX),
        }
    }

    /// The load the last judged probe reported, in thousandths.
    pub fn load(&self) -> Option<u32> {
        let v = self.load.load(Ordering::Relaxed);
        (v != u32::MAX).then_some(v)
    }

    /// Records the load a judged probe reported (none clears it); true
    /// when it changed.
    pub fn note_load(&self, load: Option<u32>) -> bool {
        let v = load.unwrap_or(u32::MAX);
        self.load.swap(v, Ordering::Relaxed) != v
    }

    /// Records a probe result for display (status is published by [`HealthCell::set`]).
    pub fn note_probe(
        &self,
        outcome: &probe::Outcome,
        consecutive_failures: u32,
        transition: Option<state::Transition>,
        clustered: bool,
    ) {
        if outcome.local_fault.is_none() {
            self.stats.duration.observe(outcome.latency.as_secs_f64());
        }
        if let Some(f) = &outcome.failure
            && let Some(n) = self.stats.failures.get(f.kind as usize)
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if transition.is_some() {
            self.stats.transitions.fetch_add(1, Ordering::Relaxed);
        }
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        d.last_probe = Some(outcome.clone());
        d.consecutive_failures = consecutive_failures;
        if let Some(t) = transition {
            d.own_since = outcome.at;
            if !clustered {
                d.since = outcome.at;
            }
            if d.transitions.len() == TRANSITIONS_KEPT {
                d.transitions.pop_front();
            }
            let mut reason = outcome
                .failure
                .as_ref()
                .map_or_else(|| "probe succeeded".to_string(), |f| f.reason.clone());
            if clustered {
                reason.insert_str(0, "this node's probe: ");
            }
            d.transitions.push_back((outcome.at, t.from, t.to, reason));
        }
    }

    /// Records the certificate an HTTPS probe saw.
    pub fn note_certificate(&self, cert: cert::Certificate) {
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        d.certificate = Some(cert);
    }

    /// The certificate the endpoint last presented (HTTPS), if any.
    pub fn certificate(&self) -> Option<cert::Certificate> {
        self.details
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .certificate
    }

    /// Records a change of this node's own decision that no probe made
    /// (the prober, impaired, put back the status from before), for
    /// display; the decision itself is published by [`HealthCell::decide`].
    pub fn note_change(&self, from: Status, to: Status, reason: &str, clustered: bool) {
        self.stats.transitions.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        d.own_since = now;
        if !clustered {
            d.since = now;
        }
        if d.transitions.len() == TRANSITIONS_KEPT {
            d.transitions.pop_front();
        }
        let reason = if clustered {
            format!("this node: {reason}")
        } else {
            reason.to_string()
        };
        d.transitions.push_back((now, from, to, reason));
    }

    /// A copy of the details.
    pub fn details(&self) -> Details {
        self.details
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current observed status.
    #[inline]
    pub fn get(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// Publishes a new status to serve with; visible to the next query.
    /// Alone, the prober's decision is it (see [`HealthCell::decide`]); in
    /// a cluster the quorum rule sets it.
    pub fn set(&self, status: Status) {
        self.note_recovery(status);
        if self.status.swap(status as u8, Ordering::Release) != status as u8 {
            self.changed
                .store(crate::clock::unix_secs_now(), Ordering::Relaxed);
        }
    }

    /// Before `status` is published: a recovery from Degraded is recorded
    /// first, so a query that sees Online also sees when it recovered (see
    /// [`HealthCell::get_with_recovery`]). One writer per cell.
    fn note_recovery(&self, status: Status) {
        if status == Status::Online && self.status.load(Ordering::Relaxed) == Status::Degraded as u8
        {
            self.recovered
                .store(crate::clock::now_millis(), Ordering::Relaxed);
        }
    }

    /// The served status and when it last recovered from Degraded (ms
    /// since the epoch; 0: not known to have).
    #[inline]
    pub fn get_with_recovery(&self) -> (Status, u64) {
        let s = Status::from_u8(self.status.load(Ordering::Acquire));
        (s, self.recovered.load(Ordering::Relaxed))
    }

    /// When it last recovered from Degraded (0: not known to have).
    pub fn recovered_ms(&self) -> u64 {
        self.recovered.load(Ordering::Relaxed)
    }

    /// Restores a recovery time saved before a restart.
    pub fn restore_recovered(&self, ms: u64) {
        self.recovered.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the served status last changed (Unix seconds), 0 if it has not
    /// since the server started.
    #[inline]
    pub fn changed_secs(&self) -> u32 {
        self.changed.load(Ordering::Relaxed)
    }

    /// Starts with a status saved before a restart (a decision of this
    /// node's, from `since`), until the prober decides again.
    pub fn restore(&self, status: Status, since: SystemTime) {
        self.decide(status, false);
        self.restored.store(true, Ordering::Relaxed);
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        d.since = since;
        d.own_since = since;
    }

    /// True while the own status is one restored at start, not decided by
    /// this run's prober.
    pub fn is_restored(&self) -> bool {
        self.restored.load(Ordering::Relaxed)
    }

    /// When this node's own decision began.
    pub fn own_since(&self) -> SystemTime {
        self.details
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .own_since
    }

    /// This node's own decision.
    pub fn own(&self) -> Status {
        Status::from_u8(self.own.load(Ordering::Relaxed))
    }

    /// Records this node's own decision; alone (`clustered` false) it is
    /// also what is served.
    pub fn decide(&self, status: Status, clustered: bool) {
        self.own.store(status as u8, Ordering::Relaxed);
        self.restored.store(false, Ordering::Relaxed);
        if !clustered {
            self.set(status);
        }
    }

    /// Puts back a decision made on evidence that turned out to be this
    /// host's own failure (the prober was impaired): like
    /// [`HealthCell::decide`], but going back from Degraded is no recovery
    /// (a `failback = "manual"` profile does not hold the endpoint out).
    pub fn revert(&self, status: Status, clustered: bool) {
        self.own.store(status as u8, Ordering::Relaxed);
        self.restored.store(false, Ordering::Relaxed);
        if !clustered && self.status.swap(status as u8, Ordering::Release) != status as u8 {
            self.changed
                .store(crate::clock::unix_secs_now(), Ordering::Relaxed);
        }
    }

    /// Publishes what the cluster decided, and how (for the API and
    /// `explain`). Returns the status served before.
    pub fn publish_cluster(&self, view: ClusterView) -> Status {
        self.note_recovery(view.verdict.status);
        let before = Status::from_u8(
            self.status
                .swap(view.verdict.status as u8, Ordering::Release),
        );
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        if before != view.verdict.status {
            self.changed
                .store(crate::clock::unix_secs_now(), Ordering::Relaxed);
            let now = SystemTime::now();
            d.since = now;
            if d.transitions.len() == TRANSITIONS_KEPT {
                d.transitions.pop_front();
            }
            let reason = format!("cluster: {}", view.verdict.text(view.quorum));
            d.transitions
                .push_back((now, before, view.verdict.status, reason));
        }
        if d.cluster.as_ref() != Some(&view) {
            d.cluster = Some(view);
        }
        before
    }
}

impl HealthCell {
    /// Publishes the status of a cell no probe writes (an endpoint's
    /// combination of named monitors, see [`combine`]; a push monitor,
    /// see [`push`]), with why, and returns the status served before. One
    /// writer: the task combining monitors.
    pub fn publish(&self, status: Status, why: &str) -> Status {
        self.own.store(status as u8, Ordering::Relaxed);
        self.note_recovery(status);
        let before = Status::from_u8(self.status.swap(status as u8, Ordering::Release));
        if before != status {
            self.changed
                .store(crate::clock::unix_secs_now(), Ordering::Relaxed);
            self.stats.transitions.fetch_add(1, Ordering::Relaxed);
            let now = SystemTime::now();
            let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
            d.since = now;
            d.own_since = now;
            if d.transitions.len() == TRANSITIONS_KEPT {
                d.transitions.pop_front();
            }
            d.transitions
                .push_back((now, before, status, why.to_string()));
        }
        let mut d = self.details.lock().unwrap_or_else(|p| p.into_inner());
        if d.note.as_deref() != Some(why) {
            d.note = Some(why.to_string());
        }
        before
    }
}

impl Default for HealthCell {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_the_cell() {
        let cell = HealthCell::new();
        assert_eq!(cell.get(), Status::CheckingEndpoint);
        for s in Status::ALL {
            cell.set(s);
            assert_eq!(cell.get(), s);
        }
    }

    #[test]
    fn answerable_and_eligible() {
        let answerable: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| s.is_answerable())
            .collect();
        assert_eq!(
            answerable,
            [
                Status::CheckingEndpoint,
                Status::Online,
                Status::Unmonitored
            ]
        );
        assert!(Status::Degraded.is_eligible());
        assert!(!Status::Disabled.is_eligible());
        assert!(!Status::Stopped.is_eligible());
    }
}
