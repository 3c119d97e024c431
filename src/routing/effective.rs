//! An endpoint's effective status and why: the one place where the
//! configuration, a runtime override, the probe or quorum verdict, a
//! `failback = "manual"` hold and nesting are read together with the
//! reason. [`Snapshot::status`] is what routing answers with (the hot
//! path: no reason); [`Snapshot::effective`] adds the reason and when
//! it began, and explain, the status page and notifications render it.

use std::fmt;
use std::time::SystemTime;

use crate::clock::rfc3339_seconds as ts;
use crate::health::Status;
use crate::snapshot::{Endpoint, Health, Profile, Snapshot};

/// An endpoint's effective status, when it began and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// What routing answers with ([`Snapshot::shown_status`]).
    pub status: Status,
    /// When the current status began, if known.
    pub since: Option<SystemTime>,
    /// Why.
    pub why: Why,
}

/// Why an endpoint has its status.
#[derive(Clone, Debug, PartialEq)]
pub enum Why {
    /// Its profile is disabled (`enabled = false`): Inactive.
    ProfileDisabled,
    /// `enabled = false` on the endpoint.
    Configured,
    /// Drained at runtime.
    Drained,
    /// Disabled at runtime.
    RuntimeDisabled,
    /// Online again, held out by `failback = "manual"` since then (ms since
    /// the epoch), until `until` (0: until resumed).
    Held {
        /// When it recovered.
        since_ms: u64,
        /// When `failback_after` ends the hold (0: until resumed).
        until_ms: u64,
    },
    /// This node's own probes decided it; the last probe's outcome.
    Probes {
        /// "succeeded", or why it failed.
        last: Option<String>,
    },
    /// The cluster's quorum decided it, in words.
    Quorum(String),
    /// Its named monitors, combined by its `health`: each one's verdict,
    /// failing ones first ("db (tcp 10.1.2.3:5432: connect refused); api
    /// ok").
    Monitors(String),
    /// Rolled up from a nested profile.
    Nested {
        /// The child profile's name.
        child: String,
        /// `min_child_endpoints`.
        min: u32,
    },
    /// Never probed.
    Unmonitored,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: u64| ts(crate::clock::from_unix_millis(v));
        match self {
            Why::ProfileDisabled => f.write_str("its profile is disabled (enabled = false)"),
            Why::Configured => f.write_str("Disabled in the configuration (enabled = false)"),
            Why::Drained => f.write_str("Drained at runtime (switchyard endpoint enable to undo)"),
            Why::RuntimeDisabled => {
                f.write_str("Disabled at runtime (switchyard endpoint enable to undo)")
            }
            Why::Held { since_ms, until_ms } => {
                write!(
                    f,
                    "Online again since {}, held out by failback = \"manual\" ",
                    ms(*since_ms)
                )?;
                if *until_ms == 0 {
                    f.write_str("until resumed (switchyard endpoint resume)")
                } else {
                    write!(
                        f,
                        "until {} (failback_after), or until resumed (switchyard endpoint resume)",
                        ms(*until_ms)
                    )
                }
            }
            Why::Probes { last: Some(r) } => write!(f, "last probe: {r}"),
            Why::Probes { last: None } => f.write_str("not probed yet"),
            Why::Quorum(text) | Why::Monitors(text) => f.write_str(text),
            Why::Nested { child, min } => write!(
                f,
                "rolled up from profile {child} (min_child_endpoints {min})"
            ),
            Why::Unmonitored => f.write_str("not monitored"),
        }
    }
}

impl fmt::Display for Effective {
    /// "Degraded since 2026-12-06T10:00:00Z (last probe: ...)"; for the
    /// reasons that are a status of their own (disabled, drained, held),
    /// the reason alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Why::Configured | Why::Drained | Why::RuntimeDisabled | Why::Held { .. } => {
                write!(f, "{}", self.why)
            }
            Why::Nested { .. } => write!(f, "{}: {}", self.status, self.why),
            Why::Monitors(text) => {
                write!(f, "{}", self.status)?;
                if let Some(since) = self.since {
                    write!(f, " since {}", ts(since))?;
                }
                write!(f, ": {text}")
            }
            why => {
                write!(f, "{}", self.status)?;
                if let Some(since) = self.since {
                    write!(f, " since {}", ts(since))?;
                }
                write!(f, " ({why})")
            }
        }
    }
}

impl Snapshot {
    /// The effective status of endpoint `e` of profile `p`, when it began
    /// and why.
    pub fn effective(&self, p: &Profile, e: &Endpoint) -> Effective {
        let status = self.shown_status(p, e);
        // When the endpoint appeared or its runtime override last changed.
        let changed = || Some(e.runtime.changed_at());
        // Out at runtime: since the override, or a later health change.
        let overridden = || match &e.health {
            Health::Monitored(cell) => Some(cell.details().since.max(e.runtime.changed_at())),
            _ => changed(),
        };
        let health_since = || match &e.health {
            Health::Monitored(cell) => Some(cell.details().since),
            _ => changed(),
        };
        let (since, why) = if !p.enabled {
            (health_since(), Why::ProfileDisabled)
        } else if e.runtime.is_draining() {
            (overridden(), Why::Drained)
        } else if e.runtime.is_disabled() {
            (overridden(), Why::RuntimeDisabled)
        } else if let Some((since_ms, until_ms)) = e.hold_now() {
            (
                Some(crate::clock::from_unix_millis(since_ms)),
                Why::Held { since_ms, until_ms },
            )
        } else {
            match &e.health {
                Health::Disabled => (changed(), Why::Configured),
                Health::Unmonitored => (changed(), Why::Unmonitored),
                Health::Nested { child, min } => (
                    changed(),
                    Why::Nested {
                        child: self
                            .profiles
                            .get(*child as usize)
                            .map_or("?".into(), |c| c.name.to_string()),
                        min: *min,
                    },
                ),
                Health::Monitored(cell) if e.monitors.is_some() => {
                    let why = e.monitors.as_ref().map(|m| m.describe());
                    (
                        Some(cell.details().since),
                        Why::Monitors(why.unwrap_or_default()),
                    )
                }
                Health::Monitored(cell) => {
                    let d = cell.details();
                    let why = match &d.cluster {
                        Some(view) => Why::Quorum(view.describe()),
                        None => Why::Probes {
                            last: d.last_probe.as_ref().map(|o| match &o.failure {
                                Some(f) => f.reason.clone(),
                                None => "succeeded".into(),
                            }),
                        },
                    };
                    (Some(d.since), why)
                }
            }
        };
        Effective { status, since, why }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::snapshot::{OnAllDown, OverrideState};

    fn table(eps: Vec<Endpoint>) -> Snapshot {
        let n = eps.len();
        let mut t = Snapshot::default();
        t.profiles = vec![profile(priority(n), n, OnAllDown::ServeAll)];
        t.endpoints = eps;
        t
    }

    fn of(t: &Snapshot, i: usize) -> Effective {
        t.effective(&t.profiles[0], &t.endpoints[i])
    }

    #[test]
    fn probes_decide_a_monitored_endpoint() {
        let t = table(vec![ep(1, Status::Degraded), ep(2, Status::Online)]);
        let e = of(&t, 0);
        assert_eq!(
            (e.status, &e.why),
            (Status::Degraded, &Why::Probes { last: None })
        );
        let text = e.to_string();
        assert!(
            text.starts_with("Degraded since ") && text.ends_with(" (not probed yet)"),
            "{text}"
        );
        assert_eq!(of(&t, 1).status, Status::Online);
    }

    #[test]
    fn configuration_and_unmonitored() {
        let t = table(vec![ep(1, Status::Disabled), ep(2, Status::Unmonitored)]);
        let e = of(&t, 0);
        assert_eq!((e.status, &e.why), (Status::Disabled, &Why::Configured));
        assert_eq!(
            e.to_string(),
            "Disabled in the configuration (enabled = false)"
        );
        let e = of(&t, 1);
        assert_eq!((e.status, &e.why), (Status::Unmonitored, &Why::Unmonitored));
    }

    #[test]
    fn a_runtime_override_wins_over_health() {
        let t = table(vec![ep(1, Status::Online), ep(2, Status::Degraded)]);
        let now = crate::clock::now_millis();
        t.endpoints[0].runtime.apply(OverrideState::Off {
            until_ms: None,
            drain: false,
            at_ms: now,
            ramp: None,
        });
        t.endpoints[1].runtime.apply(OverrideState::Off {
            until_ms: None,
            drain: true,
            at_ms: now,
            ramp: None,
        });
        let e = of(&t, 0);
        assert_eq!(
            (e.status, &e.why),
            (Status::Disabled, &Why::RuntimeDisabled)
        );
        let e = of(&t, 1);
        assert_eq!((e.status, &e.why), (Status::Disabled, &Why::Drained));
        assert!(e.to_string().starts_with("Drained at runtime"));
    }

    #[test]
    fn a_recovery_held_by_manual_failback() {
        let mut held = ep(1, Status::Degraded);
        held.hold = Some(0);
        let t = table(vec![held, ep(2, Status::Online)]);
        let Health::Monitored(cell) = &t.endpoints[0].health else {
            unreachable!()
        };
        cell.set(Status::Online);
        let e = of(&t, 0);
        assert_eq!(e.status, Status::Held);
        assert!(
            matches!(e.why, Why::Held { since_ms, until_ms: 0 } if since_ms > 0),
            "{e:?}"
        );
        assert!(
            e.to_string().ends_with(
                "held out by failback = \"manual\" until resumed (switchyard endpoint resume)"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_disabled_profile_makes_its_endpoints_inactive() {
        let mut t = table(vec![ep(1, Status::Online)]);
        t.profiles[0].enabled = false;
        let e = of(&t, 0);
        assert_eq!(
            (e.status, &e.why),
            (Status::Inactive, &Why::ProfileDisabled)
        );
    }

    /// A profile whose endpoints are all held is Online, as the docs say
    /// (it showed CheckingEndpoints: held was neither Online nor Degraded).
    #[test]
    fn a_profile_of_held_endpoints_is_online() {
        let mut a = ep(1, Status::Held);
        a.hold = None;
        let t = table(vec![a, ep(2, Status::Held)]);
        assert_eq!(t.profile_status(&t.profiles[0]), "Online");
        let t = table(vec![ep(1, Status::CheckingEndpoint)]);
        assert_eq!(t.profile_status(&t.profiles[0]), "CheckingEndpoints");
    }
}
