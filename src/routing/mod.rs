//! Routing: which endpoints answer a query.
//!
//! Each method is a pure function over a profile's endpoints and their
//! statuses, in its own file. [`route`] applies what is common to all of
//! them: a disabled profile, the eligible set, and `on_all_down` when every
//! eligible endpoint is Degraded (docs/semantics.md §2).

mod client;
mod decision;
mod effective;
pub mod explain;
mod geographic;
mod multivalue;
mod performance;
mod picks;
mod priority;
#[cfg(test)]
mod shed_tests;
mod status;
mod sticky;
mod subnet;
pub mod weighted;

pub use client::Client;
pub use decision::{Decision, LatencyLook, NoTrace, ProfileDecision, Stage, Trace};
pub use effective::{Effective, Why};
pub use picks::{MAX_PICKS, Picks};
pub use status::{MAX_NESTING, TtlReason};

use crate::health::Status;
use crate::snapshot::{Endpoint, Family, OnAllDown, Profile, ProfileId, Routing, Snapshot, Target};

/// What the profile answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoints in [`Picks`].
    Endpoints,
    /// NOERROR, no records.
    NoData,
    /// NXDOMAIN (disabled profile, or `on_all_down = "nxdomain"`).
    NxDomain,
    /// SERVFAIL (`on_all_down = "servfail"`).
    ServFail,
}

/// Decides the answer of `profile` for a query of `family`.
///
/// `eps` are the profile's endpoints and `status` tells each one's status
/// ([`Snapshot::status`] in the server; anything in tests).
pub fn route(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status + Copy,
    family: Family,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
) -> Outcome {
    route_traced(
        profile,
        eps,
        status,
        family,
        client,
        rng,
        picks,
        &mut NoTrace,
    )
}

/// [`route`], telling `trace` what it decided on the way (nothing, at no
/// cost, with [`NoTrace`]).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn route_traced<T: Trace>(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status + Copy,
    family: Family,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    trace: &mut T,
) -> Outcome {
    let outcome = decide(profile, eps, status, family, client, rng, picks, trace);
    trace.outcome(outcome, picks);
    outcome
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn decide<T: Trace>(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status + Copy,
    family: Family,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    trace: &mut T,
) -> Outcome {
    picks.clear();
    if !profile.enabled {
        trace.drew(Stage::Nothing, std::iter::empty());
        return Outcome::NxDomain;
    }
    // These two pick from a client-specific candidate list and apply
    // `on_all_down` to the matched endpoint (docs/semantics.md).
    match &profile.routing {
        Routing::Geographic { regions } => {
            let candidates = geographic::candidates(regions, client);
            trace.candidates(candidates.as_slice());
            return matched(profile, eps, status, candidates.as_slice(), picks, trace);
        }
        Routing::Subnet { ranges, fallback } => {
            let candidates = subnet::candidates(ranges, *fallback, client);
            trace.candidates(candidates.as_slice());
            return matched(profile, eps, status, candidates.as_slice(), picks, trace);
        }
        _ => {}
    }
    // Multivalue answers only addresses of the asked family, so fail-open is
    // judged among those; the other methods pick first and map the target
    // to the query type afterwards (docs/semantics.md).
    let relevant = |ep: &Endpoint| match profile.routing {
        Routing::Multivalue { .. } => ep.target.matches(family),
        _ => true,
    };
    // The endpoints a stage draws from: what the trace records (never
    // iterated on the answer path).
    let pool = |stage: Stage| {
        let usable = stage.usable();
        (0..eps.len() as u32).filter(move |&i| {
            let e = &eps[i as usize];
            relevant(e) && usable(status(e))
        })
    };
    // The usual case first: pick among the answerable endpoints. Every
    // method picks something whenever one is answerable, so only when
    // none is does the profile need the scan that decides `on_all_down`
    // (and a large profile costs no more than a small one until then).
    // Then `failback = "manual"`: it keeps a recovered endpoint out only
    // while another can answer; healthy, it is preferred to failing open.
    // (Written out, not a loop over the stages: each call picks with a
    // constant predicate on the answer path.)
    let answerable = Stage::Answerable.usable();
    if pick(
        profile, eps, status, answerable, relevant, client, rng, picks, trace,
    ) {
        // Shedding: one relaxed load per endpoint picked, and only when
        // one sheds is the client's network hashed.
        if picks
            .as_slice()
            .iter()
            .any(|&i| eps[i as usize].runtime.shed_permille() != 0)
        {
            shed(profile, eps, status, relevant, client, rng, picks, trace);
        }
        trace.drew(Stage::Answerable, pool(Stage::Answerable));
        return Outcome::Endpoints;
    }
    let held = Stage::Held.usable();
    if pick(
        profile, eps, status, held, relevant, client, rng, picks, trace,
    ) {
        trace.drew(Stage::Held, pool(Stage::Held));
        return Outcome::Endpoints;
    }
    let any_eligible = eps
        .iter()
        .any(|ep| relevant(ep) && status(ep).is_eligible());
    if !any_eligible {
        // Nothing eligible (all disabled, or no endpoint of this family).
        trace.drew(Stage::Nothing, std::iter::empty());
        return Outcome::NoData;
    }
    let outcome = match profile.on_all_down {
        // Every eligible endpoint is Degraded: route as if they were Online.
        OnAllDown::ServeAll => {
            trace.drew(Stage::FailOpen, pool(Stage::FailOpen));
            let usable = Stage::FailOpen.usable();
            if pick(
                profile, eps, status, usable, relevant, client, rng, picks, trace,
            ) {
                return Outcome::Endpoints;
            }
            Outcome::NoData
        }
        // The fixed endpoint, unless it was taken out (Disabled,
        // Stopped): an operator's "never answer this" wins.
        OnAllDown::Endpoint(i) => {
            if eps.get(i as usize).is_some_and(|e| status(e).is_eligible()) {
                trace.drew(Stage::Fixed, std::iter::once(i));
                picks.push(i);
                return Outcome::Endpoints;
            }
            Outcome::NoData
        }
        OnAllDown::NoData => Outcome::NoData,
        OnAllDown::NxDomain => Outcome::NxDomain,
        OnAllDown::ServFail => Outcome::ServFail,
    };
    trace.drew(Stage::AllDown, std::iter::empty());
    outcome
}

/// Picks again without the endpoints that shed this client's network,
/// when another answerable endpoint takes it; else the picks stand (a
/// shed endpoint still answers when it is the only one).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn shed<T: Trace>(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status + Copy,
    relevant: impl Fn(&Endpoint) -> bool + Copy,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    trace: &mut T,
) {
    let network = sticky::network(client);
    let out = |e: &Endpoint| {
        let permille = e.runtime.shed_permille();
        permille != 0 && sticky::shed(network, e, permille)
    };
    let mut gone = Picks::default();
    for (i, e) in eps.iter().enumerate() {
        if out(e) && relevant(e) && Stage::Answerable.usable()(status(e)) {
            gone.push(i as u32);
        }
    }
    if gone.is_empty() {
        return;
    }
    let without = |e: &Endpoint| if out(e) { Status::Held } else { status(e) };
    let mut other = Picks::default();
    let usable = Stage::Answerable.usable();
    if pick(
        profile, eps, without, usable, relevant, client, rng, &mut other, trace,
    ) {
        *picks = other;
        trace.shed(gone.as_slice());
    }
}

/// Runs the profile's method over the relevant endpoints whose status is
/// `usable`; true when it picked something.
#[allow(clippy::too_many_arguments)]
#[inline]
fn pick<T: Trace>(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status + Copy,
    usable: fn(Status) -> bool,
    relevant: impl Fn(&Endpoint) -> bool,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    trace: &mut T,
) -> bool {
    picks.clear();
    let ok = |ep: &Endpoint| relevant(ep) && usable(status(ep));
    match &profile.routing {
        Routing::Priority { order } => {
            if let Some(i) = priority::pick(eps, order, ok) {
                picks.push(i);
            }
        }
        Routing::Weighted { alias } => {
            let i = if profile.sticky {
                let network = sticky::network(client);
                sticky::pick_one(eps, ok, network)
            } else {
                weighted::pick(eps, alias, ok, rng)
            };
            if let Some(i) = i {
                picks.push(i);
            }
        }
        Routing::Multivalue { max_answers } if profile.sticky => {
            let network = sticky::network(client);
            sticky::pick_many(eps, ok, *max_answers as usize, network, picks);
        }
        Routing::Multivalue { max_answers } => {
            multivalue::pick(eps, ok, *max_answers as usize, rng, picks);
        }
        Routing::Performance { points } => {
            let seen = |from, decided, policy: &_, estimates: &mut dyn Iterator<Item = _>| {
                trace.latency(from, decided, policy, estimates)
            };
            let i = match performance::by_latency(eps, points, ok, client, rng, seen) {
                Some(i) => Some(i),
                None => {
                    let here = client.location().and_then(|l| l.point);
                    performance::pick(eps, points, here, ok, rng)
                }
            };
            if let Some(i) = i {
                picks.push(i);
            }
        }
        Routing::Geographic { .. } | Routing::Subnet { .. } => {}
    }
    !picks.is_empty()
}

/// What a name's profile answers, nested profiles followed: the outcome,
/// and for [`Outcome::Endpoints`] the profile whose endpoints `picks`
/// index (the named one or the nested child chosen).
pub struct Chosen<'t> {
    /// The outcome of the last profile routed.
    pub outcome: Outcome,
    /// The profile `picks` belong to.
    pub profile: &'t Profile,
    /// Its endpoints.
    pub endpoints: &'t [Endpoint],
}

/// Routes the profile `top` and, while the first pick is a nested
/// endpoint, its child profile in turn (at most [`MAX_NESTING`] deep).
/// `count` counts each nested endpoint chosen as answered.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn choose<'t, T: Trace>(
    table: &'t Snapshot,
    top: ProfileId,
    family: Family,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    count: bool,
    trace: &mut T,
) -> Chosen<'t> {
    let status = |e: &Endpoint| table.status(e);
    choose_by(table, status, top, family, client, rng, picks, count, trace)
}

/// [`choose`] with the statuses `status` tells instead of the table's:
/// what routing would answer if they were so (the last-endpoint guard asks
/// it with the endpoint marked Disabled).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn choose_by<'t, T: Trace>(
    table: &'t Snapshot,
    status: impl Fn(&Endpoint) -> Status + Copy,
    top: ProfileId,
    family: Family,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
    count: bool,
    trace: &mut T,
) -> Chosen<'t> {
    let mut id = top;
    let mut p = &table.profiles[id as usize];
    let mut eps = table.endpoints_of(p);
    for _ in 0..=MAX_NESTING {
        trace.enter(id);
        let outcome = route_traced(p, eps, status, family, client, rng, picks, trace);
        if outcome != Outcome::Endpoints {
            return Chosen {
                outcome,
                profile: p,
                endpoints: eps,
            };
        }
        let first = &eps[picks.as_slice()[0] as usize];
        match first.target {
            Target::Nested(child) => {
                if count {
                    // The answer carries the asked profile's TTL.
                    let ttl = table.profiles[top as usize].ttl;
                    first.runtime.answered(crate::clock::unix_secs_now(), ttl);
                }
                id = child;
                p = &table.profiles[child as usize];
                eps = table.endpoints_of(p);
            }
            _ => break,
        }
    }
    Chosen {
        outcome: Outcome::Endpoints,
        profile: p,
        endpoints: eps,
    }
}

/// Geographic and subnet routing: the first answerable candidate; when none
/// is, `on_all_down` applies to the matched (first) candidate.
fn matched<T: Trace>(
    profile: &Profile,
    eps: &[Endpoint],
    status: impl Fn(&Endpoint) -> Status,
    candidates: &[u32],
    picks: &mut Picks,
    trace: &mut T,
) -> Outcome {
    let status = |i: u32| eps.get(i as usize).map_or(Status::Disabled, &status);
    let pool = |stage: Stage| {
        let usable = stage.usable();
        candidates
            .iter()
            .copied()
            .filter(move |&i| usable(status(i)))
    };
    // The first answerable candidate; else a held one (`failback =
    // "manual"`) before failing open.
    for stage in [Stage::Answerable, Stage::Held] {
        if let Some(i) = pool(stage).next() {
            trace.drew(stage, pool(stage));
            picks.push(i);
            return Outcome::Endpoints;
        }
    }
    let Some(eligible) = pool(Stage::FailOpen).next() else {
        trace.drew(Stage::Nothing, std::iter::empty());
        return Outcome::NoData;
    };
    let outcome = match profile.on_all_down {
        OnAllDown::ServeAll => {
            trace.drew(Stage::FailOpen, pool(Stage::FailOpen));
            picks.push(eligible);
            return Outcome::Endpoints;
        }
        OnAllDown::Endpoint(i) if status(i).is_eligible() => {
            trace.drew(Stage::Fixed, std::iter::once(i));
            picks.push(i);
            return Outcome::Endpoints;
        }
        OnAllDown::Endpoint(_) | OnAllDown::NoData => Outcome::NoData,
        OnAllDown::NxDomain => Outcome::NxDomain,
        OnAllDown::ServFail => Outcome::ServFail,
    };
    trace.drew(Stage::AllDown, std::iter::empty());
    outcome
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for profiles and endpoints in unit tests.
    use super::*;
    use crate::health::HealthCell;
    use crate::proto::name::DomainName;
    use crate::proto::rr::WireRr;
    use crate::snapshot::Health;
    use std::sync::Arc;

    /// A monitored IPv4 endpoint `10.0.0.<n>` with the given status.
    pub fn ep(n: u8, status: Status) -> Endpoint {
        let ip = std::net::Ipv4Addr::new(10, 0, 0, n);
        with_target(n, Target::V4(ip), status)
    }

    /// A monitored IPv6 endpoint `2001:db8::<n>` with the given status.
    pub fn ep6(n: u8, status: Status) -> Endpoint {
        let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16);
        with_target(n, Target::V6(ip), status)
    }

    fn with_target(n: u8, target: Target, status: Status) -> Endpoint {
        let health = match status {
            Status::Disabled => Health::Disabled,
            Status::Unmonitored => Health::Unmonitored,
            s => {
                let cell = Arc::new(HealthCell::new());
                cell.set(s);
                Health::Monitored(cell)
            }
        };
        let rr = match &target {
            Target::V4(ip) => WireRr::a(30, *ip),
            Target::V6(ip) => WireRr::aaaa(30, *ip),
            Target::Host(h) => WireRr::cname(30, h).unwrap(),
            Target::Nested(_) => unreachable!("not built in unit tests"),
        };
        Endpoint {
            name: format!("ep{n}").into(),
            profile: 0,
            target,
            priority: n as u16,
            weight: 1,
            health,
            monitors: None,
            runtime: Default::default(),
            hold: None,
            rum_url: None,
            rr,
            latency_id: n as u32,
        }
    }

    /// A profile over `n` endpoints with the given routing.
    pub fn profile(routing: Routing, n: usize, on_all_down: OnAllDown) -> Profile {
        Profile {
            name: DomainName::parse("p.test.", None).unwrap(),
            node: 0,
            source: "p.toml".into(),
            routing,
            ttl: 30,
            ttl_degraded: None,
            sticky: false,
            enabled: true,
            on_all_down,
            endpoints: 0..n as u32,
            detection: None,
            shed: None,
        }
    }

    /// Priority routing in list order.
    pub fn priority(n: usize) -> Routing {
        Routing::Priority {
            order: (0..n as u32).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::geo;
    use crate::snapshot::RegionCode;

    fn run(p: &Profile, eps: &[Endpoint], family: Family) -> (Outcome, Vec<u32>) {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut picks = Picks::default();
        let mut cache = geo::Cache::default();
        let mut client = Client::unknown(&mut cache);
        let out = route(
            p,
            eps,
            Endpoint::status,
            family,
            &mut client,
            &mut rng,
            &mut picks,
        );
        assert_eq!(client.scope, 0, "no client-aware method here");
        (out, picks.as_slice().to_vec())
    }

    #[test]
    fn disabled_profile_is_nxdomain() {
        let mut p = profile(priority(1), 1, OnAllDown::ServeAll);
        p.enabled = false;
        let eps = [ep(1, Status::Online)];
        assert_eq!(run(&p, &eps, Family::V4).0, Outcome::NxDomain);
    }

    #[test]
    fn checking_endpoints_are_answerable() {
        let p = profile(priority(2), 2, OnAllDown::NoData);
        let eps = [ep(1, Status::CheckingEndpoint), ep(2, Status::Online)];
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![0]));
    }

    #[test]
    fn on_all_down_serve_all_fails_open() {
        let p = profile(priority(3), 3, OnAllDown::ServeAll);
        let eps = [
            ep(1, Status::Disabled),
            ep(2, Status::Degraded),
            ep(3, Status::Degraded),
        ];
        // Disabled stays out even when failing open; the best Degraded wins.
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![1]));
    }

    #[test]
    fn on_all_down_policies() {
        let eps = [ep(1, Status::Degraded), ep(2, Status::Degraded)];
        for (policy, want) in [
            (OnAllDown::NoData, (Outcome::NoData, vec![])),
            (OnAllDown::NxDomain, (Outcome::NxDomain, vec![])),
            (OnAllDown::ServFail, (Outcome::ServFail, vec![])),
            (OnAllDown::Endpoint(1), (Outcome::Endpoints, vec![1])),
        ] {
            let p = profile(priority(2), 2, policy);
            assert_eq!(run(&p, &eps, Family::V4), want, "{policy:?}");
        }
    }

    #[test]
    fn held_endpoints_answer_before_failing_open() {
        // Priority: the held primary (healthy) before the Degraded one,
        // whatever on_all_down says; an Online one before either.
        for policy in [OnAllDown::ServeAll, OnAllDown::ServFail] {
            let p = profile(priority(2), 2, policy);
            let eps = [ep(1, Status::Degraded), ep(2, Status::Held)];
            assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![1]));
            let eps = [ep(1, Status::Held), ep(2, Status::Online)];
            assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![1]));
        }
    }

    #[test]
    fn one_online_endpoint_means_no_fail_open() {
        let p = profile(priority(2), 2, OnAllDown::NxDomain);
        let eps = [ep(1, Status::Degraded), ep(2, Status::Online)];
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![1]));
    }

    #[test]
    fn a_disabled_fixed_fallback_is_not_answered() {
        let eps = [ep(1, Status::Degraded), ep(2, Status::Disabled)];
        let p = profile(priority(2), 2, OnAllDown::Endpoint(1));
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::NoData, vec![]));
        let eps = [ep(1, Status::Degraded), ep(2, Status::Degraded)];
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![1]));
    }

    #[test]
    fn all_disabled_is_nodata_whatever_the_policy() {
        let p = profile(priority(2), 2, OnAllDown::ServFail);
        let eps = [ep(1, Status::Disabled), ep(2, Status::Disabled)];
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::NoData, vec![]));
    }

    #[test]
    fn multivalue_fail_open_is_judged_per_family() {
        let p = profile(
            Routing::Multivalue { max_answers: 4 },
            3,
            OnAllDown::ServeAll,
        );
        let eps = [
            ep(1, Status::Degraded),
            ep6(2, Status::Online),
            ep(3, Status::Degraded),
        ];
        let (out, mut got) = run(&p, &eps, Family::V4);
        got.sort();
        assert_eq!((out, got), (Outcome::Endpoints, vec![0, 2]));
        assert_eq!(run(&p, &eps, Family::V6), (Outcome::Endpoints, vec![1]));
    }

    #[test]
    fn geographic_on_all_down_applies_to_the_matched_endpoint() {
        let mut regions = rustc_hash::FxHashMap::default();
        regions.insert(RegionCode::new("GEO-EU").unwrap(), 0);
        regions.insert(RegionCode::new("WORLD").unwrap(), 1);
        let eps = [ep(1, Status::Degraded), ep(2, Status::Degraded)];
        for (policy, want) in [
            // Unknown client: only WORLD matches; fail open to it.
            (OnAllDown::ServeAll, (Outcome::Endpoints, vec![1])),
            (OnAllDown::NxDomain, (Outcome::NxDomain, vec![])),
            (OnAllDown::Endpoint(0), (Outcome::Endpoints, vec![0])),
        ] {
            let p = profile(
                Routing::Geographic {
                    regions: regions.clone(),
                },
                2,
                policy,
            );
            assert_eq!(run(&p, &eps, Family::V4), want, "{policy:?}");
        }
        // Nothing matches at all: NODATA.
        regions.remove(&RegionCode::new("WORLD").unwrap());
        let p = profile(Routing::Geographic { regions }, 2, OnAllDown::ServeAll);
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::NoData, vec![]));
    }

    #[test]
    fn weighted_and_multivalue_fail_open_too() {
        let eps = [ep(1, Status::Degraded), ep(2, Status::Disabled)];
        let p = profile(
            Routing::Weighted {
                alias: weighted::alias_table(&eps),
            },
            2,
            OnAllDown::ServeAll,
        );
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::Endpoints, vec![0]));
        let p = profile(Routing::Multivalue { max_answers: 2 }, 2, OnAllDown::NoData);
        assert_eq!(run(&p, &eps, Family::V4), (Outcome::NoData, vec![]));
    }
}
