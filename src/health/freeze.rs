//! Freezing: what the prober does while it is impaired ([`super::impaired`]
//! decides when). Every probe decision goes through one `Guard`, which
//! publishes it into the target's cell unless the prober is impaired; when
//! an episode begins, the transitions published in its window go back to
//! the status from before, and when it ends every target decides afresh
//! from its next probe. The prober keeps probing throughout: what it sees
//! is shown, never served.
//!
//! [`Impairment`] is what the rest of the server reads: the status API and
//! page, `explain`, metrics, and in a cluster the gossip that tells the
//! other nodes this one no longer votes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use super::impaired::{Change, Detector, Episode, Settings};
use super::probe::Outcome;
use super::state::Transition;
use super::{HealthCell, Status};

/// Told of each status change the prober decides, once per endpoint
/// sharing the probe: (profile, endpoint, from, to, reason). Runs on the
/// probe's task: it must not block.
pub type ChangeHook = Arc<dyn Fn(&str, &str, Status, Status, &str) + Send + Sync>;

/// Told when the prober becomes impaired and when it recovers. Must not
/// block.
pub type EpisodeHook = Arc<dyn Fn(EpisodeEvent<'_>) + Send + Sync>;

/// An episode's start or end.
#[derive(Clone, Copy, Debug)]
pub enum EpisodeEvent<'a> {
    /// Impaired from now: statuses frozen.
    Impaired(&'a Episode),
    /// Recovered after `lasted`: statuses thaw.
    Recovered {
        /// The episode that ended.
        episode: &'a Episode,
        /// How long it lasted.
        lasted: Duration,
    },
}

/// The reason given for a transition put back when an episode begins.
pub const REVERTED: &str =
    "prober impaired: back to the status from before the mass failure (frozen)";

/// Who a target's status belongs to, for log lines and notifications.
#[derive(Clone, Debug)]
pub(super) struct User {
    pub(super) profile: Arc<str>,
    pub(super) endpoint: Arc<str>,
    /// Set when the probe is one named monitor of the endpoint: its
    /// status is an input of the endpoint's, not the endpoint's.
    pub(super) monitor: Option<Arc<str>>,
}

/// Whom a published decision concerns besides its cell.
#[derive(Clone, Default)]
pub(super) struct Hooks {
    /// In a cluster: woken at each own decision (the cluster shares it and
    /// applies the quorum rule); the prober then never sets what is served.
    pub(super) cluster: Option<Arc<Notify>>,
    /// Told of each decided status change (notifications).
    pub(super) on_change: Option<ChangeHook>,
    /// Woken when (alone) a named monitor's status changes: the endpoints
    /// combining it are recomputed.
    pub(super) combine: Option<Arc<Notify>>,
    /// Told of each episode's start and end.
    pub(super) on_episode: Option<EpisodeHook>,
}

impl Hooks {
    /// Runs as one node of a cluster.
    pub(super) fn clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Says that a target's decision changed (`t`, for `reason`): a log
    /// line per named monitor, the change hook per endpoint (alone), and
    /// wakes the cluster task or the monitor combiner.
    pub(super) fn announce(&self, users: &[User], t: Transition, reason: &str) {
        let clustered = self.clustered();
        if let Some(decided) = &self.cluster {
            decided.notify_one();
        }
        let mut monitors = false;
        for u in users {
            if let Some(monitor) = &u.monitor {
                monitors = true;
                let theirs = if clustered {
                    " (the cluster's quorum decides it)"
                } else {
                    ""
                };
                if t.to == Status::Degraded {
                    warn!(profile = %u.profile, endpoint = %u.endpoint, %monitor, old = %t.from, new = %t.to, reason, "monitor changed{theirs}: one input of the endpoint's health");
                } else {
                    info!(profile = %u.profile, endpoint = %u.endpoint, %monitor, old = %t.from, new = %t.to, reason, "monitor changed{theirs}: one input of the endpoint's health");
                }
                continue;
            }
            match self.on_change.as_ref().filter(|_| !clustered) {
                // Alone, the decision is the status: the one sink logs and
                // notifies it.
                Some(hook) => hook(&u.profile, &u.endpoint, t.from, t.to, reason),
                None if t.to == Status::Degraded => {
                    warn!(profile = %u.profile, endpoint = %u.endpoint, old = %t.from, new = %t.to, reason, "this node's observation changed (the cluster's quorum decides the status)");
                }
                None => {
                    info!(profile = %u.profile, endpoint = %u.endpoint, old = %t.from, new = %t.to, reason, "this node's observation changed (the cluster's quorum decides the status)");
                }
            }
        }
        if monitors
            && !clustered
            && let Some(wake) = &self.combine
        {
            wake.notify_one();
        }
    }
}

/// One canary as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryView {
    /// As configured (`tcp://192.0.2.53:53`).
    pub target: String,
    /// Its last probe succeeded (`None`: not probed yet).
    pub up: Option<bool>,
    /// Its last probe in a few words ("connected in 3 ms", "timeout").
    pub last: String,
}

/// What the server shows of the prober's own health.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The episode in progress: statuses are frozen.
    pub episode: Option<Episode>,
    /// The last episode that ended, and when.
    pub last: Option<(Episode, SystemTime)>,
    /// How detection is set.
    pub settings: Settings,
    /// Probe targets followed.
    pub targets: usize,
    /// The canaries.
    pub canaries: Vec<CanaryView>,
}

/// The prober's own health, as the rest of the server reads it.
#[derive(Debug, Default)]
pub struct Impairment {
    impaired: AtomicBool,
    episodes: AtomicU64,
    view: Mutex<View>,
}

impl Impairment {
    /// True while the prober is impaired (statuses frozen).
    pub fn is_impaired(&self) -> bool {
        self.impaired.load(Ordering::Relaxed)
    }

    /// Episodes so far.
    pub fn episodes(&self) -> u64 {
        self.episodes.load(Ordering::Relaxed)
    }

    /// The episode in progress, if any.
    pub fn current(&self) -> Option<Episode> {
        self.lock().episode.clone()
    }

    /// Everything shown.
    pub fn view(&self) -> View {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A target the guard publishes for.
struct Watched {
    cell: Arc<HealthCell>,
    users: Arc<ArcSwap<Vec<User>>>,
}

struct Inner {
    detector: Detector,
    targets: HashMap<u64, Watched>,
    /// Profile names, interned for the detector.
    profiles: HashMap<Arc<str>, u32>,
    /// When the episode in progress began.
    began: Option<Instant>,
}

/// The one gate every probe decision of a prober passes.
pub(super) struct Guard {
    inner: Mutex<Inner>,
    public: Arc<Impairment>,
    /// Episodes ended: a task that sees it change decides afresh.
    thaws: AtomicU64,
    hooks: Hooks,
}

impl Guard {
    pub(super) fn new(public: Arc<Impairment>, hooks: Hooks) -> Guard {
        Guard {
            inner: Mutex::new(Inner {
                detector: Detector::default(),
                targets: HashMap::new(),
                profiles: HashMap::new(),
                began: None,
            }),
            public,
            thaws: AtomicU64::new(0),
            hooks,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Episodes ended so far.
    pub(super) fn thaws(&self) -> u64 {
        self.thaws.load(Ordering::Acquire)
    }

    /// New settings, and the canaries' names (in index order).
    pub(super) fn configure(&self, settings: Settings, canaries: &[String]) {
        let mut inner = self.lock();
        inner.detector.configure(settings.clone(), canaries.len());
        let mut view = self.public.lock();
        view.settings = settings;
        if view.canaries.iter().map(|c| &c.target).ne(canaries.iter()) {
            view.canaries = canaries
                .iter()
                .map(|c| CanaryView {
                    target: c.clone(),
                    up: None,
                    last: "not probed yet".into(),
                })
                .collect();
        }
    }

    /// The window failures must fall in to count as together.
    pub(super) fn set_window(&self, window: Duration) {
        self.lock().detector.set_window(window);
    }

    /// Publishes target `id`'s decisions into `cell` from now on; its
    /// users' profiles are what makes failures unrelated.
    pub(super) fn watch(&self, id: u64, cell: Arc<HealthCell>, users: Arc<ArcSwap<Vec<User>>>) {
        let mut inner = self.lock();
        let profiles = inner.intern(&users.load());
        inner.detector.register(id, profiles);
        inner.targets.insert(id, Watched { cell, users });
        self.public.lock().targets = inner.targets.len();
    }

    /// Target `id`'s users changed (a reload).
    pub(super) fn rewatch(&self, id: u64) {
        let mut inner = self.lock();
        let Some(users) = inner.targets.get(&id).map(|w| w.users.load_full()) else {
            return;
        };
        let profiles = inner.intern(&users);
        inner.detector.set_profiles(id, profiles);
    }

    /// Stops publishing for target `id` (removed by a reload).
    pub(super) fn unwatch(&self, id: u64) {
        let mut inner = self.lock();
        inner.detector.remove(id);
        inner.targets.remove(&id);
        self.public.lock().targets = inner.targets.len();
    }

    /// Feeds target `id`'s verdict and publishes `transition` (its
    /// machine's) unless the prober is impaired; returns what was
    /// published. Under one lock with the episode's start, so no decision
    /// slips past a freeze.
    pub(super) fn decide(
        &self,
        id: u64,
        healthy: bool,
        transition: Option<Transition>,
    ) -> Option<Transition> {
        let mut inner = self.lock();
        let cell = inner.targets.get(&id).map(|w| w.cell.clone())?;
        let change =
            inner
                .detector
                .record(id, healthy, cell.own(), Instant::now(), SystemTime::now());
        if self.apply(&mut inner, change) || inner.detector.impaired() {
            return None;
        }
        let t = transition?;
        cell.decide(t.to, self.hooks.clustered());
        Some(t)
    }

    /// Feeds canary `index`'s probe.
    pub(super) fn canary(&self, index: usize, outcome: &Outcome) {
        // A local fault says nothing about the route out.
        let Some(healthy) = outcome.verdict() else {
            return;
        };
        let mut inner = self.lock();
        let change = inner
            .detector
            .canary(index, healthy, Instant::now(), SystemTime::now());
        if let Some(c) = self.public.lock().canaries.get_mut(index) {
            c.up = Some(healthy);
            c.last = match (&outcome.failure, outcome.http_status) {
                (Some(f), _) => f.reason.clone(),
                (None, Some(code)) => {
                    format!("HTTP {code} in {} ms", outcome.latency.as_millis())
                }
                (None, None) => format!("connected in {} ms", outcome.latency.as_millis()),
            };
        }
        self.apply(&mut inner, change);
    }

    /// Starts or ends an episode; true when one did.
    fn apply(&self, inner: &mut Inner, change: Option<Change>) -> bool {
        match change {
            None => {
                // While frozen, the count of targets still failing moves.
                if let Some(e) = inner.detector.episode() {
                    let mut view = self.public.lock();
                    if let Some(shown) = view.episode.as_mut() {
                        shown.failing = e.failing;
                    }
                }
                false
            }
            Some(Change::Entered(turned)) => {
                self.enter(inner, &turned);
                true
            }
            Some(Change::Thawed) => {
                self.thaw(inner);
                true
            }
        }
    }

    /// Freezes: the transitions published in the window go back.
    fn enter(&self, inner: &mut Inner, turned: &[(u64, Status)]) {
        let Some(episode) = inner.detector.episode().cloned() else {
            return;
        };
        inner.began = Some(Instant::now());
        self.public.impaired.store(true, Ordering::Relaxed);
        self.public.episodes.fetch_add(1, Ordering::Relaxed);
        self.public.lock().episode = Some(episode.clone());
        error!(
            failed = episode.failed,
            of = episode.population,
            canaries_down = episode.canaries_down,
            "{}: every status is frozen as it was; probes go on, and statuses thaw when they succeed again",
            episode.notice()
        );
        let clustered = self.hooks.clustered();
        let mut reverted = 0;
        for (id, before) in turned {
            let Some(w) = inner.targets.get(id) else {
                continue;
            };
            let now = w.cell.own();
            if now == *before {
                continue;
            }
            reverted += 1;
            w.cell.revert(*before, clustered);
            w.cell.note_change(now, *before, REVERTED, clustered);
            let t = Transition {
                from: now,
                to: *before,
            };
            self.hooks.announce(&w.users.load(), t, REVERTED);
        }
        if reverted > 0 {
            warn!(
                targets = reverted,
                "prober impaired: statuses changed in the failure's first moments are back as they were"
            );
        }
        if let Some(wake) = &self.hooks.cluster {
            wake.notify_one();
        }
        if let Some(hook) = &self.hooks.on_episode {
            hook(EpisodeEvent::Impaired(&episode));
        }
    }

    /// Thaws: each target decides afresh from its next probe.
    fn thaw(&self, inner: &mut Inner) {
        let lasted = inner.began.take().map_or(Duration::ZERO, |t| t.elapsed());
        self.thaws.fetch_add(1, Ordering::Release);
        self.public.impaired.store(false, Ordering::Relaxed);
        let episode = {
            let mut view = self.public.lock();
            let e = view.episode.take();
            if let Some(e) = &e {
                view.last = Some((e.clone(), SystemTime::now()));
            }
            e
        };
        info!(
            lasted_s = lasted.as_secs(),
            "prober recovered: probes succeed again; statuses thaw, and each target decides afresh from its next probes"
        );
        if let Some(wake) = &self.hooks.cluster {
            wake.notify_one();
        }
        if let (Some(hook), Some(episode)) = (&self.hooks.on_episode, &episode) {
            hook(EpisodeEvent::Recovered { episode, lasted });
        }
    }
}

impl Inner {
    /// The interned profiles of `users`.
    fn intern(&mut self, users: &[User]) -> Vec<u32> {
        let mut ids: Vec<u32> = users
            .iter()
            .map(|u| {
                let next = self.profiles.len() as u32;
                *self.profiles.entry(u.profile.clone()).or_insert(next)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(profile: &str) -> Arc<ArcSwap<Vec<User>>> {
        Arc::new(ArcSwap::from_pointee(vec![User {
            profile: profile.into(),
            endpoint: "e".into(),
            monitor: None,
        }]))
    }

    fn to(to: Status, from: Status) -> Option<Transition> {
        Some(Transition { from, to })
    }

    /// Six targets in two profiles, Online, tolerating no failure: the
    /// first failures publish Degraded, then the fifth freezes and puts
    /// them back; a thaw lets decisions through again.
    #[test]
    fn an_episode_freezes_puts_back_and_thaws() {
        let public = Arc::new(Impairment::default());
        let g = Guard::new(public.clone(), Hooks::default());
        g.set_window(Duration::from_millis(200));
        let cells: Vec<Arc<HealthCell>> = (0..6).map(|_| Arc::new(HealthCell::new())).collect();
        for (i, c) in cells.iter().enumerate() {
            g.watch(i as u64, c.clone(), user(["a", "b"][i % 2]));
            let t = to(Status::Online, Status::CheckingEndpoint);
            assert_eq!(g.decide(i as u64, true, t), t);
        }
        assert!(cells.iter().all(|c| c.get() == Status::Online));
        for i in 0..4 {
            let t = to(Status::Degraded, Status::Online);
            assert_eq!(g.decide(i, false, t), t, "published before the freeze");
        }
        assert_eq!(cells[0].get(), Status::Degraded);
        // The fifth of six (0.83) freezes; its own transition is held.
        assert_eq!(
            g.decide(4, false, to(Status::Degraded, Status::Online)),
            None
        );
        assert!(public.is_impaired());
        assert_eq!(public.episodes(), 1);
        assert!(
            cells.iter().all(|c| c.get() == Status::Online),
            "every status as before"
        );
        let d = cells[0].details();
        assert_eq!(d.transitions.back().unwrap().3, REVERTED);
        assert_eq!(cells[0].recovered_ms(), 0, "going back is no recovery");
        // Frozen: nothing is published.
        assert_eq!(
            g.decide(5, false, to(Status::Degraded, Status::Online)),
            None
        );
        assert_eq!(
            g.decide(0, true, to(Status::Online, Status::Degraded)),
            None
        );
        let e = public.current().unwrap();
        assert_eq!((e.failed, e.population), (5, 6));
        // Back: after a window, with under half the share failing, thawed.
        std::thread::sleep(Duration::from_millis(250));
        let before = g.thaws();
        for i in 1..5 {
            let _ = g.decide(i, true, None);
        }
        assert!(!public.is_impaired(), "{:?}", public.view());
        assert_eq!(g.thaws(), before + 1);
        assert!(public.view().last.is_some());
        // Decisions go through again.
        let t = to(Status::Degraded, Status::Online);
        assert_eq!(g.decide(5, false, t), t);
        assert_eq!(cells[5].get(), Status::Degraded);
    }

    #[test]
    fn canaries_show_their_last_probe() {
        let public = Arc::new(Impairment::default());
        let g = Guard::new(public.clone(), Hooks::default());
        g.configure(Settings::default(), &["tcp://192.0.2.53:53".to_string()]);
        let o = Outcome {
            local_fault: None,
            at: SystemTime::now(),
            latency: Duration::from_millis(3),
            http_status: None,
            failure: None,
            cert_not_after: None,
            load: None,
        };
        g.canary(0, &o);
        let v = public.view();
        assert_eq!(v.canaries[0].up, Some(true));
        assert_eq!(v.canaries[0].last, "connected in 3 ms");
    }
}
