//! Whom answers are asked for: the clients each profile tells apart
//! (regions, countries, address ranges) besides the one routing knows
//! nothing about, and the labels of a group of them.

use super::model::EVERYTHING_ELSE;
use crate::geo::{self, Location, Point};
use crate::snapshot::{Profile, RegionCode, Routing};

/// Whom an answer is asked for.
#[derive(Clone, Debug)]
pub(super) enum Spec {
    /// A client routing knows nothing about.
    Everyone,
    /// A client at a location: a region code of a geographic mapping or a
    /// country (performance).
    At(String, Location),
    /// A client address in `[lo, hi]` (its first address asks).
    Range { v6: bool, lo: u128, hi: u128 },
}

/// The location that stands for a region code: a subdivision with its
/// country and group, a country with its group and point, or a group alone
/// (a country of the group the mapping does not name).
fn location_of(code: &str) -> Option<Location> {
    let none = Location {
        country: None,
        subdivision: None,
        point: None,
        group: None,
    };
    if let Some(g) = geo::Group::ALL.iter().find(|g| g.code() == code) {
        return Some(Location {
            group: Some(*g),
            ..none
        });
    }
    let country_loc = |cc: &str| {
        geo::country(cc).map(|c| Location {
            country: Some(c.code),
            point: Some(Point::new(c.lat, c.lon)),
            group: Some(c.group),
            ..none
        })
    };
    if code.len() == 2 {
        return country_loc(code);
    }
    let sub = geo::subdivision(code)?;
    let index = geo::SUBDIVISIONS
        .iter()
        .position(|s| std::ptr::eq(s, sub))?;
    let mut loc = country_loc(code.get(..2)?)?;
    loc.subdivision = Some(index as u16);
    Some(loc)
}

/// Who `p` tells apart: the regions of its mapping, the ranges of its
/// subnets, every country for performance routing.
pub(super) fn specs_of(p: &Profile, out: &mut Vec<Spec>, ranges: &mut Vec<(bool, u128, u128)>) {
    match &p.routing {
        Routing::Geographic { regions } => {
            let world = RegionCode::new("WORLD");
            let mut codes: Vec<String> = regions
                .keys()
                .filter(|c| Some(**c) != world)
                .map(|c| c.text())
                .collect();
            codes.sort();
            for code in codes {
                if let Some(loc) = location_of(&code)
                    && !out
                        .iter()
                        .any(|s| matches!(s, Spec::At(c, _) if *c == code))
                {
                    out.push(Spec::At(code, loc));
                }
            }
        }
        Routing::Performance { .. } => {
            for c in geo::COUNTRIES.iter() {
                let code = String::from_utf8_lossy(&c.code).into_owned();
                if !out
                    .iter()
                    .any(|s| matches!(s, Spec::At(x, _) if *x == code))
                    && let Some(loc) = location_of(&code)
                {
                    out.push(Spec::At(code, loc));
                }
            }
        }
        Routing::Subnet { ranges: r, .. } => {
            ranges.extend(r.iter().map(|r| (r.v6, r.lo, r.hi)));
        }
        _ => {}
    }
}

/// The address ranges over which the subnets of both sides agree: split at
/// every range's bounds, only the pieces some range covers.
pub(super) fn pieces(ranges: &[(bool, u128, u128)]) -> Vec<Spec> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let mut bounds: Vec<u128> = Vec::new();
        for &(_, lo, hi) in ranges.iter().filter(|r| r.0 == v6) {
            bounds.push(lo);
            if let Some(next) = hi.checked_add(1) {
                bounds.push(next);
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let top = if v6 { u128::MAX } else { u32::MAX as u128 };
        for (i, &lo) in bounds.iter().enumerate() {
            if lo > top {
                continue;
            }
            let hi = bounds.get(i + 1).map_or(top, |n| n - 1);
            let covered = ranges.iter().any(|r| r.0 == v6 && r.1 <= lo && hi <= r.2);
            if covered {
                out.push(Spec::Range { v6, lo, hi });
            }
        }
    }
    out
}

/// Labels for a group of clients: region codes and countries as they are,
/// address ranges merged where adjacent and written as CIDR blocks.
pub(super) fn labels(specs: &[Spec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut ranges: Vec<(bool, u128, u128)> = Vec::new();
    for s in specs {
        match s {
            Spec::Everyone => out.push(EVERYTHING_ELSE.into()),
            Spec::At(code, _) => out.push(code.clone()),
            Spec::Range { v6, lo, hi } => ranges.push((*v6, *lo, *hi)),
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(bool, u128, u128)> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.0 == r.0 && last.2.checked_add(1) == Some(r.1) => last.2 = r.2,
            _ => merged.push(r),
        }
    }
    for (v6, lo, hi) in merged {
        out.extend(cidrs(v6, lo, hi));
    }
    out
}

/// `[lo, hi]` as the fewest CIDR blocks.
pub(super) fn cidrs(v6: bool, mut lo: u128, hi: u128) -> Vec<String> {
    let width: u32 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    loop {
        // The largest aligned block starting at lo that fits in [lo, hi].
        let mut host = if lo == 0 {
            width
        } else {
            lo.trailing_zeros().min(width)
        };
        while host > 0 {
            let size_minus_one = if host == 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
            if lo.checked_add(size_minus_one).is_some_and(|end| end <= hi) {
                break;
            }
            host -= 1;
        }
        let prefix = width - host;
        let addr = if v6 {
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(lo))
        } else {
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(lo as u32))
        };
        out.push(format!("{addr}/{prefix}"));
        let size_minus_one = if host == 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        match lo
            .checked_add(size_minus_one)
            .and_then(|e| e.checked_add(1))
        {
            Some(next) if next <= hi => lo = next,
            _ => break,
        }
    }
    out
}
