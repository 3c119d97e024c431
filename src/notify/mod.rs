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
//!
//! This file is the handle ([`Notifier`]); `event.rs` is what happened,
//! `target.rs` a target's configuration and counters, `shared.rs` what the
//! handle and the dispatcher share, `dispatch.rs` the dispatcher,
//! `coalesce.rs` its flap windows, `payload.rs` what a receiver gets and
//! `send.rs` the delivery to one target.

mod coalesce;
mod dispatch;
mod event;
pub mod hmac;
pub mod payload;
mod send;
mod shared;
mod target;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use dispatch::Dispatcher;
use shared::Inner;

pub use dispatch::View;
pub use event::{Event, Kind};
pub use send::backoff;
pub use target::{Format, TargetConfig, TargetStats, shown_url};

/// Events waiting for the dispatcher; more are dropped (and counted).
pub const EVENT_QUEUE: usize = 1024;

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
    /// An endpoint's named monitors, combined by its `health`.
    Monitors,
}

impl ChangeSource {
    /// The name in the log's `by` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Probes => "probes",
            ChangeSource::Quorum => "quorum",
            ChangeSource::HoldEnded => "failback_after",
            ChangeSource::Monitors => "monitors",
        }
    }
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
        self.0.stats()
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

    /// The prober's certificate hook: each crossing of an HTTPS
    /// certificate's `cert_warning` is logged (a warning when it is
    /// expiring) and sent as an `endpoint.certificate` event.
    pub fn certificate_hook(&self) -> crate::health::prober::CertHook {
        let n = self.clone();
        Arc::new(move |profile, endpoint, crossing, cert| {
            use crate::health::cert::Crossing;
            let reason = cert.reason(std::time::SystemTime::now());
            match crossing {
                Crossing::Expiring => {
                    tracing::warn!(profile, endpoint, reason, "certificate expiring");
                }
                Crossing::Renewed => {
                    tracing::info!(profile, endpoint, reason, "certificate renewed");
                }
            }
            n.emit(Event::certificate(profile, endpoint, crossing, reason));
        })
    }

    /// The prober's episode hook: an episode's start and end go out as
    /// `prober.impaired` and `prober.recovered` events (the prober logs
    /// them).
    pub fn prober_hook(&self) -> crate::health::prober::EpisodeHook {
        use crate::health::freeze::EpisodeEvent;
        let n = self.clone();
        Arc::new(move |e| match e {
            EpisodeEvent::Impaired(episode) => n.emit(Event::prober_impaired(episode.notice())),
            EpisodeEvent::Recovered { episode, lasted } => {
                n.emit(Event::prober_recovered(format!(
                    "probes succeed again after {}s frozen ({})",
                    lasted.as_secs(),
                    episode.describe()
                )))
            }
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
        let d = Dispatcher::new(self.0.clone(), view, shutdown);
        tokio::spawn(d.run(rx, self.0.config.subscribe()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

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
