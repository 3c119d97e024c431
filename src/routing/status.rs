//! An endpoint's effective status as routing answers with it (the hot
//! path: one atomic load per endpoint, no reason; [`super::effective`] adds
//! the reason), a profile's status and the TTL its answers get.

use std::sync::atomic::Ordering::Relaxed;

use crate::health::Status;
use crate::snapshot::{Endpoint, Health, Profile, Snapshot};

/// Why an answer has the TTL it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlReason {
    /// No `ttl_degraded`: always `ttl`.
    Fixed,
    /// Every endpoint Online (or unmonitored), none changed within `ttl`.
    Settled,
    /// This endpoint (index in the profile) is not Online.
    NotOnline(u32),
    /// This endpoint's status changed less than `ttl` seconds ago.
    Changed(u32),
}

impl Profile {
    /// The TTL answers get at `now` (Unix seconds), and why: `ttl_degraded`
    /// while an endpoint is not Online or changed status within the last
    /// `ttl` seconds (so caches that took a failover answer, or the one
    /// before it, ask again sooner), else `ttl`. The answer path and
    /// `explain` both call this. Reads one status per endpoint: only
    /// profiles that set `ttl_degraded` pay for it.
    #[inline]
    pub fn answer_ttl(&self, table: &Snapshot, now: u32) -> (u32, TtlReason) {
        let Some(short) = self.ttl_degraded else {
            return (self.ttl, TtlReason::Fixed);
        };
        let recent = |secs: u32| secs != 0 && now.saturating_sub(secs) < self.ttl;
        for (i, e) in table.endpoints_of(self).iter().enumerate() {
            let i = i as u32;
            if !matches!(table.status(e), Status::Online | Status::Unmonitored) {
                return (short, TtlReason::NotOnline(i));
            }
            let probed = match &e.health {
                Health::Monitored(cell) => cell.changed_secs(),
                _ => 0,
            };
            if recent(probed) || recent(e.runtime.changed_secs()) {
                return (short, TtlReason::Changed(i));
            }
        }
        (self.ttl, TtlReason::Settled)
    }

    /// The worst case from an endpoint failing to the last client leaving
    /// it: detection, then the TTL of answers cached just before.
    pub fn worst_failover(&self) -> Option<std::time::Duration> {
        self.detection
            .map(|d| d + std::time::Duration::from_secs(u64::from(self.ttl)))
    }

    /// Every value [`Profile::serving`] takes.
    pub const SERVING: [&'static str; 5] = [
        "healthy",
        "unmonitored",
        "unverified",
        "failing open",
        "not answering",
    ];

    /// What the profile answers now, for an operator at a glance:
    /// `healthy` (an Online endpoint is answerable), `unmonitored` (only
    /// endpoints that are never probed), `unverified` (only endpoints not
    /// yet checked), `failing open` (none
    /// answerable: `on_all_down` applies), `not answering` (disabled, or
    /// nothing eligible). Client-aware methods may differ per client.
    pub fn serving(&self, table: &Snapshot) -> &'static str {
        if !self.enabled {
            return "not answering";
        }
        let (mut healthy, mut unmonitored, mut checking, mut eligible) =
            (false, false, false, false);
        for e in table.endpoints_of(self) {
            let s = table.status(e);
            // A held endpoint is healthy, and answered when nothing else
            // can be.
            healthy |= matches!(s, Status::Online | Status::Held);
            unmonitored |= s == Status::Unmonitored;
            checking |= s == Status::CheckingEndpoint;
            eligible |= s.is_eligible();
        }
        if healthy {
            "healthy"
        } else if unmonitored {
            "unmonitored"
        } else if checking {
            "unverified"
        } else if eligible {
            "failing open"
        } else {
            "not answering"
        }
    }
}

impl Endpoint {
    /// The endpoint's own status: configuration, runtime override and
    /// probe results. A nested endpoint's status also depends on its child
    /// profile: ask [`Snapshot::status`].
    #[inline]
    pub fn status(&self) -> Status {
        if self.runtime.is_disabled() {
            return Status::Disabled;
        }
        match &self.health {
            Health::Disabled => Status::Disabled,
            Health::Unmonitored => Status::Unmonitored,
            Health::Monitored(cell) => match self.hold {
                None => cell.get(),
                Some(hold) => {
                    let (s, recovered) = cell.get_with_recovery();
                    if s == Status::Online && self.held_since(recovered, hold).is_some() {
                        Status::Held
                    } else {
                        s
                    }
                }
            },
            Health::Nested { .. } => Status::CheckingEndpoint,
        }
    }

    /// With `failback = "manual"`: the hold in force on a recovery at
    /// `recovered` (ms since the epoch), as (since, until): it began then,
    /// was not released by an `enable`/`resume` made after, and (with
    /// `failback_after`) has not run out. Until is 0 when it lasts until
    /// resumed.
    #[inline]
    fn held_since(&self, recovered: u64, hold: u32) -> Option<(u64, u64)> {
        if recovered == 0
            || self.runtime.released_ms() >= recovered
            || self.runtime.hold_from.load(Relaxed) > recovered
        {
            return None;
        }
        if hold == 0 {
            return Some((recovered, 0));
        }
        let until = recovered.div_ceil(1000) + u64::from(hold);
        (u64::from(crate::clock::unix_secs_now()) < until).then_some((recovered, until * 1000))
    }

    /// The hold on this endpoint now, if held: (since, until) in ms since
    /// the epoch, until 0 when it lasts until resumed.
    pub fn hold_now(&self) -> Option<(u64, u64)> {
        let (Some(hold), Health::Monitored(cell)) = (self.hold, &self.health) else {
            return None;
        };
        let (s, recovered) = cell.get_with_recovery();
        if s != Status::Online || self.runtime.is_disabled() {
            return None;
        }
        self.held_since(recovered, hold)
    }
}

/// Deepest nesting of profiles.
pub const MAX_NESTING: usize = 10;

impl Snapshot {
    /// An endpoint's status, rolling nested endpoints up from their child
    /// profile: `Online` if at least `min_child_endpoints` child endpoints
    /// are Online (or Unmonitored); else `CheckingEndpoint` if Online and
    /// Checking together reach it; else `Degraded`. A disabled or inactive
    /// child makes the nested endpoint `Stopped`.
    pub fn status(&self, ep: &Endpoint) -> Status {
        self.status_at(ep, 0)
    }

    /// The status shown for an endpoint of `p` (status page, API,
    /// metrics): [`Status::Inactive`] when the profile is disabled, else
    /// [`Snapshot::status`].
    pub fn shown_status(&self, p: &Profile, ep: &Endpoint) -> Status {
        if p.enabled {
            self.status(ep)
        } else {
            Status::Inactive
        }
    }

    fn status_at(&self, ep: &Endpoint, depth: usize) -> Status {
        let own = ep.status();
        let Health::Nested { child, min } = &ep.health else {
            return own;
        };
        if own == Status::Disabled {
            return own;
        }
        let Some(p) = self.profiles.get(*child as usize) else {
            return Status::Stopped;
        };
        if !p.enabled || depth >= MAX_NESTING {
            return Status::Stopped;
        }
        let (mut online, mut checking, mut eligible) = (0u32, 0u32, 0u32);
        for c in self.endpoints_of(p) {
            let s = self.status_at(c, depth + 1);
            match s {
                Status::Online | Status::Unmonitored => online += 1,
                Status::CheckingEndpoint => checking += 1,
                _ => {}
            }
            eligible += u32::from(s.is_eligible());
        }
        if eligible == 0 {
            Status::Stopped
        } else if online >= *min {
            Status::Online
        } else if online + checking >= *min {
            Status::CheckingEndpoint
        } else {
            Status::Degraded
        }
    }

    /// A profile's status: `Disabled` when `enabled = false`; `Inactive` when
    /// no endpoint can be answered; `Degraded` if any endpoint is Degraded;
    /// `Online` if any is Online and none Degraded; else `CheckingEndpoints`.
    pub fn profile_status(&self, p: &Profile) -> &'static str {
        if !p.enabled {
            return "Disabled";
        }
        let statuses = self.endpoints_of(p).iter().map(|e| self.status(e));
        let (mut any_eligible, mut degraded, mut online) = (false, false, false);
        for s in statuses {
            any_eligible |= s.is_eligible();
            degraded |= s == Status::Degraded;
            // A held endpoint is healthy (Online, held out by manual
            // failback), as `serving` counts it.
            online |= matches!(s, Status::Online | Status::Unmonitored | Status::Held);
        }
        if !any_eligible {
            "Inactive"
        } else if degraded {
            "Degraded"
        } else if online {
            "Online"
        } else {
            "CheckingEndpoints"
        }
    }
}
