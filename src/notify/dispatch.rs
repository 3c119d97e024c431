//! The dispatcher: one task that takes events off the queue, enriches them
//! (the answer the profile's name gets now, what it serves), derives
//! profile events from what every profile serves, coalesces flapping and
//! fans messages out to each target's own queue and sender task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::event::{Event, Kind};
use super::shared::Inner;
use super::target::{TargetConfig, TargetStats};
use super::{coalesce, payload, send};
use crate::health::Status;

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

/// A target the dispatcher feeds.
struct Running {
    config: TargetConfig,
    tx: mpsc::Sender<send::Queued>,
    stats: Arc<TargetStats>,
    coalescer: coalesce::Coalescer,
}

/// The dispatcher's task state.
pub(super) struct Dispatcher {
    /// What it shares with the handle: the pending count, the counters.
    shared: Arc<Inner>,
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
    /// A dispatcher reading the running server through `view`, stopping
    /// at `shutdown`.
    pub(super) fn new(
        shared: Arc<Inner>,
        view: Arc<dyn View>,
        shutdown: CancellationToken,
    ) -> Dispatcher {
        Dispatcher {
            shared,
            node: view.node(),
            view,
            shutdown,
            targets: Vec::new(),
            serving: HashMap::new(),
            boot: fastrand::u64(..),
            seq: 0,
        }
    }

    /// Runs until `shutdown`, or until the queue or the configuration
    /// closes: events in, targets reconfigured, flap windows flushed when
    /// due, profiles looked at every [`PROFILE_CHECK`].
    pub(super) async fn run(
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
                        self.shared.pending.fetch_sub(1, Ordering::SeqCst);
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
            let stats = self.shared.stats_of(&c.name);
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
