//! Why a name answers what it does: the steps of the decision and every
//! endpoint left out, with its reason. Read-only over a snapshot; the answer
//! itself comes from the real answer path (`dns::inspect`), so the two never
//! disagree about what is sent.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

use super::{
    Endpoint, Family, Lookup, NodeData, OnAllDown, Profile, Routing, RoutingTable, Target,
};
use crate::dns::name::DomainName;
use crate::geo::{self, GeoDb, Point};
use crate::health::Status;

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
    /// Endpoints left out, with reasons.
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

fn ts(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Explains how `name` (lowercase or not) would be answered for `family`.
pub fn explain(
    table: &RoutingTable,
    geo_db: Option<&GeoDb>,
    name: &str,
    family: Family,
    client: ClientView,
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
        Lookup::Found(id) => id,
    };
    let node = &table.nodes[id as usize];
    let zone = &table.zones[node.zone as usize].origin;
    let pid = match &node.data {
        NodeData::Empty => {
            x.steps.push(format!(
                "{name} exists in zone {zone} but holds no records: NODATA"
            ));
            return x;
        }
        NodeData::Records(sets) => {
            let types: Vec<String> = sets.iter().map(|s| rtype_name(s.rtype)).collect();
            x.steps.push(format!(
                "{name} holds static records in zone {zone}: {}",
                types.join(", ")
            ));
            return x;
        }
        NodeData::Profile(pid) => *pid,
    };
    let mut profile = &table.profiles[pid as usize];
    x.steps.push(format!(
        "{name} is answered by profile {} ({}) in zone {zone}",
        profile.name,
        profile.source.display()
    ));
    describe_client(&mut x, client, table.ecs);
    for depth in 0..=super::MAX_NESTING {
        let Some(next) = explain_profile(&mut x, table, geo_db, profile, family, client) else {
            break;
        };
        if depth == super::MAX_NESTING {
            break;
        }
        profile = &table.profiles[next as usize];
        x.steps.push(format!(
            "the choice is nested profile {}: its decision follows",
            profile.name
        ));
    }
    x
}

fn rtype_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        257 => "CAA".into(),
        other => format!("TYPE{other}"),
    }
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

fn why_not(table: &RoutingTable, e: &Endpoint, s: Status) -> String {
    let cell_note = |since: SystemTime, last: Option<String>| {
        format!(
            "{s} since {}{}",
            ts(since),
            last.map_or(String::new(), |r| format!(" (last probe: {r})"))
        )
    };
    match (&e.health, s) {
        (_, Status::Disabled) if e.runtime.is_disabled() => {
            "Disabled at runtime (switchyard endpoint enable to undo)".into()
        }
        (_, Status::Disabled) => "Disabled in the configuration (enabled = false)".into(),
        (super::Health::Monitored(cell), _) => {
            let d = cell.details();
            let last = d.last_probe.as_ref().map(|p| match &p.failure {
                Some(f) => f.reason.clone(),
                None => "succeeded".into(),
            });
            cell_note(d.since, last)
        }
        (super::Health::Nested { child, min }, _) => format!(
            "{s}: rolled up from profile {} (min_child_endpoints {min})",
            table
                .profiles
                .get(*child as usize)
                .map_or("?", |p| p.name.as_str())
        ),
        _ => s.to_string(),
    }
}

/// Explains one profile's decision; returns the child profile when the
/// chosen endpoint is nested (by the same rule the answer path uses: the
/// first candidate routing would pick).
fn explain_profile(
    x: &mut Explanation,
    table: &RoutingTable,
    geo_db: Option<&GeoDb>,
    p: &Profile,
    family: Family,
    c: ClientView,
) -> Option<u32> {
    let eps = table.endpoints_of(p);
    let label = |e: &Endpoint| format!("{}/{}", p.name.as_str().trim_end_matches('.'), e.name);
    let target = |e: &Endpoint| match e.target {
        Target::Nested(child) => format!(
            "profile {}",
            table
                .profiles
                .get(child as usize)
                .map_or("?", |p| p.name.as_str())
        ),
        ref t => t.to_string(),
    };
    if !p.enabled {
        x.steps.push(format!(
            "profile {} is disabled (enabled = false): NXDOMAIN",
            p.name
        ));
        return None;
    }
    let on_all_down = match p.on_all_down {
        OnAllDown::ServeAll => "serve-all".to_string(),
        OnAllDown::NoData => "nodata".into(),
        OnAllDown::NxDomain => "nxdomain".into(),
        OnAllDown::ServFail => "servfail".into(),
        OnAllDown::Endpoint(i) => eps
            .get(i as usize)
            .map_or("?".into(), |e| e.name.to_string()),
    };
    x.steps.push(format!(
        "routing: {} (TTL {}, on_all_down {on_all_down})",
        p.routing.name(),
        p.ttl
    ));
    let statuses: Vec<Status> = eps.iter().map(|e| table.status(e)).collect();
    let multivalue = matches!(p.routing, Routing::Multivalue { .. });
    let mut usable = Vec::new();
    for (i, e) in eps.iter().enumerate() {
        let s = statuses[i];
        if multivalue && !e.target.matches(family) {
            x.excluded.push(Excluded {
                endpoint: label(e),
                reason: format!("{} is not an address of the family asked", target(e)),
            });
        } else if !s.is_answerable() {
            x.excluded.push(Excluded {
                endpoint: label(e),
                reason: why_not(table, e, s),
            });
        } else {
            usable.push(i);
        }
    }
    let all_down = usable.is_empty()
        && eps
            .iter()
            .enumerate()
            .any(|(i, e)| statuses[i].is_eligible() && (!multivalue || e.target.matches(family)));
    if all_down
        && !matches!(
            p.routing,
            Routing::Geographic { .. } | Routing::Subnet { .. }
        )
    {
        x.steps.push(format!(
            "every eligible endpoint is Degraded: on_all_down = {on_all_down} applies{}",
            if p.on_all_down == OnAllDown::ServeAll {
                " (route as if they were Online)"
            } else {
                ""
            }
        ));
        if p.on_all_down == OnAllDown::ServeAll {
            usable = (0..eps.len())
                .filter(|&i| statuses[i].is_eligible())
                .collect();
        } else {
            return match p.on_all_down {
                OnAllDown::Endpoint(i)
                    if statuses.get(i as usize).is_some_and(|s| s.is_eligible()) =>
                {
                    nested_child(eps, i as usize)
                }
                OnAllDown::Endpoint(_) => {
                    x.steps
                        .push("the on_all_down endpoint is itself disabled: NODATA".into());
                    None
                }
                _ => None,
            };
        }
    }
    let chosen: Option<usize> = match &p.routing {
        Routing::Priority { order } => {
            let ranked: Vec<String> = order
                .iter()
                .map(|&i| {
                    let e = &eps[i as usize];
                    format!("{} ({}, {})", e.name, target(e), statuses[i as usize])
                })
                .collect();
            x.steps
                .push(format!("priority order: {}", ranked.join(" > ")));
            order
                .iter()
                .map(|&i| i as usize)
                .find(|i| usable.contains(i))
        }
        Routing::Weighted { .. } => {
            let total: u64 = usable.iter().map(|&i| eps[i].weight as u64).sum();
            let shares: Vec<String> = usable
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
            x.steps.push(format!(
                "one endpoint at random per query: {}",
                shares.join(", ")
            ));
            None
        }
        Routing::Multivalue { max_answers } => {
            let names: Vec<String> = usable.iter().map(|&i| eps[i].name.to_string()).collect();
            x.steps.push(format!(
                "up to {max_answers} of {} in random order: {}",
                names.len(),
                names.join(", ")
            ));
            None
        }
        Routing::Performance { points } => {
            let here: Option<Point> = locate(x, geo_db, c, table.ecs).and_then(|l| l.point);
            match here {
                None => {
                    x.steps.push(
                        "client location unknown: the first usable endpoint in list order".into(),
                    );
                    usable.first().copied()
                }
                Some(here) => {
                    let mut ranked: Vec<(f64, usize)> = usable
                        .iter()
                        .map(|&i| (here.km_to(&points[i]), i))
                        .collect();
                    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let list: Vec<String> = ranked
                        .iter()
                        .map(|(km, i)| format!("{} {:.0} km", eps[*i].name, km))
                        .collect();
                    x.steps.push(format!(
                        "distance ranking of usable endpoints: {}",
                        list.join(", ")
                    ));
                    ranked.first().map(|r| r.1)
                }
            }
        }
        Routing::Geographic { regions } => {
            let loc = locate(x, geo_db, c, table.ecs);
            let mut matches: Vec<(String, usize)> = Vec::new();
            let try_code = |code: &str, kind: &str, matches: &mut Vec<(String, usize)>| {
                if let Some(rc) = super::RegionCode::new(code)
                    && let Some(&i) = regions.get(&rc)
                {
                    matches.push((
                        format!("{code} ({kind}) -> {}", eps[i as usize].name),
                        i as usize,
                    ));
                }
            };
            if let Some(l) = loc {
                if let Some(s) = l
                    .subdivision
                    .and_then(|i| geo::SUBDIVISIONS.get(i as usize))
                {
                    try_code(s.code, "subdivision", &mut matches);
                }
                if let Some(cc) = l.country.and_then(|cc| String::from_utf8(cc.to_vec()).ok()) {
                    try_code(&cc, "country", &mut matches);
                }
                if let Some(g) = l.group {
                    try_code(g.code(), "region group", &mut matches);
                }
            }
            try_code("WORLD", "everything", &mut matches);
            if matches.is_empty() {
                x.steps
                    .push("no region of any endpoint matches the client: NODATA".into());
                return None;
            }
            let list: Vec<String> = matches.iter().map(|m| m.0.clone()).collect();
            x.steps.push(format!(
                "matching regions, most specific first: {}",
                list.join("; ")
            ));
            let pick = matches.iter().map(|m| m.1).find(|i| usable.contains(i));
            if pick.is_none() {
                x.steps.push(format!(
                    "no matching endpoint is answerable: on_all_down = {on_all_down} applies to {}",
                    eps[matches[0].1].name
                ));
            }
            pick.or(Some(matches[0].1).filter(|_| p.on_all_down == OnAllDown::ServeAll))
        }
        Routing::Subnet { ranges, fallback } => {
            let addr = match (c.ecs, table.ecs) {
                (Some((_, 0)), true) => None,
                (Some((a, p)), true) => Some(geo::truncate(a, p).0),
                _ => Some(c.resolver.to_canonical()),
            };
            let hit = addr.and_then(|a| {
                let (v6, k) = match a {
                    IpAddr::V4(v4) => (false, u32::from(v4) as u128),
                    IpAddr::V6(v6) => (true, u128::from(v6)),
                };
                ranges.iter().find(|r| r.v6 == v6 && r.lo <= k && k <= r.hi)
            });
            let fb = fallback.map(|f| f as usize);
            match (hit, addr) {
                (Some(r), Some(a)) => x.steps.push(format!(
                    "{a} is in a range of {} ({})",
                    eps[r.endpoint as usize].name,
                    target(&eps[r.endpoint as usize])
                )),
                (None, Some(a)) => x.steps.push(format!(
                    "{a} is in no range: {}",
                    fb.map_or("no fallback endpoint, NODATA".into(), |f| format!(
                        "fallback endpoint {}",
                        eps[f].name
                    ))
                )),
                _ => x
                    .steps
                    .push("client not used: the fallback endpoint answers".into()),
            }
            let candidates: Vec<usize> = hit
                .map(|r| r.endpoint as usize)
                .into_iter()
                .chain(fb)
                .collect();
            candidates
                .iter()
                .copied()
                .find(|i| usable.contains(i))
                .or(candidates
                    .first()
                    .copied()
                    .filter(|_| p.on_all_down == OnAllDown::ServeAll))
        }
    };
    if let Some(i) = chosen {
        let e = &eps[i];
        x.steps.push(format!("chosen: {} ({})", e.name, target(e)));
        let mismatch = match (&e.target, family) {
            (Target::V4(_), Family::V6) => Some("AAAA"),
            (Target::V6(_), Family::V4) => Some("A"),
            _ => None,
        };
        if let Some(t) = mismatch {
            x.steps.push(format!(
                "{} is an address of the other family: the {t} query gets NODATA",
                target(e)
            ));
        }
        return nested_child(eps, i);
    }
    None
}

fn nested_child(eps: &[Endpoint], i: usize) -> Option<u32> {
    match eps.get(i)?.target {
        Target::Nested(child) => Some(child),
        _ => None,
    }
}
