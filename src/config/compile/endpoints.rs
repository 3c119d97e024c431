//! Stage: one endpoint: its target (address, host name or nested
//! profile), weight and priority, and its probe specification.

use super::*;
use crate::config::keys;
use crate::snapshot::EndpointKey;

/// What the endpoints of the profile being compiled share: the profile's
/// id, name (as runtime state is keyed), place and settings. Passed to each
/// endpoint, so no stage keeps a cursor.
pub(super) struct ProfileCx {
    /// The profile's id in the snapshot.
    pub(super) id: ProfileId,
    /// Its name in lowercase (runtime state and overrides are keyed by
    /// it); empty when the name was wrong.
    pub(super) key_name: String,
    /// Named after its zone's apex: addresses only, no CNAME.
    pub(super) apex: bool,
    /// The answers' TTL.
    pub(super) ttl: u32,
    /// The routing method, when known.
    pub(super) method: Option<Method>,
    /// `[monitor]`, when there is one and it was right.
    pub(super) monitor: Option<Arc<MonitorSettings>>,
    /// `[[monitors]]` and `health`, when there are and they were right.
    pub(super) named: Option<Arc<super::monitors::NamedMonitors>>,
}

/// An endpoint's weight (checked: 1..=1000) and priority (0 when absent or
/// out of range: the profile checks priorities together), the same for
/// plain and nested endpoints.
fn rank(r: &mut Report, src: usize, p: &str, e: &RawEndpoint) -> Option<Rank> {
    let weight = match &e.weight {
        Some(w) => r.int_key(src, w, &format!("{p}.weight"), &keys::WEIGHT)?,
        None => keys::WEIGHT.default_int() as u32,
    };
    let priority = match &e.priority {
        Some(v) if (1..=1000).contains(v.get_ref()) => *v.get_ref() as u16,
        _ => 0,
    };
    Some(Rank { weight, priority })
}

/// `target`: an address, or a host name where a CNAME may be answered.
fn target(r: &mut Report, src: usize, p: &str, e: &RawEndpoint, cx: &ProfileCx) -> Option<Target> {
    if let Some(m) = &e.min_child_endpoints {
        r.err(
            src,
            m,
            &format!("{p}.min_child_endpoints"),
            "only used with `profile` (nested endpoints)",
        );
    }
    let Some(t) = &e.target else {
        r.err(
            src,
            &e.name,
            &format!("{p}.target"),
            "target is required (an IPv4 or IPv6 address, or a host name)",
        );
        return None;
    };
    let field = format!("{p}.target");
    let text = t.get_ref().trim();
    let target = if let Ok(ip) = text.parse::<IpAddr>() {
        match ip {
            IpAddr::V4(v4) => Target::V4(v4),
            IpAddr::V6(v6) => Target::V6(v6),
        }
    } else {
        match DomainName::parse(text, None) {
            // `192.0.2.7O` is a valid host name, and almost certainly a
            // mistyped address.
            Ok(h) if h.is_hostname() && !looks_like_an_address(text) => Target::Host(h),
            _ => {
                r.err(src, t, &field, not_a_target(text));
                return None;
            }
        }
    };
    let host = matches!(target, Target::Host(_));
    let problem = if cx.apex && host {
        "a profile at the zone apex answers addresses only: a CNAME cannot live at the apex (it holds SOA and NS); use an IPv4 or IPv6 address"
    } else if cx.method == Some(Method::Multivalue) && host {
        "multivalue routing answers addresses only; use an IPv4 or IPv6 address"
    } else {
        return Some(target);
    };
    r.err(src, t, &field, problem);
    None
}

/// Where an endpoint is probed: host (or address), port, path, headers and
/// the Host it sends, from `[monitor]` and the endpoint's own `probe`.
struct ProbeTarget {
    host: String,
    port: u16,
    path: String,
    headers: Vec<(String, String)>,
    default_host: Option<String>,
}

impl ProbeTarget {
    /// A named monitor's own `address`, probed with the monitor's port,
    /// path and headers (the endpoint's `probe` is about the endpoint).
    fn fixed(address: &str, m: &MonitorSettings) -> ProbeTarget {
        let is_name = address.parse::<IpAddr>().is_err();
        ProbeTarget {
            host: address.to_string(),
            port: m.port,
            path: m.path.clone(),
            headers: m.headers.clone(),
            default_host: is_name.then(|| address.to_string()),
        }
    }

    /// What it checks, secret-free: `tcp 10.1.2.3:5432`, `https
    /// api.example.com:443` (never the path, which may hold the key).
    fn describe(&self, m: &MonitorSettings) -> String {
        let protocol = match m.protocol {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
            Protocol::Dns => "dns",
            Protocol::Grpc { .. } => "grpc",
        };
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("{protocol} [{v6}]:{}", self.port),
            _ => format!("{protocol} {}:{}", self.host, self.port),
        }
    }
}

/// Whose status a probe decides: an endpoint's, or one input of an
/// endpoint's named monitors.
#[derive(Clone)]
enum User {
    Endpoint,
    Monitor(Arc<str>),
}

/// The probe target of a monitored endpoint.
fn probe_target(
    r: &mut Report,
    src: usize,
    p: &str,
    e: &RawEndpoint,
    target: &Target,
    m: &MonitorSettings,
) -> Option<ProbeTarget> {
    let probe = e.probe.as_ref().map(|pr| pr.get_ref());
    let mut ok = true;
    let (host, address_is_name) = match probe.and_then(|pr| pr.address.as_ref()) {
        Some(a) => {
            let a_text = a.get_ref().trim();
            let is_ip = a_text.parse::<IpAddr>().is_ok();
            let is_name = DomainName::parse(a_text, None).is_ok_and(|n| n.is_hostname());
            if !is_ip && !is_name {
                r.err(src, a, &format!("{p}.probe.address"), not_a_target(a_text));
                ok = false;
            }
            (a_text.trim_end_matches('.').to_string(), is_name && !is_ip)
        }
        None => match target {
            Target::Host(h) => (h.as_str().trim_end_matches('.').to_string(), true),
            other => (other.to_string(), false),
        },
    };
    // Host defaults to the endpoint's host name, else the probe address's
    // host name; an IP-only endpoint sends its address.
    let default_host = match target {
        Target::Host(h) => Some(h.as_str().trim_end_matches('.').to_string()),
        _ if address_is_name => Some(host.clone()),
        _ => None,
    };
    let port = match probe.and_then(|pr| pr.port.as_ref()) {
        Some(v) => r.int(src, v, &format!("{p}.probe.port"), 1, 65535),
        None => Some(m.port),
    };
    let path = match probe.and_then(|pr| pr.path.as_ref()) {
        Some(v) => {
            let field = format!("{p}.probe.path");
            super::monitor::check_path(r, src, v, &field, m.protocol, m.key.is_some())
        }
        None => Some(m.path.clone()),
    };
    let mut headers = Some(m.headers.clone());
    if let Some(h) = probe.and_then(|pr| pr.headers.as_ref())
        && m.protocol == Protocol::Dns
    {
        r.err(
            src,
            h,
            &format!("{p}.probe.headers"),
            "dns probes send no headers",
        );
        ok = false;
    } else if let Some(h) = probe.and_then(|pr| pr.headers.as_ref()) {
        let field = format!("{p}.probe.headers");
        let metadata = !m.protocol.is_grpc() || super::monitor_grpc::metadata(r, src, h, &field);
        headers = super::monitor::headers(r, src, h, &field).and_then(|own| {
            let mut all = m.headers.clone();
            for (k, v) in own {
                all.retain(|(x, _)| !x.eq_ignore_ascii_case(&k));
                all.push((k, v));
            }
            if all.len() > 8 {
                r.err(src, h, &field, "at most 8 headers in all");
                return None;
            }
            Some(all)
        });
        if !metadata {
            headers = None;
        }
    }
    let headers = headers?;
    // Verified HTTPS to an address, with no name to verify: the
    // certificate would have to name the address itself.
    if m.protocol.uses_tls()
        && m.tls_verify
        && default_host.is_none()
        && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"))
        && let Some(t) = &e.target
    {
        r.warn(
            src,
            t,
            &format!("{p}.target"),
            format!(
                "{} of the address {host} verifies a certificate for that address, which certificates rarely name: set a `Host` header in [monitor] headers (or this endpoint's probe) to the name its certificate carries; it is also the TLS server name",
                if m.protocol.is_grpc() { "a gRPC check over TLS" } else { "an HTTPS check" }
            ),
        );
    }
    ok.then_some(())?;
    Some(ProbeTarget {
        host,
        port: port?,
        path: path?,
        headers,
        default_host,
    })
}

impl Loader<'_> {
    /// One endpoint of the profile `cx`: a nested one, or a target with its
    /// answer record and, when monitored, its probe (shared with identical
    /// probes).
    pub(super) fn endpoint(
        &mut self,
        cx: &ProfileCx,
        src: usize,
        p: &str,
        e: &RawEndpoint,
    ) -> Option<Endpoint> {
        let runtime = self.runtime(&cx.key_name, e.name.get_ref());
        if let Some(child) = &e.profile {
            return self.nested_endpoint(cx, src, p, e, child, runtime);
        }
        let target = target(&mut self.r, src, p, e, cx);
        let rank = rank(&mut self.r, src, p, e);
        let target = target?;
        let t = e.target.as_ref()?;
        let field = format!("{p}.target");
        if let Target::Host(h) = &target {
            let at = self.r.at(src, t, &field);
            self.host_targets.push(Located {
                value: h.clone(),
                at,
            });
        }
        let Rank { weight, priority } = rank?;
        let rr = match &target {
            Target::V4(ip) => WireRr::a(cx.ttl, *ip),
            Target::V6(ip) => WireRr::aaaa(cx.ttl, *ip),
            Target::Host(h) => match WireRr::cname(cx.ttl, h) {
                Ok(rr) => rr,
                Err(err) => {
                    self.r.err(src, t, &field, err);
                    return None;
                }
            },
            Target::Nested(_) => WireRr::none(),
        };
        let enabled = e.enabled.unwrap_or(true);
        let monitored = enabled && !e.always_serve.unwrap_or(false);
        let chosen = super::monitors::chosen(&mut self.r, src, p, e, cx.named.as_deref())?;
        let mut monitors = None;
        let health = match (&cx.monitor, chosen) {
            (_, Some((list, rule))) if monitored => {
                let (cell, m) = self.combined(cx, src, p, e, &target, list, rule)?;
                monitors = Some(m);
                Health::Monitored(cell)
            }
            (Some(m), _) if monitored => {
                let probe = probe_target(&mut self.r, src, p, e, &target, m)?;
                Health::Monitored(self.probe(probe, m, User::Endpoint))
            }
            _ => {
                if let Some(pr) = &e.probe {
                    let why = if cx.monitor.is_none() && cx.named.is_none() {
                        "the profile has no [monitor]"
                    } else {
                        "the endpoint is not probed (disabled or always_serve)"
                    };
                    self.r
                        .warn(src, pr, &format!("{p}.probe"), format!("ignored: {why}"));
                }
                if enabled {
                    Health::Unmonitored
                } else {
                    Health::Disabled
                }
            }
        };
        Some(Endpoint {
            name: e.name.get_ref().as_str().into(),
            profile: cx.id,
            target,
            priority,
            weight,
            health,
            monitors,
            runtime,
            hold: None,
            rr,
            rum_url: rum_url(&mut self.r, src, p, e)?,
            latency_id: crate::latency::endpoint_id_of(&cx.key_name, e.name.get_ref()),
        })
    }

    /// The health cell of the next endpoint's probe: identical probes (same
    /// target, settings and key) run once and share one cell, whichever
    /// profiles they belong to; an unchanged probe keeps its cell (status,
    /// history) across a reload.
    fn probe(&mut self, t: ProbeTarget, m: &Arc<MonitorSettings>, user: User) -> Arc<HealthCell> {
        let endpoint_id = self.table.endpoints.len() as u32;
        let (endpoints, monitor_of) = match user {
            User::Endpoint => (vec![endpoint_id], Vec::new()),
            User::Monitor(name) => (Vec::new(), vec![(endpoint_id, name)]),
        };
        let identity = ProbeKey {
            host: t.host.clone(),
            port: t.port,
            path: t.path.clone(),
            headers: t.headers.clone(),
            default_host: t.default_host.clone(),
            monitor: (**m).clone(),
        };
        if let Some(&i) = self.probe_index.get(&identity) {
            let spec = &mut self.probes[i];
            spec.endpoints.extend(endpoints);
            spec.monitor_of.extend(monitor_of);
            return spec.cell.clone();
        }
        let cell = match self.run.carry.cells.get(&identity) {
            Some(old) => old.clone(),
            None => Arc::new(HealthCell::new()),
        };
        self.probe_index.insert(identity.clone(), self.probes.len());
        self.probes.push(ProbeSpec {
            key: identity,
            endpoints,
            monitor_of,
            cell: cell.clone(),
            host: t.host,
            port: t.port,
            path: t.path,
            headers: t.headers,
            default_host: t.default_host,
            tls: m.protocol.uses_tls().then(|| TlsKey {
                verify: m.tls_verify,
                ca_cert: m.ca_cert.clone(),
                identity: m.client_cert.clone().zip(m.client_key.clone()),
            }),
            monitor: m.clone(),
            labels: Vec::new(),         // filled in finish()
            monitor_labels: Vec::new(), // likewise
        });
        cell
    }

    /// The endpoint's named monitors, each probed (sharing identical
    /// probes), and the cell their combination is written to: the previous
    /// configuration's when the endpoint combines the same probes the same
    /// way, else a new one starting from what they say now.
    #[allow(clippy::too_many_arguments)]
    fn combined(
        &mut self,
        cx: &ProfileCx,
        src: usize,
        p: &str,
        e: &RawEndpoint,
        target: &Target,
        list: Vec<&super::monitors::Named>,
        rule: crate::health::combine::Rule,
    ) -> Option<(Arc<HealthCell>, Arc<crate::health::combine::Monitors>)> {
        use std::hash::{Hash, Hasher};
        let mut inputs = Vec::new();
        let mut ok = true;
        let mut identity = std::collections::hash_map::DefaultHasher::new();
        rule.hash(&mut identity);
        let key = EndpointKey::new(&cx.key_name, e.name.get_ref());
        for n in list {
            let (cell, what, push) = match &n.check {
                super::monitors::Check::Push(push) => (
                    self.pushed(&key, &n.name, push),
                    "push".to_string(),
                    Some(*push),
                ),
                super::monitors::Check::Probe { settings, address } => {
                    let t = match address {
                        Some(a) => Some(ProbeTarget::fixed(a, settings)),
                        None => probe_target(&mut self.r, src, p, e, target, settings),
                    };
                    let Some(t) = t else {
                        ok = false;
                        continue;
                    };
                    let what = t.describe(settings);
                    (
                        self.probe(t, settings, User::Monitor(n.name.clone())),
                        what,
                        None,
                    )
                }
            };
            (&*n.name, n.invert, Arc::as_ptr(&cell) as usize, push).hash(&mut identity);
            inputs.push(crate::health::combine::Input {
                name: n.name.clone(),
                invert: n.invert,
                cell,
                what,
                push,
            });
        }
        ok.then_some(())?;
        let monitors = crate::health::combine::Monitors {
            rule,
            inputs: inputs.into(),
            identity: identity.finish(),
        };
        let cell = match self.run.carry.combined.get(&key) {
            Some((same, cell)) if *same == monitors.identity => cell.clone(),
            _ => {
                let cell = HealthCell::new();
                cell.set(monitors.status());
                Arc::new(cell)
            }
        };
        Some((cell, Arc::new(monitors)))
    }

    /// The cell of an endpoint's push monitor: the previous
    /// configuration's (what was pushed stays), else a new one starting
    /// from what no push yet counts as.
    fn pushed(
        &self,
        key: &EndpointKey,
        name: &Arc<str>,
        push: &crate::health::push::PushSettings,
    ) -> Arc<HealthCell> {
        if let Some(cell) = self.run.carry.pushed.get(&(key.clone(), name.to_string())) {
            return cell.clone();
        }
        let (status, _, _) = crate::health::push::decide(&[], 0, push.on_stale);
        let cell = HealthCell::new();
        cell.set(status);
        Arc::new(cell)
    }

    /// The runtime state of an endpoint: the previous configuration's when
    /// the same profile has an endpoint of the same name, with the runtime
    /// override (state file) applied.
    pub(super) fn runtime(&self, profile: &str, endpoint: &str) -> Arc<EndpointRuntime> {
        let key = EndpointKey::new(profile, endpoint);
        let rt = self
            .run
            .carry
            .runtimes
            .get(&key)
            .cloned()
            .unwrap_or_default();
        rt.apply(crate::overrides::state(self.run.carry.overrides.get(&key)));
        rt
    }

    /// A nested endpoint: answers with its child profile's choice, resolved
    /// once every profile is read.
    pub(super) fn nested_endpoint(
        &mut self,
        cx: &ProfileCx,
        src: usize,
        p: &str,
        e: &RawEndpoint,
        child: &Spanned<String>,
        runtime: Arc<EndpointRuntime>,
    ) -> Option<Endpoint> {
        let field = format!("{p}.profile");
        if let Some(t) = &e.target {
            self.r.err(src, t, &format!("{p}.target"), "a nested endpoint answers with its child profile's choice: remove `target` (or `profile`)");
            return None;
        }
        if cx.method == Some(Method::Multivalue) {
            self.r.err(
                src,
                child,
                &field,
                "multivalue routing answers addresses only; nested endpoints are not allowed",
            );
            return None;
        }
        let name = match DomainName::parse(child.get_ref(), None) {
            Ok(n) => n,
            Err(msg) => {
                self.r.err(src, child, &field, msg);
                return None;
            }
        };
        let min = match &e.min_child_endpoints {
            Some(m) => self
                .r
                .int(src, m, &format!("{p}.min_child_endpoints"), 1, 1000)?,
            None => 1,
        };
        if let Some(pr) = &e.probe {
            self.r.warn(
                src,
                pr,
                &format!("{p}.probe"),
                "ignored: a nested endpoint's status comes from its child profile",
            );
        }
        let Rank { weight, priority } = rank(&mut self.r, src, p, e)?;
        let id = self.table.endpoints.len() as u32;
        let at = self.r.at(src, child, &field);
        self.nested.push(NestedRef {
            endpoint: id,
            child: name,
            at,
        });
        let health = if e.enabled.unwrap_or(true) {
            Health::Nested {
                child: u32::MAX,
                min,
            }
        } else {
            Health::Disabled
        };
        Some(Endpoint {
            name: e.name.get_ref().as_str().into(),
            profile: cx.id,
            target: Target::Nested(u32::MAX),
            priority,
            weight,
            health,
            monitors: None,
            runtime,
            hold: None,
            rr: WireRr::none(),
            rum_url: match &e.rum_url {
                Some(u) => {
                    let msg = "a nested endpoint is measured through its child profile's endpoints";
                    self.r.err(src, u, &format!("{p}.rum_url"), msg);
                    return None;
                }
                None => None,
            },
            latency_id: crate::latency::endpoint_id_of(&cx.key_name, e.name.get_ref()),
        })
    }
}

/// `rum_url`: an absolute `http://` or `https://` URL without a fragment,
/// at most 1,024 bytes of printable ASCII (the script fetches it as is,
/// with a cache-busting query added). `Some(None)` when not given.
fn rum_url(r: &mut Report, src: usize, p: &str, e: &RawEndpoint) -> Option<Option<Box<str>>> {
    let Some(u) = &e.rum_url else {
        return Some(None);
    };
    let text = u.get_ref().trim();
    let uri = text.parse::<http::Uri>().ok();
    let ok = text.len() <= 1024
        && text.bytes().all(|b| b.is_ascii_graphic())
        && !text.contains(['#', '"', '\\', '<', '>'])
        && uri.as_ref().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
    if !ok {
        r.err(
            src,
            u,
            &format!("{p}.rum_url"),
            format!("`{text}` is not an absolute http:// or https:// URL (at most 1024 characters, no fragment), e.g. \"https://eu.example.com/rum.txt\""),
        );
        return None;
    }
    Some(Some(text.into()))
}

/// Checks an endpoint's `target` as a profile's is read: an IP address, or
/// a host name that is not a mistyped address; otherwise the message
/// `check` gives for it. (For `switchyard init`, which asks for targets.)
pub fn check_target(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    match DomainName::parse(text, None) {
        Ok(h) if h.is_hostname() && !looks_like_an_address(text) => Ok(()),
        _ => Err(not_a_target(text)),
    }
}

/// Explains why `text` is neither an address nor a host name.
fn not_a_target(text: &str) -> String {
    if let Some(port_hint) = with_a_port(text) {
        return port_hint;
    }
    let labels: Vec<&str> = text.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()))
    {
        format!("`{text}` is not a valid IPv4 address")
    } else if looks_like_an_address(text) && !text.contains(':') {
        let odd = labels
            .iter()
            .find(|l| !l.bytes().all(|c| c.is_ascii_digit()))
            .copied()
            .unwrap_or_default();
        let letters = if odd.bytes().any(|c| matches!(c, b'O' | b'o')) {
            " (a letter O for a zero?)"
        } else if odd.bytes().any(|c| matches!(c, b'l' | b'I')) {
            " (a letter l for a one?)"
        } else {
            ""
        };
        format!(
            "`{text}` looks like an IPv4 address but `{odd}` is not a number{letters}; a host name target is a name such as `api.example.com`"
        )
    } else if text.contains(':') {
        format!("`{text}` is not a valid IPv6 address")
    } else {
        format!(
            "`{text}` is not a host name (dot-separated labels of letters, digits and `-`) nor an IP address"
        )
    }
}

/// Four dot-separated labels of at most three characters, three or more of
/// them numbers (`192.0.2.7O`), or anything with a colon: meant as an
/// address, whatever it parses as. (`10.0.0.1.nip.io` is a host name.)
fn looks_like_an_address(text: &str) -> bool {
    if text.contains(':') {
        return true;
    }
    let labels: Vec<&str> = text.trim_end_matches('.').split('.').collect();
    labels.len() == 4
        && labels
            .iter()
            .all(|l| (1..=3).contains(&l.len()) && l.bytes().all(|c| c.is_ascii_alphanumeric()))
        && labels
            .iter()
            .filter(|l| l.bytes().all(|c| c.is_ascii_digit()))
            .count()
            >= 3
}

/// The message for an address with a port (`192.0.2.71:443`,
/// `[2001:db8::1]:443`), if `text` is one.
fn with_a_port(text: &str) -> Option<String> {
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse::<IpAddr>().ok()?;
    Some(format!(
        "`{text}` has a port; a target is an address alone (`{host}`), and the port probes use is `port` in [monitor]"
    ))
}

#[cfg(test)]
mod target_tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn targets_weights_and_nested_endpoints() {
        let p = profile(
            "routing = \"weighted\"\n[[endpoints]]\nname = \"a\"\ntarget = \"api.example.com\"\nweight = 3\n[[endpoints]]\nname = \"b\"\ntarget = \"2001:db8::1\"\n",
        );
        let c = load_text("", &[("p.toml", &p)]).unwrap();
        let eps = c.table.endpoints_of(&c.table.profiles[0]);
        assert!(matches!(&eps[0].target, Target::Host(h) if h.as_str() == "api.example.com."));
        assert_eq!((eps[0].weight, eps[1].weight), (3, 1));
        let child = "name = \"eu.tm.example.test.\"\nrouting = \"priority\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n";
        let p = profile(
            "routing = \"weighted\"\n[[endpoints]]\nname = \"eu\"\nprofile = \"eu.tm.example.test.\"\nweight = 0\n",
        );
        let e = errors(load_text("", &[("eu.toml", child), ("p.toml", &p)]));
        assert_eq!(e, ["endpoints[0].weight: 0 is out of range (1..=1000)"]);
    }

    #[test]
    fn mistyped_addresses_are_named_as_such() {
        assert!(looks_like_an_address("192.0.2.7O"));
        assert!(looks_like_an_address("l92.0.2.7"));
        assert!(looks_like_an_address("2001:db8::g"));
        assert!(!looks_like_an_address("10.0.0.1.nip.io"));
        assert!(!looks_like_an_address("api.eu.example.com"));
        assert!(!looks_like_an_address("a.b.c.de"));
        assert!(not_a_target("192.0.2.7O").contains("letter O for a zero"));
        assert!(not_a_target("192.0.2.7O").contains("looks like an IPv4 address"));
        assert!(not_a_target("192.0.2.71:443").contains("has a port"));
        assert!(not_a_target("[2001:db8::1]:443").contains("`2001:db8::1`"));
        assert!(not_a_target("2001:db8::g").contains("not a valid IPv6 address"));
        assert!(not_a_target("203.0.113.300").contains("not a valid IPv4 address"));
    }
}
