//! Which resolver asked for which real-user-measurement token: a fixed
//! table of the latest lookups of names under `rum.zone` (a leaf: the DNS
//! answer path writes it, the beacon handler and the cluster task read
//! it).
//!
//! The script of `[rum]` loads one URL under a per-beacon name,
//! `<token>.<rum.zone>`, so the visitor's resolver asks Switchyard for it;
//! the answer path records (token → the resolver's network, the ECS
//! network) here, and the beacon that carries the same token ties that
//! resolver to the visitor's network.
//!
//! 4,096 slots of plain atomics, a slot chosen by the token's nonce: no
//! lock, no allocation, a write is a handful of relaxed stores. Each slot
//! is a seqlock: a writer that finds it being written by another thread
//! skips (a sighting lost under contention costs one mapping sample,
//! never an answer); a reader that sees it change under it retries.
//! Lookups of other tokens overwrite older ones, so a sighting lives about
//! as long as 4,096 further lookups take; beacons arrive within seconds.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::netblock::Network;

/// Slots in the table (a power of two).
pub const SLOTS: usize = 4096;
/// Bytes in a token (its lowercase hex is the DNS label: 48 characters).
pub const TOKEN_LEN: usize = 24;

/// A token as it travels: `expiry (4) | nonce (8) | MAC (12)`.
pub type Token = [u8; TOKEN_LEN];

/// What one lookup of a token name tells: who asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The resolver's network (/24, /56): the address the query came from.
    pub resolver: Network,
    /// The network of the query's ECS option, when it named one (/24, /56
    /// or longer source prefix).
    pub ecs: Option<Network>,
    /// When it was recorded, Unix milliseconds.
    pub at_ms: u64,
    /// Recorded from gossip (another node answered the lookup), not by
    /// this node's answer path: not gossiped again.
    pub remote: bool,
}

impl Sighting {
    /// The network whose answers this resolver path is routed by: the ECS
    /// network when the query carried one, else the resolver's.
    pub fn routed_by(&self) -> Network {
        self.ecs.unwrap_or(self.resolver)
    }
}

/// One slot: a seqlock over the token, the sighting and its time.
#[derive(Debug, Default)]
struct Slot {
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    token: [AtomicU64; 3],
    resolver: AtomicU64,
    /// The ECS network's key, or [`NONE`].
    ecs: AtomicU64,
    /// Unix ms, with [`REMOTE`] set for gossiped sightings.
    at: AtomicU64,
}

/// No ECS network (no network key has all bits set: IPv6 keys use 56).
const NONE: u64 = u64::MAX;
/// The top bit of `at`: a sighting learned from gossip.
const REMOTE: u64 = 1 << 63;

/// The table. Written by the answer path ([`Sightings::record`]) and the
/// cluster task ([`Sightings::learn`]); read by the beacon handler
/// ([`Sightings::find`]) and the cluster task ([`Sightings::local_since`]).
#[derive(Debug)]
pub struct Sightings {
    slots: Box<[Slot]>,
}

impl Default for Sightings {
    fn default() -> Self {
        Sightings {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

/// A token's three words.
fn words(t: &Token) -> [u64; 3] {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&t[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    [w(0), w(1), w(2)]
}

fn unwords(w: [u64; 3]) -> Token {
    let mut t = [0u8; TOKEN_LEN];
    for (i, x) in w.iter().enumerate() {
        t[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
    }
    t
}

/// The network a [`Network::key`] was made from.
pub fn network_of_key(key: u64) -> Network {
    if key & (1 << 63) != 0 {
        Network::V4((key & 0xffff_ffff) as u32)
    } else {
        Network::V6(key)
    }
}

/// The token a DNS label spells: exactly 48 hex digits, any case. `None`
/// for anything else (no token name; not recorded).
#[inline]
pub fn token_of_label(label: &[u8]) -> Option<Token> {
    if label.len() != TOKEN_LEN * 2 {
        return None;
    }
    let mut t = [0u8; TOKEN_LEN];
    for (i, pair) in label.chunks_exact(2).enumerate() {
        t[i] = (hex(pair[0])? << 4) | hex(pair[1])?;
    }
    Some(t)
}

#[inline]
fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Sightings {
    /// The slot of a token: by its nonce (random per token).
    #[inline]
    fn slot(&self, t: &Token) -> &Slot {
        let mut b = [0u8; 8];
        b.copy_from_slice(&t[4..12]);
        &self.slots[u64::from_le_bytes(b) as usize & (SLOTS - 1)]
    }

    /// Records a lookup of `token` by the resolver at `resolver`, with the
    /// query's ECS network: on the answer path (no lock, no allocation).
    #[inline]
    pub fn record(&self, token: &Token, resolver: IpAddr, ecs: Option<Network>, now_ms: u64) {
        self.write(token, Network::of(resolver), ecs, now_ms & !REMOTE);
    }

    /// Records a sighting another node gossiped (not gossiped again).
    pub fn learn(&self, token: &Token, s: &Sighting) {
        if self.find(token).is_some() {
            return;
        }
        self.write(token, s.resolver, s.ecs, s.at_ms | REMOTE);
    }

    #[inline]
    fn write(&self, token: &Token, resolver: Network, ecs: Option<Network>, at: u64) {
        let slot = self.slot(token);
        let seq = slot.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || slot
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        std::sync::atomic::fence(Ordering::Release);
        for (w, x) in slot.token.iter().zip(words(token)) {
            w.store(x, Ordering::Relaxed);
        }
        slot.resolver.store(resolver.key(), Ordering::Relaxed);
        slot.ecs
            .store(ecs.map_or(NONE, Network::key), Ordering::Relaxed);
        slot.at.store(at, Ordering::Relaxed);
        slot.seq.store(seq + 2, Ordering::Release);
    }

    /// A consistent read of a slot: (token, sighting), `None` when it is
    /// empty or kept changing under the reader.
    fn read(slot: &Slot) -> Option<(Token, Sighting)> {
        for _ in 0..8 {
            let before = slot.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let token = [
                slot.token[0].load(Ordering::Relaxed),
                slot.token[1].load(Ordering::Relaxed),
                slot.token[2].load(Ordering::Relaxed),
            ];
            let resolver = slot.resolver.load(Ordering::Relaxed);
            let ecs = slot.ecs.load(Ordering::Relaxed);
            let at = slot.at.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            if before == 0 {
                return None;
            }
            return Some((
                unwords(token),
                Sighting {
                    resolver: network_of_key(resolver),
                    ecs: (ecs != NONE).then(|| network_of_key(ecs)),
                    at_ms: at & !REMOTE,
                    remote: at & REMOTE != 0,
                },
            ));
        }
        None
    }

    /// The latest lookup of `token`, if it is still in the table.
    pub fn find(&self, token: &Token) -> Option<Sighting> {
        match Self::read(self.slot(token)) {
            Some((t, s)) if t == *token => Some(s),
            _ => None,
        }
    }

    /// Sightings this node's answer path recorded after `since_ms`
    /// (Unix ms), for gossip.
    pub fn local_since(&self, since_ms: u64) -> Vec<(Token, Sighting)> {
        self.slots
            .iter()
            .filter_map(Self::read)
            .filter(|(_, s)| !s.remote && s.at_ms > since_ms)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: u8) -> Token {
        let mut t = [n; TOKEN_LEN];
        t[4] = n.wrapping_mul(37);
        t
    }

    #[test]
    fn a_lookup_is_found_by_its_token_only() {
        let s = Sightings::default();
        let ecs: Network = "198.51.100.0/24".parse().unwrap();
        s.record(&token(1), "192.0.2.9".parse().unwrap(), Some(ecs), 1000);
        let got = s.find(&token(1)).unwrap();
        assert_eq!(got.resolver.to_string(), "192.0.2.0/24");
        assert_eq!(got.ecs, Some(ecs));
        assert_eq!(got.routed_by(), ecs);
        assert_eq!(got.at_ms, 1000);
        assert!(!got.remote);
        assert_eq!(s.find(&token(2)), None);
        s.record(
            &token(3),
            "2001:db8:aa:bbcc::1".parse().unwrap(),
            None,
            2000,
        );
        let v6 = s.find(&token(3)).unwrap();
        assert_eq!(v6.resolver.to_string(), "2001:db8:aa:bb00::/56");
        assert_eq!(v6.routed_by(), v6.resolver);
        assert_eq!(s.local_since(1500).len(), 1);
        assert_eq!(s.local_since(0).len(), 2);
    }

    #[test]
    fn gossiped_sightings_are_found_but_not_gossiped_again() {
        let s = Sightings::default();
        let seen = Sighting {
            resolver: "203.0.113.0/24".parse().unwrap(),
            ecs: None,
            at_ms: 5000,
            remote: false,
        };
        s.learn(&token(9), &seen);
        let got = s.find(&token(9)).unwrap();
        assert!(got.remote);
        assert_eq!(got.resolver, seen.resolver);
        assert!(s.local_since(0).is_empty());
    }

    #[test]
    fn labels_are_48_hex_digits() {
        let label = b"00112233445566778899AABBCCDDEEFF0011223344556677";
        let t = token_of_label(label).unwrap();
        assert_eq!(t[0], 0x00);
        assert_eq!(t[5], 0x55);
        assert_eq!(t[10], 0xaa);
        assert_eq!(token_of_label(&label[1..]), None);
        assert_eq!(token_of_label(b"www"), None);
        let mut bad = *label;
        bad[3] = b'g';
        assert_eq!(token_of_label(&bad), None);
    }

    #[test]
    fn writers_on_many_threads_never_tear_a_slot() {
        let s = std::sync::Arc::new(Sightings::default());
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        // Every writer hits the same few slots.
                        let mut t = token((i % 4) as u8);
                        t[0] = w;
                        let ip = IpAddr::from([10, w, 0, 1]);
                        s.record(&t, ip, None, u64::from(i) + 1);
                    }
                })
            })
            .collect();
        for _ in 0..20_000 {
            for n in 0..4u8 {
                for w in 0..4u8 {
                    let mut t = token(n);
                    t[0] = w;
                    if let Some(got) = s.find(&t) {
                        // The resolver written with this token, never another's.
                        assert_eq!(got.resolver, Network::of(IpAddr::from([10, w, 0, 1])));
                    }
                }
            }
        }
        for w in writers {
            w.join().unwrap();
        }
    }
}
