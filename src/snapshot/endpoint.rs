//! Endpoints as compiled, and the runtime state that outlives a reload.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{Family, ProfileId};
use crate::clock::now_millis as now_ms;
use crate::health::HealthCell;
use crate::proto::name::DomainName;
use crate::proto::rr::WireRr;

/// An endpoint of a profile.
#[derive(Debug)]
pub struct Endpoint {
    /// Its name within the profile.
    pub name: Box<str>,
    /// The profile it belongs to.
    pub profile: ProfileId,
    /// What is answered.
    pub target: Target,
    /// Priority routing: lower wins.
    pub priority: u16,
    /// Weighted routing: relative share.
    pub weight: u32,
    /// Where its status comes from.
    pub health: Health,
    /// Named monitors (`[[monitors]]`): what its health cell combines, for
    /// the control plane (the answer path reads the cell only).
    pub monitors: Option<Arc<crate::health::combine::Monitors>>,
    /// State that outlives a reload: answer counter, runtime override.
    pub runtime: Arc<EndpointRuntime>,
    /// `failback = "manual"` (monitored endpoints): how long a recovery
    /// from Degraded is held, in seconds (0: until resumed).
    pub hold: Option<u32>,
    /// The answer record (A, AAAA or CNAME), with the profile TTL.
    pub rr: WireRr,
    /// Real user measurements: the small object browsers fetch to time
    /// this endpoint (`rum_url`).
    pub rum_url: Option<Box<str>>,
    /// Its identity in the latency table: a hash of `PROFILE/ENDPOINT`,
    /// the same on every node and across reloads, computed here so the
    /// answer path never hashes a name.
    pub latency_id: u32,
}

impl Endpoint {
    /// The load its probes last reported, in thousandths; with named
    /// monitors, the highest any reports. What shedding and the status
    /// document read.
    pub fn load(&self) -> Option<u32> {
        match (&self.monitors, &self.health) {
            (Some(m), _) => m.inputs.iter().filter_map(|i| i.cell.load()).max(),
            (None, Health::Monitored(cell)) => cell.load(),
            _ => None,
        }
    }

    /// HTTPS: the certificate its probe last saw; with named monitors, the
    /// one of them that expires first.
    pub fn certificate(&self) -> Option<crate::health::cert::Certificate> {
        match (&self.monitors, &self.health) {
            (Some(m), _) => m
                .inputs
                .iter()
                .filter_map(|i| i.cell.certificate())
                .min_by_key(|c| c.not_after),
            (None, Health::Monitored(cell)) => cell.certificate(),
            _ => None,
        }
    }
}

/// What a runtime override record asks of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideState {
    /// No record.
    None,
    /// Out of answers (disable or drain), until then if timed (ms since
    /// the epoch).
    Off {
        /// `--for`: when it ends.
        until_ms: Option<u64>,
        /// A drain.
        drain: bool,
        /// When it was made (ms since the epoch).
        at_ms: u64,
        /// A drain that ramps (`drain --over`): from and to when (ms since
        /// the epoch) it sheds a rising share; out of answers from then on.
        ramp: Option<(u64, u64)>,
    },
    /// Sheds by hand (`endpoint shed --percent`): this many thousandths of
    /// new traffic, until then if timed (ms since the epoch).
    Shed {
        /// The share, in thousandths.
        permille: u32,
        /// `--for`: when it ends.
        until_ms: Option<u64>,
    },
    /// Enabled (or resumed) at this time (ms since the epoch).
    On {
        /// When.
        at_ms: u64,
    },
}

/// Per-endpoint state kept across reloads (matched by profile and endpoint
/// name): written by the answer path (counter, last answer) and the admin
/// API (override), read by metrics and routing.
#[derive(Debug)]
pub struct EndpointRuntime {
    /// Times this endpoint was in an answer.
    pub answers: AtomicU64,
    /// Out of answers by a runtime override until this time (Unix
    /// seconds): 0 when not, [`u64::MAX`] until enabled again.
    off_until: AtomicU64,
    /// The override is a drain.
    draining: std::sync::atomic::AtomicBool,
    /// The latest `enable`/`resume` (ms since the epoch): a hold
    /// (`failback = "manual"`) that began before it is released.
    released_ms: AtomicU64,
    /// When a reload gave it `failback = "manual"` (ms since the epoch; 0:
    /// since it appeared): recoveries before then are not held.
    pub(crate) hold_from: AtomicU64,
    /// When this endpoint was last in an answer (Unix seconds; 0: never
    /// since it appeared or the state file was written).
    last_served: AtomicU64,
    /// When the last answer carrying it leaves resolver caches: the
    /// latest answer time plus its TTL (Unix seconds).
    served_until: AtomicU64,
    /// When the endpoint appeared or its override last changed (ms since
    /// the epoch): "since" for endpoints without probe history.
    changed_ms: AtomicU64,
    /// When the endpoint appeared (ms since the epoch).
    born_ms: u64,
    /// Thousandths of new traffic shed away from it by its load (0:
    /// none): clients whose network hashes into the share get another
    /// endpoint when one is answerable.
    pub(super) shed: std::sync::atomic::AtomicU32,
    /// Why it sheds: the load reported and the threshold it passed, in
    /// thousandths (`u32::MAX`: no load).
    pub(super) shed_load: AtomicU64,
    /// A shed by hand or a drain ramp is set: the answer path reads the
    /// three below only then.
    pub(super) manual: std::sync::atomic::AtomicBool,
    /// A shed by hand: its thousandths in the low 16 bits, when it ends
    /// (ms since the epoch, 0: until undone) above them; 0 when none.
    pub(super) hand: AtomicU64,
    /// A drain ramp: when it began and when it ends (ms since the epoch;
    /// 0: none). Out of answers from its end.
    pub(super) ramp_from: AtomicU64,
    /// See `ramp_from`.
    pub(super) ramp_to: AtomicU64,
}

impl Default for EndpointRuntime {
    fn default() -> Self {
        let now = now_ms();
        EndpointRuntime {
            answers: Default::default(),
            off_until: Default::default(),
            draining: Default::default(),
            released_ms: Default::default(),
            hold_from: Default::default(),
            last_served: Default::default(),
            served_until: Default::default(),
            changed_ms: AtomicU64::new(now),
            born_ms: now,
            shed: Default::default(),
            shed_load: AtomicU64::new(u64::MAX),
            manual: Default::default(),
            hand: Default::default(),
            ramp_from: Default::default(),
            ramp_to: Default::default(),
        }
    }
}

impl EndpointRuntime {
    /// True while a runtime override keeps it out of answers (a timed one
    /// ends by itself, a ramping drain begins at the ramp's end: only
    /// those read the clock).
    #[inline]
    pub fn is_disabled(&self) -> bool {
        match self.off_until.load(Relaxed) {
            0 => false,
            u64::MAX => true,
            until => self.off_at(until, crate::clock::now_millis_coarse()),
        }
    }

    /// Timed or ramping: out of answers at `now_ms` (a drain ramp ends
    /// before it is).
    fn off_at(&self, until_secs: u64, now_ms: u64) -> bool {
        now_ms / 1000 < until_secs && now_ms >= self.ramp_to.load(Relaxed)
    }

    /// Records a change of its status made at runtime that the override
    /// state does not show (a resume releasing a hold), for `ttl_degraded`.
    pub fn touch(&self) {
        self.changed_ms.store(now_ms(), Relaxed);
    }

    /// The override in force, as (out until, draining, shed by hand,
    /// ramp end): to tell a change from a repeat.
    pub fn override_now(&self) -> (u64, bool, u64, u64) {
        (
            self.off_until.load(Relaxed),
            self.draining.load(Relaxed),
            self.hand.load(Relaxed),
            self.ramp_to.load(Relaxed),
        )
    }

    /// True while a drain keeps it out of answers.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed) && self.is_disabled()
    }

    /// Makes the runtime state follow the winning override record
    /// (`crate::overrides::state` of it).
    pub fn apply(&self, state: OverrideState) {
        // A ramp leaves answers at its end: "until" is then never
        // `u64::MAX`, so that `is_disabled` reads the clock.
        let (until, drain, at, ramp) = match state {
            OverrideState::Off {
                until_ms,
                drain,
                at_ms,
                ramp,
            } => (
                until_ms.map_or(
                    if ramp.is_some() {
                        u64::MAX - 1
                    } else {
                        u64::MAX
                    },
                    |ms| ms.div_ceil(1000).clamp(1, u64::MAX - 1),
                ),
                drain,
                Some(at_ms),
                ramp.unwrap_or((0, 0)),
            ),
            OverrideState::None | OverrideState::On { .. } | OverrideState::Shed { .. } => {
                (0, false, None, (0, 0))
            }
        };
        let hand = match state {
            OverrideState::Shed { permille, until_ms } => {
                let until = until_ms.map_or(0, |ms| ms.clamp(1, u64::MAX >> 16));
                (until << 16) | u64::from(permille.clamp(1, 1000))
            }
            _ => 0,
        };
        if let OverrideState::On { at_ms } = state {
            self.released_ms.fetch_max(at_ms, Relaxed);
        }
        self.hand.store(hand, Relaxed);
        self.ramp_from.store(ramp.0, Relaxed);
        self.ramp_to
            .store(if ramp.0 == 0 { 0 } else { ramp.1 }, Relaxed);
        self.manual.store(hand != 0 || ramp.0 != 0, Relaxed);
        self.draining.store(drain, Relaxed);
        if self.off_until.swap(until, Relaxed) != until {
            // When the override was made (also after a restart), never
            // later than now (a clock ahead elsewhere).
            let now = now_ms();
            self.changed_ms
                .store(at.map_or(now, |a| a.min(now)), Relaxed);
        }
    }

    /// When its runtime override last changed or ran out (Unix seconds),
    /// 0 if it has not since the endpoint appeared.
    #[inline]
    pub fn changed_secs(&self) -> u32 {
        let ms = self.changed_ms.load(Relaxed);
        let changed = if ms == self.born_ms {
            0
        } else {
            (ms / 1000) as u32
        };
        match self.off_until.load(Relaxed) {
            0 | u64::MAX => changed,
            until => {
                let now = crate::clock::unix_secs_now();
                // A drain ramp's end takes it out of answers.
                let out = self.ramp_to.load(Relaxed).div_ceil(1000);
                let out = out.min(u64::from(u32::MAX)) as u32;
                let changed = if out != 0 && out <= now {
                    changed.max(out)
                } else {
                    changed
                };
                let until = until.min(u64::from(u32::MAX)) as u32;
                if until <= now {
                    changed.max(until)
                } else {
                    changed
                }
            }
        }
    }

    /// When the endpoint appeared or its runtime override last changed.
    pub fn changed_at(&self) -> std::time::SystemTime {
        crate::clock::from_unix_millis(self.changed_ms.load(Relaxed))
    }

    /// Holds (`failback = "manual"`) only recoveries from `ms` on: a
    /// reload turned manual failback on then.
    pub fn hold_from(&self, ms: u64) {
        self.hold_from.store(ms, Relaxed);
    }

    /// The latest `enable` or `resume` (ms since the epoch; 0: none).
    #[inline]
    pub fn released_ms(&self) -> u64 {
        self.released_ms.load(Relaxed)
    }

    /// Counts one answer carrying it, sent at `now` (Unix seconds) with
    /// `ttl`: the answer path's only writes, and the second only once a
    /// second.
    #[inline]
    pub fn answered(&self, now: u32, ttl: u32) {
        self.add_answers(1, now, served_until(now, ttl));
    }

    /// Counts `count` answers carrying it, the latest sent at `now`, the
    /// last of them leaving caches at `until` (what [`Tally`] adds up).
    #[inline]
    fn add_answers(&self, count: u64, now: u32, until: u64) {
        self.answers.fetch_add(count, Relaxed);
        let now = u64::from(now);
        if self.last_served.load(Relaxed) != now {
            self.last_served.store(now, Relaxed);
        }
        if self.served_until.load(Relaxed) < until {
            self.served_until.fetch_max(until, Relaxed);
        }
    }

    /// When it was last in an answer and when that answer leaves resolver
    /// caches (Unix seconds; 0: not since it appeared).
    pub fn served(&self) -> (u64, u64) {
        (
            self.last_served.load(Relaxed),
            self.served_until.load(Relaxed),
        )
    }

    /// Restores what the state file kept of its last answer.
    pub fn restore_served(&self, last: u64, until: u64) {
        self.last_served.fetch_max(last, Relaxed);
        self.served_until.fetch_max(until, Relaxed);
    }
}

/// When an answer sent at `now` (a whole second) with `ttl` leaves resolver
/// caches: it may leave up to a second after `now + ttl`.
#[inline]
fn served_until(now: u32, ttl: u32) -> u64 {
    u64::from(now) + u64::from(ttl) + 1
}

/// Endpoints a [`Tally`] keeps runs for at once: a batch's answers mostly
/// carry a few (a priority answer one, a weighted profile's two, a
/// multivalue answer's handful).
const TALLIED: usize = 4;

/// One receive loop's answers per endpoint not yet added to the endpoints'
/// shared counters ([`EndpointRuntime::answered`]): the loop counts each
/// answer here (no shared write) and [`Tally::settle`]s once per batch,
/// before the batch's answers are sent, so every count, the second of the
/// last answer and when it leaves caches are in the endpoint's runtime
/// before any of those answers is out. One atomic add per endpoint per
/// batch instead of one per answer: the answer path's writes were the
/// only ones to the endpoint's runtime, which every worker reads
/// (override, shed and drain state) for every answer, so under load the
/// other workers' reads no longer miss each time one worker answers.
/// It keeps the endpoints it counted for between batches (a reference
/// each, replaced when others come), so a loop answering the same few
/// endpoints touches no reference count either. Dropping it settles.
#[derive(Debug, Default)]
pub struct Tally {
    runs: [Option<Run>; TALLIED],
}

/// Answers carrying one endpoint since the last settle.
#[derive(Debug)]
struct Run {
    runtime: Arc<EndpointRuntime>,
    /// Answers not yet added (0: an idle slot, free for another endpoint).
    count: u64,
    /// The latest second one was sent in.
    now: u32,
    /// When the last of them leaves caches.
    until: u64,
}

impl Tally {
    /// Counts one answer carrying the endpoint of `runtime`, sent at
    /// `now` with `ttl` (what [`EndpointRuntime::answered`] takes).
    #[inline]
    pub fn answered(&mut self, runtime: &Arc<EndpointRuntime>, now: u32, ttl: u32) {
        let until = served_until(now, ttl);
        // Where a new endpoint goes: an empty slot, else one whose
        // endpoint has nothing waiting (so endpoints answered in turn keep
        // their slots and no reference count moves).
        let (mut empty, mut idle) = (None, None);
        for (i, slot) in self.runs.iter_mut().enumerate() {
            match slot {
                Some(run) if Arc::ptr_eq(&run.runtime, runtime) => {
                    if run.count == 0 {
                        (run.now, run.until) = (now, until);
                    } else {
                        run.now = run.now.max(now);
                        run.until = run.until.max(until);
                    }
                    run.count += 1;
                    return;
                }
                Some(run) if run.count > 0 => {}
                Some(_) => {
                    idle.get_or_insert(i);
                }
                None => {
                    empty.get_or_insert(i);
                }
            }
        }
        // A fifth endpoint in one batch: the first one's answers go in now.
        let i = empty.or(idle).unwrap_or_else(|| {
            Self::add(&mut self.runs[0]);
            0
        });
        self.runs[i] = Some(Run {
            runtime: runtime.clone(),
            count: 1,
            now,
            until,
        });
    }

    /// Adds every endpoint's answers to its counters.
    #[inline]
    pub fn settle(&mut self) {
        for slot in &mut self.runs {
            Self::add(slot);
        }
    }

    /// True when no answer waits to be added.
    pub fn is_empty(&self) -> bool {
        self.runs.iter().flatten().all(|run| run.count == 0)
    }

    #[inline]
    fn add(slot: &mut Option<Run>) {
        if let Some(run) = slot
            && run.count > 0
        {
            run.runtime.add_answers(run.count, run.now, run.until);
            run.count = 0;
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.settle();
    }
}

/// What is answered for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An A record.
    V4(Ipv4Addr),
    /// An AAAA record.
    V6(Ipv6Addr),
    /// A CNAME.
    Host(DomainName),
    /// The answer of another profile (a nested endpoint).
    Nested(ProfileId),
}

impl Target {
    /// True when the target is an address usable for `family`.
    #[inline]
    pub fn matches(&self, family: Family) -> bool {
        matches!(
            (self, family),
            (Target::V4(_), Family::V4 | Family::Any)
                | (Target::V6(_), Family::V6 | Family::Any)
                | (Target::Host(_), Family::Any)
        )
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::V4(ip) => ip.fmt(f),
            Target::V6(ip) => ip.fmt(f),
            Target::Host(name) => name.fmt(f),
            Target::Nested(p) => write!(f, "profile #{p}"),
        }
    }
}

/// Where an endpoint's status comes from.
#[derive(Debug, Clone)]
pub enum Health {
    /// `enabled = false`.
    Disabled,
    /// `always_serve = true`, or the profile has no `[monitor]`.
    Unmonitored,
    /// Probed; the prober writes the cell.
    Monitored(Arc<HealthCell>),
    /// Rolled up from a child profile.
    Nested {
        /// The child profile.
        child: ProfileId,
        /// `min_child_endpoints`.
        min: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(r: &EndpointRuntime) -> (u64, (u64, u64)) {
        (r.answers.load(Relaxed), r.served())
    }

    #[test]
    fn a_tally_adds_up_to_what_answering_one_by_one_does() {
        // Six endpoints (more than a tally keeps runs for), answered in a
        // mixed order over two seconds with TTLs that change.
        let direct: Vec<Arc<EndpointRuntime>> = (0..6).map(|_| Arc::default()).collect();
        let tallied: Vec<Arc<EndpointRuntime>> = (0..6).map(|_| Arc::default()).collect();
        let mut tally = Tally::default();
        let answers = (0..200u32).map(|i| ((i * 7 % 11) as usize % 6, 1000 + i / 100, 30 - i % 5));
        for (round, (e, now, ttl)) in answers.enumerate() {
            direct[e].answered(now, ttl);
            tally.answered(&tallied[e], now, ttl);
            if round % 16 == 15 {
                tally.settle();
                assert!(tally.is_empty());
            }
        }
        // Not yet settled: the shared counters lag...
        assert!(!tally.is_empty());
        assert_ne!(
            direct.iter().map(|r| state(r)).collect::<Vec<_>>(),
            tallied.iter().map(|r| state(r)).collect::<Vec<_>>()
        );
        // ...and agree once it is.
        tally.settle();
        for (d, t) in direct.iter().zip(&tallied) {
            assert_eq!(state(d), state(t));
        }
        assert_eq!(tallied.iter().map(|r| state(r).0).sum::<u64>(), 200);
    }

    #[test]
    fn dropping_a_tally_settles_it() {
        let r = Arc::<EndpointRuntime>::default();
        {
            let mut tally = Tally::default();
            tally.answered(&r, 500, 60);
            tally.answered(&r, 501, 30);
            assert_eq!(state(&r), (0, (0, 0)));
        }
        assert_eq!(state(&r), (2, (501, 561)));
        // The tally let go of the endpoint.
        assert_eq!(Arc::strong_count(&r), 1);
    }

    #[test]
    fn a_tally_keeps_its_endpoints_between_batches() {
        let a = Arc::<EndpointRuntime>::default();
        let b = Arc::<EndpointRuntime>::default();
        let mut tally = Tally::default();
        tally.answered(&a, 500, 60);
        tally.settle();
        assert_eq!(Arc::strong_count(&a), 2);
        // The next batch: nothing new to hold; a later second and a shorter
        // TTL start the run afresh.
        tally.answered(&a, 502, 1);
        tally.answered(&b, 502, 1);
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (2, 2));
        // Batches of one answer each, in turn: each keeps its slot (a
        // new endpoint takes an empty slot before an idle one).
        drop(tally);
        let mut tally = Tally::default();
        tally.answered(&a, 502, 1);
        for _ in 0..3 {
            tally.settle();
            tally.answered(&b, 502, 1);
            tally.settle();
            tally.answered(&a, 502, 1);
        }
        assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (2, 2));
        assert!(
            tally.runs[0]
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(&r.runtime, &a))
        );
        tally.settle();
        assert_eq!(state(&a), (6, (502, 561)));
        assert_eq!(state(&b), (4, (502, 504)));
    }
}
