//! Stage: each profile file: its name, settings and endpoints, and the
//! routing method's own data (priorities, alias table, regions, ranges).

use super::*;

impl Loader<'_> {
    /// Every profile file directly in `dir`; with `staged`, the staged
    /// files too, each replacing the live file of its name
    /// ([`crate::config::load_staged`]).
    pub(super) fn profiles_dir(&mut self, dir: &Path, staged: Option<&Path>, limit: u64) {
        let toml_files = |entries: std::fs::ReadDir| -> Vec<PathBuf> {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
                .collect()
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            // A fresh setup has no profiles yet (the README's first
            // configuration names none): an empty directory, said once.
            // (A `profiles.dir` named in the file that is missing was
            // reported with its section, and is not read.)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.r.diag.file_warning(
                    dir,
                    "the profiles directory does not exist: no profiles are served; \
                     profiles (one *.toml file per name) go there",
                );
                return;
            }
            Err(e) => {
                self.r
                    .diag
                    .file_error(dir, format!("cannot read profiles directory: {e}"));
                return;
            }
        };
        let mut files = toml_files(entries);
        if let Some(staged) = staged {
            match std::fs::read_dir(staged) {
                Ok(entries) => {
                    let staged = toml_files(entries);
                    files.retain(|f| !staged.iter().any(|s| s.file_name() == f.file_name()));
                    files.extend(staged);
                }
                // Nothing staged.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.r.diag.file_error(
                    staged,
                    format!("cannot read the staged profiles directory: {e}"),
                ),
            }
        }
        // By file name, so a staged file keeps its live one's place.
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
        for f in files {
            if let Some(src) = self.r.read(&f, limit, "profiles.max_file_size")
                && let Some(raw) = diag::parse::<RawProfile>(&self.r.sources[src], &mut self.r.diag)
            {
                self.profile(src, raw);
            }
        }
    }

    /// Validates a profile's name: inside a zone, below its apex, unique.
    pub(super) fn profile_name(&mut self, src: usize, raw: &RawProfile) -> Option<ProfileOwner> {
        let name = match DomainName::parse(raw.name.get_ref(), None) {
            Ok(n) => n,
            Err(e) => {
                self.r.err(src, &raw.name, "name", e);
                return None;
            }
        };
        let Some(zone) = self.table.zone_of(&name) else {
            let zones: Vec<String> = self
                .table
                .zones
                .iter()
                .map(|z| z.origin.to_string())
                .collect();
            let list = if zones.is_empty() {
                "none configured".to_string()
            } else {
                zones.join(", ")
            };
            self.r.err(
                src,
                &raw.name,
                "name",
                format!("{name} is not inside any configured zone ({list})"),
            );
            return None;
        };
        let apex = self.table.zones[zone as usize].origin == name;
        if let Some(&idx) = self.pending_index.get(name.wire()) {
            let other = &self.pending[idx];
            // The apex holds SOA and NS: a profile there answers A and AAAA
            // next to them (and to static records of other types).
            let conflict = if other.profile.is_some() {
                Some("another profile")
            } else if !apex {
                Some("static records")
            } else if other
                .records
                .iter()
                .any(|s| matches!(s.set.rtype, rtype::A | rtype::AAAA))
            {
                Some("static A or AAAA records at the apex")
            } else {
                None
            };
            if let Some(what) = conflict {
                let where_ = self.r.sources[other.at.src].path.display().to_string();
                let (line, _) = self.r.sources[other.at.src].line_col(other.at.span.start);
                self.r.err(
                    src,
                    &raw.name,
                    "name",
                    format!("{name} is already defined by {what} at {where_}:{line}"),
                );
                return None;
            }
        }
        Some(ProfileOwner { name, zone, apex })
    }

    /// `failback` and `failback_after`: `None` for automatic failback,
    /// else the hold's length in seconds (0: until resumed).
    fn failback(&mut self, src: usize, raw: &RawProfile) -> Option<u32> {
        let manual = match &raw.failback {
            None => false,
            Some(v) => match v.get_ref().as_str() {
                "automatic" => false,
                "manual" => true,
                other => {
                    self.r.err(
                        src,
                        v,
                        "failback",
                        format!("`{other}` is not a failback mode (automatic or manual)"),
                    );
                    return None;
                }
            },
        };
        let after = match &raw.failback_after {
            None => 0,
            Some(v) if !manual => {
                self.r.err(
                    src,
                    v,
                    "failback_after",
                    "only used with failback = \"manual\" (how long a recovered endpoint is held before it returns by itself)",
                );
                return None;
            }
            Some(v) => {
                let d = self.r.duration(src, v, "failback_after")?;
                if d.as_secs() == 0 || d.as_secs() > u64::from(u32::MAX) {
                    self.r.err(
                        src,
                        v,
                        "failback_after",
                        "must be at least 1s (leave it out to hold until resumed)",
                    );
                    return None;
                }
                d.as_secs() as u32
            }
        };
        if manual
            && raw.monitor.is_none()
            && let Some(v) = &raw.failback
        {
            self.r.warn(
                src,
                v,
                "failback",
                "has no effect: the profile has no [monitor], so no endpoint is ever Degraded",
            );
        }
        manual.then_some(after)
    }

    pub(super) fn profile(&mut self, src: usize, raw: RawProfile) {
        let profile_id = self.table.profiles.len() as ProfileId;
        // Keep checking after the first problem so one run reports them all;
        // the profile is only added when none was found.
        let errors_before = self.r.diag.errors.len();
        let named = self.profile_name(src, &raw);
        self.current_apex = named.as_ref().is_some_and(|o| o.apex);
        self.current_profile = named
            .as_ref()
            .map(|o| o.name.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        // `None`: unknown (reported), and nothing method-specific is checked.
        let method = Method::parse(raw.routing.get_ref().as_str());
        if method.is_none() {
            let known: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            self.r.err(
                src,
                &raw.routing,
                "routing",
                format!(
                    "unknown routing method `{}` (expected one of: {})",
                    raw.routing.get_ref(),
                    known.join(", ")
                ),
            );
        } else if let Some(method) = method.filter(|m| m.needs_geoip())
            && self.geo.is_none()
        {
            let msg = if self.geo_configured {
                format!(
                    "`{method}` routing needs the GeoIP database, which did not load (see its error)"
                )
            } else {
                format!(
                    "`{method}` routing needs a GeoIP database: set [geoip] database in the server configuration (geoip/ ships one)"
                )
            };
            self.r.err(src, &raw.routing, "routing", msg);
        }
        let ttl = match &raw.ttl {
            Some(t) => self.r.int(src, t, "ttl", 0, MAX_TTL).unwrap_or(60),
            None => 60,
        };
        let ttl_degraded = match &raw.ttl_degraded {
            Some(t) => match self.r.int::<u32>(src, t, "ttl_degraded", 0, MAX_TTL) {
                Some(d) if d > ttl => {
                    self.r.err(
                        src,
                        t,
                        "ttl_degraded",
                        format!(
                            "{d} is longer than `ttl` ({ttl}): it is the shorter TTL used while the profile is not settled"
                        ),
                    );
                    None
                }
                d => d,
            },
            None => None,
        };
        let sticky = match (&raw.sticky, method) {
            (None, _) => false,
            (Some(v), _) if v.get_ref() != "client-subnet" => {
                self.r.err(
                    src,
                    v,
                    "sticky",
                    format!(
                        "`{}` is not a sticky mode (the one there is: \"client-subnet\")",
                        v.get_ref()
                    ),
                );
                false
            }
            (Some(_), Some(Method::Weighted | Method::Multivalue) | None) => true,
            (Some(v), Some(m)) => {
                self.r.err(
                    src,
                    v,
                    "sticky",
                    format!("only weighted and multivalue routing use it, not {m}"),
                );
                false
            }
        };
        let hold = self.failback(src, &raw);
        let enabled = raw.enabled.unwrap_or(true);
        let max_answers = match (&raw.max_answers, method) {
            (Some(m), Some(Method::Multivalue)) => {
                self.r.int::<u8>(src, m, "max_answers", 1, 10).unwrap_or(1)
            }
            (Some(m), _) => {
                self.r
                    .err(src, m, "max_answers", "only used by multivalue routing");
                1
            }
            (None, _) => 8,
        };
        let quorum = match &raw.quorum {
            Some(q) => {
                if raw.monitor.is_none() {
                    self.r.warn(
                        src,
                        q,
                        "quorum",
                        "ignored: the profile has no [monitor], so nothing is observed",
                    );
                }
                super::cluster::quorum(&mut self.r, src, q, "quorum")
            }
            None => None,
        };
        let prober = self.prober_settings;
        let monitor = raw
            .monitor
            .as_ref()
            .and_then(|m| self.monitor(src, m))
            .map(|mut m| {
                m.quorum = quorum;
                m.source_v4 = prober.source_v4;
                m.source_v6 = prober.source_v6;
                Arc::new(m)
            });

        if raw.endpoints.is_empty() {
            return self.r.err(
                src,
                &raw.name,
                "endpoints",
                "a profile needs at least one [[endpoints]]",
            );
        }
        let first_ep = self.table.endpoints.len() as u32;
        let mut keys: Vec<MethodKeys> = Vec::new();
        let mut names: Vec<Located<String>> = Vec::new();
        let mut priorities: Vec<(u16, String)> = Vec::new();
        let mut missing_priority: Vec<At> = Vec::new();
        for (i, e) in raw.endpoints.iter().enumerate() {
            let p = format!("endpoints[{i}]");
            let ep_raw = e.get_ref();
            let ep_name = ep_raw.name.get_ref().clone();
            let name_ok = !ep_name.is_empty()
                && ep_name.len() <= 64
                && ep_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                self.r.err(
                    src,
                    &ep_raw.name,
                    &format!("{p}.name"),
                    "endpoint names are 1-64 letters, digits, `-`, `_` or `.`",
                );
            } else if let Some(first) = names
                .iter()
                .find(|n| n.value.eq_ignore_ascii_case(&ep_name))
            {
                let (line, _) = self.r.sources[first.at.src].line_col(first.at.span.start);
                self.r.err(
                    src,
                    &ep_raw.name,
                    &format!("{p}.name"),
                    format!("duplicate endpoint name `{ep_name}` (first used on line {line})"),
                );
            }
            names.push(Located {
                value: ep_name.clone(),
                at: self.r.at(src, &ep_raw.name, &format!("{p}.name")),
            });
            if method == Some(Method::Priority) {
                match &ep_raw.priority {
                    Some(pv) => {
                        if let Some(prio) =
                            self.r
                                .int::<u16>(src, pv, &format!("{p}.priority"), 1, 1000)
                        {
                            if let Some((_, other)) = priorities.iter().find(|(x, _)| *x == prio) {
                                let msg = format!(
                                    "duplicate priority {prio} (also used by endpoint `{other}`); priorities must be unique"
                                );
                                self.r.err(src, pv, &format!("{p}.priority"), msg);
                            }
                            priorities.push((prio, ep_name.clone()));
                        }
                    }
                    None => missing_priority.push(self.r.at(
                        src,
                        &ep_raw.name,
                        &format!("{p}.priority"),
                    )),
                }
            }
            keys.push(self.method_keys(src, &p, ep_raw));
            self.unused_method_keys(src, &p, ep_raw, method);
            if let Some(ep) =
                self.endpoint(src, &p, ep_raw, profile_id, ttl, method, monitor.as_ref())
            {
                self.table.endpoints.push(ep);
            }
        }
        if method == Some(Method::Priority) && !priorities.is_empty() {
            for at in &missing_priority {
                self.r.error(
                    at,
                    "priority is required on every endpoint once one endpoint sets it",
                );
            }
        }
        let method_routing = self.method_routing(method, &keys, &names);
        let last_ep = self.table.endpoints.len() as u32;
        let Some(ProfileOwner { name, zone, .. }) = named else {
            self.table.endpoints.truncate(first_ep as usize);
            return;
        };
        if self.r.diag.errors.len() != errors_before
            || last_ep - first_ep != raw.endpoints.len() as u32
        {
            // Problems are recorded; nothing of this profile is built.
            self.table.endpoints.truncate(first_ep as usize);
            return;
        }
        let eps = &self.table.endpoints[first_ep as usize..last_ep as usize];
        let routing = match method {
            Some(Method::Priority) => {
                let mut order: Vec<u32> = (0..eps.len() as u32).collect();
                if !priorities.is_empty() {
                    order.sort_by_key(|&i| eps[i as usize].priority);
                }
                Routing::Priority {
                    order: order.into(),
                }
            }
            Some(Method::Weighted) => Routing::Weighted {
                alias: crate::routing::weighted::alias_table(eps),
            },
            Some(Method::Multivalue) => Routing::Multivalue { max_answers },
            _ => match method_routing {
                Some(r) => r,
                None => return,
            },
        };
        let on_all_down = match &raw.on_all_down {
            None => OnAllDown::ServeAll,
            Some(v) => match v.get_ref().as_str() {
                "serve-all" => OnAllDown::ServeAll,
                "nodata" => OnAllDown::NoData,
                "nxdomain" => OnAllDown::NxDomain,
                "servfail" => OnAllDown::ServFail,
                other => match eps.iter().position(|e| &*e.name == other) {
                    Some(i) => OnAllDown::Endpoint(i as u32),
                    None => {
                        let list: Vec<&str> = eps.iter().map(|e| &*e.name).collect();
                        return self.r.err(
                            src,
                            v,
                            "on_all_down",
                            format!(
                                "`{other}` is neither a policy (serve-all, nodata, nxdomain, servfail) nor an endpoint of this profile ({})",
                                list.join(", ")
                            ),
                        );
                    }
                },
            },
        };
        if let OnAllDown::Endpoint(i) = on_all_down
            && matches!(routing, Routing::Multivalue { .. })
            && matches!(eps[i as usize].target, Target::Host(_))
        {
            // Unreachable: multivalue endpoints are validated to be addresses.
        }
        for e in &mut self.table.endpoints[first_ep as usize..last_ep as usize] {
            if matches!(e.health, crate::snapshot::Health::Monitored(_)) {
                e.hold = hold;
                // Manual failback new to this endpoint (a reload turned it
                // on): it holds the recoveries from now on, not one from
                // before, which automatic failback already answered.
                if hold.is_some()
                    && let Some(held) = &self.carry.held
                    && !held.contains(&crate::snapshot::EndpointKey::new(
                        &self.current_profile,
                        &e.name,
                    ))
                {
                    e.runtime.hold_from(crate::clock::now_millis());
                }
            }
        }
        let at = self.r.at(src, &raw.name, "name");
        self.table.profiles.push(Profile {
            name: name.clone(),
            node: NodeId::MAX, // set in finish()
            source: self.r.sources[src].path.clone(),
            routing,
            ttl,
            ttl_degraded,
            sticky,
            enabled,
            on_all_down,
            endpoints: first_ep..last_ep,
            detection: monitor
                .as_ref()
                .map(|m| m.interval * (m.tolerated_failures + 1) + m.timeout),
        });
        match self.pending_index.get(name.wire()) {
            // The apex: the profile joins SOA and NS.
            Some(&idx) => self.pending[idx].profile = Some(profile_id),
            None => self.define(name, zone, Vec::new(), Some(profile_id), at),
        }
    }

    /// Warns about endpoint keys the profile's method does not use: they are
    /// kept valid (a method can be switched), but a user may be expecting
    /// them to matter.
    pub(super) fn unused_method_keys(
        &mut self,
        src: usize,
        p: &str,
        e: &RawEndpoint,
        method: Option<Method>,
    ) {
        let Some(method) = method else {
            return;
        };
        let note = |this: &mut Self, span: std::ops::Range<usize>, key: &str, user: Method| {
            if method != user {
                let source = &this.r.sources[src];
                this.r.diag.warn(
                    source,
                    span,
                    &format!("{p}.{key}"),
                    format!("ignored: only {user} routing uses `{key}` (this profile is {method})"),
                );
            }
        };
        if let Some(v) = &e.priority {
            note(self, v.span(), "priority", Method::Priority);
        }
        if let Some(v) = &e.weight {
            note(self, v.span(), "weight", Method::Weighted);
        }
        if let Some(v) = &e.location {
            note(self, v.span(), "location", Method::Performance);
        }
        if let Some(v) = &e.regions {
            note(self, v.span(), "regions", Method::Geographic);
        }
        if let Some(v) = &e.subnets {
            note(self, v.span(), "subnets", Method::Subnet);
        }
    }

    /// Reads and checks `location`, `regions` and `subnets` of one endpoint,
    /// whatever the method (so a switch of method finds them valid).
    pub(super) fn method_keys(&mut self, src: usize, p: &str, e: &RawEndpoint) -> MethodKeys {
        let mut k = MethodKeys {
            at: self.r.at(src, &e.name, &format!("{p}.name")),
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
                Err(msg) => self.r.err(src, loc, &field, msg),
            }
        }
        if let Some(list) = &e.regions {
            k.regions_given = true;
            for (i, r) in list.get_ref().iter().enumerate() {
                let field = format!("{p}.regions[{i}]");
                match methods::region_code(r.get_ref()) {
                    Ok((code, _)) => k.regions.push(RegionKey {
                        code,
                        text: r.get_ref().to_ascii_uppercase(),
                        at: self.r.at(src, r, &field),
                    }),
                    Err(msg) => self.r.err(src, r, &field, msg),
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
                            at: self.r.at(src, sn, &field),
                        });
                    }
                    Err(msg) => self.r.err(src, sn, &field, msg),
                }
            }
        }
        k
    }

    /// Builds the routing data of performance, geographic and subnet
    /// profiles, checking what needs every endpoint at once.
    pub(super) fn method_routing(
        &mut self,
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
                            self.r.error(&at, "performance routing needs a `location` on every endpoint: a cloud region name or { lat, lon }");
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
                        if !k.regions_given
                            || !self.r.diag.errors.iter().any(|e| {
                                e.field
                                    .starts_with(&k.at.field.replace(".name", ".regions"))
                            })
                        {
                            let at = At {
                                field: k.at.field.replace(".name", ".regions"),
                                ..k.at.clone()
                            };
                            self.r.error(&at, "geographic routing needs `regions` on every endpoint (WORLD, GEO-xx, countries, subdivisions)");
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
                                self.r.error(at, msg);
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
                            self.r.error(&at, format!(
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
                for &(endpoint, r) in &ranges {
                    if let (Some((p_endpoint, p)), Some(last)) = (prev, merged.last_mut())
                        && p.v6 == r.v6
                        && r.lo <= last.hi
                    {
                        if p_endpoint != endpoint {
                            let msg = format!(
                                "`{}` of endpoint `{}` overlaps `{}` of endpoint `{}`; a client address must match one endpoint",
                                r.text,
                                name_of(endpoint as usize),
                                p.text,
                                name_of(p_endpoint as usize)
                            );
                            self.r.error(&r.at, msg);
                            ok = false;
                        }
                        last.hi = last.hi.max(r.hi);
                        continue;
                    }
                    merged.push(SubnetRange {
                        v6: r.v6,
                        lo: r.lo,
                        hi: r.hi,
                        endpoint,
                    });
                    prev = Some((endpoint, r));
                }
                ok.then(|| Routing::Subnet {
                    ranges: merged.into(),
                    fallback,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::snapshot::Routing;

    #[test]
    fn each_method_compiles_its_own_data() {
        let prio = profile(
            "routing = \"priority\"\n[[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.2\"\npriority = 2\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\npriority = 1\n",
        );
        let c = load_text("", &[("p.toml", &prio)]).unwrap();
        match &c.table.profiles[0].routing {
            Routing::Priority { order } => assert_eq!(&order[..], [1, 0]),
            other => panic!("{other:?}"),
        }
        let mv = profile(
            "routing = \"multivalue\"\nmax_answers = 3\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        );
        let c = load_text("", &[("p.toml", &mv)]).unwrap();
        assert_eq!(
            c.table.profiles[0].routing,
            Routing::Multivalue { max_answers: 3 }
        );
        let bad = profile(
            "routing = \"round-robin\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        );
        let e = errors(load_text("", &[("p.toml", &bad)]));
        assert!(
            e[0].starts_with("routing: unknown routing method `round-robin`"),
            "{e:?}"
        );
        let e = errors(load_text(
            "",
            &[(
                "p.toml",
                &profile(
                    "routing = \"weighted\"\nmax_answers = 2\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
                ),
            )],
        ));
        assert_eq!(e, ["max_answers: only used by multivalue routing"]);
    }
}
