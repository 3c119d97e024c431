//! Why a name answers what it does: the steps of the decision and every
//! endpoint left out, with its reason. The answer and the decision both
//! come from the real answer path (`dns::inspect` answers the query with a
//! [`Decision`] recording what routing decided); this module only renders
//! them, with the statuses, weights, regions and distances that explain
//! each choice. It never decides anything itself.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{Decision, Outcome, ProfileDecision, Stage};
use crate::geo::{self, GeoDb, Point};
use crate::health::Status;
use crate::proto::name::DomainName;
use crate::snapshot::{Endpoint, Family, Lookup, Profile, RegionCode, Routing, Snapshot, Target};

/// An endpoint routing did not consider, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Excluded {
    /// `profile/endpoint`.
    pub endpoint: String,
    /// Why it was left out.
    pub reason: String,
}

/// The explanation of one decision.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Explanation {
    /// What decided, in order.
    pub steps: Vec<String>,
    /// The endpoints in the answer, `profile/endpoint` (a nested profile's
    /// when the choice was nested).
    pub chosen: Vec<String>,
    /// Endpoints that could not be chosen, with reasons.
    pub excluded: Vec<Excluded>,
}

/// The client as explain sees it.
#[derive(Clone, Copy, Debug)]
pub struct ClientView {
    /// The resolver's address.
    pub resolver: IpAddr,
    /// The ECS subnet, if given.
    pub ecs: Option<(IpAddr, u8)>,
}

/// Explains how `name` (lowercase or not) is answered for `family`:
/// `decision` is what routing decided while answering it.
pub fn explain(
    table: &Snapshot,
    geo_db: Option<&GeoDb>,
    name: &str,
    family: Family,
    client: ClientView,
    decision: &Decision,
) -> Explanation {
    let mut x = Explanation::default();
    let Ok(name) = DomainName::parse(name, None) else {
        x.steps.push(format!(
            "`{}` is not a domain name",
            crate::fsutil::shown(name)
        ));
        return x;
    };
    let id = match table.lookup(name.wire()) {
        Lookup::Outside => {
            x.steps
                .push(format!("{name} is outside every zone served here: REFUSED"));
            return x;
        }
        Lookup::NxDomain(z) => {
            x.steps.push(format!(
                "{name} does not exist in zone {}: NXDOMAIN",
                table.zones[z as usize].origin
            ));
            return x;
        }
        Lookup::Delegated(cut) => {
            x.steps.push(format!(
                "{name} is delegated at {}: a referral to its name servers",
                table.nodes[cut as usize].name
            ));
            return x;
        }
        Lookup::Found(id) => id,
        Lookup::Wildcard(id) => {
            x.steps.push(format!(
                "{name} does not exist; the wildcard {} answers it",
                table.nodes[id as usize].name
            ));
            id
        }
    };
    let node = &table.nodes[id as usize];
    let zone = &table.zones[node.zone as usize].origin;
    if node.cut == Some(id) {
        x.steps.push(format!(
            "{name} is a delegation: a referral to its name servers"
        ));
        return x;
    }
    let qtype = match family {
        Family::V4 => 1,
        Family::V6 => 28,
        Family::Any => 255,
    };
    let by_profile = node.profile_for(qtype).is_some();
    if node.is_empty() {
        x.steps.push(format!(
            "{name} exists in zone {zone} but holds no records: NODATA"
        ));
        return x;
    }
    if !by_profile {
        let types: Vec<String> = node.records.iter().map(|s| rtype_name(s.rtype)).collect();
        x.steps.push(format!(
            "{name} holds static records in zone {zone}: {}",
            types.join(", ")
        ));
    }
    for (n, step) in decision.steps.iter().enumerate() {
        let Some(profile) = table.profiles.get(step.profile as usize) else {
            break;
        };
        if n == 0 {
            let how = if by_profile {
                format!("{name} is answered by profile")
            } else {
                "its CNAME chain leads to profile".to_string()
            };
            x.steps.push(format!(
                "{how} {} ({}) in zone {}",
                profile.name,
                profile.source.display(),
                table.zones[table.nodes[profile.node as usize].zone as usize].origin
            ));
            describe_client(&mut x, client, table.ecs);
            if let Some(short) = profile.ttl_degraded {
                describe_ttl(&mut x, table, profile, short);
            }
        } else {
            x.steps.push(format!(
                "the choice is nested profile {}: its decision follows",
                profile.name
            ));
        }
        explain_profile(&mut x, table, geo_db, step, family, client);
    }
    x
}

use crate::proto::rr::type_name as rtype_name;

/// The TTL the answer carries, of a profile with `ttl_degraded` (`short`),
/// and why: which endpoint keeps it short, or that every one is settled.
fn describe_ttl(x: &mut Explanation, table: &Snapshot, profile: &Profile, short: u32) {
    let eps = table.endpoints_of(profile);
    let name = |i: u32| eps.get(i as usize).map_or("?", |e| &*e.name);
    let (ttl, why) = profile.answer_ttl(table, crate::clock::unix_secs_now());
    let reason = match why {
        super::TtlReason::NotOnline(i) => {
            format!("endpoint {} is {}", name(i), table.status(&eps[i as usize]))
        }
        super::TtlReason::Changed(i) => format!(
            "endpoint {} changed status less than {}s (the profile's ttl) ago",
            name(i),
            profile.ttl
        ),
        super::TtlReason::Settled | super::TtlReason::Fixed => format!(
            "every endpoint is Online and none changed in the last {}s",
            profile.ttl
        ),
    };
    let which = if ttl == short && why != super::TtlReason::Settled {
        "ttl_degraded"
    } else {
        "ttl"
    };
    x.steps.push(format!("TTL {ttl} ({which}): {reason}"));
}

fn describe_client(x: &mut Explanation, c: ClientView, ecs_enabled: bool) {
    match (c.ecs, ecs_enabled) {
        (Some((addr, 0)), true) => x.steps.push(format!(
            "client: ECS {addr}/0 asks not to use the client: routing treats it as unknown"
        )),
        (Some((addr, prefix)), true) => {
            let (t, bits) = geo::truncate(addr, prefix);
            x.steps
                .push(format!("client: ECS {t}/{bits} (resolver {})", c.resolver));
        }
        (Some((addr, prefix)), false) => x.steps.push(format!(
            "client: resolver {} (ECS {addr}/{prefix} ignored: dns.ecs = false)",
            c.resolver
        )),
        (None, _) => x
            .steps
            .push(format!("client: resolver {} (no ECS)", c.resolver)),
    }
}

/// The client's GeoIP location, described.
fn locate(
    x: &mut Explanation,
    geo_db: Option<&GeoDb>,
    c: ClientView,
    ecs_enabled: bool,
) -> Option<geo::Location> {
    let Some(db) = geo_db else {
        x.steps.push("GeoIP: no database configured".into());
        return None;
    };
    let (addr, _) = match (c.ecs, ecs_enabled) {
        (Some((_, 0)), true) => return None,
        (Some((a, p)), true) => geo::truncate(a, p),
        _ => {
            let a = c.resolver.to_canonical();
            geo::truncate(a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let found = db.lookup(addr);
    let net = geo::truncate(addr, found.prefix).0;
    match found.location {
        None => {
            x.steps.push(format!(
                "GeoIP ({}): {net}/{} is not in the database: location unknown",
                db.path().display(),
                found.prefix
            ));
            None
        }
        Some(loc) => {
            let country = loc
                .country
                .and_then(|c| std::str::from_utf8(&c).ok().and_then(geo::country))
                .map_or("unknown country".to_string(), |c| {
                    format!(
                        "{} ({})",
                        std::str::from_utf8(&c.code).unwrap_or("?"),
                        c.name
                    )
                });
            let sub = loc
                .subdivision
                .and_then(|i| geo::SUBDIVISIONS.get(i as usize))
                .map_or(String::new(), |s| format!(", {} ({})", s.code, s.name));
            let group = loc
                .group
                .map_or(String::new(), |g| format!(", {}", g.code()));
            x.steps.push(format!(
                "GeoIP ({}): {net}/{} -> {country}{sub}{group}",
                db.path().display(),
                found.prefix
            ));
            Some(loc)
        }
    }
}

/// One profile's decision, with what rendering it reads.
struct Shown<'a> {
    table: &'a Snapshot,
    geo_db: Option<&'a GeoDb>,
    client: ClientView,
    /// The family asked.
    family: Family,
    /// What routing decided in the profile.
    d: &'a ProfileDecision,
    /// The profile.
    p: &'a Profile,
    /// Its endpoints.
    eps: &'a [Endpoint],
}

impl Shown<'_> {
    /// `profile/endpoint`.
    fn label(&self, e: &Endpoint) -> String {
        format!("{}/{}", self.p.name.as_str().trim_end_matches('.'), e.name)
    }

    /// An endpoint's target as an operator reads it.
    fn target(&self, e: &Endpoint) -> String {
        self.table.target_text(e)
    }
}

/// Renders one profile's decision: the method's view of the endpoints,
/// what routing matched and picked, and why the others could not be.
fn explain_profile(
    x: &mut Explanation,
    table: &Snapshot,
    geo_db: Option<&GeoDb>,
    d: &ProfileDecision,
    family: Family,
    c: ClientView,
) {
    let p = &table.profiles[d.profile as usize];
    let s = Shown {
        table,
        geo_db,
        client: c,
        family,
        d,
        p,
        eps: table.endpoints_of(p),
    };
    if !p.enabled {
        x.steps.push(format!(
            "profile {} is disabled (enabled = false): NXDOMAIN",
            p.name
        ));
        return;
    }
    describe_settings(x, &s);
    let statuses: Vec<Status> = s.eps.iter().map(|e| table.status(e)).collect();
    let client_aware = matches!(
        p.routing,
        Routing::Geographic { .. } | Routing::Subnet { .. }
    );
    describe_excluded(x, &s, &statuses, client_aware);
    describe_stage(x, &s, client_aware);
    describe_method(x, &s, &statuses);
    describe_outcome(x, &s);
}

/// The profile's routing method, TTL and `on_all_down`; stickiness; the
/// worst-case failover time when its endpoints are monitored.
fn describe_settings(x: &mut Explanation, s: &Shown<'_>) {
    let p = s.p;
    let on_all_down = p.on_all_down.text(s.eps);
    x.steps.push(format!(
        "routing: {} (TTL {}, on_all_down {on_all_down})",
        p.routing.name(),
        p.ttl
    ));
    if p.sticky {
        x.steps.push(
            "sticky (client-subnet): the client's network (/24 or /56) chooses by a consistent hash, the same every query"
                .to_string(),
        );
    }
    if let (Some(detect), Some(worst)) = (p.detection, p.worst_failover()) {
        x.steps.push(format!(
            "worst-case failover: {} to detect (interval x (tolerated_failures + 1) + timeout) + TTL {}s = {}",
            humantime::format_duration(detect),
            p.ttl,
            humantime::format_duration(worst)
        ));
    }
}

/// Each endpoint not picked that could not have been, with its reason:
/// of the other family (multivalue), not usable at the stage answered
/// (its effective status), or not matching the client (geographic,
/// subnet). Endpoints that could have been picked are not listed.
fn describe_excluded(x: &mut Explanation, s: &Shown<'_>, statuses: &[Status], client_aware: bool) {
    let (p, d, eps) = (s.p, s.d, s.eps);
    let multivalue = matches!(p.routing, Routing::Multivalue { .. });
    let relevant = |i: usize| !multivalue || eps[i].target.matches(s.family);
    let usable = d.stage.usable();
    let picked = |i: usize| d.picks.contains(&(i as u32));
    for (i, e) in eps.iter().enumerate() {
        if picked(i) {
            continue;
        }
        let reason = if !relevant(i) {
            format!("{} is not an address of the family asked", s.target(e))
        } else if d.shed.contains(&(i as u32)) {
            format!(
                "{}: this client's network is in the share moved to the other endpoints",
                e.runtime.shed_text().unwrap_or_else(|| "shed".into())
            )
        } else if !usable(statuses[i]) {
            s.table.effective(p, e).to_string()
        } else if client_aware && !d.candidates.contains(&(i as u32)) {
            match p.routing {
                Routing::Subnet { .. } => "its ranges do not contain the client".into(),
                _ => "its regions do not match the client".into(),
            }
        } else {
            continue;
        };
        x.excluded.push(Excluded {
            endpoint: s.label(e),
            reason,
        });
    }
}

/// The stage the answer was drawn from, when it is not the answerable
/// endpoints: why nothing (that matches the client) was answerable.
fn describe_stage(x: &mut Explanation, s: &Shown<'_>, client_aware: bool) {
    let (p, eps) = (s.p, s.eps);
    match s.d.stage {
        Stage::Answerable => {}
        Stage::Nothing => x.steps.push(p.stage_text(s.d.stage, eps)),
        stage => x.steps.push(format!(
            "nothing {}is answerable: {}",
            if client_aware {
                "that matches the client "
            } else {
                ""
            },
            p.stage_text(stage, eps)
        )),
    }
}

/// The method's view of the endpoints it chose among: the priority order,
/// the weights' shares, the multivalue pool, the distance ranking, the
/// regions or the range that matched the client.
fn describe_method(x: &mut Explanation, s: &Shown<'_>, statuses: &[Status]) {
    // The endpoints the method chose among, as routing recorded them.
    let pool: Vec<usize> = s.d.pool.iter().map(|&i| i as usize).collect();
    match &s.p.routing {
        Routing::Priority { order } => priority_order(x, s, order, statuses),
        Routing::Weighted { .. } => weighted_shares(x, s, &pool),
        Routing::Multivalue { max_answers } => multivalue_pool(x, s, *max_answers, &pool),
        Routing::Performance { points } => {
            latency_looks(x, s);
            if !s.d.latency.iter().any(|l| l.decided) {
                distance_ranking(x, s, points, &pool);
            }
        }
        Routing::Geographic { regions } => matching_regions(x, s, regions),
        Routing::Subnet { fallback, .. } => matching_range(x, s, *fallback),
    }
}

/// Priority: every endpoint in order, with its target and status.
fn priority_order(x: &mut Explanation, s: &Shown<'_>, order: &[u32], statuses: &[Status]) {
    let eps = s.eps;
    let ranked: Vec<String> = order
        .iter()
        .map(|&i| {
            let e = &eps[i as usize];
            format!("{} ({}, {})", e.name, s.target(e), statuses[i as usize])
        })
        .collect();
    x.steps
        .push(format!("priority order: {}", ranked.join(" > ")));
}

/// Weighted: each endpoint of the pool with its weight and share.
fn weighted_shares(x: &mut Explanation, s: &Shown<'_>, pool: &[usize]) {
    let eps = s.eps;
    let total: u64 = pool.iter().map(|&i| eps[i].weight as u64).sum();
    let shares: Vec<String> = pool
        .iter()
        .map(|&i| {
            let w = eps[i].weight as u64;
            format!(
                "{} weight {w} ({:.0}%)",
                eps[i].name,
                100.0 * w as f64 / total.max(1) as f64
            )
        })
        .collect();
    if !shares.is_empty() {
        x.steps.push(format!(
            "one endpoint at random per query, in proportion to weight: {}",
            shares.join(", ")
        ));
    }
}

/// Multivalue: how many of the pool answer, and the pool.
fn multivalue_pool(x: &mut Explanation, s: &Shown<'_>, max_answers: u8, pool: &[usize]) {
    let names: Vec<String> = pool.iter().map(|&i| s.eps[i].name.to_string()).collect();
    if !names.is_empty() {
        x.steps.push(format!(
            "up to {max_answers} of {} at random per query, in random order: {}",
            names.len(),
            names.join(", ")
        ));
    }
}

/// Performance: what the latency table said, look by look (those that
/// found nothing in one line).
fn latency_looks(x: &mut Explanation, s: &Shown<'_>) {
    let now = crate::clock::unix_secs_now();
    let picked = s.d.picks.first().copied();
    let (empty, found): (Vec<_>, Vec<_>) = s.d.latency.iter().partition(|l| l.estimates.is_empty());
    if !empty.is_empty() {
        let from: Vec<String> = empty.iter().map(|l| l.from.to_string()).collect();
        x.steps.push(format!(
            "no latency samples from {}",
            from.join(", nor from ")
        ));
    }
    for look in found {
        x.steps.push(look.text(s.eps, picked, now));
    }
}

/// Performance: where the client is, and the pool by distance from it.
fn distance_ranking(x: &mut Explanation, s: &Shown<'_>, points: &[Point], pool: &[usize]) {
    let here: Option<Point> = locate(x, s.geo_db, s.client, s.table.ecs).and_then(|l| l.point);
    match here {
        None => x
            .steps
            .push("client location unknown: the first usable endpoint in list order".into()),
        Some(here) => {
            let mut ranked: Vec<(f64, usize)> =
                pool.iter().map(|&i| (here.km_to(&points[i]), i)).collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
            let list: Vec<String> = ranked
                .iter()
                .map(|(km, i)| format!("{} {:.0} km", s.eps[*i].name, km))
                .collect();
            if !list.is_empty() {
                x.steps.push(format!(
                    "distance ranking of usable endpoints: {}",
                    list.join(", ")
                ));
            }
        }
    }
}

/// Geographic: where the client is, and the endpoints whose regions match
/// it, with those regions.
fn matching_regions(x: &mut Explanation, s: &Shown<'_>, regions: &FxHashMap<RegionCode, u32>) {
    locate(x, s.geo_db, s.client, s.table.ecs);
    let codes_of = |i: u32| {
        let mut codes: Vec<String> = regions
            .iter()
            .filter(|(_, e)| **e == i)
            .map(|(code, _)| code.text())
            .collect();
        codes.sort();
        codes.join(", ")
    };
    if s.d.candidates.is_empty() {
        x.steps
            .push("no region of any endpoint matches the client".into());
    } else {
        let list: Vec<String> =
            s.d.candidates
                .iter()
                .filter_map(|&i| s.eps.get(i as usize).map(|e| (i, e)))
                .map(|(i, e)| format!("{} ({})", e.name, codes_of(i)))
                .collect();
        x.steps.push(format!(
            "endpoints whose regions match the client, most specific first: {}",
            list.join("; ")
        ));
    }
}

/// Subnet: the client's address and the range it is in, or the fallback.
fn matching_range(x: &mut Explanation, s: &Shown<'_>, fallback: Option<u32>) {
    let (c, eps) = (s.client, s.eps);
    let addr = match (c.ecs, s.table.ecs) {
        (Some((_, 0)), true) => None,
        (Some((a, p)), true) => Some(geo::truncate(a, p).0),
        _ => Some(c.resolver.to_canonical()),
    };
    let fb = fallback.map(|f| eps[f as usize].name.to_string());
    let matched =
        s.d.candidates
            .first()
            .filter(|&&i| Some(i) != fallback)
            .and_then(|&i| eps.get(i as usize));
    match (addr, matched) {
        (Some(a), Some(e)) => {
            x.steps
                .push(format!("{a} is in a range of {} ({})", e.name, s.target(e)))
        }
        (Some(a), None) => x.steps.push(format!(
            "{a} is in no range: {}",
            fb.map_or("no fallback endpoint".into(), |f| format!(
                "the fallback endpoint {f}"
            ))
        )),
        (None, _) => x
            .steps
            .push("client not used: the fallback endpoint answers".into()),
    }
}

/// What the profile answered: the endpoints chosen (and NODATA when the
/// first is an address of the other family), or the response code.
fn describe_outcome(x: &mut Explanation, s: &Shown<'_>) {
    let (d, eps) = (s.d, s.eps);
    match d.outcome {
        Outcome::Endpoints => {
            let names: Vec<String> = d
                .picks
                .iter()
                .filter_map(|&i| eps.get(i as usize))
                .map(|e| format!("{} ({})", e.name, s.target(e)))
                .collect();
            x.steps.push(format!("chosen: {}", names.join(", ")));
            x.chosen = d
                .picks
                .iter()
                .filter_map(|&i| eps.get(i as usize))
                .map(|e| s.label(e))
                .collect();
            if let Some(e) = d.picks.first().and_then(|&i| eps.get(i as usize)) {
                let mismatch = match (&e.target, s.family) {
                    (Target::V4(_), Family::V6) => Some("AAAA"),
                    (Target::V6(_), Family::V4) => Some("A"),
                    _ => None,
                };
                if let Some(t) = mismatch {
                    x.steps.push(format!(
                        "{} is an address of the other family: the {t} query gets NODATA",
                        s.target(e)
                    ));
                }
            }
        }
        Outcome::NoData => {
            x.chosen.clear();
            x.steps.push("nothing to answer: NODATA".into());
        }
        Outcome::NxDomain => {
            x.chosen.clear();
            x.steps.push("NXDOMAIN".into());
        }
        Outcome::ServFail => {
            x.chosen.clear();
            x.steps.push("SERVFAIL".into());
        }
    }
}
