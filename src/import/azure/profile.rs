//! A profile: its routing method, names, TTL and the settings of the
//! profile itself, then its monitor and endpoints; last, the endpoints'
//! names and priorities as Switchyard takes them.

use super::cx::Cx;
use super::draft::Draft;
use super::keys::{DNS_KEYS, PROFILE_KEYS};
use super::model::{AzDns, AzProfile};
use crate::import::arm::{self, Flat, FoundProfile};

/// The profile's names and TTL, from its `dnsConfig`.
struct Dns {
    /// Where `relativeName` is (its JSON path).
    at_relative: String,
    /// `relativeName`, lowercase: the file's name and the name's first
    /// labels.
    relative: String,
    /// The Azure name (`<relativeName>.trafficmanager.net`).
    fqdn: String,
    /// The profile's name, `<relativeName>.<zone>.`.
    name: String,
    ttl: Option<i64>,
}

impl Cx<'_> {
    /// Maps profile `f` to a draft named under `zone`, setting by setting;
    /// `None`, with an error, when it cannot be mapped.
    pub(super) fn profile(&mut self, f: &FoundProfile, zone: &str) -> Option<Draft> {
        let p = &f.profile;
        let az: AzProfile = self.read(p, &["name", "id", "endpoints", "resources", "dependsOn"])?;
        self.unknown(p, "", &az.other, PROFILE_KEYS);
        let routing = self.routing(p, az.traffic_routing_method.as_deref())?;
        let dns = self.dns(p, az.dns_config, zone)?;
        let enabled = self.enabled(p, az.profile_status.as_deref());
        self.without_equivalent(
            p,
            az.traffic_view_enrollment_status.as_deref(),
            az.allowed_endpoint_record_types.as_deref(),
        );
        let max_answers = self.max_answers(p, routing, az.max_return);
        if routing == "performance" {
            self.note(&p.path("trafficRoutingMethod"), "Performance: Azure ranks endpoints by measured network latency, Switchyard by great-circle distance from the client's GeoIP location to each endpoint's `location`");
        }
        let monitor = self.monitor(p, az.monitor_config);
        let mut draft = Draft {
            file: self.file.to_string(),
            at_relative: dns.at_relative,
            at_endpoints: p.path("endpoints"),
            resource_name: f.resource_name.clone(),
            relative: dns.relative,
            fqdn: dns.fqdn,
            name: dns.name,
            routing,
            ttl: dns.ttl,
            enabled,
            max_answers,
            monitor,
            endpoints: Vec::new(),
        };
        for e in &f.endpoints {
            if let Some(ep) = self.endpoint(e, &draft) {
                draft.endpoints.push(ep);
            }
        }
        self.ranks_and_names(&mut draft);
        self.not_carried_over(f, routing);
        Some(draft)
    }

    /// `trafficRoutingMethod` as Switchyard's `routing`: each of Azure's
    /// six methods has its namesake.
    fn routing(&mut self, p: &Flat, method: Option<&str>) -> Option<&'static str> {
        let method_at = p.path("trafficRoutingMethod");
        match method.map(str::to_ascii_lowercase) {
            Some(m) => match m.as_str() {
                "priority" => Some("priority"),
                "weighted" => Some("weighted"),
                "performance" => Some("performance"),
                "geographic" => Some("geographic"),
                "subnet" => Some("subnet"),
                "multivalue" => Some("multivalue"),
                _ => {
                    self.error(&method_at, format!("unknown routing method `{m}` (expected Priority, Weighted, Performance, Geographic, Subnet or MultiValue)"));
                    None
                }
            },
            None => {
                self.error(
                    &method_at,
                    "missing: every Traffic Manager profile has a routing method",
                );
                None
            }
        }
    }

    /// `dnsConfig`: the profile's name under `zone` (from `relativeName`),
    /// its Azure name, and its TTL.
    fn dns(&mut self, p: &Flat, dns: Option<AzDns>, zone: &str) -> Option<Dns> {
        let rel_at = p.path("dnsConfig.relativeName");
        let Some(dns) = dns else {
            self.error(
                &p.path("dnsConfig"),
                "missing: `dnsConfig.relativeName` names the profile",
            );
            return None;
        };
        self.unknown(p, "dnsConfig", &dns.other, DNS_KEYS);
        let Some(relative) = dns
            .relative_name
            .map(|r| r.trim().trim_end_matches('.').to_ascii_lowercase())
        else {
            self.error(
                &rel_at,
                "missing: it names the profile (<relativeName>.<zone>)",
            );
            return None;
        };
        let name = format!("{relative}.{zone}.");
        if relative.is_empty() || relative.contains(['/', '\\']) || relative.starts_with('.') {
            self.error(&rel_at, format!("`{relative}` cannot name a profile file"));
            return None;
        }
        if let Err(e) = crate::proto::name::DomainName::parse(&name, None) {
            self.error(&rel_at, format!("`{name}` is not a domain name: {e}"));
            return None;
        }
        let fqdn = dns
            .fqdn
            .map(|f| f.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_else(|| format!("{relative}.trafficmanager.net"));
        let ttl = match dns.ttl {
            Some(t) if (0..=2_147_483_647).contains(&t) => Some(t),
            Some(t) => {
                self.error(
                    &p.path("dnsConfig.ttl"),
                    format!("{t} is not a TTL (0..2147483647)"),
                );
                return None;
            }
            None => {
                let at = p.path("dnsConfig.ttl");
                if !self.expressions.contains(&at) {
                    self.note(
                        &at,
                        "missing: Switchyard's default TTL of 60 seconds applies",
                    );
                }
                None
            }
        };
        Some(Dns {
            at_relative: rel_at,
            relative,
            fqdn,
            name,
            ttl,
        })
    }

    /// `profileStatus`: a disabled profile is written `enabled = false`.
    fn enabled(&mut self, p: &Flat, status: Option<&str>) -> bool {
        match status {
            Some(s) if s.eq_ignore_ascii_case("disabled") => {
                self.note(&p.path("profileStatus"), "Disabled: written as `enabled = false` (the name answers NXDOMAIN, as in Azure)");
                false
            }
            _ => true,
        }
    }

    /// Reports the profile's settings Switchyard has no equivalent of,
    /// when they are on: Traffic View, and a restriction of the endpoints'
    /// record types.
    fn without_equivalent(
        &mut self,
        p: &Flat,
        traffic_view: Option<&str>,
        record_types: Option<&[String]>,
    ) {
        if traffic_view.is_some_and(|s| s.eq_ignore_ascii_case("enabled")) {
            self.warn(&p.path("trafficViewEnrollmentStatus"), "Traffic View is not carried over: Switchyard has no per-location traffic report; use /metrics (switchyard_answers_total per profile and endpoint) and RUST_LOG=debug, which logs every query with its client");
        }
        if let Some(types) = record_types
            && !types.is_empty()
            && !types.iter().any(|t| t.eq_ignore_ascii_case("any"))
        {
            self.note(&p.path("allowedEndpointRecordTypes"), format!("{types:?} not carried over: Switchyard does not restrict the kind of target an endpoint may have; review new endpoints yourself"));
        }
    }

    /// `maxReturn` as `max_answers`, for MultiValue profiles (the only ones
    /// that answer several addresses).
    fn max_answers(&mut self, p: &Flat, routing: &str, max_return: Option<i64>) -> Option<i64> {
        match (routing, max_return) {
            ("multivalue", Some(n)) if (1..=10).contains(&n) => Some(n),
            ("multivalue", Some(n)) => {
                self.warn(&p.path("maxReturn"), format!("{n} is outside 1..10: Switchyard's default of 8 addresses per answer applies; set `max_answers`"));
                None
            }
            ("multivalue", None) => {
                self.note(
                    &p.path("maxReturn"),
                    "missing: Switchyard's default of 8 addresses per answer applies",
                );
                None
            }
            (_, Some(n)) if n != 0 => {
                self.warn(
                    &p.path("maxReturn"),
                    format!(
                        "{n} not carried over: only MultiValue profiles answer several addresses"
                    ),
                );
                None
            }
            _ => None,
        }
    }

    /// Endpoint names Switchyard accepts (unique), and priorities: all or
    /// none, unique.
    fn ranks_and_names(&mut self, d: &mut Draft) {
        let mut seen: Vec<String> = Vec::new();
        for (i, ep) in d.endpoints.iter_mut().enumerate() {
            let mut name: String = ep
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .take(64)
                .collect();
            if name.is_empty() {
                name = format!("endpoint-{}", i + 1);
            }
            let base = name.clone();
            let mut n = 2;
            while seen.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                let suffix = format!("-{n}");
                name = format!("{}{suffix}", &base[..base.len().min(64 - suffix.len())]);
                n += 1;
            }
            if name != ep.name {
                let at = arm::join(&ep.at, "name");
                self.note(&at, format!("endpoint `{}` is named `{name}` (letters, digits, `-`, `_`, `.`; unique; at most 64)", ep.name));
            }
            seen.push(name.clone());
            ep.name = name;
        }
        if d.routing != "priority" {
            return;
        }
        let active: Vec<Option<i64>> = d
            .endpoints
            .iter()
            .filter(|e| e.skip.is_none())
            .map(|e| e.priority)
            .collect();
        let mut values: Vec<i64> = active.iter().flatten().copied().collect();
        values.sort_unstable();
        values.dedup();
        let complete = active.iter().all(Option::is_some)
            && values.len() == active.len()
            && values.iter().all(|p| (1..=1000).contains(p));
        if !complete {
            // Keep Azure's order: by priority, then as listed.
            d.endpoints.sort_by_key(|e| e.priority.unwrap_or(i64::MAX));
            for e in &mut d.endpoints {
                e.priority = None;
            }
            self.note(&d.at_endpoints, "priorities missing, repeated or outside 1..1000: the endpoints are written in priority order without `priority` (list order is the priority)");
        }
    }
}
