//! Geographic routing: the endpoint whose `regions` match the client most
//! specifically (subdivision, country, region group, WORLD).

use rustc_hash::FxHashMap;

use super::client::Client;
use super::picks::Candidates;
use crate::geo::SUBDIVISIONS;
use crate::snapshot::RegionCode;

/// The `WORLD` code.
pub fn world() -> RegionCode {
    RegionCode::new("WORLD").unwrap_or(RegionCode(0))
}

/// The endpoints matching the client, most specific first.
pub(crate) fn candidates(
    regions: &FxHashMap<RegionCode, u32>,
    client: &mut Client<'_>,
) -> Candidates {
    let mut c = Candidates::default();
    if let Some(loc) = client.location() {
        if let Some(sub) = loc.subdivision.and_then(|i| SUBDIVISIONS.get(i as usize))
            && let Some(code) = RegionCode::new(sub.code)
            && let Some(&i) = regions.get(&code)
        {
            c.push(i);
        }
        if let Some(cc) = loc.country
            && let Some(&i) = regions.get(&RegionCode::country(cc))
        {
            c.push(i);
        }
        if let Some(g) = loc.group
            && let Some(code) = RegionCode::new(g.code())
            && let Some(&i) = regions.get(&code)
        {
            c.push(i);
        }
    }
    if let Some(&i) = regions.get(&world()) {
        c.push(i);
    }
    c
}
