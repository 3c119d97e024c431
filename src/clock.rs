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
/// every signed answer, and seconds are all it needs. Inside a [`Batch`],
/// the batch's time.
#[inline]
pub fn unix_secs_now() -> u32 {
    if BATCH.get().active {
        return batch_time().secs;
    }
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
/// reads it while a drain ramps or a shed by hand is timed. Inside a
/// [`Batch`], the batch's time.
#[inline]
pub fn now_millis_coarse() -> u64 {
    if BATCH.get().active {
        return batch_time().ms;
    }
    coarse_millis()
}

/// The time of this thread's batch: the coarse clock as first read in it.
#[inline]
fn batch_time() -> BatchTime {
    let t = BATCH.get();
    if t.ms != 0 {
        return t;
    }
    let ms = coarse_millis().max(1);
    let t = BatchTime {
        active: true,
        ms,
        secs: u32::try_from(ms / 1000).unwrap_or(u32::MAX),
    };
    BATCH.set(t);
    t
}

/// [`now_millis_coarse`] read from the clock.
#[inline]
fn coarse_millis() -> u64 {
    #[cfg(target_os = "linux")]
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE) {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let ms = u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000_000;
        return secs * 1000 + ms;
    }
    now_millis()
}

/// The coarse clock as one batch of queries reads it: [`now_millis_coarse`]
/// and [`unix_secs_now`] from one read.
#[derive(Clone, Copy)]
struct BatchTime {
    /// A batch is being answered on this thread.
    active: bool,
    /// Its time (0: not read yet).
    ms: u64,
    secs: u32,
}

/// No batch.
const NO_BATCH: BatchTime = BatchTime {
    active: false,
    ms: 0,
    secs: 0,
};

thread_local! {
    /// The batch this thread is answering, if any.
    static BATCH: std::cell::Cell<BatchTime> = const { std::cell::Cell::new(NO_BATCH) };
}

/// One batch of queries answered on this thread at one time: while it
/// lives, [`unix_secs_now`] and [`now_millis_coarse`] on this thread return
/// the coarse clock as read the first time one of them is called in it, so
/// a receive loop reads the clock at most once per batch instead of once
/// or more per answer (the answers' drain bookkeeping, health-aware TTLs,
/// the drain ramp, signatures), and not at all for a batch whose answers
/// need no time (denials, static records). The coarse clock is already up
/// to a tick (1-10 ms) behind; a batch takes microseconds (a millisecond at
/// worst, with cold signatures). Other threads, and this one once it is
/// dropped, read the clock as before.
#[must_use = "the batch time holds only while the guard lives"]
pub struct Batch {
    before: BatchTime,
}

impl Batch {
    /// Begins a batch about to be answered on this thread.
    #[inline]
    pub fn start() -> Batch {
        Batch {
            before: BATCH.replace(BatchTime {
                active: true,
                ..NO_BATCH
            }),
        }
    }
}

impl Drop for Batch {
    #[inline]
    fn drop(&mut self) {
        BATCH.set(self.before);
    }
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
    fn a_batch_reads_the_clock_once_and_only_on_its_thread() {
        let outside = now_millis_coarse();
        let batch = Batch::start();
        // Read when first asked for, not when the batch began.
        std::thread::sleep(Duration::from_millis(30));
        let (ms, secs) = (now_millis_coarse(), unix_secs_now());
        assert!(ms >= outside + 20);
        assert!(ms >= outside && u64::from(secs) == ms / 1000);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!((now_millis_coarse(), unix_secs_now()), (ms, secs));
        // Another thread reads the clock itself.
        let other = std::thread::spawn(now_millis_coarse).join().unwrap();
        assert!(other >= ms + 20, "{other} {ms}");
        {
            // Nested: the inner batch's time, then the outer's again.
            let _inner = Batch::start();
            assert!(now_millis_coarse() >= ms + 20);
        }
        assert_eq!(now_millis_coarse(), ms);
        drop(batch);
        assert!(now_millis_coarse() >= ms + 20);
    }

    #[test]
    fn before_the_epoch_reads_as_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(unix_millis(t), 0);
        assert_eq!(unix_secs(t), 0);
    }
}
