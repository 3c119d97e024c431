//! HTTPS certificate expiry: what the prober last saw of an endpoint's
//! certificate, whether it is within the monitor's `cert_warning`, and the
//! crossings of that threshold that are news (one per crossing, not one
//! per probe).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The leaf certificate an HTTPS endpoint last presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Its `notAfter`.
    pub not_after: SystemTime,
    /// The monitor's `cert_warning`: warn when less than this is left.
    pub warn_within: Duration,
    /// When the probe that saw it started.
    pub seen: SystemTime,
}

/// A crossing of the `cert_warning` threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    /// Less than `cert_warning` is left (or it has expired).
    Expiring,
    /// A certificate with more than `cert_warning` left replaced one that
    /// had less.
    Renewed,
}

impl Crossing {
    /// Its name as a notification's new status.
    pub fn as_str(self) -> &'static str {
        match self {
            Crossing::Expiring => "expiring",
            Crossing::Renewed => "valid",
        }
    }
}

impl Certificate {
    /// Seconds left at `now` (negative once expired).
    pub fn remaining_secs(&self, now: SystemTime) -> i64 {
        match self.not_after.duration_since(now) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// `notAfter` as Unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        match self.not_after.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// True when less than `cert_warning` is left at `now` (with
    /// `cert_warning = "0s"`: once it has expired).
    pub fn expiring(&self, now: SystemTime) -> bool {
        self.remaining_secs(now) < i64::try_from(self.warn_within.as_secs()).unwrap_or(i64::MAX)
    }

    /// When it expires, in words: "expires in 3 days (2026-12-10 03:00:00
    /// UTC)", "expired 2 hours ago (...)".
    pub fn describe(&self, now: SystemTime) -> String {
        let left = self.remaining_secs(now);
        let when = crate::clock::rfc3339_seconds(self.not_after)
            .replace('T', " ")
            .replace('Z', " UTC");
        if left >= 0 {
            format!("expires in {} ({when})", span(left.unsigned_abs()))
        } else {
            format!("expired {} ago ({when})", span(left.unsigned_abs()))
        }
    }

    /// Where it stands against the threshold, in words: "certificate
    /// expires in 3 days (...), within cert_warning (14d)" (or "beyond").
    pub fn reason(&self, now: SystemTime) -> String {
        format!(
            "certificate {}, {} cert_warning ({})",
            self.describe(now),
            if self.expiring(now) {
                "within"
            } else {
                "beyond"
            },
            threshold(self.warn_within)
        )
    }

    /// The warning `status` shows while it is expiring, else `None`.
    pub fn warning(&self, now: SystemTime) -> Option<String> {
        self.expiring(now).then(|| self.reason(now))
    }
}

/// `cert_warning` as written in a profile: "14d", "36h", else humantime's
/// words.
fn threshold(d: Duration) -> String {
    match d.as_secs() {
        0 if d.subsec_nanos() == 0 => "0s".into(),
        s if s % 86_400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && d.subsec_nanos() == 0 => format!("{}h", s / 3600),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A length of time in its largest sensible unit: "3 days", "5 hours",
/// "12 minutes", "40 seconds".
fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "day"),
        s if s >= 2 * 3600 => (s / 3600, "hour"),
        s if s >= 2 * 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// One probe target's side of the threshold, as last reported: tells which
/// observations cross it. Starts unknown, so after a restart a certificate
/// already within the threshold is reported once more.
#[derive(Debug, Default)]
pub struct Watch {
    expiring: Option<bool>,
}

impl Watch {
    /// Looks at a certificate seen by a probe at `now`: a crossing when it
    /// is on the other side of the threshold from the last one (or, first
    /// of all, when it is expiring).
    pub fn observe(&mut self, cert: &Certificate, now: SystemTime) -> Option<Crossing> {
        let expiring = cert.expiring(now);
        let before = self.expiring.replace(expiring);
        match (before, expiring) {
            (None | Some(false), true) => Some(Crossing::Expiring),
            (Some(true), false) => Some(Crossing::Renewed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn cert(now: SystemTime, days_left: u64) -> Certificate {
        Certificate {
            not_after: now + Duration::from_secs(days_left * DAY),
            warn_within: Duration::from_secs(14 * DAY),
            seen: now,
        }
    }

    #[test]
    fn one_crossing_each_way_not_one_per_probe() {
        let now = SystemTime::now();
        let mut w = Watch::default();
        assert_eq!(
            w.observe(&cert(now, 30), now),
            None,
            "fine at first: no news"
        );
        assert_eq!(w.observe(&cert(now, 30), now), None);
        assert_eq!(w.observe(&cert(now, 13), now), Some(Crossing::Expiring));
        assert_eq!(w.observe(&cert(now, 12), now), None, "still expiring");
        assert_eq!(w.observe(&cert(now, 90), now), Some(Crossing::Renewed));
        assert_eq!(w.observe(&cert(now, 90), now), None);
        // Time passing is a crossing too.
        let later = now + Duration::from_secs(80 * DAY);
        assert_eq!(w.observe(&cert(now, 90), later), Some(Crossing::Expiring));
    }

    #[test]
    fn expiring_at_start_is_reported_once() {
        let now = SystemTime::now();
        let mut w = Watch::default();
        assert_eq!(w.observe(&cert(now, 3), now), Some(Crossing::Expiring));
        assert_eq!(w.observe(&cert(now, 3), now), None);
    }

    #[test]
    fn threshold_and_words() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let c = cert(now, 3);
        assert!(c.expiring(now));
        assert_eq!(c.remaining_secs(now), 3 * 86_400);
        assert_eq!(c.not_after_unix(), 1_800_000_000 + 3 * 86_400);
        assert_eq!(
            c.warning(now).unwrap(),
            "certificate expires in 3 days (2027-01-18 08:00:00 UTC), within cert_warning (14d)"
        );
        assert_eq!(cert(now, 30).warning(now), None);
        assert!(
            cert(now, 30)
                .reason(now)
                .ends_with("beyond cert_warning (14d)"),
            "{}",
            cert(now, 30).reason(now)
        );
        let expired = Certificate {
            not_after: now - Duration::from_secs(3 * 3600),
            warn_within: Duration::ZERO,
            seen: now,
        };
        assert!(expired.expiring(now), "0s: warns once expired");
        assert_eq!(expired.remaining_secs(now), -3 * 3600);
        assert!(
            expired.describe(now).starts_with("expired 3 hours ago"),
            "{}",
            expired.describe(now)
        );
        let fresh = Certificate {
            warn_within: Duration::ZERO,
            ..cert(now, 1)
        };
        assert!(!fresh.expiring(now));
        assert_eq!(span(1), "1 second");
        assert_eq!(span(119), "119 seconds");
        assert_eq!(span(3 * 60), "3 minutes");
        assert_eq!(span(DAY), "24 hours");
        assert_eq!(threshold(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(threshold(Duration::from_secs(90)), "1m 30s");
    }
}
