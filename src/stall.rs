//! A node that stalled must not answer from a view its peers have moved
//! past.
//!
//! A process that was stopped (`SIGSTOP`, a VM pause) or starved of CPU
//! wakes with queries queued in its sockets and a cluster view as old as
//! the stall: in the meantime its peers may have failed an endpoint over.
//! Every receive loop wakes at least every 100 ms, so a loop that finds its
//! own last wake-up much longer ago than that has seen the stall first
//! hand: it asks the cluster task to re-sync ([`AnswerGate::check`]) and
//! its queries wait, unanswered, until the cluster task has heard every
//! peer again ([`AnswerGate::complete`]), at most `max_hold`. The queries
//! that waited out the stall were sent seconds ago; their resolvers have
//! already asked another name server, so not answering them costs
//! nothing, where a stale answer would be cached for its TTL.
//!
//! Only armed in a cluster: a lone node's view is its own probes', which a
//! stall does not make anyone else's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds from a process-wide epoch to `t` (a monotonic clock every
/// thread shares).
#[inline]
pub fn mono_ms(t: Instant) -> u64 {
    t.saturating_duration_since(*EPOCH).as_millis() as u64
}

/// Whether answers wait for a re-sync. Written by receive loops (a stall
/// seen) and the cluster task (a stall seen, a re-sync done); read by
/// every receive loop once per wake-up: a few relaxed atomic loads.
#[derive(Debug, Default)]
pub struct AnswerGate {
    /// A cluster runs.
    armed: AtomicBool,
    /// A gap between wake-ups longer than this (ms) is a stall.
    threshold_ms: AtomicU64,
    /// Longest wait for a re-sync (ms): past it, answers go out anyway.
    max_hold_ms: AtomicU64,
    /// When a stall was last seen (ms, [`mono_ms`]); 0: never.
    requested: AtomicU64,
    /// When the last re-sync completed.
    completed: AtomicU64,
    /// Queries not answered while waiting for a re-sync.
    held: AtomicU64,
    /// Wakes the cluster task.
    wake: OnceLock<Arc<tokio::sync::Notify>>,
}

impl AnswerGate {
    /// Arms the gate (a cluster started): gaps over `threshold` are
    /// stalls; answers wait at most `max_hold` for a re-sync; `wake` wakes
    /// the task that re-syncs.
    pub fn arm(&self, threshold: Duration, max_hold: Duration, wake: Arc<tokio::sync::Notify>) {
        self.threshold_ms
            .store(threshold.as_millis() as u64, Ordering::Relaxed);
        self.max_hold_ms
            .store(max_hold.as_millis() as u64, Ordering::Relaxed);
        let _ = self.wake.set(wake);
        self.armed.store(true, Ordering::Release);
    }

    /// A cluster runs: receive loops report their wake-ups
    /// ([`AnswerGate::check`]); alone, they skip even the clock read.
    #[inline]
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// A gap between wake-ups longer than this is a stall.
    pub fn threshold(&self) -> Duration {
        Duration::from_millis(self.threshold_ms.load(Ordering::Relaxed))
    }

    /// Called by a receive loop each time it wakes (`now`), with when it
    /// last woke (`last`): notes a stall, and says whether answers wait
    /// (true: do not answer what was received).
    #[inline]
    pub fn check(&self, last: Instant, now: Instant) -> bool {
        if !self.armed.load(Ordering::Relaxed) {
            return false;
        }
        let now_ms = mono_ms(now);
        if now.saturating_duration_since(last).as_millis() as u64
            > self.threshold_ms.load(Ordering::Relaxed)
        {
            self.stalled(mono_ms(last), now_ms);
        }
        self.holding(now_ms)
    }

    /// A stall from `since_ms` to `now_ms` was seen: ask for a re-sync,
    /// unless one completed after the stall began (it covered this one).
    pub fn stalled(&self, since_ms: u64, now_ms: u64) {
        if self.completed.load(Ordering::Acquire) > since_ms {
            return;
        }
        self.requested.fetch_max(now_ms.max(1), Ordering::AcqRel);
        if let Some(w) = self.wake.get() {
            w.notify_one();
        }
    }

    /// True while answers wait for a re-sync (at `now_ms`).
    #[inline]
    pub fn holding(&self, now_ms: u64) -> bool {
        let r = self.requested.load(Ordering::Acquire);
        r != 0
            && self.completed.load(Ordering::Acquire) < r
            && now_ms < r + self.max_hold_ms.load(Ordering::Relaxed)
    }

    /// [`AnswerGate::holding`] now, for paths without a wake-up time of
    /// their own (TCP): no clock read unless a re-sync is pending.
    #[inline]
    pub fn holding_now(&self) -> bool {
        self.pending() && self.holding(mono_ms(Instant::now()))
    }

    /// A stall was seen and no re-sync has completed since.
    pub fn pending(&self) -> bool {
        self.requested.load(Ordering::Acquire) > self.completed.load(Ordering::Acquire)
    }

    /// The re-sync is done: answers go out again.
    pub fn complete(&self, now_ms: u64) {
        let r = self.requested.load(Ordering::Acquire);
        self.completed.fetch_max(now_ms.max(r), Ordering::AcqRel);
    }

    /// Counts `n` queries not answered.
    #[inline]
    pub fn held(&self, n: u64) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    /// Queries not answered while waiting for a re-sync, so far.
    pub fn held_total(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_holds_answers_until_the_resync_or_the_bound() {
        let g = AnswerGate::default();
        let _ = mono_ms(Instant::now());
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Unarmed (no cluster): never holds.
        assert!(!g.check(ms(0), ms(5_000)));
        g.arm(
            Duration::from_millis(500),
            Duration::from_millis(1_000),
            Arc::default(),
        );
        // Regular wake-ups: nothing.
        assert!(!g.check(ms(0), ms(100)));
        // A 2 s gap: held, and so is every other loop, until complete.
        assert!(g.check(ms(100), ms(2_100)));
        assert!(g.pending());
        assert!(g.check(ms(2_100), ms(2_102)));
        g.complete(mono_ms(ms(2_110)));
        assert!(!g.pending());
        assert!(!g.check(ms(2_102), ms(2_111)));
        // A loop that slept through the same stall and wakes after the
        // re-sync is covered by it.
        assert!(!g.check(ms(90), ms(2_200)));
        assert!(!g.pending());
        // A new stall nobody re-syncs: answers resume after max_hold.
        assert!(g.check(ms(3_000), ms(5_000)));
        assert!(g.holding(mono_ms(ms(5_990))));
        assert!(!g.holding(mono_ms(ms(6_010))));
    }
}
