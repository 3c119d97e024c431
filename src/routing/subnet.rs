//! Subnet routing: the endpoint whose ranges contain the client's address,
//! else the fallback endpoint (the one with an empty list).

use super::client::Client;
use super::picks::Candidates;
use crate::snapshot::{SubnetRange, ip_key};

/// The matched endpoint (if any), then the fallback; records the scope: the
/// shortest prefix around the address over which this answer cannot change.
pub(crate) fn candidates(
    ranges: &[SubnetRange],
    fallback: Option<u32>,
    client: &mut Client<'_>,
) -> Candidates {
    let mut c = Candidates::default();
    let Some((addr, _)) = client.address() else {
        if let Some(f) = fallback {
            c.push(f);
        }
        return c;
    };
    let (v6, a) = ip_key(addr);
    // Ranges of this family, sorted and disjoint: binary search.
    let fam = ranges.partition_point(|r| !r.v6 && v6);
    let fam_ranges = &ranges[fam..];
    let fam_len = fam_ranges.partition_point(|r| r.v6 == v6);
    let fam_ranges = &fam_ranges[..fam_len];
    let i = fam_ranges.partition_point(|r| r.hi < a);
    let width = if v6 { 128 } else { 32 };
    let top = if v6 { u128::MAX } else { u32::MAX as u128 };
    let (lo, hi) = match fam_ranges.get(i) {
        Some(r) if r.lo <= a => {
            c.push(r.endpoint);
            (r.lo, r.hi)
        }
        next => {
            // In the gap between ranges.
            let lo = if i == 0 { 0 } else { fam_ranges[i - 1].hi + 1 };
            let hi = next.map_or(top, |r| r.lo - 1);
            (lo, hi)
        }
    };
    if let Some(f) = fallback {
        c.push(f);
    }
    client.decided_by(block_prefix(a, lo, hi, width, width as u8));
    c
}

/// The shortest prefix `p` (>= 0) such that the aligned block of `a` at `p`
/// bits lies within `[lo, hi]`; capped at `bits`, the precision we have.
fn block_prefix(a: u128, lo: u128, hi: u128, width: u32, bits: u8) -> u8 {
    for p in 0..=u32::from(bits).min(width) {
        let host = width - p;
        let mask = if host == 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        let start = a & !mask;
        let end = start | mask;
        if start >= lo && end <= hi {
            return p as u8;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128
    }

    #[test]
    fn block_prefix_is_the_largest_aligned_block_inside() {
        // 10.0.0.0/8 as a range: the answer holds for the whole /8.
        assert_eq!(
            block_prefix(v4("10.1.2.0"), v4("10.0.0.0"), v4("10.255.255.255"), 32, 24),
            8
        );
        // An unaligned range 198.51.100.10-99: 198.51.100.32/27 fits around .40.
        assert_eq!(
            block_prefix(
                v4("198.51.100.40"),
                v4("198.51.100.10"),
                v4("198.51.100.99"),
                32,
                32
            ),
            27
        );
        // Capped at the bits we know.
        assert_eq!(
            block_prefix(
                v4("198.51.100.0"),
                v4("198.51.100.0"),
                v4("198.51.100.0"),
                32,
                24
            ),
            24
        );
        // Everything: prefix 0.
        assert_eq!(block_prefix(v4("1.2.3.0"), 0, u32::MAX as u128, 32, 24), 0);
    }
}
