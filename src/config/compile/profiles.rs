//! Stage: each profile file: its name, settings and endpoints, and the
//! routing method's own data (priorities, alias table, regions, ranges).

use super::endpoints::ProfileCx;
use super::method_data::{Priorities, method_keys, priority, routing, unused_method_keys};
use super::*;
use crate::config::keys;

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

    /// One profile file: its name, its own settings, each endpoint, the
    /// method's data and `on_all_down`. Every part is checked whatever the
    /// others gave (so one run reports every problem); the profile is added
    /// only when every part was right.
    pub(super) fn profile(&mut self, src: usize, raw: RawProfile) {
        let named = self.profile_name(src, &raw);
        let (method, serves) = self.method(src, &raw);
        let (head, head_ok) = head(&mut self.r, src, &raw, method, &self.run.prober_settings);
        if raw.endpoints.is_empty() {
            return self.r.err(
                src,
                &raw.name,
                "endpoints",
                "a profile needs at least one [[endpoints]]",
            );
        }
        let cx = ProfileCx {
            id: self.table.profiles.len() as ProfileId,
            key_name: named
                .as_ref()
                .map(|o| o.name.as_str().to_ascii_lowercase())
                .unwrap_or_default(),
            apex: named.as_ref().is_some_and(|o| o.apex),
            ttl: head.ttl,
            method,
            monitor: head.monitor.clone(),
            named: head.named.clone(),
        };
        let first = self.table.endpoints.len();
        let built = self.endpoints(&cx, src, &raw);
        let (Some(owner), Some(method), true, true, Some(data)) =
            (named, method, serves, head_ok, built)
        else {
            // Problems are reported; nothing of this profile is built.
            self.table.endpoints.truncate(first);
            return;
        };
        let range = first as u32..self.table.endpoints.len() as u32;
        let eps = &self.table.endpoints[first..];
        super::monitors::unused(&mut self.r, src, &raw, eps);
        let routing = routing(
            &mut self.r,
            method,
            eps,
            !data.priorities.given.is_empty(),
            &data.keys,
            &data.names,
            head.max_answers,
        );
        let on_all_down = on_all_down(&mut self.r, src, &raw, eps);
        let (Some(routing), Some(on_all_down)) = (routing, on_all_down) else {
            self.table.endpoints.truncate(first);
            return;
        };
        self.hold(&cx, first, head.hold);
        let at = self.r.at(src, &raw.name, "name");
        self.table.profiles.push(Profile {
            name: owner.name.clone(),
            node: NodeId::MAX, // set in finish()
            source: self.r.sources[src].path.clone(),
            routing,
            ttl: head.ttl,
            ttl_degraded: head.ttl_degraded,
            sticky: head.sticky,
            enabled: head.enabled,
            on_all_down,
            endpoints: range,
            detection: head
                .monitor
                .iter()
                .chain(
                    head.named
                        .iter()
                        .flat_map(|n| n.list.iter().filter_map(|m| m.settings())),
                )
                .map(|m| m.interval * (m.tolerated_failures + 1) + m.timeout)
                .max(),
            shed: head.shed,
        });
        match self.pending_index.get(owner.name.wire()) {
            // The apex: the profile joins SOA and NS.
            Some(&idx) => self.pending[idx].profile = Some(cx.id),
            None => self.define(owner.name, owner.zone, Vec::new(), Some(cx.id), at),
        }
    }

    /// `routing`: the method the endpoints are checked for (`None` when
    /// unknown), and whether it can serve: the methods that locate clients
    /// need the GeoIP database. Problems are reported.
    fn method(&mut self, src: usize, raw: &RawProfile) -> (Option<Method>, bool) {
        let Some(method) = Method::parse(raw.routing.get_ref().as_str()) else {
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
            return (None, false);
        };
        if method.needs_geoip() && self.run.geo.is_none() {
            let msg = if self.run.geo_configured {
                format!(
                    "`{method}` routing needs the GeoIP database, which did not load (see its error)"
                )
            } else {
                format!(
                    "`{method}` routing needs a GeoIP database: set [geoip] database in the server configuration (geoip/ ships one)"
                )
            };
            self.r.err(src, &raw.routing, "routing", msg);
            return (Some(method), false);
        }
        (Some(method), true)
    }

    /// Every endpoint of the profile, appended to the snapshot, with what
    /// the method needs of each; `None` when one was wrong (reported).
    fn endpoints(&mut self, cx: &ProfileCx, src: usize, raw: &RawProfile) -> Option<EndpointData> {
        let mut data = EndpointData::default();
        let mut ok = true;
        for (i, e) in raw.endpoints.iter().enumerate() {
            let p = format!("endpoints[{i}]");
            let e = e.get_ref();
            ok &= endpoint_name(&mut self.r, src, &p, e, &mut data.names);
            if cx.method == Some(Method::Priority) {
                ok &= priority(&mut self.r, src, &p, e, &mut data.priorities);
            }
            let keys = method_keys(&mut self.r, src, &p, e);
            ok &= keys.ok;
            data.keys.push(keys);
            unused_method_keys(&mut self.r, src, &p, e, cx.method);
            match self.endpoint(cx, src, &p, e) {
                Some(ep) => self.table.endpoints.push(ep),
                None => ok = false,
            }
        }
        if !data.priorities.missing.is_empty() && !data.priorities.given.is_empty() {
            for at in &data.priorities.missing {
                self.r.error(
                    at,
                    "priority is required on every endpoint once one endpoint sets it",
                );
            }
            ok = false;
        }
        ok.then_some(data)
    }

    /// `failback = "manual"` on the profile's monitored endpoints. Manual
    /// failback new to an endpoint (a reload turned it on) holds the
    /// recoveries from now on, not one from before, which automatic
    /// failback already answered.
    fn hold(&mut self, cx: &ProfileCx, first: usize, hold: Option<u32>) {
        for e in &mut self.table.endpoints[first..] {
            if !matches!(e.health, crate::snapshot::Health::Monitored(_)) {
                continue;
            }
            e.hold = hold;
            if hold.is_some()
                && let Some(held) = &self.run.carry.held
                && !held.contains(&crate::snapshot::EndpointKey::new(&cx.key_name, &e.name))
            {
                e.runtime.hold_from(crate::clock::now_millis());
            }
        }
    }
}

/// A profile's own settings, read with defaults standing in for a wrong
/// key (so its endpoints are still checked against them).
struct Head {
    ttl: u32,
    ttl_degraded: Option<u32>,
    sticky: bool,
    /// `failback = "manual"`: the hold in seconds (0: until resumed).
    hold: Option<u32>,
    enabled: bool,
    max_answers: u8,
    /// `[monitor]`, with the profile's quorum and the prober's sources.
    monitor: Option<Arc<MonitorSettings>>,
    /// `[[monitors]]` and `health`, likewise.
    named: Option<Arc<super::monitors::NamedMonitors>>,
    /// `shed_above` and `shed_percent`, in thousandths.
    shed: Option<(u32, u32)>,
}

/// The profile's own settings, and whether every one was right.
fn head(
    r: &mut Report,
    src: usize,
    raw: &RawProfile,
    method: Option<Method>,
    prober: &crate::config::ProberSettings,
) -> (Head, bool) {
    let mut ok = true;
    /// `v`, or `default` when it was wrong (and the head with it).
    fn take<T>(ok: &mut bool, v: Option<T>, default: T) -> T {
        *ok &= v.is_some();
        v.unwrap_or(default)
    }
    let default_ttl = keys::TTL.default_int() as u32;
    let ttl = match &raw.ttl {
        Some(t) => take(&mut ok, r.int_key(src, t, "ttl", &keys::TTL), default_ttl),
        None => default_ttl,
    };
    let ttl_degraded = take(&mut ok, ttl_degraded(r, src, raw, ttl), None);
    let sticky = take(&mut ok, sticky(r, src, raw, method), false);
    let hold = take(&mut ok, failback(r, src, raw), None);
    let max_answers = match (&raw.max_answers, method) {
        (Some(m), Some(Method::Multivalue)) => take(
            &mut ok,
            r.int_key::<u8>(src, m, "max_answers", &keys::MAX_ANSWERS),
            1,
        ),
        (Some(m), _) => {
            r.err(src, m, "max_answers", "only used by multivalue routing");
            take(&mut ok, None, 1)
        }
        (None, _) => keys::MAX_ANSWERS.default_int() as u8,
    };
    let quorum = match &raw.quorum {
        Some(q) => {
            if raw.monitor.is_none() && raw.monitors.is_empty() {
                r.warn(
                    src,
                    q,
                    "quorum",
                    "ignored: the profile has no [monitor], so nothing is observed",
                );
            }
            take(
                &mut ok,
                super::cluster::quorum(r, src, q, "quorum").map(Some),
                None,
            )
        }
        None => None,
    };
    let finish = |mut m: MonitorSettings| {
        m.quorum = quorum;
        m.source_v4 = prober.source_v4;
        m.source_v6 = prober.source_v6;
        Arc::new(m)
    };
    if let Some(m) = &raw.monitor {
        super::monitors::single_only(r, src, m.get_ref());
    }
    let monitor = match &raw.monitor {
        Some(m) => take(
            &mut ok,
            super::monitor::monitor(r, src, "monitor", m).map(Some),
            None,
        ),
        None => None,
    }
    .map(finish);
    let (named, named_ok) = super::monitors::named_monitors(r, src, raw, finish);
    ok &= named_ok;
    let named = named.map(Arc::new);
    let head = Head {
        ttl,
        ttl_degraded,
        sticky,
        hold,
        enabled: raw.enabled.unwrap_or(true),
        max_answers,
        monitor,
        named,
        shed: take(&mut ok, shed(r, src, raw), None),
    };
    (head, ok)
}

/// `shed_above` (a load, 0.01 to 100) and `shed_percent` (1 to 100, default
/// 30): both in thousandths; only with monitors (loads come from probes).
fn shed(r: &mut Report, src: usize, raw: &RawProfile) -> Option<Option<(u32, u32)>> {
    let Some(above) = &raw.shed_above else {
        if let Some(p) = &raw.shed_percent {
            r.err(
                src,
                p,
                "shed_percent",
                "only with `shed_above` (the load it sheds above)",
            );
            return None;
        }
        return Some(None);
    };
    let load = match above.get_ref() {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    let above_milli = match load {
        Some(l) if (0.01..=100.0).contains(&l) => (l * 1000.0).round() as u32,
        _ => {
            r.err(
                src,
                above,
                "shed_above",
                "a load from 0.01 to 100 (1.0: at capacity), e.g. 0.85",
            );
            return None;
        }
    };
    if raw.monitor.is_none() && raw.monitors.is_empty() {
        r.err(
            src,
            above,
            "shed_above",
            "loads come from health probes: the profile has no [monitor] or [[monitors]]",
        );
        return None;
    }
    let percent = match &raw.shed_percent {
        Some(p) => r.int::<u32>(src, p, "shed_percent", 1, 100)?,
        None => 30,
    };
    Some(Some((above_milli, percent * 10)))
}

/// `ttl_degraded`: at most `ttl`.
fn ttl_degraded(r: &mut Report, src: usize, raw: &RawProfile, ttl: u32) -> Option<Option<u32>> {
    let Some(t) = &raw.ttl_degraded else {
        return Some(None);
    };
    let d = r.int::<u32>(src, t, "ttl_degraded", 0, MAX_TTL)?;
    if d > ttl {
        r.err(
            src,
            t,
            "ttl_degraded",
            format!(
                "{d} is longer than `ttl` ({ttl}): it is the shorter TTL used while the profile is not settled"
            ),
        );
        return None;
    }
    Some(Some(d))
}

/// `sticky`: `"client-subnet"`, for weighted and multivalue routing.
fn sticky(r: &mut Report, src: usize, raw: &RawProfile, method: Option<Method>) -> Option<bool> {
    match (&raw.sticky, method) {
        (None, _) => Some(false),
        (Some(v), _) if v.get_ref() != "client-subnet" => {
            r.err(
                src,
                v,
                "sticky",
                format!(
                    "`{}` is not a sticky mode (the one there is: \"client-subnet\")",
                    v.get_ref()
                ),
            );
            None
        }
        (Some(_), Some(Method::Weighted | Method::Multivalue) | None) => Some(true),
        (Some(v), Some(m)) => {
            r.err(
                src,
                v,
                "sticky",
                format!("only weighted and multivalue routing use it, not {m}"),
            );
            None
        }
    }
}

/// What the profile's endpoints give the method, collected as they are
/// read.
#[derive(Default)]
struct EndpointData {
    /// Their names, where written.
    names: Vec<Located<String>>,
    /// Priority routing's priorities.
    priorities: Priorities,
    /// Each endpoint's method keys.
    keys: Vec<MethodKeys>,
}

/// An endpoint's name: valid, unique in the profile (any case). Added to
/// `names` either way; `false` when wrong (reported).
fn endpoint_name(
    r: &mut Report,
    src: usize,
    p: &str,
    e: &RawEndpoint,
    names: &mut Vec<Located<String>>,
) -> bool {
    let name = e.name.get_ref().clone();
    let field = format!("{p}.name");
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let problem = if !valid {
        Some("endpoint names are 1-64 letters, digits, `-`, `_` or `.`".to_string())
    } else {
        names
            .iter()
            .find(|n| n.value.eq_ignore_ascii_case(&name))
            .map(|first| {
                let (line, _) = r.sources[first.at.src].line_col(first.at.span.start);
                format!("duplicate endpoint name `{name}` (first used on line {line})")
            })
    };
    if let Some(msg) = &problem {
        r.err(src, &e.name, &field, msg.clone());
    }
    names.push(Located {
        value: name,
        at: r.at(src, &e.name, &field),
    });
    problem.is_none()
}

/// `on_all_down`: a policy, or one of the profile's endpoints `eps`.
fn on_all_down(
    r: &mut Report,
    src: usize,
    raw: &RawProfile,
    eps: &[Endpoint],
) -> Option<OnAllDown> {
    let Some(v) = &raw.on_all_down else {
        return Some(OnAllDown::ServeAll);
    };
    Some(match v.get_ref().as_str() {
        "serve-all" => OnAllDown::ServeAll,
        "nodata" => OnAllDown::NoData,
        "nxdomain" => OnAllDown::NxDomain,
        "servfail" => OnAllDown::ServFail,
        other => match eps.iter().position(|e| &*e.name == other) {
            Some(i) => OnAllDown::Endpoint(i as u32),
            None => {
                let list: Vec<&str> = eps.iter().map(|e| &*e.name).collect();
                r.err(
                    src,
                    v,
                    "on_all_down",
                    format!(
                        "`{other}` is neither a policy (serve-all, nodata, nxdomain, servfail) nor an endpoint of this profile ({})",
                        list.join(", ")
                    ),
                );
                return None;
            }
        },
    })
}

/// `failback` and `failback_after`: `Some(None)` for automatic failback,
/// else the hold's length in seconds (0: until resumed); `None` when wrong
/// (reported).
fn failback(r: &mut Report, src: usize, raw: &RawProfile) -> Option<Option<u32>> {
    let manual = match &raw.failback {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "automatic" => false,
            "manual" => true,
            other => {
                r.err(
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
            r.err(
                src,
                v,
                "failback_after",
                "only used with failback = \"manual\" (how long a recovered endpoint is held before it returns by itself)",
            );
            return None;
        }
        Some(v) => {
            let d = r.duration(src, v, "failback_after")?;
            if d.as_secs() == 0 || d.as_secs() > u64::from(u32::MAX) {
                r.err(
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
        && raw.monitors.is_empty()
        && let Some(v) = &raw.failback
    {
        r.warn(
            src,
            v,
            "failback",
            "has no effect: the profile has no [monitor], so no endpoint is ever Degraded",
        );
    }
    Some(manual.then_some(after))
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
