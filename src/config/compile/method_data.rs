//! Stage: the routing methods' own data: the per-endpoint keys
//! (`priority`, `location`, `regions`, `subnets`), checked as each endpoint
//! is read whatever the method (so a switch of method finds them valid),
//! and what each method precomputes once every endpoint is known
//! (priority order, alias table, region map, subnet ranges).

use super::*;

/// The per-method keys of one endpoint, checked.
#[derive(Default)]
pub(super) struct MethodKeys {
    /// Where the endpoint was written (its name).
    at: At,
    /// Every key was right (or absent).
    pub(super) ok: bool,
    /// An entry of `regions` was wrong (reported).
    regions_wrong: bool,
    point: Option<crate::geo::Point>,
    location_given: bool,
    regions_given: bool,
    regions: Vec<RegionKey>,
    subnets: Vec<SubnetKey>,
}

/// One entry of an endpoint's `regions`.
struct RegionKey {
    code: crate::snapshot::RegionCode,
    /// As written, in uppercase: for messages.
    text: String,
    at: At,
}

/// One entry of an endpoint's `subnets`: an address range.
struct SubnetKey {
    v6: bool,
    lo: u128,
    hi: u128,
    /// As written: for messages.
    text: String,
    at: At,
}

/// Priority routing's priorities, all or none.
#[derive(Default)]
pub(super) struct Priorities {
    pub(super) given: Vec<(u16, String)>,
    pub(super) missing: Vec<At>,
}

/// Priority routing: an endpoint's priority, unique in the profile;
/// `false` when wrong (reported).
pub(super) fn priority(
    r: &mut Report,
    src: usize,
    p: &str,
    e: &RawEndpoint,
    priorities: &mut Priorities,
) -> bool {
    let field = format!("{p}.priority");
    let Some(pv) = &e.priority else {
        priorities.missing.push(r.at(src, &e.name, &field));
        return true;
    };
    let Some(prio) = r.int::<u16>(src, pv, &field, 1, 1000) else {
        return false;
    };
    let name = e.name.get_ref().clone();
    if let Some((_, other)) = priorities.given.iter().find(|(x, _)| *x == prio) {
        let msg = format!(
            "duplicate priority {prio} (also used by endpoint `{other}`); priorities must be unique"
        );
        r.err(src, pv, &field, msg);
        priorities.given.push((prio, name));
        return false;
    }
    priorities.given.push((prio, name));
    true
}

/// The method's routing data over the profile's endpoints `eps`.
pub(super) fn routing(
    r: &mut Report,
    method: Method,
    eps: &[Endpoint],
    priorities_given: bool,
    keys: &[MethodKeys],
    names: &[Located<String>],
    max_answers: u8,
) -> Option<Routing> {
    Some(match method {
        Method::Priority => {
            let mut order: Vec<u32> = (0..eps.len() as u32).collect();
            if priorities_given {
                order.sort_by_key(|&i| eps[i as usize].priority);
            }
            Routing::Priority {
                order: order.into(),
            }
        }
        Method::Weighted => Routing::Weighted {
            alias: crate::routing::weighted::alias_table(eps),
        },
        Method::Multivalue => Routing::Multivalue { max_answers },
        _ => return method_routing(r, Some(method), keys, names),
    })
}

/// Warns about endpoint keys the profile's method does not use: they are
/// kept valid (a method can be switched), but a user may be expecting
/// them to matter.
pub(super) fn unused_method_keys(
    r: &mut Report,
    src: usize,
    p: &str,
    e: &RawEndpoint,
    method: Option<Method>,
) {
    let Some(method) = method else {
        return;
    };
    let note = |r: &mut Report, span: std::ops::Range<usize>, key: &str, user: Method| {
        if method != user {
            let source = &r.sources[src];
            r.diag.warn(
                source,
                span,
                &format!("{p}.{key}"),
                format!("ignored: only {user} routing uses `{key}` (this profile is {method})"),
            );
        }
    };
    if let Some(v) = &e.priority {
        note(r, v.span(), "priority", Method::Priority);
    }
    if let Some(v) = &e.weight {
        note(r, v.span(), "weight", Method::Weighted);
    }
    if let Some(v) = &e.location {
        note(r, v.span(), "location", Method::Performance);
    }
    if let Some(v) = &e.regions {
        note(r, v.span(), "regions", Method::Geographic);
    }
    if let Some(v) = &e.subnets {
        note(r, v.span(), "subnets", Method::Subnet);
    }
}

/// Reads and checks `location`, `regions` and `subnets` of one endpoint,
/// whatever the method (so a switch of method finds them valid).
pub(super) fn method_keys(r: &mut Report, src: usize, p: &str, e: &RawEndpoint) -> MethodKeys {
    let mut k = MethodKeys {
        at: r.at(src, &e.name, &format!("{p}.name")),
        ok: true,
        ..MethodKeys::default()
    };
    if let Some(loc) = &e.location {
        k.location_given = true;
        let field = format!("{p}.location");
        let point = match loc.get_ref() {
            RawLocation::Region(name) => methods::region_point(name),
            RawLocation::Coordinates { lat, lon } => methods::coordinates(*lat, *lon),
        };
        match point {
            Ok(pt) => k.point = Some(pt),
            Err(msg) => {
                r.err(src, loc, &field, msg);
                k.ok = false;
            }
        }
    }
    if let Some(list) = &e.regions {
        k.regions_given = true;
        for (i, written) in list.get_ref().iter().enumerate() {
            let field = format!("{p}.regions[{i}]");
            match methods::region_code(written.get_ref()) {
                Ok((code, _)) => k.regions.push(RegionKey {
                    code,
                    text: written.get_ref().to_ascii_uppercase(),
                    at: r.at(src, written, &field),
                }),
                Err(msg) => {
                    r.err(src, written, &field, msg);
                    k.ok = false;
                    k.regions_wrong = true;
                }
            }
        }
    }
    if let Some(list) = &e.subnets {
        for (i, sn) in list.get_ref().iter().enumerate() {
            let field = format!("{p}.subnets[{i}]");
            match methods::subnet(sn.get_ref()) {
                Ok((lo, hi)) => {
                    let ((v6, lo), (_, hi)) = (methods::ip_key(lo), methods::ip_key(hi));
                    k.subnets.push(SubnetKey {
                        v6,
                        lo,
                        hi,
                        text: sn.get_ref().trim().to_string(),
                        at: r.at(src, sn, &field),
                    });
                }
                Err(msg) => {
                    r.err(src, sn, &field, msg);
                    k.ok = false;
                }
            }
        }
    }
    k
}

/// Builds the routing data of performance, geographic and subnet
/// profiles, checking what needs every endpoint at once.
fn method_routing(
    r: &mut Report,
    method: Option<Method>,
    keys: &[MethodKeys],
    names: &[Located<String>],
) -> Option<Routing> {
    let name_of = |i: usize| names.get(i).map_or("?", |n| n.value.as_str());
    match method {
        Some(Method::Performance) => {
            let mut points = Vec::with_capacity(keys.len());
            for k in keys {
                match k.point {
                    Some(pt) => points.push(pt),
                    // Already reported where it was written.
                    None if k.location_given => {}
                    None => {
                        let at = At {
                            field: k.at.field.replace(".name", ".location"),
                            ..k.at.clone()
                        };
                        r.error(&at, "performance routing needs a `location` on every endpoint: a cloud region name or { lat, lon }");
                    }
                }
            }
            (points.len() == keys.len()).then(|| Routing::Performance {
                points: points.into(),
            })
        }
        Some(Method::Geographic) => {
            let mut regions: FxHashMap<crate::snapshot::RegionCode, u32> = FxHashMap::default();
            let mut ok = true;
            for (i, k) in keys.iter().enumerate() {
                if k.regions.is_empty() {
                    // An empty list, or none: a list whose every entry was
                    // wrong is reported where it was written.
                    if !k.regions_wrong {
                        let at = At {
                            field: k.at.field.replace(".name", ".regions"),
                            ..k.at.clone()
                        };
                        r.error(&at, "geographic routing needs `regions` on every endpoint (WORLD, GEO-xx, countries, subdivisions)");
                    }
                    ok = false;
                }
                for RegionKey { code, text, at } in &k.regions {
                    match regions.get(code) {
                        Some(&other) if other as usize != i => {
                            let msg = format!(
                                "`{text}` is already served by endpoint `{}`; a region code maps to one endpoint per profile",
                                name_of(other as usize)
                            );
                            r.error(at, msg);
                            ok = false;
                        }
                        Some(_) => {}
                        None => {
                            regions.insert(*code, i as u32);
                        }
                    }
                }
            }
            ok.then_some(Routing::Geographic { regions })
        }
        Some(Method::Subnet) => {
            // Every range with the endpoint that wrote it, in address order.
            let mut ranges: Vec<(u32, &SubnetKey)> = Vec::new();
            let mut fallback: Option<u32> = None;
            let mut ok = true;
            for (i, k) in keys.iter().enumerate() {
                if k.subnets.is_empty() {
                    if let Some(f) = fallback {
                        let at = At {
                            field: k.at.field.replace(".name", ".subnets"),
                            ..k.at.clone()
                        };
                        r.error(&at, format!(
                            "endpoint `{}` is already the fallback (the one without subnets); give this one subnets",
                            name_of(f as usize)
                        ));
                        ok = false;
                    }
                    fallback = Some(i as u32);
                }
                ranges.extend(k.subnets.iter().map(|s| (i as u32, s)));
            }
            ranges.sort_by_key(|(_, s)| (s.v6, s.lo, s.hi));
            let mut merged: Vec<SubnetRange> = Vec::with_capacity(ranges.len());
            let mut prev: Option<(u32, &SubnetKey)> = None;
            for &(endpoint, range) in &ranges {
                if let (Some((p_endpoint, p)), Some(last)) = (prev, merged.last_mut())
                    && p.v6 == range.v6
                    && range.lo <= last.hi
                {
                    if p_endpoint != endpoint {
                        let msg = format!(
                            "`{}` of endpoint `{}` overlaps `{}` of endpoint `{}`; a client address must match one endpoint",
                            range.text,
                            name_of(endpoint as usize),
                            p.text,
                            name_of(p_endpoint as usize)
                        );
                        r.error(&range.at, msg);
                        ok = false;
                    }
                    last.hi = last.hi.max(range.hi);
                    continue;
                }
                merged.push(SubnetRange {
                    v6: range.v6,
                    lo: range.lo,
                    hi: range.hi,
                    endpoint,
                });
                prev = Some((endpoint, range));
            }
            ok.then(|| Routing::Subnet {
                ranges: merged.into(),
                fallback,
            })
        }
        _ => None,
    }
}
