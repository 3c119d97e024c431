//! Wall-clock times, the one way each is written: RFC 3339 with
//! milliseconds for the API and the page, whole seconds for `explain` and
//! file names, and milliseconds or seconds since the Unix epoch for what is
//! kept in atomics. A clock before 1970 reads as the epoch, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch (saturating at `u32::MAX` in 2106).
pub fn unix_secs(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_unix_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Now, in milliseconds since the Unix epoch.
/// Seconds since the epoch now, as DNSSEC writes times (RFC 4034 §3.1.5).
/// On Linux from the coarse clock (the time of the last tick, read from the
/// vDSO without touching the hardware clock): the answer path reads it for
/// every signed answer, and seconds are all it needs.
#[inline]
pub fn unix_secs_now() -> u32 {
    #[cfg(target_os = "linux")]
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
        return t.tv_sec().clamp(0, i64::from(u32::MAX)) as u32;
    }
    unix_secs(SystemTime::now())
}

/// Milliseconds since the epoch now.
pub fn now_millis() -> u64 {
    unix_millis(SystemTime::now())
}

/// Milliseconds since the epoch now, from the coarse clock as
/// [`unix_secs_now`] (a few milliseconds behind at most): the answer path
/// reads it while a drain ramps or a shed by hand is timed.
#[inline]
pub fn now_millis_coarse() -> u64 {
    #[cfg(target_os = "linux")]
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let ms = u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000_000;
        return secs * 1000 + ms;
    }
    now_millis()
}

/// `2026-12-01T23:35:54.123Z`: the API, the page, the state file.
pub fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `2026-12-01T23:35:54Z`: `explain`.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `2026-12-01T233554Z`: a time in a file name (no colons, which some
/// file systems and tools refuse).
pub fn file_stamp(t: SystemTime) -> String {
    rfc3339_seconds(t).replace(':', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_round_trips() {
        let t = from_unix_millis(1_796_168_154_123);
        assert_eq!(unix_millis(t), 1_796_168_154_123);
        assert_eq!(unix_secs(t), 1_796_168_154);
        assert_eq!(rfc3339_millis(t), "2026-12-01T23:35:54.123Z");
        assert_eq!(rfc3339_seconds(t), "2026-12-01T23:35:54Z");
        assert_eq!(file_stamp(t), "2026-12-01T233554Z");
    }

    #[test]
    fn before_the_epoch_reads_as_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(unix_millis(t), 0);
        assert_eq!(unix_secs(t), 0);
    }
}
