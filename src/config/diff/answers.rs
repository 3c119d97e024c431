//! What routing answers: the real decision ([`crate::routing::choose`]),
//! asked for a client of a profile and written as the diff shows it.

use super::clients::Spec;
use crate::geo;
use crate::routing::{Client, Decision, Picks, choose};
use crate::snapshot::{Family, ProfileId, Snapshot};

/// What `pid` answers the client `spec`, from the real decision: the
/// endpoint chosen (through nested profiles, `outer > inner (address)`);
/// for weighted and multivalue, which choose at random per query, the
/// endpoints that can be chosen; or NODATA, NXDOMAIN, SERVFAIL.
pub(super) fn answer(t: &Snapshot, pid: ProfileId, spec: &Spec) -> String {
    CACHE.with(|c| answer_with(t, pid, spec, &mut c.borrow_mut()))
}

thread_local! {
    /// The clients of the diff never look an address up (no GeoIP
    /// database, or a location given outright), but a client needs a
    /// cache: one per thread, not one per answer asked.
    static CACHE: std::cell::RefCell<geo::Cache> = std::cell::RefCell::new(geo::Cache::default());
}

fn answer_with(t: &Snapshot, pid: ProfileId, spec: &Spec, cache: &mut geo::Cache) -> String {
    let mut client = match spec {
        Spec::Everyone => Client::unknown(cache),
        Spec::At(_, loc) => Client::at(*loc, cache),
        Spec::Range { v6, lo, .. } => {
            let addr = if *v6 {
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(*lo))
            } else {
                std::net::IpAddr::V4(std::net::Ipv4Addr::from(*lo as u32))
            };
            let bits = if *v6 { 128 } else { 32 };
            Client::from_ecs(Some(addr), bits, None, cache)
        }
    };
    decision(t, pid, &mut client).answer_text(t)
}

/// What routing decides for `client` in `pid`, nested profiles followed.
fn decision(t: &Snapshot, pid: ProfileId, client: &mut Client<'_>) -> Decision {
    let mut rng = fastrand::Rng::with_seed(0x5717_c4ad);
    let mut picks = Picks::default();
    let mut decision = Decision::default();
    choose(
        t,
        pid,
        Family::Any,
        client,
        &mut rng,
        &mut picks,
        false,
        &mut decision,
    );
    decision
}

/// The endpoints `pid`'s method chooses among now, for a client no
/// client-aware rule matches (the pool routing recorded).
pub(super) fn pool(t: &Snapshot, pid: ProfileId) -> Vec<u32> {
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        let mut client = Client::unknown(&mut cache);
        decision(t, pid, &mut client)
            .steps
            .into_iter()
            .next()
            .map(|s| s.pool)
            .unwrap_or_default()
    })
}
