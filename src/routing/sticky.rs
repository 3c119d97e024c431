//! Sticky weights (`sticky = "client-subnet"`, weighted and multivalue):
//! the choice is a weighted rendezvous hash (highest random weight) of the
//! client's network over the answerable endpoints, so a client keeps its
//! endpoint from query to query, and when an endpoint goes down only the
//! clients it had move, each to the endpoint next in its own order.
//!
//! Each (network, endpoint) pair scores `weight / -ln(u)`, `u` a uniform
//! draw from a hash of the two: the highest score wins, with probability
//! proportional to weight. Endpoints are keyed by name, so the choice
//! survives reloads and reorderings and is the same on every name server.
//! O(endpoints) per query, no allocation.

use std::net::IpAddr;

use super::client::Client;
use super::picks::{MAX_PICKS, Picks};
use crate::snapshot::Endpoint;

/// The network a client is keyed by: its address (ECS, else the
/// resolver's) to /24 (IPv4) or /56 (IPv6), or to the ECS source prefix
/// when shorter; recorded as the ECS scope, the network the choice was
/// made for.
pub fn network(client: &mut Client<'_>) -> u64 {
    let Some((addr, bits)) = client.address() else {
        return 0;
    };
    let (value, len, max) = match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32u8, 24u8),
        IpAddr::V6(a) => (u128::from(a), 128u8, 56u8),
    };
    let keep = bits.min(max);
    client.decided_by(keep);
    let masked = if keep == 0 {
        0
    } else {
        value & (u128::MAX << (128 - u32::from(keep)))
    };
    let folded = (masked >> 64) as u64 ^ (masked as u64).rotate_left(29) ^ u64::from(keep);
    mix(folded ^ u64::from(len))
}

/// True when `network`'s clients are in the `permille` share shed from
/// `ep`: a hash of the network and the endpoint's name, so the same
/// networks move (and come back) every time, on every node, and a larger
/// share sheds a superset of a smaller one.
#[inline]
pub fn shed(network: u64, ep: &Endpoint, permille: u32) -> bool {
    (mix(network ^ name_hash(&ep.name).rotate_left(17)) % 1000) < u64::from(permille)
}

/// splitmix64's finaliser: a fixed, well-mixing 64-bit permutation.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of an endpoint's name: its identity in the hash, the same on
/// every node and across reloads.
#[inline]
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The endpoint's score for `network`: weight / -ln(u), u in (0, 1).
#[inline]
fn score(network: u64, ep: &Endpoint, weight: u32) -> f64 {
    let h = mix(network ^ name_hash(&ep.name).rotate_left(17));
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight.max(1)) / -u.ln()
}

/// The usable endpoint with the highest score (weighted).
pub fn pick_one(eps: &[Endpoint], usable: impl Fn(&Endpoint) -> bool, network: u64) -> Option<u32> {
    let mut best: Option<(f64, u32)> = None;
    for (i, e) in eps.iter().enumerate() {
        if !usable(e) {
            continue;
        }
        let s = score(network, e, e.weight);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, i as u32));
        }
    }
    best.map(|(_, i)| i)
}

/// The `max` usable endpoints with the highest scores (equal weights), in
/// score order.
pub fn pick_many(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    max: usize,
    network: u64,
    picks: &mut Picks,
) {
    let max = max.min(MAX_PICKS);
    let mut top = [(0f64, 0u32); MAX_PICKS];
    let mut n = 0usize;
    for (i, e) in eps.iter().enumerate() {
        if !usable(e) {
            continue;
        }
        let s = score(network, e, 1);
        // Insert into the sorted top list (descending), dropping the last.
        let mut at = n;
        while at > 0 && top[at - 1].0 < s {
            at -= 1;
        }
        if at >= max {
            continue;
        }
        let end = n.min(max - 1);
        let mut j = end;
        while j > at {
            top[j] = top[j - 1];
            j -= 1;
        }
        top[at] = (s, i as u32);
        n = (n + 1).min(max);
    }
    for &(_, i) in &top[..n] {
        picks.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use crate::routing::test_support::ep;

    fn eps(n: u8) -> Vec<Endpoint> {
        (1..=n)
            .map(|i| {
                let mut e = ep(i, Status::Online);
                e.name = format!("e{i}").into();
                e
            })
            .collect()
    }

    #[test]
    fn a_network_keeps_its_endpoint_and_only_the_lost_share_moves() {
        let eps = eps(5);
        let all = |_: &Endpoint| true;
        let nets: Vec<u64> = (0..2000u64).map(mix).collect();
        let before: Vec<u32> = nets
            .iter()
            .map(|&k| pick_one(&eps, all, k).unwrap())
            .collect();
        // The same network, the same endpoint.
        for (k, b) in nets.iter().zip(&before) {
            assert_eq!(pick_one(&eps, all, *k), Some(*b));
        }
        // Spread evenly (equal weights): each of 5 gets 400 +- 100.
        for i in 0..5u32 {
            let c = before.iter().filter(|&&b| b == i).count();
            assert!((300..500).contains(&c), "endpoint {i}: {c}");
        }
        // Endpoint 2 goes down: only its networks move.
        let without = |e: &Endpoint| &*e.name != "e3";
        for (k, b) in nets.iter().zip(&before) {
            let now = pick_one(&eps, without, *k).unwrap();
            if *b != 2 {
                assert_eq!(now, *b, "a network of another endpoint moved");
            } else {
                assert_ne!(now, 2);
            }
        }
    }

    #[test]
    fn weights_set_the_shares() {
        let mut eps = eps(2);
        eps[0].weight = 9;
        eps[1].weight = 1;
        let n = (0..10_000u64)
            .filter(|&k| pick_one(&eps, |_| true, mix(k)) == Some(0))
            .count();
        assert!(
            (8_700..9_300).contains(&n),
            "{n} of 10000 for weight 9 of 10"
        );
    }

    #[test]
    fn many_are_the_top_scores_in_order_and_stable() {
        let eps = eps(8);
        let mut a = Picks::default();
        pick_many(&eps, |_| true, 3, 42, &mut a);
        assert_eq!(a.as_slice().len(), 3);
        let mut b = Picks::default();
        pick_many(&eps, |_| true, 3, 42, &mut b);
        assert_eq!(a.as_slice(), b.as_slice());
        // The first of three is the single pick with equal weights.
        assert_eq!(Some(a.as_slice()[0]), pick_one(&eps, |_| true, 42));
        // Fewer usable than asked: all of them.
        let mut c = Picks::default();
        pick_many(&eps[..2], |_| true, 3, 42, &mut c);
        assert_eq!(c.as_slice().len(), 2);
    }
}
