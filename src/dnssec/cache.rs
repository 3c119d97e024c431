//! The signature cache: RRSIG records already made, looked up on the
//! answer path without a lock or an allocation.
//!
//! A fixed array of slots, each an [`ArcSwapOption`]: a lookup is two
//! atomic loads and a byte comparison, and memory is bounded by the slot
//! count whatever names are asked for. The cache is 2-way set associative:
//! a key's hash picks slot `h & mask` and its neighbour `(h & mask) ^ 1`;
//! a new signature fills an empty one of the two, else replaces the one
//! due for refresh first. Entries are never removed, only replaced, and a
//! stale one is simply a miss.
//!
//! The hash is SipHash-1-3 keyed with a random per-process key, so no one
//! can choose names that all land in the same pair of slots and keep
//! evicting each other (which would turn every answer into a signature).
//!
//! Lookups allocate nothing (after arc-swap's one-off per-thread set-up);
//! this example is also the test of that (a crate of its own, so that it
//! can count allocations):
//!
//! ```standalone_crate
//! # #[global_allocator]
//! # static ALLOC: dhat::Alloc = dhat::Alloc;
//! # fn main() {
//! use switchyard::dnssec::cache::SigCache;
//!
//! let cache = SigCache::new(1024);
//! let key = b"\x07todoapi\x02tm\x07example\x04test\x00\x00\x01";
//! let h = SigCache::hash(key);
//! let now = 1_800_000_000;
//! let mut answer = Vec::with_capacity(512);
//! assert!(!cache.with(h, key, now, |rr| answer.extend_from_slice(rr))); // miss: sign
//! cache.insert(h, key, vec![7; 100], now + 3600);
//! assert!(cache.with(h, key, now, |rr| answer.extend_from_slice(rr)));
//! assert_eq!(answer, [7; 100]);
//!
//! # let _profiler = dhat::Profiler::builder().testing().build();
//! # let before = dhat::HeapStats::get().total_blocks;
//! for _ in 0..1000 {
//!     answer.clear();
//!     assert!(cache.with(SigCache::hash(key), key, now, |rr| answer.extend_from_slice(rr)));
//!     assert!(!cache.with(h, b"other", now, |rr| answer.extend_from_slice(rr)));
//!     assert_eq!(answer.len(), 100);
//! }
//! # assert_eq!(dhat::HeapStats::get().total_blocks, before, "a lookup allocated");
//! # }
//! ```

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use siphasher::sip::SipHasher13;

/// Fewest slots a cache has.
const MIN_SLOTS: usize = 64;

/// Most slots a cache has (a mistyped capacity cannot exhaust memory:
/// 2^24 empty slots are 128 MiB).
const MAX_SLOTS: usize = 1 << 24;

/// `capacity` rounded up to a power of two, within the limits.
fn slot_count(capacity: usize) -> usize {
    capacity
        .clamp(MIN_SLOTS, MAX_SLOTS)
        .checked_next_power_of_two()
        .map_or(MAX_SLOTS, |n| n.min(MAX_SLOTS))
}

/// One cached signature.
pub struct Entry {
    /// [`hash`] of `key`, compared before the key bytes.
    hash: u64,
    /// What was signed, as the caller identifies it (owner, type, and
    /// whatever else makes the RRset distinct).
    key: Box<[u8]>,
    /// The RRSIG resource record without its owner (see `rrsig::sign_rrset`).
    record: Box<[u8]>,
    /// Unix seconds from which the entry is a miss and is signed again.
    refresh_at: u32,
}

impl Entry {
    /// The RRSIG record bytes.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// Unix seconds from which this entry no longer counts as a hit.
    pub fn refresh_at(&self) -> u32 {
        self.refresh_at
    }
}

/// The per-process SipHash key, drawn once from the operating system.
fn sip() -> &'static SipHasher13 {
    static SIP: OnceLock<SipHasher13> = OnceLock::new();
    SIP.get_or_init(|| {
        let mut seed = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).is_err() {
            // No system randomness at all (never seen on Linux).
            let mut rng = fastrand::Rng::new();
            rng.fill(&mut seed);
        }
        let (k0, k1) = seed.split_at(8);
        let word = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        SipHasher13::new_with_keys(word(k0), word(k1))
    })
}

/// A bounded cache of RRSIG records, shared by every answering thread.
pub struct SigCache {
    /// The answer path reads; whoever signs after a miss writes.
    slots: Box<[ArcSwapOption<Entry>]>,
    /// `slots.len() - 1` (the length is a power of two).
    mask: usize,
    /// Lookups that found a fresh entry. Read by metrics.
    hits: AtomicU64,
    /// Lookups that did not (each one a signature to make). Read by metrics.
    misses: AtomicU64,
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, misses, capacity) = self.stats();
        // (`len` would walk every slot: not for a Debug line.)
        f.debug_struct("SigCache")
            .field("capacity", &capacity)
            .field("hits", &hits)
            .field("misses", &misses)
            .finish()
    }
}

impl SigCache {
    /// A cache of `capacity` signatures, rounded up to a power of two (at
    /// least 64, at most 2^24).
    pub fn new(capacity: usize) -> SigCache {
        let n = slot_count(capacity);
        let slots: Box<[ArcSwapOption<Entry>]> = (0..n).map(|_| ArcSwapOption::empty()).collect();
        SigCache {
            slots,
            mask: n - 1,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The hash a key is filed under: keyed SipHash-1-3 (random per
    /// process, so never store it).
    pub fn hash(key: &[u8]) -> u64 {
        sip().hash(key)
    }

    /// The number of slots a cache asked for `capacity` has: so a reload can
    /// tell whether the running cache already has the wanted size.
    pub fn capacity_for(capacity: usize) -> usize {
        slot_count(capacity)
    }

    /// The number of slots: the most signatures it holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The two slots `hash` may live in.
    fn pair(&self, hash: u64) -> [usize; 2] {
        let i = (hash as usize) & self.mask;
        [i, i ^ 1]
    }

    /// Calls `f` with the cached RRSIG record for `key` (whose
    /// [`SigCache::hash`] is `hash`) if there is one that is fresh at `now`
    /// (Unix seconds), and returns true; false is a miss. Lock-free and
    /// allocation-free; `f` runs while the entry is pinned, so it should
    /// only copy the bytes out.
    pub fn with(&self, hash: u64, key: &[u8], now: u32, f: impl FnOnce(&[u8])) -> bool {
        for i in self.pair(hash) {
            let guard = self.slots[i].load();
            if let Some(e) = guard.as_deref()
                && e.hash == hash
                && *e.key == *key
                && now < e.refresh_at
            {
                self.hits.fetch_add(1, Ordering::Relaxed);
                f(&e.record);
                return true;
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Stores a signature made after a miss: into the slot that already
    /// holds `key` (an older signature, or one a concurrent miss just
    /// made), else an empty one of its two, else over the one due for
    /// refresh first.
    pub fn insert(&self, hash: u64, key: &[u8], record: Vec<u8>, refresh_at: u32) {
        let [a, b] = self.pair(hash);
        let (ga, gb) = (self.slots[a].load(), self.slots[b].load());
        let same = |g: &Option<Arc<Entry>>| {
            g.as_deref()
                .is_some_and(|e| e.hash == hash && *e.key == *key)
        };
        let slot = if same(&ga) {
            a
        } else if same(&gb) {
            b
        } else {
            match (ga.as_deref(), gb.as_deref()) {
                (None, _) => a,
                (_, None) => b,
                (Some(x), Some(y)) if y.refresh_at < x.refresh_at => b,
                (Some(_), Some(_)) => a,
            }
        };
        drop((ga, gb));
        self.slots[slot].store(Some(Arc::new(Entry {
            hash,
            key: key.into(),
            record: record.into_boxed_slice(),
            refresh_at,
        })));
    }

    /// Hits, misses, and the number of slots (the most entries it holds).
    pub fn stats(&self) -> (u64, u64, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.slots.len(),
        )
    }

    /// How many slots hold an entry (fresh or not). Walks every slot: for
    /// metrics at scrape time and tests, not the answer path.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.load().is_some()).count()
    }

    /// True when nothing was ever cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u32 = 1_800_000_000;

    fn get(c: &SigCache, hash: u64, key: &[u8], now: u32) -> Option<Vec<u8>> {
        let mut found = None;
        let hit = c.with(hash, key, now, |r| found = Some(r.to_vec()));
        assert_eq!(hit, found.is_some());
        found
    }

    #[test]
    fn capacity_is_a_power_of_two_of_at_least_64() {
        assert_eq!(SigCache::new(0).capacity(), 64);
        assert_eq!(SigCache::new(65).capacity(), 128);
        assert_eq!(SigCache::new(1024).stats().2, 1024);
        assert_eq!(SigCache::capacity_for(1000), 1024);
        assert_eq!(slot_count(MAX_SLOTS - 1), MAX_SLOTS);
        assert_eq!(slot_count(usize::MAX), MAX_SLOTS);
    }

    #[test]
    fn hit_miss_and_expiry() {
        let c = SigCache::new(64);
        let k = b"key";
        let h = SigCache::hash(k);
        assert_eq!(
            SigCache::hash(k),
            h,
            "the hash is stable within the process"
        );
        assert_eq!(get(&c, h, k, NOW), None);
        c.insert(h, k, vec![1, 2, 3], NOW + 10);
        assert_eq!(get(&c, h, k, NOW), Some(vec![1, 2, 3]));
        assert_eq!(get(&c, h, k, NOW + 9).map(|r| r.len()), Some(3));
        // Due for refresh: a miss, and the new signature replaces it in place.
        assert_eq!(get(&c, h, k, NOW + 10), None);
        c.insert(h, k, vec![4], NOW + 20);
        assert_eq!(get(&c, h, k, NOW + 10), Some(vec![4]));
        assert_eq!(c.len(), 1);
        assert_eq!(c.stats(), (3, 2, 64));
    }

    #[test]
    fn the_same_slot_with_another_key_is_a_miss() {
        let c = SigCache::new(64);
        // Same hash (so the same slots), different bytes: never confused.
        c.insert(42, b"one", vec![1], NOW + 10);
        assert_eq!(get(&c, 42, b"two", NOW), None);
        assert_eq!(get(&c, 42, b"on", NOW), None);
        assert_eq!(get(&c, 42, b"one", NOW), Some(vec![1]));
        // Both ways hold one key each; a third evicts the one due first.
        c.insert(42, b"two", vec![2], NOW + 5);
        assert_eq!(get(&c, 42, b"one", NOW), Some(vec![1]));
        assert_eq!(get(&c, 42, b"two", NOW), Some(vec![2]));
        c.insert(43, b"three", vec![3], NOW + 30); // 43 & 63 = 43 = 42 ^ 1
        assert_eq!(get(&c, 42, b"two", NOW), None);
        assert_eq!(get(&c, 42, b"one", NOW), Some(vec![1]));
        assert_eq!(get(&c, 43, b"three", NOW), Some(vec![3]));
        // A hash that differs but picks the same slot is a miss too.
        assert_eq!(get(&c, 42 + 64, b"one", NOW), None);
    }

    #[test]
    fn memory_is_bounded() {
        let c = SigCache::new(100);
        let cap = c.stats().2;
        assert_eq!(cap, 128);
        for i in 0..10 * cap {
            let k = format!("name{i}");
            c.insert(
                SigCache::hash(k.as_bytes()),
                k.as_bytes(),
                vec![0; 100],
                NOW + 60,
            );
        }
        assert!(c.len() <= cap);
        // Keyed hashing spreads them: nearly every slot is used.
        assert!(c.len() > cap * 9 / 10, "{} of {cap}", c.len());
    }

    #[test]
    fn concurrent_use() {
        let c = Arc::new(SigCache::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        let k = format!("k{}", (i * 7 + t) % 300);
                        let h = SigCache::hash(k.as_bytes());
                        let found = get(&c, h, k.as_bytes(), NOW);
                        match found {
                            Some(r) => assert_eq!(r, k.as_bytes()),
                            None => c.insert(h, k.as_bytes(), k.clone().into_bytes(), NOW + 1),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (hits, misses, cap) = c.stats();
        assert_eq!(hits + misses, 80_000);
        assert!(c.len() <= cap);
    }
}
