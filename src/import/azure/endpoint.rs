//! An endpoint of a profile: what it points at (an address or host name,
//! or a child profile), whether it is served, and the keys of the profile's
//! routing method.

use std::net::IpAddr;

use serde_json::Value;

use super::cx::Cx;
use super::draft::{Draft, Ep, Monitor, NestedRef};
use super::keys::{ENDPOINT_KEYS, ENDPOINT_UNEVALUATED};
use super::model::{AzEndpoint, AzHeader, AzSubnet};
use super::render::q;
use crate::config::methods;
use crate::import::arm::{self, Flat};

/// What an endpoint's `type` and `targetResourceId` say it points at.
struct Points {
    /// The last step of `type`, lowercase (`externalendpoints`, ...).
    kind: Option<String>,
    /// `targetResourceId`, a template expression evaluated if it can be.
    resource_id: Option<String>,
    /// At a child profile (a nested endpoint).
    nested: bool,
}

impl Cx<'_> {
    /// Maps endpoint `e` of profile `d` (its routing method, monitor and
    /// the endpoints before it); `None` when it cannot be read at all.
    pub(super) fn endpoint(&mut self, e: &Flat, d: &Draft) -> Option<Ep> {
        let az: AzEndpoint = self.read(e, ENDPOINT_UNEVALUATED)?;
        self.unknown(e, "", &az.other, ENDPOINT_KEYS);
        let raw_name = e
            .fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut ep = Ep {
            at: e.at.clone(),
            name: raw_name,
            enabled: true,
            ..Ep::default()
        };
        let points = self.points_at(e, az.kind.as_deref());
        if az
            .endpoint_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("disabled"))
        {
            ep.enabled = false;
        }
        let always_serve = az
            .always_serve
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("enabled"));
        if points.nested {
            self.nested(e, &az, &points, always_serve, &mut ep);
        } else {
            ep.always_serve = always_serve;
            self.external(e, &az, &points, d, &mut ep);
        }
        self.routing_keys(e, az, d, &mut ep);
        Some(ep)
    }

    /// Reads `type` (the kind of endpoint) and `targetResourceId`; without
    /// a `type`, an endpoint whose resource is a Traffic Manager profile
    /// is nested.
    fn points_at(&mut self, e: &Flat, kind: Option<&str>) -> Points {
        let kind = kind.map(|k| k.rsplit('/').next().unwrap_or(k).to_ascii_lowercase());
        let resource_id = e
            .fields
            .get("targetResourceId")
            .and_then(Value::as_str)
            .map(|r| {
                if arm::is_expression(r) {
                    arm::eval(r, self.tpl).unwrap_or_else(|| r.to_string())
                } else {
                    r.to_string()
                }
            });
        let nested = match kind.as_deref() {
            Some("nestedendpoints") => true,
            Some("externalendpoints" | "azureendpoints") => false,
            None => resource_id
                .as_deref()
                .is_some_and(|r| r.to_ascii_lowercase().contains("/trafficmanagerprofiles/")),
            Some(other) => {
                self.warn(
                    &e.path("type"),
                    format!("unknown endpoint type `{other}`; read as an external endpoint"),
                );
                false
            }
        };
        Points {
            kind,
            resource_id,
            nested,
        }
    }

    /// A nested endpoint: the child profile it names (connected once every
    /// profile is mapped) and how many of the child's endpoints it needs;
    /// what Switchyard decides by the child instead is reported.
    fn nested(
        &mut self,
        e: &Flat,
        az: &AzEndpoint,
        points: &Points,
        always_serve: bool,
        ep: &mut Ep,
    ) {
        let fqdn = az
            .target
            .as_deref()
            .filter(|t| !t.is_empty() && !arm::is_expression(t))
            .map(|t| t.trim_end_matches('.').to_ascii_lowercase());
        let resource = points
            .resource_id
            .as_deref()
            .filter(|r| !arm::is_expression(r))
            .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
            .map(str::to_string);
        ep.nested = Some(NestedRef { resource, fqdn });
        ep.min_child = match az.min_child_endpoints {
            Some(n) if (1..=1000).contains(&n) => Some(n),
            Some(n) => {
                let m = n.clamp(1, 1000);
                self.warn(
                    &e.path("minChildEndpoints"),
                    format!("{n} is outside Switchyard's 1..1000: written as {m}"),
                );
                Some(m)
            }
            None => None,
        };
        for (key, v) in [
            ("minChildEndpointsIPv4", az.min_child_v4),
            ("minChildEndpointsIPv6", az.min_child_v6),
        ] {
            if let Some(n) = v.filter(|n| *n > 0) {
                self.warn(&e.path(key), format!("{n} not carried over: Switchyard counts the child's endpoints of both address families together (`min_child_endpoints`); raise it if the child must keep {n} of one family"));
            }
        }
        if always_serve {
            self.warn(&e.path("alwaysServe"), "not carried over: a nested endpoint's status always comes from its child profile in Switchyard; to serve it whatever its health, set `always_serve = true` on the child's endpoints");
        }
        if az.custom_headers.as_ref().is_some_and(|h| !h.is_empty()) {
            self.note(
                &e.path("customHeaders"),
                "not used: nested endpoints are not probed; the child profile's monitor decides",
            );
        }
    }

    /// An endpoint answered with its own target (an external or Azure
    /// endpoint): the target, and the headers of its probe.
    fn external(&mut self, e: &Flat, az: &AzEndpoint, points: &Points, d: &Draft, ep: &mut Ep) {
        for (key, v) in [
            ("minChildEndpoints", az.min_child_endpoints),
            ("minChildEndpointsIPv4", az.min_child_v4),
            ("minChildEndpointsIPv6", az.min_child_v6),
        ] {
            if v.is_some_and(|n| n > 1) {
                self.note(
                    &e.path(key),
                    "ignored: only nested endpoints have child endpoints",
                );
            }
        }
        self.external_target(e, az.target.as_deref(), points, ep);
        if d.routing == "multivalue"
            && ep.skip.is_none()
            && ep
                .target
                .as_deref()
                .is_some_and(|t| t.parse::<IpAddr>().is_err())
        {
            self.warn(
                &e.path("target"),
                "MultiValue profiles answer addresses only; the endpoint is written commented out",
            );
            ep.skip = Some("a host name in a multivalue profile".into());
        }
        ep.headers = self.probe_headers(e, az.custom_headers.as_deref(), &d.monitor, ep);
    }

    /// `target`: an address or a host name; an endpoint without one (an
    /// Azure endpoint known by its resource id only) or with another
    /// value is written commented out.
    fn external_target(&mut self, e: &Flat, given: Option<&str>, points: &Points, ep: &mut Ep) {
        match given.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => {
                match target(t) {
                    Ok(t) => {
                        if points.kind.as_deref() == Some("azureendpoints") {
                            self.note(&e.path("target"), format!("`{t}` is the Azure resource's address at export; Switchyard does not follow later changes to the resource{}", points.resource_id.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()));
                        }
                        ep.target = Some(t);
                    }
                    Err(msg) => {
                        self.warn(&e.path("target"), format!("{msg}; the endpoint is written commented out: fix `target` in the file"));
                        ep.skip = Some(format!("target `{t}`: {msg}"));
                        ep.target = Some(t.to_string());
                    }
                }
            }
            None => {
                let why = match &points.resource_id {
                    Some(r) => format!(
                        "only the Azure resource id `{r}`, which Switchyard cannot resolve to an address"
                    ),
                    None => "no `target`".to_string(),
                };
                let raw_name = &ep.name;
                self.warn(&e.path("target"), format!("endpoint `{raw_name}` has {why}; it is written commented out: add its address or host name as `target` (for a public IP: `az network public-ip show --ids ID --query \"[ipAddress, dnsSettings.fqdn]\"`; for an App Service: its default host name) and uncomment it"));
                ep.skip = Some(format!("no address: {why}"));
            }
        }
    }

    /// The endpoint's `customHeaders` for its probe, within the 8 headers
    /// Switchyard sends in all (the monitor's first).
    fn probe_headers(
        &mut self,
        e: &Flat,
        list: Option<&[AzHeader]>,
        monitor: &Monitor,
        ep: &Ep,
    ) -> Vec<(String, String)> {
        let mut headers = self.headers(e, "customHeaders", list, monitor.protocol);
        // Switchyard sends at most 8 headers in all (monitor and probe).
        let mut names: Vec<String> = monitor
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        headers.retain(|(n, _)| {
            let n = n.to_ascii_lowercase();
            if names.contains(&n) {
                return true;
            }
            names.push(n);
            names.len() <= 8
        });
        if names.len() > 8 {
            self.warn(&e.path("customHeaders"), "with the profile's headers, more than 8: the last ones are not carried over (Switchyard sends at most 8 in all)");
        }
        if !headers.is_empty() && (ep.always_serve || !ep.enabled) {
            self.note(&e.path("customHeaders"), "kept as a comment: the endpoint is not probed while it is disabled or always served");
        }
        headers
    }

    /// The keys of the profile's routing method (an endpoint's others are
    /// reported with the profile's keys).
    fn routing_keys(&mut self, e: &Flat, az: AzEndpoint, d: &Draft, ep: &mut Ep) {
        match d.routing {
            "priority" => ep.priority = az.priority,
            "weighted" => ep.weight = self.weight(e, az.weight),
            "performance" => self.location(e, ep, az.endpoint_location.as_deref()),
            "geographic" => self.regions(e, ep, az.geo_mapping.unwrap_or_default(), d),
            "subnet" => self.subnets(e, ep, az.subnets.unwrap_or_default()),
            _ => {}
        }
    }

    /// `weight`, within Switchyard's 1..1000.
    fn weight(&mut self, e: &Flat, weight: Option<i64>) -> Option<i64> {
        match weight {
            Some(w) if (1..=1000).contains(&w) => Some(w),
            Some(w) => {
                let c = w.clamp(1, 1000);
                self.warn(
                    &e.path("weight"),
                    format!("{w} is outside 1..1000: written as {c}"),
                );
                Some(c)
            }
            None => None,
        }
    }

    /// `endpointLocation` as `location`: a region Switchyard knows, or the
    /// place of an Azure region it does not.
    fn location(&mut self, e: &Flat, ep: &mut Ep, loc: Option<&str>) {
        let at = e.path("endpointLocation");
        let Some(loc) = loc.map(str::trim).filter(|l| !l.is_empty()) else {
            self.warn(&at, "missing: performance routing needs each endpoint's place (Azure derives it from an Azure resource); the endpoint is written commented out: add `location` (a region name such as \"westeurope\", or { lat, lon })");
            ep.skip.get_or_insert("no location".into());
            return;
        };
        let key: String = loc
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if crate::geo::regions::lookup(&key).is_some() {
            let comment = if key == loc {
                String::new()
            } else {
                format!("Azure: \"{loc}\"")
            };
            ep.location = Some((q(&key), comment));
        } else if let Some((_, lat, lon)) = EXTRA_AZURE_REGIONS.iter().find(|(n, _, _)| *n == key) {
            ep.location = Some((
                format!("{{ lat = {lat}, lon = {lon} }}"),
                format!("Azure: \"{loc}\""),
            ));
        } else {
            let hint = crate::geo::regions::suggest(&key);
            self.warn(&at, format!("`{loc}` is not a region Switchyard knows{}; the endpoint is written commented out: give `location = {{ lat, lon }}` of the region", if hint.is_empty() { String::new() } else { format!(" (near: {})", hint.join(", ")) }));
            ep.skip.get_or_insert(format!("unknown location `{loc}`"));
        }
    }

    /// `geoMapping` as `regions`: the codes Switchyard knows, each mapped to
    /// one endpoint of the profile.
    fn regions(&mut self, e: &Flat, ep: &mut Ep, codes: Vec<String>, d: &Draft) {
        for (i, code) in codes.iter().enumerate() {
            let at = e.path(&format!("geoMapping[{i}]"));
            let upper = code.trim().to_ascii_uppercase();
            match methods::region_code(&upper) {
                Ok(_) => {
                    let taken = d.endpoints.iter().find(|o| o.regions.contains(&upper));
                    if let Some(o) = taken {
                        self.warn(&at, format!("`{upper}` is already mapped to endpoint `{}`; not carried over (a code maps to one endpoint)", o.name));
                    } else if !ep.regions.contains(&upper) {
                        ep.regions.push(upper);
                    }
                }
                Err(msg) => self.warn(&at, format!("{msg}; not carried over: clients of that region get another match (or NODATA); map them by hand")),
            }
        }
        if ep.regions.is_empty() {
            self.warn(&e.path("geoMapping"), "no region Switchyard knows: the endpoint is written commented out (geographic routing needs `regions`)");
            ep.skip.get_or_insert("no regions".into());
        }
    }

    /// `subnets` as ranges Switchyard reads (`first-last`, `first/scope`).
    fn subnets(&mut self, e: &Flat, ep: &mut Ep, list: Vec<AzSubnet>) {
        let had = !list.is_empty();
        let mut bad = false;
        for (i, s) in list.into_iter().enumerate() {
            let at = e.path(&format!("subnets[{i}]"));
            let Some(first) = s.first.map(|f| f.trim().to_string()) else {
                self.warn(&at, "no `first` address; not carried over");
                bad = true;
                continue;
            };
            let text = match (s.last.filter(|l| !l.trim().is_empty()), s.scope) {
                (Some(last), _) => format!("{first}-{}", last.trim()),
                (None, Some(scope)) => format!("{first}/{scope}"),
                (None, None) => first.clone(),
            };
            match methods::subnet(&text) {
                Ok(_) => ep.subnets.push(text),
                Err(msg) => {
                    self.warn(&at, format!("{msg}; not carried over"));
                    bad = true;
                }
            }
        }
        if had && ep.subnets.is_empty() && bad {
            // Without ranges it would become the fallback: another meaning.
            self.warn(&e.path("subnets"), "no range could be read: the endpoint is written commented out rather than as the fallback endpoint");
            ep.skip.get_or_insert("no readable subnet".into());
        }
    }
}

/// Azure regions `src/geo/regions.rs` does not list, with their place.
const EXTRA_AZURE_REGIONS: &[(&str, f64, f64)] = &[
    ("australiacentral2", -35.31, 149.12),
    ("brazilsoutheast", -22.90, -43.17),
    ("chinaeast", 31.23, 121.47),
    ("chinaeast2", 31.23, 121.47),
    ("chinaeast3", 31.23, 121.47),
    ("chinanorth", 39.90, 116.40),
    ("chinanorth2", 39.90, 116.40),
    ("chinanorth3", 38.04, 114.51),
    ("jioindiacentral", 21.15, 79.09),
    ("jioindiawest", 22.47, 70.06),
    ("usgovarizona", 33.45, -112.07),
    ("usgovtexas", 29.42, -98.49),
    ("usgovvirginia", 37.37, -79.82),
];

/// Checks an endpoint target: an address, or a host name.
fn target(t: &str) -> Result<String, String> {
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let host = t.trim_end_matches('.').to_ascii_lowercase();
    let looks_numeric = host
        .split('.')
        .next_back()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
    let ok = !host.is_empty()
        && !looks_numeric
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(host)
    } else {
        Err(format!("`{t}` is neither an IP address nor a host name"))
    }
}
