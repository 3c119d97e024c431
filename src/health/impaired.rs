//! Static stability: is the prober itself the one failing? When this host
//! loses its network, its route out or its resolver, every probe fails at
//! once, and without this every profile would fail over (or fail open)
//! together on evidence that says nothing about the endpoints. Pure: the
//! prober feeds every probe verdict and canary result in, with the time;
//! this says when the prober is impaired (every status then freezes) and
//! when it has recovered (statuses thaw and decisions start afresh).
//!
//! Two signals, either one enough:
//!
//! - **Share.** Of the probe targets that were healthy, at least
//!   `impaired_share` turn failing within one window (the longest probe
//!   interval plus its timeout: the time it takes every target to be
//!   probed once), across at least two profiles, out of at least
//!   `impaired_min_targets`. A whole-host failure fails every target it can
//!   reach within one interval, so it passes any share up to 1; 0.8 leaves
//!   room for a fifth of the targets being unaffected (on this host's own
//!   network, or named by address while only the resolver failed). Targets
//!   already failing before the window are not counted either way: a dead
//!   endpoint says nothing about this host. Below the minimum population a
//!   coincidence of two real outages is too likely to be called the host's
//!   fault, and one profile's endpoints failing together is what that
//!   profile's own failover is for: small or single-profile installations
//!   need canaries.
//! - **Canaries.** Targets that must always be reachable (a resolver, a
//!   well-known site), probed like monitors but belonging to no endpoint.
//!   Every canary down ([`CANARY_FAILURES`] failed probes in a row each)
//!   means impaired, whatever the population.
//!
//! Hysteresis: an episode lasts at least one window, and ends only when
//! some canary answers again (if there are canaries) and fewer than half
//! the share of the targets healthy before it are still failing. A local
//! fault (no descriptor, no buffers) is never fed in: it is no verdict.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::Status;

/// Default `[prober] impaired_share`.
pub const DEFAULT_SHARE: f64 = 0.8;

/// Default `[prober] impaired_min_targets`.
pub const DEFAULT_MIN_TARGETS: usize = 5;

/// Consecutive failed probes that make a canary down: one lost packet is
/// no outage.
pub const CANARY_FAILURES: u32 = 2;

/// A canary (`[prober] canaries`): a target that must always be
/// reachable. Reachable is what counts, not healthy: an HTTP(S) canary
/// passes with any complete response, whatever its status code (a 404 from
/// a well-known site still proves the route, the resolver and TLS work).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanarySpec {
    /// As configured (`tcp://192.0.2.53:53`, `https://www.example.com/`):
    /// its name in the log, the API and the page.
    pub name: String,
    /// tcp, http or https.
    pub protocol: super::spec::Protocol,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Request path (http and https).
    pub path: String,
    /// Time between probes (`[prober] canary_interval`).
    pub interval: Duration,
    /// Probe deadline (`[prober] canary_timeout`).
    pub timeout: Duration,
    /// `[prober] source_v4`: probes to IPv4 leave from it.
    pub source_v4: Option<std::net::Ipv4Addr>,
    /// `[prober] source_v6`: probes to IPv6 leave from it.
    pub source_v6: Option<std::net::Ipv6Addr>,
}

/// How detection is set (`[prober]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `impaired_share`; `None` turns share detection off (canaries still
    /// apply).
    pub share: Option<f64>,
    /// `impaired_min_targets`: fewer targets than this, and only canaries
    /// detect.
    pub min_targets: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            share: Some(DEFAULT_SHARE),
            min_targets: DEFAULT_MIN_TARGETS,
        }
    }
}

/// An episode of impairment, as the API, the page, `explain`, the log
/// and notifications describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// When it was detected (statuses are frozen since).
    pub since: SystemTime,
    /// Probe targets that failed together (at detection).
    pub failed: usize,
    /// Of how many that were healthy before.
    pub population: usize,
    /// The share of them did it (else the canaries alone).
    pub by_share: bool,
    /// Every canary was down: how many there are (0: not the canaries).
    pub canaries_down: usize,
    /// Of `population`, how many still fail (updated as probes come in).
    pub failing: usize,
}

impl Episode {
    /// Why, in words: "prober impaired, 47 of 50 probe targets failed
    /// together; all 2 canaries unreachable".
    pub fn describe(&self) -> String {
        let mut s = String::from("prober impaired");
        if self.population > 0 && (self.by_share || self.failed > 0) {
            s.push_str(&format!(
                ", {} of {} probe targets failed together",
                self.failed, self.population
            ));
        }
        match self.canaries_down {
            0 => {}
            1 => s.push_str("; the canary is unreachable"),
            n => s.push_str(&format!("; all {n} canaries unreachable")),
        }
        s
    }

    /// The notice shown while it lasts: "statuses frozen since
    /// 2026-12-07T12:03:04Z: prober impaired, 47 of 50 probe targets
    /// failed together".
    pub fn notice(&self) -> String {
        format!(
            "statuses frozen since {}: {}",
            crate::clock::rfc3339_seconds(self.since),
            self.describe()
        )
    }
}

/// What one result changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The prober is impaired from now: every status freezes. The targets
    /// that turned failing in the window, each with its status from before
    /// (to go back to, if a transition was already published).
    Entered(Vec<(u64, Status)>),
    /// Recovered: statuses thaw, and each target decides afresh.
    Thawed,
}

/// One probe target, as detection sees it.
#[derive(Debug)]
struct Slot {
    /// The profiles it serves (interned by the caller).
    profiles: Vec<u32>,
    /// Its latest verdict (`None`: none yet).
    latest: Option<bool>,
    /// When its current run of failures began.
    failing_since: Option<Instant>,
    /// Its status when that run began.
    before: Status,
}

/// One canary's recent results.
#[derive(Debug, Default, Clone, Copy)]
struct Canary {
    failures: u32,
    latest: Option<bool>,
}

/// An episode in progress.
#[derive(Debug)]
struct Frozen {
    episode: Episode,
    /// The targets healthy before it (or turned failing in it).
    population: Vec<u64>,
    at: Instant,
}

/// The detector: one per prober.
#[derive(Debug)]
pub struct Detector {
    settings: Settings,
    window: Duration,
    slots: HashMap<u64, Slot>,
    canaries: Vec<Canary>,
    frozen: Option<Frozen>,
    /// Slots whose latest verdict is a success, and a failure.
    ok: usize,
    failing: usize,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(Settings::default())
    }
}

impl Detector {
    /// A detector with nothing registered.
    pub fn new(settings: Settings) -> Detector {
        Detector {
            settings,
            window: Duration::from_secs(1),
            slots: HashMap::new(),
            canaries: Vec::new(),
            frozen: None,
            ok: 0,
            failing: 0,
        }
    }

    /// New settings (a reload); `canaries` is how many there are now
    /// (their results so far are forgotten when the count changes).
    pub fn configure(&mut self, settings: Settings, canaries: usize) {
        self.settings = settings;
        if self.canaries.len() != canaries {
            self.canaries = vec![Canary::default(); canaries];
        }
    }

    /// The window failures must fall in to count as together: the longest
    /// probe interval plus its timeout.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window.max(Duration::from_millis(1));
    }

    /// Starts following target `id`, which serves `profiles`.
    pub fn register(&mut self, id: u64, profiles: Vec<u32>) {
        self.remove(id);
        self.slots.insert(
            id,
            Slot {
                profiles,
                latest: None,
                failing_since: None,
                before: Status::CheckingEndpoint,
            },
        );
    }

    /// Target `id` now serves `profiles` (a reload changed who shares it).
    pub fn set_profiles(&mut self, id: u64, profiles: Vec<u32>) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.profiles = profiles;
        }
    }

    /// Stops following target `id`.
    pub fn remove(&mut self, id: u64) {
        if let Some(s) = self.slots.remove(&id) {
            self.count(s.latest, -1);
        }
    }

    fn count(&mut self, latest: Option<bool>, by: isize) {
        let n = match latest {
            Some(true) => &mut self.ok,
            Some(false) => &mut self.failing,
            None => return,
        };
        *n = n.saturating_add_signed(by);
    }

    /// True while impaired.
    pub fn impaired(&self) -> bool {
        self.frozen.is_some()
    }

    /// The episode in progress.
    pub fn episode(&self) -> Option<&Episode> {
        self.frozen.as_ref().map(|f| &f.episode)
    }

    /// Feeds target `id`'s verdict (`healthy`) at `now`; `own` is its
    /// status before this probe. `wall` stamps an episode it starts.
    pub fn record(
        &mut self,
        id: u64,
        healthy: bool,
        own: Status,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Change> {
        let slot = self.slots.get_mut(&id)?;
        let was = slot.latest;
        if healthy {
            slot.failing_since = None;
        } else if was != Some(false) {
            slot.failing_since = Some(now);
            slot.before = own;
        }
        slot.latest = Some(healthy);
        if was != Some(healthy) {
            self.count(was, -1);
            self.count(Some(healthy), 1);
        }
        self.evaluate(now, wall)
    }

    /// Feeds canary `index`'s result.
    pub fn canary(
        &mut self,
        index: usize,
        healthy: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Change> {
        let c = self.canaries.get_mut(index)?;
        c.failures = if healthy { 0 } else { c.failures + 1 };
        c.latest = Some(healthy);
        self.evaluate(now, wall)
    }

    /// Every canary is down (false without canaries).
    fn canaries_down(&self) -> bool {
        !self.canaries.is_empty() && self.canaries.iter().all(|c| c.failures >= CANARY_FAILURES)
    }

    fn evaluate(&mut self, now: Instant, wall: SystemTime) -> Option<Change> {
        if self.frozen.is_some() {
            return self.maybe_thaw(now);
        }
        let by_canaries = self.canaries_down();
        let share = self.share_hit(now);
        if !by_canaries && share.is_none() {
            return None;
        }
        let turned = self.turned(now);
        let population: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.latest == Some(true))
            .map(|(id, _)| *id)
            .chain(turned.iter().map(|(id, _)| *id))
            .collect();
        let episode = Episode {
            since: wall,
            failed: turned.len(),
            population: population.len(),
            by_share: share.is_some(),
            canaries_down: if by_canaries { self.canaries.len() } else { 0 },
            failing: turned.len(),
        };
        self.frozen = Some(Frozen {
            episode,
            population,
            at: now,
        });
        Some(Change::Entered(turned))
    }

    /// The targets whose failures began within the window, with their
    /// status from before.
    fn turned(&self, now: Instant) -> Vec<(u64, Status)> {
        let from = now.checked_sub(self.window);
        self.slots
            .iter()
            .filter(|(_, s)| s.latest == Some(false))
            .filter(|(_, s)| {
                s.failing_since
                    .is_some_and(|t| from.is_none_or(|from| t >= from))
            })
            .map(|(id, s)| (*id, s.before))
            .collect()
    }

    /// Whether the share rule holds now: at least the share of the healthy
    /// targets turned failing in the window, across two profiles, out of
    /// at least the minimum population.
    fn share_hit(&self, now: Instant) -> Option<(usize, usize)> {
        let share = self.settings.share?;
        // Cheap bound first: the targets failing at all (turned or not)
        // are at least as many as those turned in the window.
        let known = self.ok + self.failing;
        if known < self.settings.min_targets || below(self.failing, share, known) {
            return None;
        }
        let turned = self.turned(now);
        let population = self.ok + turned.len();
        if population < self.settings.min_targets.max(1) || below(turned.len(), share, population) {
            return None;
        }
        let mut profiles = turned
            .iter()
            .filter_map(|(id, _)| self.slots.get(id))
            .flat_map(|s| s.profiles.iter().copied());
        let first = profiles.next()?;
        profiles
            .any(|p| p != first)
            .then_some((turned.len(), population))
    }

    /// Ends the episode when it has lasted a window, some canary answers
    /// (if there are canaries) and under half the share of the targets
    /// healthy before it still fail. Every target still failing then
    /// starts a new run of failures now, from the status it was frozen at.
    fn maybe_thaw(&mut self, now: Instant) -> Option<Change> {
        let frozen = self.frozen.as_mut()?;
        let (mut failing, mut known) = (0, 0);
        for s in frozen.population.iter().filter_map(|id| self.slots.get(id)) {
            known += 1;
            failing += usize::from(s.latest == Some(false));
        }
        frozen.episode.failing = failing;
        let canaries_ok =
            self.canaries.is_empty() || self.canaries.iter().any(|c| c.latest == Some(true));
        let threshold = self.settings.share.unwrap_or(DEFAULT_SHARE) / 2.0;
        let share_ok = known == 0 || below(failing, threshold, known);
        if !(canaries_ok && share_ok && now.duration_since(frozen.at) >= self.window) {
            return None;
        }
        self.frozen = None;
        for s in self.slots.values_mut() {
            if s.latest == Some(false) {
                s.failing_since = Some(now);
            }
        }
        Some(Change::Thawed)
    }
}

/// `part` is less than `share` of `whole` (exactly the share is not
/// below it, whatever the rounding of `share * whole`).
fn below(part: usize, share: f64, whole: usize) -> bool {
    (part as f64) < share * whole as f64 - 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{CheckingEndpoint as C, Degraded as D, Online as O};

    const W: Duration = Duration::from_secs(1);

    /// `n` targets, target `i` in profile `i % profiles`, every one
    /// healthy once at `t0`.
    fn healthy(n: u64, profiles: u32, settings: Settings) -> (Detector, Instant) {
        let mut d = Detector::new(settings);
        d.set_window(W);
        let t0 = Instant::now();
        for i in 0..n {
            d.register(i, vec![(i as u32) % profiles]);
            assert_eq!(d.record(i, true, C, t0, SystemTime::now()), None);
        }
        (d, t0)
    }

    fn fail(d: &mut Detector, id: u64, at: Instant) -> Option<Change> {
        d.record(id, false, O, at, SystemTime::now())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_whole_host_failure_is_detected_within_one_window() {
        let (mut d, t0) = healthy(10, 3, Settings::default());
        // Failures spread over the window: the 8th of 10 passes 0.8.
        for i in 0..7 {
            assert_eq!(fail(&mut d, i, t0 + ms(100 * i)), None, "{i}");
        }
        let Some(Change::Entered(turned)) = fail(&mut d, 7, t0 + ms(700)) else {
            panic!("not detected")
        };
        assert_eq!(turned.len(), 8);
        assert!(turned.iter().all(|(_, before)| *before == O));
        let e = d.episode().unwrap();
        assert_eq!((e.failed, e.population, e.by_share), (8, 10, true));
        assert!(
            e.describe()
                .contains("8 of 10 probe targets failed together"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn failures_spread_wider_than_the_window_are_not_together() {
        let (mut d, t0) = healthy(10, 3, Settings::default());
        for i in 0..10 {
            // One a window apart: a cascade, never two together.
            assert_eq!(fail(&mut d, i, t0 + ms(1100 * i)), None, "{i}");
        }
        assert!(!d.impaired());
    }

    #[test]
    fn too_few_targets_or_one_profile_is_not_enough() {
        let (mut d, t0) = healthy(4, 2, Settings::default());
        for i in 0..4 {
            assert_eq!(fail(&mut d, i, t0 + ms(10)), None);
        }
        assert!(!d.impaired(), "4 targets, below the minimum of 5");
        // Ten targets all of one profile: that profile's own outage.
        let (mut d, t0) = healthy(10, 1, Settings::default());
        for i in 0..10 {
            assert_eq!(fail(&mut d, i, t0 + ms(10)), None);
        }
        assert!(!d.impaired());
        // Share detection off.
        let off = Settings {
            share: None,
            ..Settings::default()
        };
        let (mut d, t0) = healthy(10, 3, off);
        for i in 0..10 {
            assert_eq!(fail(&mut d, i, t0 + ms(10)), None);
        }
        assert!(!d.impaired());
    }

    #[test]
    fn targets_already_down_count_neither_way() {
        let (mut d, t0) = healthy(10, 3, Settings::default());
        // Three real outages long before.
        for i in 0..3 {
            assert_eq!(fail(&mut d, i, t0), None);
        }
        let later = t0 + ms(5000);
        // Then the host fails: 6 of the 7 healthy ones (0.86) is enough.
        for i in 3..8 {
            assert_eq!(fail(&mut d, i, later), None, "{i}");
        }
        let Some(Change::Entered(turned)) = fail(&mut d, 8, later) else {
            panic!("not detected")
        };
        let mut ids: Vec<u64> = turned.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [3, 4, 5, 6, 7, 8], "the old outages stay as they were");
        assert_eq!(d.episode().unwrap().population, 7);
    }

    #[test]
    fn the_status_before_the_failures_is_kept_for_going_back() {
        let (mut d, t0) = healthy(6, 2, Settings::default());
        // Target 0 was Degraded before (a real outage that recovered
        // once, not enough to be Online again).
        assert_eq!(d.record(0, false, D, t0 + ms(10), SystemTime::now()), None);
        // Its next failure keeps the status its run began with.
        assert_eq!(d.record(0, false, O, t0 + ms(20), SystemTime::now()), None);
        for i in 1..4 {
            assert_eq!(fail(&mut d, i, t0 + ms(30)), None);
        }
        let Some(Change::Entered(turned)) = fail(&mut d, 4, t0 + ms(40)) else {
            panic!("not detected")
        };
        assert!(turned.contains(&(0, D)), "{turned:?}");
        assert!(turned.contains(&(4, O)), "{turned:?}");
    }

    #[test]
    fn thaw_needs_a_window_and_most_targets_back() {
        let (mut d, t0) = healthy(10, 2, Settings::default());
        let mut at = t0;
        for i in 0..10 {
            at = t0 + ms(10 * i);
            if fail(&mut d, i, at).is_some() {
                break;
            }
        }
        assert!(d.impaired());
        // Everything fails; then comes back one by one.
        for i in 0..10 {
            let _ = fail(&mut d, i, at);
        }
        let ok = |d: &mut Detector, i: u64, t: Instant| d.record(i, true, O, t, SystemTime::now());
        // Back quickly, but the episode lasts a window.
        for i in 0..7 {
            assert_eq!(ok(&mut d, i, at + ms(100)), None, "{i}");
        }
        assert!(d.impaired());
        // A window later, with 2 of 10 still failing (under 0.4), it thaws.
        assert_eq!(ok(&mut d, 7, at + ms(1100)), Some(Change::Thawed));
        assert!(!d.impaired());
        // Those still failing start a new run now: if the host fails
        // again, they are part of it (6 more make 8 of 10).
        for i in 0..5 {
            assert_eq!(fail(&mut d, i, at + ms(1200)), None, "{i}");
        }
        assert!(matches!(
            fail(&mut d, 5, at + ms(1200)),
            Some(Change::Entered(_))
        ));
    }

    #[test]
    fn hysteresis_keeps_it_frozen_while_half_the_share_still_fails() {
        let (mut d, t0) = healthy(10, 2, Settings::default());
        for i in 0..10 {
            let _ = fail(&mut d, i, t0 + ms(10));
        }
        assert!(d.impaired());
        // 4 of 10 back: 6 still failing (0.6 >= 0.4).
        for i in 0..4 {
            assert_eq!(d.record(i, true, O, t0 + ms(2000), SystemTime::now()), None);
        }
        assert!(d.impaired());
        assert_eq!(d.episode().unwrap().failing, 6);
        // Two more: 4 failing, still not under 4.
        for i in 4..6 {
            assert_eq!(d.record(i, true, O, t0 + ms(2000), SystemTime::now()), None);
        }
        assert_eq!(
            d.record(6, true, O, t0 + ms(2000), SystemTime::now()),
            Some(Change::Thawed)
        );
    }

    #[test]
    fn canaries_alone_detect_whatever_the_population() {
        let (mut d, t0) = healthy(2, 1, Settings::default());
        d.configure(Settings::default(), 2);
        let now = SystemTime::now();
        assert_eq!(d.canary(0, false, t0, now), None);
        assert_eq!(d.canary(0, false, t0, now), None);
        assert_eq!(
            d.canary(1, false, t0, now),
            None,
            "one failure is no outage"
        );
        let Some(Change::Entered(turned)) = d.canary(1, false, t0, now) else {
            panic!("not detected")
        };
        assert!(turned.is_empty());
        let e = d.episode().unwrap();
        assert_eq!(e.canaries_down, 2);
        assert_eq!(e.describe(), "prober impaired; all 2 canaries unreachable");
        // A canary back is not enough before a window has passed...
        assert_eq!(d.canary(0, true, t0 + ms(10), now), None);
        // ... and is after.
        assert_eq!(d.canary(0, true, t0 + W, now), Some(Change::Thawed));
    }

    #[test]
    fn one_canary_down_is_not_impaired() {
        let (mut d, t0) = healthy(2, 1, Settings::default());
        d.configure(Settings::default(), 2);
        for _ in 0..5 {
            assert_eq!(d.canary(0, false, t0, SystemTime::now()), None);
        }
        assert!(!d.impaired());
    }

    #[test]
    fn canaries_down_keep_it_frozen_whatever_the_share() {
        let (mut d, t0) = healthy(10, 2, Settings::default());
        d.configure(Settings::default(), 1);
        let now = SystemTime::now();
        let _ = d.canary(0, false, t0, now);
        assert!(matches!(
            d.canary(0, false, t0, now),
            Some(Change::Entered(_))
        ));
        // Every target is fine, but the canary is still down.
        assert_eq!(d.record(0, true, O, t0 + ms(5000), now), None);
        assert!(d.impaired());
        assert_eq!(d.canary(0, true, t0 + ms(5000), now), Some(Change::Thawed));
    }

    #[test]
    fn a_removed_target_no_longer_counts() {
        let (mut d, t0) = healthy(6, 2, Settings::default());
        d.remove(0);
        d.remove(1);
        // 4 left: below the minimum, whatever they do.
        for i in 2..6 {
            assert_eq!(fail(&mut d, i, t0 + ms(10)), None);
        }
        assert!(!d.impaired());
        assert_eq!((d.ok, d.failing), (0, 4));
    }
}
