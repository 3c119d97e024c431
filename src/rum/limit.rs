//! Beacons (and token requests) a second per client network: a token
//! bucket per network in a fixed table, so memory is the same whatever
//! the number of networks. Networks that share a slot share its bucket
//! until one of them takes it over (the older is forgotten): a flood from
//! many networks can reset others' buckets, never raise anyone's rate.

use crate::netblock::Network;

/// Buckets in the table (24 bytes each: 384 KiB).
pub const SLOTS: usize = 16_384;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// The network's key plus one (0: empty).
    key: u64,
    /// Tokens, in thousandths.
    milli: u64,
    /// When it was last filled, ms.
    at_ms: u64,
}

/// The table.
#[derive(Debug)]
pub struct Limiter {
    per_second: u64,
    buckets: Box<[Bucket]>,
}

/// What a request is: beacons and token requests have buckets of their
/// own (a page view makes one of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `POST /rum/beacon`.
    Beacon,
    /// `GET /rum/config`.
    Token,
}

impl Limiter {
    /// `per_second` for each network, a second's worth of burst.
    pub fn new(per_second: u32) -> Limiter {
        Limiter {
            per_second: u64::from(per_second.max(1)),
            buckets: vec![Bucket::default(); SLOTS].into_boxed_slice(),
        }
    }

    /// Takes one from `net`'s bucket at `now_ms`: false when it is empty.
    pub fn allow(&mut self, net: Network, kind: Kind, now_ms: u64) -> bool {
        // Bit 62 is free in both families' keys.
        let key = match kind {
            Kind::Beacon => net.key(),
            Kind::Token => net.key() ^ (1 << 62),
        }
        .wrapping_add(1);
        let b = &mut self.buckets[mix(key) as usize % SLOTS];
        let full = self.per_second * 1000;
        if b.key != key {
            *b = Bucket {
                key,
                milli: full,
                at_ms: now_ms,
            };
        }
        let refill = now_ms.saturating_sub(b.at_ms) * self.per_second;
        b.milli = (b.milli + refill).min(full);
        b.at_ms = now_ms;
        if b.milli < 1000 {
            return false;
        }
        b.milli -= 1000;
        true
    }
}

/// Every bit of `x` moves the slot (splitmix64's finalizer): the
/// families and the two kinds differ in their top bits.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_gets_its_rate_and_no_more() {
        let mut l = Limiter::new(5);
        let n: Network = "192.0.2.0/24".parse().unwrap();
        let other: Network = "198.51.100.0/24".parse().unwrap();
        let allowed = (0..20).filter(|_| l.allow(n, Kind::Beacon, 1000)).count();
        assert_eq!(allowed, 5);
        assert!(l.allow(other, Kind::Beacon, 1000), "others are not limited");
        assert!(
            l.allow(n, Kind::Token, 1000),
            "tokens have their own bucket"
        );
        assert!(!l.allow(n, Kind::Beacon, 1100));
        assert!(l.allow(n, Kind::Beacon, 1200), "one back after 200 ms");
        assert_eq!(
            (0..20).filter(|_| l.allow(n, Kind::Beacon, 60_000)).count(),
            5
        );
    }
}
