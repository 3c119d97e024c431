//! Notification webhooks (`[[notify]]`): events of the running server sent
//! to HTTP receivers as a generic JSON document or a Slack-compatible
//! message, signed with HMAC-SHA256 when a secret is set.
//!
//! Sending never blocks anything else. [`Notifier::emit`] is a `try_send`
//! into a bounded queue (a full queue drops the event and counts it); one
//! dispatcher task enriches events (the answer the profile's name gets
//! now, what it serves), derives profile events from what every profile
//! serves, coalesces flapping and fans messages out to one bounded queue
//! per target; each target has its own sender task, so a receiver that
//! hangs only ever delays itself. Delivery is at least once: a message
//! keeps its id across retries ([`hmac`] documents the headers).
//!
//! Nothing here is on the answer path: events come from the prober, the
//! cluster task, reloads and the admin API.

mod coalesce;
pub mod hmac;
pub mod payload;
mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::Status;
use crate::secret::Secret;

pub use send::backoff;

/// Events waiting for the dispatcher; more are dropped (and counted).
pub const EVENT_QUEUE: usize = 1024;

/// How often the dispatcher compares what every profile serves with what
/// it served (besides after each event).
const PROFILE_CHECK: Duration = Duration::from_secs(1);

/// What the dispatcher reads of the running server. `app` implements it
/// over the shared state (this module sits below it), with the real answer
/// path and `Profile::serving`: nothing is decided twice.
pub trait View: Send + Sync + 'static {
    /// This node's name (`cluster.node`, or `local`).
    fn node(&self) -> String;
    /// What every profile serves now, by name.
    fn serving(&self) -> Vec<(String, &'static str)>;
    /// What `profile` serves and answers now (`None`: no such profile).
    fn profile_now(&self, profile: &str) -> Option<(&'static str, payload::Answer)>;
    /// An endpoint's status as routing sees it now (`Online (held)` under
    /// `failback = "manual"`), if there is such an endpoint, with what
    /// holds it, in words.
    fn endpoint_status(&self, profile: &str, endpoint: &str) -> Option<(&'static str, String)>;
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    /// An endpoint's status changed.
    #[serde(rename = "endpoint.status")]
    EndpointStatus,
    /// What a profile serves changed (other than to failing open).
    #[serde(rename = "profile.status")]
    ProfileStatus,
    /// A profile fails open: no endpoint is answerable, `on_all_down`
    /// applies.
    #[serde(rename = "profile.failing_open")]
    ProfileFailingOpen,
    /// A runtime override (disable, enable) was applied.
    #[serde(rename = "override.applied")]
    OverrideApplied,
    /// A configuration reload was rejected.
    #[serde(rename = "reload.rejected")]
    ReloadRejected,
    /// The state file could not be used or written.
    #[serde(rename = "state_file.problem")]
    StateFile,
    /// A cluster node joined (or is alive again).
    #[serde(rename = "cluster.node_joined")]
    NodeJoined,
    /// A cluster node is dead (left).
    #[serde(rename = "cluster.node_left")]
    NodeLeft,
    /// A cluster node's configuration differs from this one's (or no
    /// longer does).
    #[serde(rename = "cluster.drift")]
    NodeDrift,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::EndpointStatus,
        Kind::ProfileStatus,
        Kind::ProfileFailingOpen,
        Kind::OverrideApplied,
        Kind::ReloadRejected,
        Kind::StateFile,
        Kind::NodeJoined,
        Kind::NodeLeft,
        Kind::NodeDrift,
    ];

    /// Its name in payloads, headers and `events = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EndpointStatus => "endpoint.status",
            Kind::ProfileStatus => "profile.status",
            Kind::ProfileFailingOpen => "profile.failing_open",
            Kind::OverrideApplied => "override.applied",
            Kind::ReloadRejected => "reload.rejected",
            Kind::StateFile => "state_file.problem",
            Kind::NodeJoined => "cluster.node_joined",
            Kind::NodeLeft => "cluster.node_left",
            Kind::NodeDrift => "cluster.drift",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Flapping of these is coalesced.
    fn coalesced(self) -> bool {
        matches!(
            self,
            Kind::EndpointStatus | Kind::ProfileStatus | Kind::ProfileFailingOpen
        )
    }
}

/// An event, as the code that saw it reports it.
#[derive(Clone, Debug)]
pub struct Event {
    kind: Kind,
    profile: Option<String>,
    endpoint: Option<String>,
    peer: Option<String>,
    old: Option<String>,
    new: Option<String>,
    reason: String,
    at: SystemTime,
}

impl Event {
    fn new(kind: Kind, reason: impl Into<String>) -> Event {
        Event {
            kind,
            profile: None,
            endpoint: None,
            peer: None,
            old: None,
            new: None,
            reason: reason.into(),
            at: SystemTime::now(),
        }
    }

    /// An endpoint's status changed from `old` to `new`.
    pub fn endpoint(
        profile: &str,
        endpoint: &str,
        old: Status,
        new: Status,
        reason: impl Into<String>,
    ) -> Event {
        Event {
            profile: Some(profile.to_string()),
            endpoint: Some(endpoint.to_string()),
            old: Some(old.as_str().to_string()),
            new: Some(new.as_str().to_string()),
            ..Event::new(Kind::EndpointStatus, reason)
        }
    }

    /// The status before, for events that know it.
    pub fn with_old(mut self, old: &str) -> Event {
        self.old = Some(old.to_string());
        self
    }

    /// A runtime override `record` (disable, drain or enable): who made
    /// it, where, until when and why.
    pub fn override_applied(
        profile: &str,
        endpoint: &str,
        record: &crate::overrides::Override,
    ) -> Event {
        use crate::overrides::Kind as K;
        let new = match record.kind() {
            K::Disable => "disabled",
            K::Drain => "draining",
            K::Enable => "enabled",
            K::Resume => "resumed",
        };
        let mut reason = format!(
            "by {} on node {}",
            record.by.as_deref().unwrap_or("?"),
            record.node
        );
        if let Some(u) = record.until {
            reason.push_str(&format!(
                ", until {}",
                crate::clock::rfc3339_millis(crate::clock::from_unix_millis(u))
            ));
        }
        if let Some(r) = &record.reason {
            reason.push_str(&format!(": {r}"));
        }
        Event {
            profile: Some(profile.to_string()),
            endpoint: Some(endpoint.to_string()),
            new: Some(new.to_string()),
            ..Event::new(Kind::OverrideApplied, reason)
        }
    }

    /// A reload was rejected, for `reason`.
    pub fn reload_rejected(reason: impl Into<String>) -> Event {
        Event::new(Kind::ReloadRejected, reason)
    }

    /// A state file problem.
    pub fn state_file(problem: impl Into<String>) -> Event {
        Event::new(Kind::StateFile, problem)
    }

    /// A cluster node `peer` joined.
    pub fn node_joined(peer: &str, reason: impl Into<String>) -> Event {
        Event {
            peer: Some(peer.to_string()),
            ..Event::new(Kind::NodeJoined, reason)
        }
    }

    /// A cluster node `peer` is dead.
    pub fn node_left(peer: &str, reason: impl Into<String>) -> Event {
        Event {
            peer: Some(peer.to_string()),
            ..Event::new(Kind::NodeLeft, reason)
        }
    }

    /// A cluster node's configuration drifted (`drifted`) or is the same
    /// again.
    pub fn node_drift(peer: &str, drifted: bool, reason: impl Into<String>) -> Event {
        let (old, new) = if drifted {
            ("same configuration", "different configuration")
        } else {
            ("different configuration", "same configuration")
        };
        Event {
            peer: Some(peer.to_string()),
            old: Some(old.to_string()),
            new: Some(new.to_string()),
            ..Event::new(Kind::NodeDrift, reason)
        }
    }

    /// What happened.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// `format = ...`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The generic JSON document ([`payload::Message`]).
    Json,
    /// `{"text": ...}` for Slack-compatible incoming webhooks.
    Slack,
}

/// One `[[notify]]` target, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetConfig {
    /// Unique; the `target` label of its metrics.
    pub name: String,
    /// `http://` or `https://`. Treated as a secret (chat webhook URLs are
    /// credentials): only [`TargetConfig::shown_url`] is ever printed.
    pub url: Secret,
    /// Payload format.
    pub format: Format,
    /// Signs each request (`X-Switchyard-Signature`) when set.
    pub secret: Option<Secret>,
    /// The events sent (`None`: all).
    pub events: Option<Vec<Kind>>,
    /// Flap window per (profile, endpoint); zero: every change at once.
    pub coalesce: Duration,
    /// Bound of one attempt (connect, TLS, request, response head).
    pub timeout: Duration,
    /// How long after it was queued a message is still retried.
    pub retry_for: Duration,
    /// Messages waiting for this target; more are dropped (and counted).
    pub queue: usize,
    /// Extra trusted CA certificates (PEM) for an `https` URL.
    pub ca_cert: Option<PathBuf>,
}

impl TargetConfig {
    /// The URL's scheme, host and port: what logs may show.
    pub fn shown_url(&self) -> String {
        shown_url(self.url.expose())
    }

    fn wants(&self, kind: Kind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }
}

/// `scheme://host:port/…` of a URL, without its path, query or credentials.
pub fn shown_url(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme_str().unwrap_or("?"),
            u.host().unwrap_or("?"),
            u.port_u16().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// A target's counters (read by `/metrics`).
#[derive(Debug, Default)]
pub struct TargetStats {
    /// Messages delivered (a 2xx answer).
    pub sent: AtomicU64,
    /// Messages given up on (`retry_for` passed, or a permanent error).
    pub failed: AtomicU64,
    /// Messages not queued: the target's queue was full.
    pub dropped: AtomicU64,
    /// Attempts retried.
    pub retries: AtomicU64,
    /// Messages waiting now.
    pub queued: AtomicU64,
}

/// The handle the rest of the server emits events through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Notifier(Arc<Inner>);

/// Who decided an endpoint status change ([`Notifier::status_changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeSource {
    /// A lone node's own probes.
    Probes,
    /// The cluster's quorum rule.
    Quorum,
    /// A `failback = "manual"` hold that `failback_after` ended.
    HoldEnded,
}

impl ChangeSource {
    /// The name in the log's `by` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Probes => "probes",
            ChangeSource::Quorum => "quorum",
            ChangeSource::HoldEnded => "failback_after",
        }
    }
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Event>,
    rx: Mutex<Option<mpsc::Receiver<Event>>>,
    config: watch::Sender<Arc<Vec<TargetConfig>>>,
    /// Counters by target name, in configuration order.
    stats: Mutex<Vec<(String, Arc<TargetStats>)>>,
    /// Events dropped before reaching any target (the dispatcher's queue
    /// was full).
    lost: AtomicU64,
    /// When a drop was last logged (Unix ms), to log at most one a minute.
    lost_logged: AtomicU64,
    /// Events emitted and not yet handed to the targets' queues.
    pending: AtomicU64,
    /// Woken by every event, targets or not (see [`Notifier::event`]).
    wake: tokio::sync::Notify,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl Notifier {
    /// A notifier with no targets; events are queued until
    /// [`Notifier::start`] (needs no runtime).
    pub fn new() -> Notifier {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        Notifier(Arc::new(Inner {
            tx,
            rx: Mutex::new(Some(rx)),
            config: watch::Sender::new(Arc::new(Vec::new())),
            stats: Mutex::new(Vec::new()),
            lost: AtomicU64::new(0),
            lost_logged: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// Reports an event. Never blocks: with no target configured it does
    /// nothing, and a full queue drops the event (counted in
    /// `switchyard_notify_dropped_total{target=""}`).
    pub fn emit(&self, ev: Event) {
        self.0.wake.notify_one();
        if self.0.config.borrow().is_empty() {
            return;
        }
        // Counted before it can be taken, so a flush never misses it.
        self.0.pending.fetch_add(1, Ordering::SeqCst);
        if self.0.tx.try_send(ev).is_err() {
            self.0.pending.fetch_sub(1, Ordering::SeqCst);
            self.0.lost.fetch_add(1, Ordering::Relaxed);
            let now = crate::clock::now_millis();
            let last = self.0.lost_logged.load(Ordering::Relaxed);
            if now.saturating_sub(last) > 60_000
                && self
                    .0
                    .lost_logged
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                warn!(
                    queue = EVENT_QUEUE,
                    "notification events dropped: the dispatcher's queue is full"
                );
            }
        }
    }

    /// Sets the targets (at start and on each reload): unchanged targets
    /// carry on, changed ones start again (what their old queue held is
    /// still delivered), removed ones stop once their queue is sent.
    pub fn configure(&self, targets: Vec<TargetConfig>) {
        {
            let mut stats = self.0.stats.lock().unwrap_or_else(|p| p.into_inner());
            let old = std::mem::take(&mut *stats);
            for t in &targets {
                let s = old
                    .iter()
                    .find(|(n, _)| n == &t.name)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                stats.push((t.name.clone(), s));
            }
        }
        self.0.config.send_replace(Arc::new(targets));
    }

    /// Every target's counters, by name.
    pub fn stats(&self) -> Vec<(String, Arc<TargetStats>)> {
        self.0
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Returns at the next event emitted (or at once if one was emitted
    /// since the last call returned), whether any target is configured: a
    /// status change, an override, a reload. The one task that waits on it
    /// (expiries) learns of new deadlines so instead of polling.
    pub async fn event(&self) {
        self.0.wake.notified().await;
    }

    /// Events dropped before reaching any target.
    pub fn lost(&self) -> u64 {
        self.0.lost.load(Ordering::Relaxed)
    }

    fn stats_of(&self, name: &str) -> Arc<TargetStats> {
        self.stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// The one sink of endpoint status changes, whoever decided them (a
    /// lone node's prober, the cluster's quorum, a hold that
    /// `failback_after` ended): logs each in one shape (a warning when it
    /// goes Degraded) and emits an `endpoint.status` event for it.
    pub fn status_changed(
        &self,
        source: ChangeSource,
        profile: &str,
        endpoint: &str,
        from: crate::health::Status,
        to: crate::health::Status,
        reason: &str,
    ) {
        let by = source.as_str();
        if to == crate::health::Status::Degraded {
            tracing::warn!(profile, endpoint, old = %from, new = %to, reason, by, "endpoint status changed");
        } else {
            tracing::info!(profile, endpoint, old = %from, new = %to, reason, by, "endpoint status changed");
        }
        self.emit(Event::endpoint(profile, endpoint, from, to, reason));
    }

    /// The prober's hook: each decided status change of a lone node goes
    /// to [`Notifier::status_changed`].
    pub fn endpoint_hook(&self) -> crate::health::prober::ChangeHook {
        let n = self.clone();
        Arc::new(move |profile, endpoint, from, to, reason| {
            n.status_changed(ChangeSource::Probes, profile, endpoint, from, to, reason);
        })
    }

    /// At shutdown, before [`Notifier::start`]'s token is cancelled: waits
    /// (at most `limit`) until the events already emitted have been handed
    /// to the targets and every target's queue is sent (or given up on), so
    /// a stop does not lose the last events. Messages a coalescing window
    /// still holds are not sent. Returns how many were still queued.
    pub async fn flush(&self, limit: Duration) -> u64 {
        let until = Instant::now() + limit;
        loop {
            let inbox = self.0.pending.load(Ordering::SeqCst);
            let queued: u64 = self
                .stats()
                .iter()
                .map(|(_, s)| s.queued.load(Ordering::Relaxed))
                .sum();
            let left = inbox + queued;
            if left == 0 || Instant::now() >= until {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the dispatcher (once; later calls do nothing). It reads the
    /// running server through `view` and stops at `shutdown`.
    pub fn start(&self, view: Arc<dyn View>, shutdown: CancellationToken) {
        let Some(rx) = self.0.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let d = Dispatcher {
            notifier: self.clone(),
            node: view.node(),
            view,
            shutdown: shutdown.clone(),
            targets: Vec::new(),
            serving: HashMap::new(),
            boot: fastrand::u64(..),
            seq: 0,
        };
        tokio::spawn(d.run(rx, self.0.config.subscribe()));
    }
}

/// A target the dispatcher feeds.
struct Running {
    config: TargetConfig,
    tx: mpsc::Sender<send::Queued>,
    stats: Arc<TargetStats>,
    coalescer: coalesce::Coalescer,
}

struct Dispatcher {
    notifier: Notifier,
    view: Arc<dyn View>,
    node: String,
    shutdown: CancellationToken,
    targets: Vec<Running>,
    /// What each profile served when last looked at, by name.
    serving: HashMap<String, &'static str>,
    /// Random per process: ids stay unique across restarts.
    boot: u64,
    seq: u64,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut config: watch::Receiver<Arc<Vec<TargetConfig>>>,
    ) {
        let first = config.borrow_and_update().clone();
        self.reconfigure(&first);
        self.check_profiles(None);
        let mut tick = tokio::time::interval(PROFILE_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self
                .targets
                .iter()
                .filter_map(|t| t.coalescer.next_end())
                .min();
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        self.handle(ev);
                        self.notifier.0.pending.fetch_sub(1, Ordering::SeqCst);
                    }
                    None => return,
                },
                changed = config.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let c = config.borrow_and_update().clone();
                    self.reconfigure(&c);
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.flush_due();
                }
                _ = tick.tick() => self.check_profiles(None),
            }
        }
    }

    fn reconfigure(&mut self, configs: &[TargetConfig]) {
        let mut old: Vec<Running> = std::mem::take(&mut self.targets);
        for c in configs {
            let stats = self.notifier.stats_of(&c.name);
            match old.iter().position(|r| r.config.name == c.name) {
                Some(i) if old[i].config == *c => self.targets.push(old.swap_remove(i)),
                found => {
                    // A changed target keeps its flap windows.
                    let coalescer = match found {
                        Some(i) => {
                            let mut r = old.swap_remove(i);
                            r.coalescer.set_window(c.coalesce);
                            r.coalescer
                        }
                        None => coalesce::Coalescer::new(c.coalesce),
                    };
                    let (tx, rx) = mpsc::channel(c.queue);
                    tokio::spawn(send::run(
                        c.clone(),
                        stats.clone(),
                        rx,
                        self.shutdown.clone(),
                    ));
                    info!(target = %c.name, url = %c.shown_url(), format = ?c.format, signed = c.secret.is_some(), "notify target started");
                    self.targets.push(Running {
                        config: c.clone(),
                        tx,
                        stats,
                        coalescer,
                    });
                }
            }
        }
        for r in old {
            info!(target = %r.config.name, "notify target removed (what it has queued is still sent)");
        }
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!("{}-{:016x}-{}", self.node, self.boot, self.seq)
    }

    /// An event in: sent (or held) to every target that wants it, then the
    /// profiles are looked at again (the event may have changed them).
    fn handle(&mut self, ev: Event) {
        let quiet = ev.kind == Kind::EndpointStatus
            && ev.old.as_deref() == Some(Status::CheckingEndpoint.as_str())
            && matches!(ev.new.as_deref(), Some("Online" | "Unmonitored"));
        if !quiet {
            let m = self.message(&ev);
            self.fan_out(m);
        }
        if matches!(ev.kind, Kind::EndpointStatus | Kind::OverrideApplied) {
            self.check_profiles(Some(&ev));
        }
    }

    /// The message for `ev`, with the profile's answer now.
    fn message(&mut self, ev: &Event) -> payload::Message {
        let (serving, answer) = match &ev.profile {
            Some(p) => self.profile_now(p),
            None => (None, None),
        };
        // A recovery that `failback = "manual"` holds is news of its own.
        let (mut new_status, mut reason) = (ev.new.clone(), ev.reason.clone());
        if ev.kind == Kind::EndpointStatus
            && new_status.as_deref() == Some("Online")
            && let (Some(p), Some(e)) = (&ev.profile, &ev.endpoint)
            && let Some((held @ "Online (held)", why)) = self.view.endpoint_status(p, e)
        {
            new_status = Some(held.to_string());
            reason.push_str("; ");
            reason.push_str(&why);
        }
        let mut m = payload::Message {
            id: self.next_id(),
            event: ev.kind,
            time: ev.at,
            node: self.node.clone(),
            profile: ev.profile.clone(),
            endpoint: ev.endpoint.clone(),
            peer: ev.peer.clone(),
            old_status: ev.old.clone(),
            new_status,
            reason,
            count: 1,
            serving,
            answer,
            summary: String::new(),
        };
        m.summarise();
        m
    }

    /// What `profile` serves and answers now.
    fn profile_now(&self, profile: &str) -> (Option<&'static str>, Option<payload::Answer>) {
        match self.view.profile_now(profile) {
            Some((serving, answer)) => (Some(serving), Some(answer)),
            None => (None, None),
        }
    }

    /// Compares what every profile serves with what it served: a change is
    /// a `profile.status` (or `profile.failing_open`) event. A profile's
    /// first verdict that finds it healthy is not news (every start would
    /// send one per profile); one that finds it failing is.
    fn check_profiles(&mut self, cause: Option<&Event>) {
        if self.targets.is_empty() {
            // Nothing to tell: no baseline either (a target added by a
            // reload starts from what profiles serve then).
            self.serving.clear();
            return;
        }
        let all = self.view.serving();
        let mut changes = Vec::new();
        let mut present = std::collections::HashSet::with_capacity(all.len());
        for (name, now) in all {
            match self.serving.insert(name.clone(), now) {
                Some(before) if before != now => {
                    let quiet = before == "unverified" && matches!(now, "healthy" | "unmonitored");
                    if !quiet {
                        changes.push((name.clone(), before, now));
                    }
                }
                _ => {}
            }
            present.insert(name);
        }
        self.serving.retain(|n, _| present.contains(n));
        for (profile, before, now) in changes {
            let kind = if now == "failing open" {
                Kind::ProfileFailingOpen
            } else {
                Kind::ProfileStatus
            };
            let reason = match cause {
                Some(c) if c.profile.as_deref() == Some(&profile) => match c.kind {
                    Kind::OverrideApplied => format!(
                        "{} {}",
                        c.endpoint.as_deref().unwrap_or("?"),
                        c.new.as_deref().unwrap_or("")
                    ),
                    _ => format!(
                        "{} {} → {}{}",
                        c.endpoint.as_deref().unwrap_or("?"),
                        c.old.as_deref().unwrap_or("?"),
                        c.new.as_deref().unwrap_or("?"),
                        if c.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", c.reason)
                        }
                    ),
                },
                _ => String::new(),
            };
            let ev = Event {
                profile: Some(profile),
                old: Some(before.to_string()),
                new: Some(now.to_string()),
                ..Event::new(kind, reason)
            };
            let m = self.message(&ev);
            self.fan_out(m);
        }
    }

    /// Sends `m` to each target that wants it, through its flap window.
    fn fan_out(&mut self, m: payload::Message) {
        let now = Instant::now();
        let m = Arc::new(m);
        for t in &mut self.targets {
            if !t.config.wants(m.event) {
                continue;
            }
            let out = if m.event.coalesced() {
                let key = (
                    m.profile.clone().unwrap_or_default(),
                    m.endpoint.clone().unwrap_or_default(),
                );
                match t.coalescer.offer(key, (*m).clone(), now) {
                    Some(_) => m.clone(),
                    None => continue,
                }
            } else {
                m.clone()
            };
            enqueue(t, out);
        }
    }

    /// Sends what the flap windows held, brought up to date (a new id, the
    /// answer now).
    fn flush_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (i, t) in self.targets.iter_mut().enumerate() {
            for m in t.coalescer.due(now) {
                due.push((i, m));
            }
        }
        for (i, mut m) in due {
            m.id = self.next_id();
            if let Some(p) = m.profile.clone() {
                let (serving, answer) = self.profile_now(&p);
                m.serving = serving;
                m.answer = answer;
            }
            m.summarise();
            enqueue(&mut self.targets[i], Arc::new(m));
        }
    }
}

/// Puts `m` on the target's queue, or counts it dropped.
fn enqueue(t: &mut Running, m: Arc<payload::Message>) {
    let q = send::Queued {
        message: m,
        at: Instant::now(),
    };
    t.stats.queued.fetch_add(1, Ordering::Relaxed);
    if t.tx.try_send(q).is_err() {
        t.stats.queued.fetch_sub(1, Ordering::Relaxed);
        t.stats.dropped.fetch_add(1, Ordering::Relaxed);
        warn!(target = %t.config.name, queue = t.config.queue, "notification dropped: the target's queue is full (its receiver is slow or down)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_serialise_by_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.as_str().into())
            );
        }
        assert_eq!(Kind::parse("endpoint"), None);
    }

    #[test]
    fn urls_are_shown_without_path_or_credentials() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:9000/hook?token=x"),
            "http://127.0.0.1:9000"
        );
        let t = TargetConfig {
            name: "oncall".into(),
            url: Secret::from("https://example.test/very-secret-path".to_string()),
            format: Format::Json,
            secret: Some(Secret::from("hmac-secret-value".to_string())),
            events: None,
            coalesce: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(600),
            queue: 256,
            ca_cert: None,
        };
        let debug = format!("{t:?}");
        assert!(!debug.contains("very-secret-path"), "{debug}");
        assert!(!debug.contains("hmac-secret-value"), "{debug}");
    }

    #[test]
    fn emit_without_targets_does_nothing_and_a_full_queue_drops() {
        let n = Notifier::new();
        for _ in 0..(EVENT_QUEUE + 10) {
            n.emit(Event::state_file("x"));
        }
        assert_eq!(n.lost(), 0, "no target: nothing queued, nothing lost");
        n.configure(vec![TargetConfig {
            name: "t".into(),
            url: Secret::from("http://127.0.0.1:9/".to_string()),
            format: Format::Json,
            secret: None,
            events: None,
            coalesce: Duration::ZERO,
            timeout: Duration::from_secs(1),
            retry_for: Duration::ZERO,
            queue: 1,
            ca_cert: None,
        }]);
        // Not started: the queue fills, then drops (never blocks).
        for _ in 0..(EVENT_QUEUE + 10) {
            n.emit(Event::state_file("x"));
        }
        assert_eq!(n.lost(), 10);
        assert_eq!(n.stats().len(), 1);
    }
}
