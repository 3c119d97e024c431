//! Endpoint health: the statuses operators see, and the cells the prober
//! writes and the DNS path reads.
//!
//! The DNS path never takes a lock to learn whether an endpoint may be
//! answered: each monitored endpoint points at a [`HealthCell`], a single
//! atomic written by the prober and read with a relaxed load per query.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

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
    /// `enabled = false`, or disabled at runtime. Never answered, never probed.
    Disabled = 3,
    /// The profile is disabled. Never answered.
    Inactive = 4,
    /// A nested endpoint whose child profile is disabled or inactive.
    Stopped = 5,
    /// `always_serve = true`: not probed, always answerable.
    Unmonitored = 6,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 7] = [
        Status::CheckingEndpoint,
        Status::Online,
        Status::Degraded,
        Status::Disabled,
        Status::Inactive,
        Status::Stopped,
        Status::Unmonitored,
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
            _ => Status::CheckingEndpoint,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The observed health of one monitored endpoint.
///
/// Written by the prober (one writer per cell), read by every DNS worker.
/// Only `CheckingEndpoint`, `Online` and `Degraded` are stored here; the
/// administrative statuses come from configuration.
#[derive(Debug)]
pub struct HealthCell {
    status: AtomicU8,
}

impl HealthCell {
    /// A cell for an endpoint that has not been probed yet.
    pub fn new() -> HealthCell {
        HealthCell {
            status: AtomicU8::new(Status::CheckingEndpoint as u8),
        }
    }

    /// The current observed status.
    #[inline]
    pub fn get(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// Publishes a new observed status; visible to the next query.
    pub fn set(&self, status: Status) {
        self.status.store(status as u8, Ordering::Relaxed);
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
