//! A count-min sketch of per-second counts, lock-free and of fixed size:
//! response rate limiting ([`crate::dns::rrl`]) and the signing budget
//! ([`crate::dnssec::budget`]) count in one each.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters per bucket (rows of the sketch).
pub const ROWS: usize = 2;

/// A count-min sketch of per-second counts: [`ROWS`] rows of counters,
/// each key counted in one counter per row (chosen from its hash), its
/// count read as the smallest of them. Fixed memory, lock-free, never
/// less than the truth.
#[derive(Debug)]
pub struct Sketch {
    /// [`ROWS`] rows of `width` counters: second (32 bits) | count (32).
    counters: Box<[AtomicU64]>,
    /// Counters per row (a power of two).
    width: usize,
}

impl Sketch {
    /// A sketch of about `size` counters (8 bytes each).
    pub fn new(size: usize) -> Sketch {
        let width = (size / ROWS).next_power_of_two().max(1);
        Sketch {
            counters: (0..width * ROWS).map(|_| AtomicU64::new(0)).collect(),
            width,
        }
    }

    /// Memory held, in bytes (fixed at creation).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.counters)
    }

    /// Counts one event in the key's bucket for second `now`; returns
    /// the bucket's count this second, this one included (never less than
    /// the truth). Conservative update: only the counters at the minimum
    /// are raised, which keeps collisions from inflating the others.
    pub fn count(&self, key: u64, now: u32) -> u32 {
        // The second tags the count (never 0, the value of an unused
        // counter), so no stale count is ever read as current.
        let sec = now.wrapping_add(1).max(1);
        let h2 = (key >> 32) | 1;
        let mut slots = [0usize; ROWS];
        let mut min = u32::MAX;
        for (row, slot) in slots.iter_mut().enumerate() {
            let i = (key.wrapping_add(h2.wrapping_mul(row as u64)) as usize) & (self.width - 1);
            *slot = row * self.width + i;
            min = min.min(current(self.counters[*slot].load(Ordering::Relaxed), sec));
        }
        let want = min.saturating_add(1).min(COUNT_MAX);
        for &slot in &slots {
            let c = &self.counters[slot];
            let mut v = c.load(Ordering::Relaxed);
            while current(v, sec) < want {
                match c.compare_exchange_weak(
                    v,
                    u64::from(sec) << 32 | u64::from(want),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now_v) => v = now_v,
                }
            }
        }
        want
    }
}

/// Largest count a counter holds.
const COUNT_MAX: u32 = u32::MAX - 1;

/// A counter's count for second `sec` (0 when it was last set in another).
#[inline]
fn current(v: u64, sec: u32) -> u32 {
    if (v >> 32) as u32 == sec { v as u32 } else { 0 }
}

/// A 64-bit finaliser (from SplitMix64): every input bit moves every
/// output bit, so the set index and tag are independent.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
