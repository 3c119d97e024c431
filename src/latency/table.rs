//! The storage under the latency table: rows sorted by (network, key) in
//! [`SHARDS`] copy-on-write shards. Readers load one shard (`ArcSwap`, no
//! lock, no allocation) and binary-search it; the one writer (under
//! [`super::Latency`]'s writer lock) builds a shard's next version beside
//! the current one and swaps it in, so a write costs a copy of one shard
//! (about 1/4096 of the table) and readers never wait.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

/// Shards of a table: a power of two. 4096 keeps a shard of a full table
/// (1,000,000 networks x 4 endpoints, 20 bytes a row) near 20 KB, so a
/// write copies that much.
pub const SHARDS: usize = 4096;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// A row of a table: ordered by network, then by its key within the
/// network (an endpoint id, or a client network).
pub trait Row: Copy {
    /// The network the row belongs to ([`crate::netblock::Network::key`]).
    fn net(&self) -> u64;
    /// The row's key within its network.
    fn sub(&self) -> u64;
}

/// The shard holding `net`'s rows (a multiplicative hash: network keys
/// are sequential in their low bits).
#[inline]
pub fn shard_of(net: u64) -> usize {
    (net.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARD_BITS)) as usize
}

/// Rows in shards.
pub struct Sharded<R> {
    shards: Box<[ArcSwap<Vec<R>>]>,
    /// Bytes the rows' vectors hold (capacity), kept by [`Sharded::store`].
    held: std::sync::atomic::AtomicUsize,
}

impl<R: Row> Default for Sharded<R> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS)
                .map(|_| ArcSwap::from_pointee(Vec::new()))
                .collect(),
            held: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// One network's rows, as loaded: holds its shard's version alive.
pub struct Rows<R> {
    shard: Guard<Arc<Vec<R>>>,
    lo: usize,
    hi: usize,
}

impl<R> Rows<R> {
    /// The rows, ordered by key.
    #[inline]
    pub fn as_slice(&self) -> &[R] {
        &self.shard[self.lo..self.hi]
    }
}

/// Where `net`'s rows are in a sorted shard.
#[inline]
pub fn range_of<R: Row>(rows: &[R], net: u64) -> (usize, usize) {
    let lo = rows.partition_point(|r| r.net() < net);
    let hi = lo + rows[lo..].partition_point(|r| r.net() == net);
    (lo, hi)
}

impl<R: Row> Sharded<R> {
    /// `net`'s rows (lock-free, allocation-free).
    #[inline]
    pub fn rows(&self, net: u64) -> Rows<R> {
        let shard = self.shards[shard_of(net)].load();
        let (lo, hi) = range_of(&shard, net);
        Rows { shard, lo, hi }
    }

    /// The current version of shard `i` (for writers and walkers).
    pub fn shard(&self, i: usize) -> Arc<Vec<R>> {
        self.shards[i].load_full()
    }

    /// Replaces shard `i` (the caller holds the writer lock).
    pub fn store(&self, i: usize, mut rows: Vec<R>) {
        debug_assert!(
            rows.windows(2)
                .all(|w| (w[0].net(), w[0].sub()) < (w[1].net(), w[1].sub()))
        );
        if rows.capacity() > rows.len() + rows.len() / 8 + 4 {
            rows.shrink_to_fit();
        }
        let size = std::mem::size_of::<R>();
        let new = rows.capacity() * size;
        let old = self.shards[i].swap(Arc::new(rows)).capacity() * size;
        use std::sync::atomic::Ordering::Relaxed;
        if new >= old {
            self.held.fetch_add(new - old, Relaxed);
        } else {
            self.held.fetch_sub(old - new, Relaxed);
        }
    }

    /// Bytes the rows hold (capacity, not length).
    pub fn bytes(&self) -> usize {
        // Each shard: its ArcSwap, and the Arc's allocation (two counts
        // and the Vec header).
        self.held.load(std::sync::atomic::Ordering::Relaxed)
            + SHARDS * (std::mem::size_of::<ArcSwap<Vec<R>>>() + 16 + std::mem::size_of::<Vec<R>>())
    }

    /// Every row, shard by shard.
    pub fn for_each(&self, mut f: impl FnMut(&R)) {
        for s in self.shards.iter() {
            for r in s.load().iter() {
                f(r);
            }
        }
    }
}

/// Networks in a sorted shard.
pub fn networks<R: Row>(rows: &[R]) -> usize {
    let mut n = 0;
    let mut last = None;
    for r in rows {
        if last != Some(r.net()) {
            n += 1;
            last = Some(r.net());
        }
    }
    n
}

/// The network of `rows` (sorted) with the least `score` summed over its
/// rows, skipping `keep`: the one eviction drops.
pub fn weakest<R: Row>(rows: &[R], keep: u64, score: impl Fn(&R) -> f64) -> Option<u64> {
    let mut best: Option<(f64, u64)> = None;
    let mut i = 0;
    while i < rows.len() {
        let net = rows[i].net();
        let mut s = 0.0;
        while i < rows.len() && rows[i].net() == net {
            s += score(&rows[i]);
            i += 1;
        }
        if net != keep && best.is_none_or(|(b, _)| s < b) {
            best = Some((s, net));
        }
    }
    best.map(|(_, n)| n)
}

/// Removes `net`'s rows from `rows` (sorted).
pub fn remove_network<R: Row>(rows: &mut Vec<R>, net: u64) {
    let (lo, hi) = range_of(rows, net);
    rows.drain(lo..hi);
}
