//! The rows of the learned table and how a measurement updates them.

use std::sync::atomic::Ordering;

use super::table::{self, Row};
use super::{ALPHA_MIN, CLAMP, LN_SCALE, MAX_ENDPOINTS_PER_NETWORK, Policy, Record, Stats};
use crate::netblock::Network;
/// A learned row: 20 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct Sample {
    pub(super) net: [u32; 2],
    pub(super) ep: u32,
    /// Unix seconds of the newest sample.
    pub(super) newest: u32,
    /// ln(ms) x [`LN_SCALE`].
    pub(super) ln: i16,
    /// Decayed count at `newest`, as a bfloat16 (the top half of an f32).
    pub(super) weight: u16,
}

impl Row for Sample {
    fn net(&self) -> u64 {
        join(self.net)
    }
    fn sub(&self) -> u64 {
        u64::from(self.ep)
    }
}

/// A resolver network's client network: 24 bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct Mapping {
    pub(super) resolver: [u32; 2],
    pub(super) client: [u32; 2],
    pub(super) newest: u32,
    pub(super) weight: f32,
}

impl Row for Mapping {
    fn net(&self) -> u64 {
        join(self.resolver)
    }
    fn sub(&self) -> u64 {
        join(self.client)
    }
}

pub(super) fn split(k: u64) -> [u32; 2] {
    [(k >> 32) as u32, k as u32]
}

pub(super) fn join(p: [u32; 2]) -> u64 {
    (u64::from(p[0]) << 32) | u64::from(p[1])
}

pub(super) fn bf16(w: f64) -> u16 {
    let bits = (w as f32).to_bits();
    // Round to nearest; saturates below infinity.
    (bits.saturating_add(0x8000) >> 16).min(0x7f7f) as u16
}

pub(super) fn from_bf16(w: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(w) << 16))
}

pub(super) fn ln_fixed(ms: f64) -> i16 {
    (ms.max(1e-3).ln() * LN_SCALE)
        .round()
        .clamp(-32000.0, 32000.0) as i16
}

/// Network key back to the network.
pub fn network_of_key(k: u64) -> Network {
    if k & (1 << 63) != 0 {
        Network::V4((k & 0xffff_ffff) as u32)
    } else {
        Network::V6(k)
    }
}

/// A writable copy of `rows` with room for `more` inserts.
pub(super) fn clone_with_room<R: Copy>(rows: &[R], more: usize) -> Vec<R> {
    let mut v = Vec::with_capacity(rows.len() + more);
    v.extend_from_slice(rows);
    v
}

/// A weight `w` as of `newest`, plus `n` samples taken at `at`: the sum,
/// as of the later of the two, and that time.
pub(super) fn merge_weight(policy: &Policy, w: f64, newest: u32, n: f64, at: u32) -> (f64, u32) {
    if at >= newest {
        (w * policy.decay(at - newest) + n, at)
    } else {
        (w + n * policy.decay(newest - at), newest)
    }
}

/// Applies one record to a shard's rows; returns the change in its
/// number of networks.
pub(super) fn apply(
    policy: &Policy,
    rows: &mut Vec<Sample>,
    r: &Record,
    nets: usize,
    stats: &Stats,
) -> i64 {
    let key = r.net.key();
    let x = r.rtt_ms.max(1e-3).ln();
    let n = f64::from(r.samples.clamp(1, 1_000_000));
    let (lo, hi) = table::range_of(rows, key);
    if let Ok(i) = rows[lo..hi].binary_search_by_key(&r.ep, |s| s.ep) {
        let s = &mut rows[lo + i];
        let m = f64::from(s.ln) / LN_SCALE;
        let w = from_bf16(s.weight);
        // This sample's weight and the old one's, at the later time.
        let (old, new) = if r.at >= s.newest {
            (w * policy.decay(r.at - s.newest), n)
        } else {
            (w, n * policy.decay(s.newest - r.at))
        };
        let x = if old >= 8.0 {
            x.clamp(m - CLAMP, m + CLAMP)
        } else {
            x
        };
        let alpha = (new / (old + new)).max(1.0 - (1.0 - ALPHA_MIN).powf(new.min(1e6)));
        s.ln = ((m + alpha * (x - m)) * LN_SCALE)
            .round()
            .clamp(-32000.0, 32000.0) as i16;
        s.weight = bf16(old + new);
        s.newest = s.newest.max(r.at);
        return 0;
    }
    let mut added = 0;
    let now = r.at;
    let score = |s: &Sample| from_bf16(s.weight) * policy.decay(now.saturating_sub(s.newest));
    if lo == hi {
        if nets >= policy.per_shard()
            && let Some(gone) = table::weakest(rows, key, score)
        {
            table::remove_network(rows, gone);
            stats.evicted.fetch_add(1, Ordering::Relaxed);
            added -= 1;
        }
        added += 1;
    } else if hi - lo >= MAX_ENDPOINTS_PER_NETWORK {
        let weakest = (lo..hi)
            .min_by(|&a, &b| score(&rows[a]).total_cmp(&score(&rows[b])))
            .unwrap_or(lo);
        rows.remove(weakest);
    }
    let (lo, hi) = table::range_of(rows, key);
    let at = lo + rows[lo..hi].partition_point(|s| s.ep < r.ep);
    rows.insert(
        at,
        Sample {
            net: split(key),
            ep: r.ep,
            newest: r.at,
            ln: ln_fixed(r.rtt_ms),
            weight: bf16(n),
        },
    );
    added
}
