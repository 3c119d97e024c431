//! Space-Saving (Metwally, Agrawal and El Abbadi, 2005): the heaviest keys
//! of a stream, counted in at most `k` counters whatever the number of
//! distinct keys.
//!
//! Each counter holds a key, its count and the most that count can
//! overstate it (`error`). A key already counted adds to its counter; a
//! new key takes a free counter, or, when all `k` are taken, the counter
//! with the smallest count, inheriting that count as its error. So every
//! count is at least the key's true count and at most `N / k` more (`N`:
//! everything added), and every key whose true count is above `N / k` is
//! held. The counters form a binary min-heap (the smallest at the root)
//! with an index from key to position: adding costs one hash probe and
//! O(log k) swaps.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// One counter: a key, its estimated count, and how much of that count
/// may belong to the keys it replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter<K> {
    /// The key.
    pub key: K,
    /// At least its true count; at most `error` more.
    pub count: u64,
    /// Most the count overstates the truth.
    pub error: u64,
}

/// The heaviest keys of a stream in at most `k` counters.
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    k: usize,
    /// A min-heap on `count`.
    heap: Vec<Counter<K>>,
    /// Key -> its position in `heap`.
    at: FxHashMap<K, u32>,
    /// Everything added (`N`).
    total: u64,
}

impl<K: Copy + Eq + Hash> SpaceSaving<K> {
    /// An empty sketch of at most `k` counters (at least one). Counters
    /// are allocated as keys arrive, up to `k`.
    pub fn new(k: usize) -> SpaceSaving<K> {
        SpaceSaving {
            k: k.max(1),
            heap: Vec::new(),
            at: FxHashMap::default(),
            total: 0,
        }
    }

    /// Counts `n` occurrences of `key`.
    pub fn add(&mut self, key: K, n: u64) {
        self.total += n;
        if let Some(&i) = self.at.get(&key) {
            let i = i as usize;
            self.heap[i].count += n;
            self.sift_down(i);
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Counter {
                key,
                count: n,
                error: 0,
            });
            let i = self.heap.len() - 1;
            self.at.insert(key, i as u32);
            self.sift_up(i);
            return;
        }
        // Every counter taken: the smallest is given to the new key.
        let min = self.heap[0];
        self.at.remove(&min.key);
        self.heap[0] = Counter {
            key,
            count: min.count + n,
            error: min.count,
        };
        self.at.insert(key, 0);
        self.sift_down(0);
    }

    /// Everything added (`N`).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most a key not held can have been counted: the smallest count
    /// when every counter is taken, else 0 (every key seen is held).
    pub fn floor(&self) -> u64 {
        if self.heap.len() < self.k {
            0
        } else {
            self.heap.first().map_or(0, |c| c.count)
        }
    }

    /// The counter of `key`, if held.
    pub fn get(&self, key: &K) -> Option<Counter<K>> {
        self.at.get(key).map(|&i| self.heap[i as usize])
    }

    /// The counters, in no order.
    pub fn counters(&self) -> &[Counter<K>] {
        &self.heap
    }

    /// Bytes held at most, once all `k` counters are taken: the heap and
    /// the index (a hashbrown table of `(K, u32)` with one control byte per
    /// bucket, at most 8/7 buckets per entry, rounded to a power of two).
    pub fn bytes_at_most(k: usize) -> usize {
        let buckets = (k.max(1) * 8 / 7 + 1).next_power_of_two();
        k * std::mem::size_of::<Counter<K>>()
            + buckets * (std::mem::size_of::<(K, u32)>() + 1)
            + std::mem::size_of::<Self>()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Counter<K>>()
            + self.at.capacity() * (std::mem::size_of::<(K, u32)>() + 1)
            + std::mem::size_of::<Self>()
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].count <= self.heap[i].count {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < n && self.heap[l].count < self.heap[least].count {
                least = l;
            }
            if r < n && self.heap[r].count < self.heap[least].count {
                least = r;
            }
            if least == i {
                return;
            }
            self.swap(i, least);
            i = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.at.insert(self.heap[a].key, a as u32);
        self.at.insert(self.heap[b].key, b as u32);
    }
}

/// The keys of several sketches (consecutive panes of one window) added
/// together, heaviest first, at most `limit`: each key's count is the sum
/// of its counts where held, and its error the sum of its errors where
/// held and of each other pane's [`SpaceSaving::floor`] (what it may have
/// had there unseen). Each pane adds at most `N_pane / k` to the error, so
/// the merged error is at most `N / k` for the window's `N`.
pub fn merge<'a, K: Copy + Eq + Hash + Ord + 'a>(
    panes: impl Iterator<Item = &'a SpaceSaving<K>> + Clone,
    limit: usize,
) -> Vec<Counter<K>> {
    let mut keys: FxHashMap<K, Counter<K>> = FxHashMap::default();
    for pane in panes.clone() {
        for c in pane.counters() {
            keys.entry(c.key).or_insert(Counter {
                key: c.key,
                count: 0,
                error: 0,
            });
        }
    }
    for pane in panes {
        let floor = pane.floor();
        for (key, m) in keys.iter_mut() {
            match pane.get(key) {
                Some(c) => {
                    m.count += c.count;
                    m.error += c.error;
                }
                None => m.error += floor,
            }
        }
    }
    let mut out: Vec<Counter<K>> = keys.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with a few heavy keys among many light ones: every key
    /// above N/k is held, and every count is within N/k above the truth.
    #[test]
    fn counts_are_within_n_over_k() {
        let k = 32;
        let mut s = SpaceSaving::new(k);
        let mut truth: FxHashMap<u32, u64> = FxHashMap::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50_000 {
            // 40 % to five heavy keys, the rest spread over 10,000.
            let key = if rng.u8(..100) < 40 {
                rng.u32(..5)
            } else {
                rng.u32(100..10_100)
            };
            let n = rng.u64(1..4);
            s.add(key, n);
            *truth.entry(key).or_default() += n;
        }
        let total: u64 = truth.values().sum();
        assert_eq!(s.total(), total);
        assert_eq!(s.counters().len(), k);
        let bound = total / k as u64;
        for c in s.counters() {
            let t = truth[&c.key];
            assert!(c.count >= t, "{c:?} below the truth {t}");
            assert!(c.count - t <= c.error, "{c:?}: over by more than its error");
            assert!(c.error <= bound, "{c:?}: error above N/k = {bound}");
        }
        for (key, &t) in &truth {
            if t > bound {
                assert!(s.get(key).is_some(), "{key} ({t} > N/k) not held");
            }
        }
        for heavy in 0..5 {
            assert!(s.get(&heavy).is_some());
        }
    }

    #[test]
    fn merged_panes_keep_the_bound() {
        let k = 8;
        let mut panes = [
            SpaceSaving::new(k),
            SpaceSaving::new(k),
            SpaceSaving::new(k),
        ];
        let mut truth: FxHashMap<u32, u64> = FxHashMap::default();
        let mut rng = fastrand::Rng::with_seed(3);
        for (p, pane) in panes.iter_mut().enumerate() {
            for _ in 0..3000 {
                let key = if rng.bool() {
                    p as u32
                } else {
                    rng.u32(10..200)
                };
                pane.add(key, 1);
                *truth.entry(key).or_default() += 1;
            }
        }
        let total: u64 = truth.values().sum();
        let merged = merge(panes.iter(), 100);
        assert!(merged.windows(2).all(|w| w[0].count >= w[1].count));
        for c in &merged {
            let t = truth[&c.key];
            assert!(c.count.abs_diff(t) <= c.error, "{c:?} vs {t}");
            assert!(c.error <= total / k as u64, "{c:?}");
        }
        // Each pane's heavy key comes first.
        let top: Vec<u32> = merged.iter().take(3).map(|c| c.key).collect();
        for p in 0..3 {
            assert!(top.contains(&p), "{top:?}");
        }
        assert_eq!(merge(panes.iter(), 2).len(), 2);
    }

    #[test]
    fn memory_is_fixed_by_k() {
        let mut s = SpaceSaving::new(16);
        for key in 0..100_000u64 {
            s.add(key, 1);
        }
        assert_eq!(s.counters().len(), 16);
        assert!(s.bytes() <= SpaceSaving::<u64>::bytes_at_most(16) * 2);
        // The index points at every counter.
        for (i, c) in s.counters().iter().enumerate() {
            assert_eq!(s.at[&c.key] as usize, i);
        }
    }
}
