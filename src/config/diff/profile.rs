//! What changes in a profile both sides have: what each client it tells
//! apart gets, the weights and their shares, the priority order, the
//! settings, and the endpoints with their probes.

use std::collections::{BTreeMap, HashMap};

use super::answers::{answer, pool};
use super::clients::{Spec, labels, pieces, specs_of};
use super::model::{Detail, EVERYTHING_ELSE, Side};
use crate::config::ProbeKey;
use crate::snapshot::EndpointKey;
use crate::snapshot::{Endpoint, Profile, ProfileId, Routing, Snapshot};

/// The profile compared, on one side: its table, its id, the profile and
/// its endpoints.
#[derive(Clone, Copy)]
struct Version<'a> {
    t: &'a Snapshot,
    id: ProfileId,
    p: &'a Profile,
    eps: &'a [Endpoint],
}

impl<'a> Version<'a> {
    fn new(t: &'a Snapshot, id: ProfileId) -> Version<'a> {
        let p = &t.profiles[id as usize];
        Version {
            t,
            id,
            p,
            eps: t.endpoints_of(p),
        }
    }
}

/// What changes from the running side's profile `a` to the candidate's
/// `b` (the same name), in this order: clients, weights, order, settings,
/// endpoints.
pub(super) fn profile_changes(
    old: Side<'_>,
    a: ProfileId,
    new: Side<'_>,
    b: ProfileId,
    old_probes: &HashMap<EndpointKey, &ProbeKey>,
    new_probes: &HashMap<EndpointKey, &ProbeKey>,
) -> Vec<Detail> {
    let (o, n) = (Version::new(old.table, a), Version::new(new.table, b));
    let mut out = Vec::new();
    client_changes(o, n, &mut out);
    weight_changes(o, n, &mut out);
    order_change(o, n, &mut out);
    setting_changes(o, n, &mut out);
    endpoint_changes(o, n, old_probes, new_probes, &mut out);
    out
}

/// What each client gets: the answer, when neither side tells clients
/// apart; else the clients whose answer changes, grouped by (before,
/// after), then the clients no key matches.
fn client_changes(o: Version<'_>, n: Version<'_>, out: &mut Vec<Detail>) {
    let (ot, a, op) = (o.t, o.id, o.p);
    let (nt, b, np) = (n.t, n.id, n.p);
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
}

/// Weights and shares (at today's health), when both sides are weighted:
/// each endpoint whose weight or share of answers changes.
fn weight_changes(o: Version<'_>, n: Version<'_>, out: &mut Vec<Detail>) {
    if !(matches!(o.p.routing, Routing::Weighted { .. })
        && matches!(n.p.routing, Routing::Weighted { .. }))
    {
        return;
    }
    let (oe, ne) = (o.eps, n.eps);
    let (os, ns) = (shares(o), shares(n));
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

/// Each endpoint's share of answers now, in percent, by name: its weight
/// over the total of the pool routing chooses among.
fn shares(v: Version<'_>) -> HashMap<String, u32> {
    let (t, id, eps) = (v.t, v.id, v.eps);
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
}

/// Priority order, when both sides route by priority.
fn order_change(o: Version<'_>, n: Version<'_>, out: &mut Vec<Detail>) {
    let (oe, ne) = (o.eps, n.eps);
    if let (Routing::Priority { order: o }, Routing::Priority { order: n }) =
        (&o.p.routing, &n.p.routing)
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
}

/// Settings: the routing method, `max_answers`, `ttl`, `ttl_degraded`,
/// `on_all_down`, `enabled`, `sticky`.
fn setting_changes(o: Version<'_>, n: Version<'_>, out: &mut Vec<Detail>) {
    let (op, np, oe, ne) = (o.p, n.p, o.eps, n.eps);
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
}

/// Endpoints: added, removed, retargeted, probed differently.
fn endpoint_changes(
    o: Version<'_>,
    n: Version<'_>,
    old_probes: &HashMap<EndpointKey, &ProbeKey>,
    new_probes: &HashMap<EndpointKey, &ProbeKey>,
    out: &mut Vec<Detail>,
) {
    let (ot, op, oe) = (o.t, o.p, o.eps);
    let (nt, np, ne) = (n.t, n.p, n.eps);
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
}

fn client_aware(p: &Profile) -> bool {
    matches!(
        p.routing,
        Routing::Geographic { .. } | Routing::Subnet { .. } | Routing::Performance { .. }
    )
}
