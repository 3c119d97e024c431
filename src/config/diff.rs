//! The answer diff: what a candidate configuration would answer
//! differently from the running one, name by name, at the running health.
//!
//! [`diff`] is a pure function of two compiled tables (and their probes).
//! Every answer it compares comes from the real routing decision
//! ([`crate::routing::choose`], the function the answer path calls), asked for the
//! clients each profile tells apart: per region of a geographic mapping,
//! per address range of a subnet profile, per country (at its
//! representative point) for performance routing, and a client routing
//! knows nothing about ("clients no key matches": no region, range or location of the profile). Weighted and multivalue choose
//! at random per query, so for them the answer is the set of endpoints
//! that can be chosen, and the weights and shares are compared apart.
//!
//! The statuses are the tables' own: the running table reads the live
//! health; a dry-run reload compiles the candidate with a copy of it (see
//! [`super::Carry::detached`]), so an endpoint that keeps its probe
//! has its status of now, and one whose probe changed starts
//! `CheckingEndpoint`, as a real reload would make it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use super::{ProbeKey, ProbeSpec};
use crate::geo::{self, Location, Point};
use crate::routing::{Client, Decision, Picks, choose};
use crate::snapshot::EndpointKey;
use crate::snapshot::{Endpoint, Family, Profile, ProfileId, RegionCode, Routing, Snapshot};

/// One side of the comparison: a compiled table and its probes.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The routing table.
    pub table: &'a Snapshot,
    /// The probes compiled with it (which probe decides which endpoint).
    pub probes: &'a [ProbeSpec],
}

/// What changes in the answers, name by name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnswerDiff {
    /// The names that change, sorted by name.
    pub names: Vec<NameDiff>,
    /// Names compared that do not change.
    pub unchanged: usize,
}

/// How one name changes.
#[derive(Clone, Debug, Serialize)]
pub struct NameDiff {
    /// The name, without the trailing dot.
    pub name: String,
    /// The routing method of a profile (the candidate's when both have
    /// one), `records` for static records, `zone` for a zone.
    pub kind: String,
    /// Added, removed or changed.
    pub change: Change,
    /// Added: what it will answer; removed: what it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Changed: what changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// Whether a name appears, disappears or changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only the candidate has it.
    Added,
    /// Only the running configuration has it.
    Removed,
    /// Both have it; it differs.
    Changed,
}

/// One change of a name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detail {
    /// What changes: `clients` (the answer for these clients), `answer`
    /// (the answer, whoever asks), `weight`, `order`, `endpoint`, `probe`,
    /// `routing`, `ttl`, `ttl_degraded`, `on_all_down`, `enabled`,
    /// `sticky`, a record type (`A`, `MX`), `dnssec`.
    pub aspect: String,
    /// Whom or what it is about: region codes, subnets, countries,
    /// `clients no key matches`, an endpoint's name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Before (`None`: absent).
    pub old: Option<String>,
    /// After (`None`: absent).
    pub new: Option<String>,
    /// Weights: the endpoint's share of answers before and after, in
    /// percent, among the endpoints answerable now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<(u32, u32)>,
    /// A remark (`probe changed: health will be re-checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Detail {
    fn new(aspect: &str, old: Option<String>, new: Option<String>) -> Detail {
        Detail {
            aspect: aspect.to_string(),
            keys: Vec::new(),
            old,
            new,
            share: None,
            note: None,
        }
    }

    fn keyed(mut self, keys: Vec<String>) -> Detail {
        self.keys = keys;
        self
    }

    fn noted(mut self, note: impl Into<String>) -> Detail {
        self.note = Some(note.into());
        self
    }
}

/// The label of the client no region, range or location matches.
pub const EVERYTHING_ELSE: &str = "clients no key matches";

/// Compares what `old` and `new` answer: every profile, static record set
/// and zone of either.
pub fn diff(old: Side<'_>, new: Side<'_>) -> AnswerDiff {
    let mut out = AnswerDiff::default();
    let mut compared = 0usize;
    zones(old.table, new.table, &mut out.names, &mut compared);
    profiles(old, new, &mut out.names, &mut compared);
    records(old.table, new.table, &mut out.names, &mut compared);
    out.names
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(&b.kind)));
    out.unchanged = compared - out.names.len();
    out
}

/// A name without its trailing dot.
fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_string()
}

fn zones(old: &Snapshot, new: &Snapshot, out: &mut Vec<NameDiff>, compared: &mut usize) {
    let by_origin = |t: &Snapshot| -> BTreeMap<String, bool> {
        t.zones
            .iter()
            .map(|z| (bare(z.origin.as_str()), z.signer.is_some()))
            .collect()
    };
    let (o, n) = (by_origin(old), by_origin(new));
    let signed = |s: bool| if s { "signed" } else { "unsigned" };
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        *compared += 1;
        let (change, summary, details) = match (o.get(name), n.get(name)) {
            (Some(&a), Some(&b)) if a == b => continue,
            (Some(&a), Some(&b)) => (
                Change::Changed,
                None,
                vec![Detail::new(
                    "dnssec",
                    Some(signed(a).to_string()),
                    Some(signed(b).to_string()),
                )],
            ),
            (None, Some(&b)) => (Change::Added, Some(signed(b).to_string()), Vec::new()),
            (Some(&a), None) => (Change::Removed, Some(signed(a).to_string()), Vec::new()),
            (None, None) => continue,
        };
        out.push(NameDiff {
            name: name.clone(),
            kind: "zone".into(),
            change,
            summary,
            details,
        });
    }
}

/// Static records by name and type (SOA left out: unless set, its serial
/// follows the rest of the content, so it changes with any change).
type RecordSets = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn record_sets(t: &Snapshot) -> RecordSets {
    let mut all = RecordSets::new();
    for node in &t.nodes {
        for set in node.records.iter().filter(|s| s.rtype != 6) {
            let values: Vec<String> = set.rrs.iter().map(record_text).collect();
            all.entry(bare(node.name.as_str()))
                .or_default()
                .insert(rtype_name(set.rtype), values);
        }
    }
    all
}

use crate::proto::rr::type_name as rtype_name;

/// A record's TTL and data as a zone file writes them.
fn record_text(rr: &crate::proto::rr::WireRr) -> String {
    rr.data_text()
}

fn records(old: &Snapshot, new: &Snapshot, out: &mut Vec<NameDiff>, compared: &mut usize) {
    let (o, n) = (record_sets(old), record_sets(new));
    // Names of zones that come or go are reported with the zone.
    let zone_of = |t: &Snapshot, name: &str| {
        crate::proto::name::DomainName::parse(name, None)
            .ok()
            .and_then(|d| t.zone_of(&d))
            .map(|z| bare(t.zones[z as usize].origin.as_str()))
    };
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (o.get(name), n.get(name));
        if zone_of(old, name) != zone_of(new, name) && (a.is_none() || b.is_none()) {
            continue;
        }
        *compared += 1;
        let list = |sets: &BTreeMap<String, Vec<String>>| {
            sets.iter()
                .map(|(t, v)| format!("{t} {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (change, summary, details) = match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => {
                let types: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                let details = types
                    .into_iter()
                    .filter(|t| a.get(*t) != b.get(*t))
                    .map(|t| {
                        Detail::new(
                            t,
                            a.get(t).map(|v| v.join(", ")),
                            b.get(t).map(|v| v.join(", ")),
                        )
                    })
                    .collect();
                (Change::Changed, None, details)
            }
            (None, Some(b)) => (Change::Added, Some(list(b)), Vec::new()),
            (Some(a), None) => (Change::Removed, Some(list(a)), Vec::new()),
            (None, None) => continue,
        };
        out.push(NameDiff {
            name: name.clone(),
            kind: "records".into(),
            change,
            summary,
            details,
        });
    }
}

fn profiles(old: Side<'_>, new: Side<'_>, out: &mut Vec<NameDiff>, compared: &mut usize) {
    let by_name = |t: &Snapshot| -> BTreeMap<String, ProfileId> {
        t.profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (bare(p.name.as_str()), i as ProfileId))
            .collect()
    };
    let (o, n) = (by_name(old.table), by_name(new.table));
    let (old_probes, new_probes) = (probe_keys(old), probe_keys(new));
    for name in o.keys().chain(n.keys()).collect::<BTreeSet<_>>() {
        *compared += 1;
        let entry = match (o.get(name), n.get(name)) {
            (Some(&a), Some(&b)) => {
                let details = profile_changes(old, a, new, b, &old_probes, &new_probes);
                if details.is_empty() {
                    continue;
                }
                NameDiff {
                    name: name.clone(),
                    kind: new.table.profiles[b as usize].routing.name().into(),
                    change: Change::Changed,
                    summary: None,
                    details,
                }
            }
            (None, Some(&b)) => NameDiff {
                name: name.clone(),
                kind: new.table.profiles[b as usize].routing.name().into(),
                change: Change::Added,
                summary: Some(format!("answers {}", answer(new.table, b, &Spec::Everyone))),
                details: Vec::new(),
            },
            (Some(&a), None) => NameDiff {
                name: name.clone(),
                kind: old.table.profiles[a as usize].routing.name().into(),
                change: Change::Removed,
                summary: Some(format!(
                    "was answering {}",
                    answer(old.table, a, &Spec::Everyone)
                )),
                details: Vec::new(),
            },
            (None, None) => continue,
        };
        out.push(entry);
    }
}

/// Each monitored endpoint's probe identity.
fn probe_keys<'a>(side: Side<'a>) -> HashMap<EndpointKey, &'a ProbeKey> {
    let t = side.table;
    let mut keys = HashMap::new();
    for spec in side.probes {
        for &id in &spec.endpoints {
            if let Some(e) = t.endpoints.get(id as usize)
                && let Some(p) = t.profiles.get(e.profile as usize)
            {
                keys.insert(EndpointKey::new(p.name.as_str(), &e.name), &spec.key);
            }
        }
    }
    keys
}

/// Whom an answer is asked for.
#[derive(Clone, Debug)]
enum Spec {
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
fn specs_of(p: &Profile, out: &mut Vec<Spec>, ranges: &mut Vec<(bool, u128, u128)>) {
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
fn pieces(ranges: &[(bool, u128, u128)]) -> Vec<Spec> {
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

/// An endpoint's target as an operator reads it (a nested endpoint's
/// child profile by name).
/// What `pid` answers the client `spec`, from the real decision: the
/// endpoint chosen (through nested profiles, `outer > inner (address)`);
/// for weighted and multivalue, which choose at random per query, the
/// endpoints that can be chosen; or NODATA, NXDOMAIN, SERVFAIL.
fn answer(t: &Snapshot, pid: ProfileId, spec: &Spec) -> String {
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
fn pool(t: &Snapshot, pid: ProfileId) -> Vec<u32> {
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

fn profile_changes(
    old: Side<'_>,
    a: ProfileId,
    new: Side<'_>,
    b: ProfileId,
    old_probes: &HashMap<EndpointKey, &ProbeKey>,
    new_probes: &HashMap<EndpointKey, &ProbeKey>,
) -> Vec<Detail> {
    let (ot, nt) = (old.table, new.table);
    let (op, np) = (&ot.profiles[a as usize], &nt.profiles[b as usize]);
    let (oe, ne) = (ot.endpoints_of(op), nt.endpoints_of(np));
    let mut out = Vec::new();

    // What each client gets.
    let mut specs = Vec::new();
    let mut ranges = Vec::new();
    specs_of(op, &mut specs, &mut ranges);
    specs_of(np, &mut specs, &mut ranges);
    specs.extend(pieces(&ranges));
    let everyone = (
        answer(ot, a, &Spec::Everyone),
        answer(nt, b, &Spec::Everyone),
    );
    if specs.is_empty() && !client_aware(op) && !client_aware(np) {
        if everyone.0 != everyone.1 {
            out.push(Detail::new("answer", Some(everyone.0), Some(everyone.1)));
        }
    } else {
        // Clients that change, grouped by (before, after), in first-seen order.
        let mut groups: Vec<((String, String), Vec<Spec>)> = Vec::new();
        for spec in specs {
            let pair = (answer(ot, a, &spec), answer(nt, b, &spec));
            if pair.0 == pair.1 {
                continue;
            }
            match groups.iter_mut().find(|(p, _)| *p == pair) {
                Some((_, list)) => list.push(spec),
                None => groups.push((pair, vec![spec])),
            }
        }
        let any = !groups.is_empty();
        for ((before, after), list) in groups {
            out.push(Detail::new("clients", Some(before), Some(after)).keyed(labels(&list)));
        }
        if everyone.0 != everyone.1 || any {
            out.push(
                Detail::new("clients", Some(everyone.0), Some(everyone.1))
                    .keyed(vec![EVERYTHING_ELSE.to_string()]),
            );
        }
    }

    // Weights and shares (at today's health).
    if matches!(op.routing, Routing::Weighted { .. })
        && matches!(np.routing, Routing::Weighted { .. })
    {
        let shares = |t: &Snapshot, id: ProfileId, p: &Profile| -> HashMap<String, u32> {
            let eps = t.endpoints_of(p);
            let pool = pool(t, id);
            let total: u64 = pool
                .iter()
                .map(|&i| u64::from(eps[i as usize].weight))
                .sum();
            pool.iter()
                .map(|&i| {
                    let i = i as usize;
                    let w = u64::from(eps[i].weight);
                    let pct = (100 * w + total / 2).checked_div(total).unwrap_or(0);
                    (eps[i].name.to_string(), pct as u32)
                })
                .collect()
        };
        let (os, ns) = (shares(ot, a, op), shares(nt, b, np));
        let weights = |eps: &[Endpoint]| -> BTreeMap<String, u32> {
            eps.iter().map(|e| (e.name.to_string(), e.weight)).collect()
        };
        let (ow, nw) = (weights(oe), weights(ne));
        for name in ne.iter().map(|e| e.name.to_string()).chain(
            oe.iter()
                .map(|e| e.name.to_string())
                .filter(|n| !nw.contains_key(n)),
        ) {
            let (w0, w1) = (ow.get(&name), nw.get(&name));
            let (s0, s1) = (
                os.get(&name).copied().unwrap_or(0),
                ns.get(&name).copied().unwrap_or(0),
            );
            if w0 != w1 || s0 != s1 {
                let mut d = Detail::new("weight", w0.map(u32::to_string), w1.map(u32::to_string))
                    .keyed(vec![name]);
                d.share = Some((s0, s1));
                out.push(d);
            }
        }
    }

    // Priority order.
    if let (Routing::Priority { order: o }, Routing::Priority { order: n }) =
        (&op.routing, &np.routing)
    {
        let names = |order: &[u32], eps: &[Endpoint]| {
            order
                .iter()
                .filter_map(|&i| eps.get(i as usize))
                .map(|e| e.name.to_string())
                .collect::<Vec<_>>()
                .join(" > ")
        };
        let (before, after) = (names(o, oe), names(n, ne));
        if before != after {
            out.push(Detail::new("order", Some(before), Some(after)));
        }
    }

    // Settings.
    let mut setting = |aspect: &str, before: String, after: String| {
        if before != after {
            out.push(Detail::new(aspect, Some(before), Some(after)));
        }
    };
    setting(
        "routing",
        op.routing.name().into(),
        np.routing.name().into(),
    );
    if let (Routing::Multivalue { max_answers: x }, Routing::Multivalue { max_answers: y }) =
        (&op.routing, &np.routing)
    {
        setting("max_answers", x.to_string(), y.to_string());
    }
    setting("ttl", op.ttl.to_string(), np.ttl.to_string());
    let degraded = |p: &Profile| p.ttl_degraded.map_or("not set".into(), |t| t.to_string());
    setting("ttl_degraded", degraded(op), degraded(np));
    setting(
        "on_all_down",
        op.on_all_down.text(oe),
        np.on_all_down.text(ne),
    );
    setting("enabled", op.enabled.to_string(), np.enabled.to_string());
    setting("sticky", op.sticky.to_string(), np.sticky.to_string());

    // Endpoints: added, removed, retargeted, probed differently.
    let key = |p: &Profile, e: &Endpoint| EndpointKey::new(p.name.as_str(), &e.name);
    for e in ne {
        match oe.iter().find(|o| o.name == e.name) {
            None => out.push(
                Detail::new("endpoint", None, Some(nt.target_text(e)))
                    .keyed(vec![e.name.to_string()])
                    .noted(format!("added, {}", nt.status(e))),
            ),
            Some(o) => {
                let (t0, t1) = (ot.target_text(o), nt.target_text(e));
                if t0 != t1 {
                    out.push(
                        Detail::new("endpoint", Some(t0), Some(t1)).keyed(vec![e.name.to_string()]),
                    );
                }
                let (k0, k1) = (old_probes.get(&key(op, o)), new_probes.get(&key(np, e)));
                if k0 != k1 {
                    let note = match (k0, k1) {
                        (Some(_), Some(_)) => "probe changed: health will be re-checked",
                        (None, Some(_)) => "now probed: health will be checked",
                        _ => "no longer probed",
                    };
                    out.push(
                        Detail::new(
                            "probe",
                            Some(ot.status(o).to_string()),
                            Some(nt.status(e).to_string()),
                        )
                        .keyed(vec![e.name.to_string()])
                        .noted(note),
                    );
                }
            }
        }
    }
    for o in oe.iter().filter(|o| !ne.iter().any(|e| e.name == o.name)) {
        out.push(
            Detail::new("endpoint", Some(ot.target_text(o)), None)
                .keyed(vec![o.name.to_string()])
                .noted("removed"),
        );
    }
    out
}

fn client_aware(p: &Profile) -> bool {
    matches!(
        p.routing,
        Routing::Geographic { .. } | Routing::Subnet { .. } | Routing::Performance { .. }
    )
}

/// Labels for a group of clients: region codes and countries as they are,
/// address ranges merged where adjacent and written as CIDR blocks.
fn labels(specs: &[Spec]) -> Vec<String> {
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
fn cidrs(v6: bool, mut lo: u128, hi: u128) -> Vec<String> {
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

/// At most this many keys are listed on one line of the text; the JSON
/// has them all.
const KEYS_SHOWN: usize = 12;

fn keys_text(keys: &[String]) -> String {
    if keys.len() <= KEYS_SHOWN {
        return keys.join(", ");
    }
    format!(
        "{} and {} more",
        keys[..KEYS_SHOWN].join(", "),
        keys.len() - KEYS_SHOWN
    )
}

impl AnswerDiff {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The diff as an operator reads it: a block per name that changes,
    /// then a count (or `no change in answers`).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for n in &self.names {
            match n.change {
                Change::Added | Change::Removed => {
                    let verb = if n.change == Change::Added {
                        "added"
                    } else {
                        "removed"
                    };
                    let _ = write!(s, "{}: {verb} ({}", n.name, n.kind);
                    if let Some(summary) = &n.summary {
                        let _ = write!(s, ", {summary}");
                    }
                    s.push_str(")\n");
                }
                Change::Changed => {
                    let _ = writeln!(s, "{} ({})", n.name, n.kind);
                    render_details(&mut s, &n.details);
                }
            }
        }
        if self.names.is_empty() {
            let _ = writeln!(
                s,
                "no change in answers ({} name{} compared)",
                self.unchanged,
                if self.unchanged == 1 { "" } else { "s" }
            );
        } else {
            let _ = writeln!(
                s,
                "{} name{} change{}, {} unchanged",
                self.names.len(),
                if self.names.len() == 1 { "" } else { "s" },
                if self.names.len() == 1 { "s" } else { "" },
                self.unchanged
            );
        }
        s
    }
}

fn render_details(s: &mut String, details: &[Detail]) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let weights: Vec<&Detail> = details.iter().filter(|d| d.aspect == "weight").collect();
    let mut weights_done = false;
    for d in details {
        match d.aspect.as_str() {
            "weight" => {
                if weights_done {
                    continue;
                }
                weights_done = true;
                let parts: Vec<String> = weights
                    .iter()
                    .map(|w| {
                        let name = w.keys.join(", ");
                        let (s0, s1) = w.share.unwrap_or((0, 0));
                        if w.old == w.new {
                            format!("{name} {} ({s0}% -> {s1}%)", opt(&w.old))
                        } else {
                            format!("{name} {} -> {} ({s0}% -> {s1}%)", opt(&w.old), opt(&w.new))
                        }
                    })
                    .collect();
                let _ = writeln!(s, "  weights: {}", parts.join(", "));
            }
            "clients" if d.old == d.new => {
                let _ = writeln!(s, "  {}: unchanged ({})", keys_text(&d.keys), opt(&d.old));
            }
            "clients" => {
                let _ = writeln!(
                    s,
                    "  {}: {} -> {}",
                    keys_text(&d.keys),
                    opt(&d.old),
                    opt(&d.new)
                );
            }
            _ => {
                let head = if d.keys.is_empty() {
                    d.aspect.clone()
                } else {
                    format!("{} {}", d.aspect, keys_text(&d.keys))
                };
                let change = match (&d.old, &d.new) {
                    (Some(o), Some(n)) => format!("{o} -> {n}"),
                    (None, Some(n)) => n.clone(),
                    (Some(o), None) => o.clone(),
                    (None, None) => String::new(),
                };
                match &d.note {
                    Some(note) if change.is_empty() => {
                        let _ = writeln!(s, "  {head}: {note}");
                    }
                    Some(note) => {
                        let _ = writeln!(s, "  {head}: {note}: {change}");
                    }
                    None => {
                        let _ = writeln!(s, "  {head}: {change}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::{self, Carry, Config};
    use crate::health::Status;
    use crate::snapshot::Health;

    const GEOIP: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/geoip/geo-whois-asn-country.mmdb"
    );

    /// A configuration directory: the server file, one zone, profiles.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(profiles: &[(&str, &str)]) -> Dir {
            let dir = Dir(tempfile::tempdir().unwrap());
            std::fs::create_dir(dir.0.path().join("profiles")).unwrap();
            dir.server("192.0.2.53");
            dir.profiles(profiles);
            dir
        }

        fn server(&self, ns_addr: &str) {
            let text = format!(
                "[geoip]\ndatabase = \"{GEOIP}\"\n[profiles]\ndir = \"profiles\"\n[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nsoa = {{ mname = \"ns1.tm.example.test.\", rname = \"h.example.test.\" }}\nrecords = [{{ name = \"ns1\", type = \"A\", value = \"{ns_addr}\" }}]\n"
            );
            std::fs::write(self.0.path().join("switchyard.toml"), text).unwrap();
        }

        fn profiles(&self, profiles: &[(&str, &str)]) {
            for (name, body) in profiles {
                let path = self.0.path().join("profiles").join(name);
                if body.is_empty() {
                    std::fs::remove_file(path).unwrap();
                } else {
                    std::fs::write(path, body).unwrap();
                }
            }
        }

        fn load(&self) -> Config {
            config::load(&self.0.path().join("switchyard.toml")).unwrap()
        }

        /// Loads the candidate as a dry run does: with a detached copy of
        /// `running`'s health.
        fn candidate(&self, running: &Config) -> Config {
            let carry = Carry::from_running(
                &running.table,
                &running.probes,
                Default::default(),
                running.geo.clone(),
            )
            .detached();
            config::load_with(&self.0.path().join("switchyard.toml"), &carry).unwrap()
        }
    }

    fn run(old: &Config, new: &Config) -> AnswerDiff {
        diff(
            Side {
                table: &old.table,
                probes: &old.probes,
            },
            Side {
                table: &new.table,
                probes: &new.probes,
            },
        )
    }

    fn set(cfg: &Config, profile: &str, endpoint: &str, status: Status) {
        let t = &cfg.table;
        let p = t.profile_by_name(profile).unwrap();
        let e = t
            .endpoints_of(p)
            .iter()
            .find(|e| &*e.name == endpoint)
            .unwrap();
        match &e.health {
            Health::Monitored(cell) => cell.set(status),
            other => panic!("not monitored: {other:?}"),
        }
    }

    const MONITOR: &str = "[monitor]\nprotocol = \"tcp\"\nport = 9\n";

    fn geo(de: &str, ch: &str) -> String {
        format!(
            "name = \"api.tm.example.test.\"\nrouting = \"geographic\"\n{MONITOR}\
             [[endpoints]]\nname = \"eu-west\"\ntarget = \"192.0.2.1\"\nregions = [{de}]\n\
             [[endpoints]]\nname = \"eu-central\"\ntarget = \"192.0.2.2\"\nregions = [{ch}]\n\
             [[endpoints]]\nname = \"us-east\"\ntarget = \"192.0.2.3\"\nregions = [\"WORLD\"]\n"
        )
    }

    fn weighted(blue: u32, green: u32) -> String {
        format!(
            "name = \"shop.tm.example.test.\"\nrouting = \"weighted\"\n\
             [[endpoints]]\nname = \"blue\"\ntarget = \"192.0.2.10\"\nweight = {blue}\n\
             [[endpoints]]\nname = \"green\"\ntarget = \"192.0.2.11\"\nweight = {green}\n"
        )
    }

    fn priority(name: &str, addr: &str) -> String {
        format!(
            "name = \"{name}.tm.example.test.\"\nrouting = \"priority\"\n\
             [[endpoints]]\nname = \"only\"\ntarget = \"{addr}\"\n"
        )
    }

    fn online(cfg: &Config) {
        for p in &cfg.probes {
            p.cell.set(Status::Online);
        }
    }

    #[test]
    fn a_country_moved_to_another_endpoint() {
        let dir = Dir::new(&[
            ("api.toml", &geo("\"DE\", \"FR\", \"GEO-EU\"", "\"CH\"")),
            ("shop.toml", &weighted(90, 10)),
        ]);
        let old = dir.load();
        online(&old);
        dir.profiles(&[("api.toml", &geo("\"GEO-EU\"", "\"DE\", \"FR\", \"CH\""))]);
        let new = dir.candidate(&old);
        let d = run(&old, &new);
        assert_eq!(d.names.len(), 1, "{}", d.render());
        let api = &d.names[0];
        assert_eq!(
            (api.name.as_str(), api.kind.as_str(), api.change),
            ("api.tm.example.test", "geographic", Change::Changed)
        );
        assert_eq!(
            api.details[0],
            Detail::new(
                "clients",
                Some("eu-west (192.0.2.1)".into()),
                Some("eu-central (192.0.2.2)".into())
            )
            .keyed(vec!["DE".into(), "FR".into()])
        );
        let text = d.render();
        assert!(
            text.contains("  DE, FR: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n"),
            "{text}"
        );
        assert!(
            text.contains("  clients no key matches: unchanged (us-east (192.0.2.3))\n"),
            "{text}"
        );
        assert!(text.ends_with("1 name changes, 4 unchanged\n"), "{text}");
    }

    #[test]
    fn todays_health_decides_what_a_moved_country_gets() {
        // DE moves to eu-central, which is Degraded: DE clients fall back to
        // their next match (GEO-EU, eu-west), which they get already.
        let dir = Dir::new(&[("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\""))]);
        let old = dir.load();
        online(&old);
        set(&old, "api.tm.example.test", "eu-central", Status::Degraded);
        dir.profiles(&[("api.toml", &geo("\"GEO-EU\"", "\"DE\", \"CH\""))]);
        let new = dir.candidate(&old);
        let d = run(&old, &new);
        assert!(d.is_empty(), "{}", d.render());
        assert!(d.render().starts_with("no change in answers"));
        // Once eu-central is Online, the same edit moves DE.
        set(&old, "api.tm.example.test", "eu-central", Status::Online);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(
            text.contains("  DE: eu-west (192.0.2.1) -> eu-central (192.0.2.2)\n"),
            "{text}"
        );
    }

    #[test]
    fn weights_shift_with_shares() {
        let dir = Dir::new(&[("shop.toml", &weighted(90, 10))]);
        let old = dir.load();
        dir.profiles(&[("shop.toml", &weighted(50, 50))]);
        let new = dir.candidate(&old);
        let d = run(&old, &new);
        let shop = &d.names[0];
        let w: Vec<_> = shop
            .details
            .iter()
            .map(|d| {
                (
                    d.keys[0].as_str(),
                    d.old.as_deref(),
                    d.new.as_deref(),
                    d.share,
                )
            })
            .collect();
        assert_eq!(
            w,
            [
                ("blue", Some("90"), Some("50"), Some((90, 50))),
                ("green", Some("10"), Some("50"), Some((10, 50)))
            ]
        );
        let text = d.render();
        assert!(
            text.contains(
                "shop.tm.example.test (weighted)\n  weights: blue 90 -> 50 (90% -> 50%), green 10 -> 50 (10% -> 50%)\n"
            ),
            "{text}"
        );
    }

    /// A weighted profile drawing from held endpoints (`failback =
    /// "manual"`) lists them, with their shares (the diff printed `"one of "`
    /// and 0%: it rebuilt the pool as "answerable or eligible").
    #[test]
    fn a_held_pool_is_listed_with_its_shares() {
        let held = |blue: u32| {
            format!(
                "name = \"shop.tm.example.test.\"\nrouting = \"weighted\"\nfailback = \"manual\"\n{MONITOR}\
                 [[endpoints]]\nname = \"blue\"\ntarget = \"192.0.2.10\"\nweight = {blue}\n\
                 [[endpoints]]\nname = \"green\"\ntarget = \"192.0.2.11\"\nweight = 10\n"
            )
        };
        let dir = Dir::new(&[("shop.toml", &held(90))]);
        let old = dir.load();
        for ep in ["blue", "green"] {
            set(&old, "shop.tm.example.test", ep, Status::Degraded);
            set(&old, "shop.tm.example.test", ep, Status::Online);
        }
        dir.profiles(&[("shop.toml", &held(30))]);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(
            text.contains("weights: blue 90 -> 30 (90% -> 75%), green 10 (10% -> 25%)"),
            "{text}"
        );
        dir.profiles(&[("shop.toml", "")]);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(
            text.contains(
                "shop.tm.example.test: removed (weighted, was answering one of blue (192.0.2.10), green (192.0.2.11))"
            ),
            "{text}"
        );
    }

    /// `on_all_down = "<endpoint>"` is shown as written, and what it
    /// answers as routing decides it.
    #[test]
    fn a_fixed_on_all_down_endpoint() {
        let fixed = |rule: &str| {
            format!(
                "name = \"api.tm.example.test.\"\nrouting = \"priority\"\non_all_down = \"{rule}\"\n{MONITOR}\
                 [[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\npriority = 1\n\
                 [[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.2\"\npriority = 2\n"
            )
        };
        let dir = Dir::new(&[("api.toml", &fixed("b"))]);
        let old = dir.load();
        set(&old, "api.tm.example.test", "a", Status::Degraded);
        set(&old, "api.tm.example.test", "b", Status::Degraded);
        dir.profiles(&[("api.toml", &fixed("nodata"))]);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(text.contains("on_all_down: b -> nodata"), "{text}");
        assert!(text.contains("answer: b (192.0.2.2) -> NODATA"), "{text}");
    }

    #[test]
    fn names_appear_and_disappear() {
        let dir = Dir::new(&[("old.toml", &priority("old", "192.0.2.9"))]);
        let old = dir.load();
        dir.profiles(&[
            ("old.toml", ""),
            ("new.toml", &priority("new", "192.0.2.7")),
        ]);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(
            text.contains("new.tm.example.test: added (priority, answers only (192.0.2.7))\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "old.tm.example.test: removed (priority, was answering only (192.0.2.9))\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_unchanged_configuration_changes_nothing() {
        let dir = Dir::new(&[
            ("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\"")),
            ("shop.toml", &weighted(90, 10)),
        ]);
        let old = dir.load();
        online(&old);
        let new = dir.candidate(&old);
        let d = run(&old, &new);
        assert!(d.is_empty(), "{}", d.render());
        // The zone, its apex's and ns1's records, two profiles.
        assert_eq!(d.unchanged, 5);
    }

    #[test]
    fn a_changed_probe_starts_over() {
        let dir = Dir::new(&[("api.toml", &geo("\"DE\", \"GEO-EU\"", "\"CH\""))]);
        let old = dir.load();
        online(&old);
        dir.profiles(&[(
            "api.toml",
            &geo("\"DE\", \"GEO-EU\"", "\"CH\"").replace("port = 9", "port = 10"),
        )]);
        let new = dir.candidate(&old);
        let d = run(&old, &new);
        let probes: Vec<_> = d.names[0]
            .details
            .iter()
            .filter(|d| d.aspect == "probe")
            .collect();
        assert_eq!(probes.len(), 3, "{}", d.render());
        assert_eq!(
            probes[0].note.as_deref(),
            Some("probe changed: health will be re-checked")
        );
        assert_eq!(probes[0].new.as_deref(), Some("CheckingEndpoint"));
        // The running health is untouched by the candidate.
        assert!(old.probes.iter().all(|p| p.cell.get() == Status::Online));
    }

    #[test]
    fn subnets_that_move() {
        let office = |internal: &str| {
            format!(
                "name = \"office.tm.example.test.\"\nrouting = \"subnet\"\n\
                 [[endpoints]]\nname = \"internal\"\ntarget = \"10.10.0.10\"\nsubnets = [{internal}]\n\
                 [[endpoints]]\nname = \"public\"\ntarget = \"192.0.2.52\"\n"
            )
        };
        let dir = Dir::new(&[("office.toml", &office("\"10.0.0.0/8\""))]);
        let old = dir.load();
        dir.profiles(&[("office.toml", &office("\"10.0.0.0/9\", \"172.16.0.0/12\""))]);
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        assert!(
            text.contains("  10.128.0.0/9: internal (10.10.0.10) -> public (192.0.2.52)\n"),
            "{text}"
        );
        assert!(
            text.contains("  172.16.0.0/12: public (192.0.2.52) -> internal (10.10.0.10)\n"),
            "{text}"
        );
    }

    #[test]
    fn records_ttl_and_priority_order() {
        let two = |p1: u32, p2: u32, ttl: u32| {
            format!(
                "name = \"todo.tm.example.test.\"\nrouting = \"priority\"\nttl = {ttl}\n\
                 [[endpoints]]\nname = \"primary\"\ntarget = \"203.0.113.10\"\npriority = {p1}\n\
                 [[endpoints]]\nname = \"secondary\"\ntarget = \"198.51.100.20\"\npriority = {p2}\n"
            )
        };
        let dir = Dir::new(&[("todo.toml", &two(1, 2, 30))]);
        let old = dir.load();
        dir.profiles(&[("todo.toml", &two(2, 1, 60))]);
        dir.server("192.0.2.54");
        let new = dir.candidate(&old);
        let text = run(&old, &new).render();
        for want in [
            "ns1.tm.example.test (records)\n  A: 3600 192.0.2.53 -> 3600 192.0.2.54\n",
            "todo.tm.example.test (priority)\n  answer: primary (203.0.113.10) -> secondary (198.51.100.20)\n",
            "  order: primary > secondary -> secondary > primary\n",
            "  ttl: 30 -> 60\n",
        ] {
            assert!(text.contains(want), "{want}\nnot in:\n{text}");
        }
    }

    #[test]
    fn cidr_blocks() {
        let v4 = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128;
        assert_eq!(
            cidrs(false, v4("10.128.0.0"), v4("10.255.255.255")),
            ["10.128.0.0/9"]
        );
        assert_eq!(
            cidrs(false, v4("198.51.100.10"), v4("198.51.100.17")),
            ["198.51.100.10/31", "198.51.100.12/30", "198.51.100.16/31"]
        );
        assert_eq!(cidrs(false, 0, u32::MAX as u128), ["0.0.0.0/0"]);
        assert_eq!(cidrs(true, 0, u128::MAX), ["::/0"]);
    }
}
