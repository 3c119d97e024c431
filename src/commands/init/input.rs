//! Each answer `switchyard init` takes, read from its flag or its prompt
//! by the same function, so both say the same thing about bad input.

use std::net::{IpAddr, SocketAddr};

use switchyard::proto::name::DomainName;

use crate::commands::args::InitMethod;

/// A name server of the zone, with its addresses when it is inside the
/// zone (the glue).
#[derive(Clone, Debug)]
pub(crate) struct NameServer {
    pub(crate) name: DomainName,
    pub(crate) addrs: Vec<IpAddr>,
}

/// A health URL, as the monitor and the endpoint's `probe` write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealthUrl {
    pub(crate) https: bool,
    /// The host as written (an address without its brackets, or a name).
    pub(crate) host: String,
    /// The port written in the URL, if any.
    pub(crate) port: Option<u16>,
    /// Path and query.
    pub(crate) path: String,
}

impl HealthUrl {
    /// The port probed.
    pub(crate) fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// The scheme, as `protocol = ...` writes it.
    pub(crate) fn protocol(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

/// One endpoint of the profile.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    /// An address or a host name, as written.
    pub(crate) target: String,
    pub(crate) health: HealthUrl,
    /// The method's key (`weight`, `location`, `regions`, `subnets`) as
    /// TOML, when given.
    pub(crate) method_value: Option<String>,
}

/// The zone: a host name of two labels or more, absolute.
pub(crate) fn zone(text: &str) -> Result<DomainName, String> {
    let name = DomainName::parse(text, None).map_err(|e| {
        // hickory's "Malformed label: " names no label.
        format!("`{}`: {}", shown(text), e.trim_end_matches([':', ' ']))
    })?;
    if !name.is_hostname() {
        return Err(format!(
            "`{}` is not a zone name of two labels or more of letters, digits and `-` (e.g. tm.example.com: the parent zone example.com delegates it)",
            shown(text)
        ));
    }
    Ok(name)
}

/// A name inside or outside `zone`: `api` (no dot: inside), an absolute
/// name, or one ending in the zone.
fn name_in(text: &str, zone: &DomainName) -> Result<DomainName, String> {
    let t = text.trim();
    let relative = !t.ends_with('.') && !t.contains('.') && t != "@";
    let name = if t == "@" || relative {
        DomainName::parse(t, Some(zone))
    } else {
        DomainName::parse(t, None)
    };
    name.map_err(|e| format!("`{}`: {e}", shown(text)))
}

/// `--ns NAME[=ADDRESS[,ADDRESS]]`: the name and the addresses given.
pub(crate) fn name_server(text: &str, zone: &DomainName) -> Result<NameServer, String> {
    let (name, addrs) = match text.split_once('=') {
        Some((n, a)) => (n, Some(a)),
        None => (text, None),
    };
    let ns = name_in(name, zone)?;
    if !ns.is_hostname() {
        return Err(format!(
            "`{}` is not a host name (labels of letters, digits and `-`)",
            shown(name)
        ));
    }
    let inside = ns.is_within(zone);
    let addrs = match addrs {
        None if inside => {
            return Err(format!(
                "{ns} is inside the zone {zone}, so the parent needs its address (glue): write it as {}=192.0.2.53",
                name.trim()
            ));
        }
        None => Vec::new(),
        Some(_) if !inside => {
            return Err(format!(
                "{ns} is outside the zone {zone}: its address is published in its own zone, not as glue; give the name alone"
            ));
        }
        Some(list) => list
            .split(',')
            .map(glue_address)
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(NameServer { name: ns, addrs })
}

/// A glue address: a unicast IPv4 or IPv6 address.
fn glue_address(text: &str) -> Result<IpAddr, String> {
    let a: IpAddr = text.trim().parse().map_err(|_| {
        format!(
            "`{}` is not an IPv4 or IPv6 address (e.g. 192.0.2.53 or 2001:db8::53)",
            shown(text)
        )
    })?;
    if a.is_unspecified() || a.is_multicast() {
        return Err(format!(
            "{a} cannot be a name server's address: give the address resolvers reach it at"
        ));
    }
    Ok(a)
}

/// Merges the `--ns` given for one name (one per address), in order.
pub(crate) fn merge_name_servers(list: Vec<NameServer>) -> Vec<NameServer> {
    let mut out: Vec<NameServer> = Vec::new();
    for ns in list {
        match out.iter_mut().find(|n| n.name == ns.name) {
            Some(n) => {
                for a in ns.addrs {
                    if !n.addrs.contains(&a) {
                        n.addrs.push(a);
                    }
                }
            }
            None => out.push(ns),
        }
    }
    out
}

/// The profile's name: inside the zone (or its apex), not a name server's.
pub(crate) fn profile(
    text: &str,
    zone: &DomainName,
    ns: &[NameServer],
) -> Result<DomainName, String> {
    let name = name_in(text, zone)?;
    if !name.is_within(zone) {
        return Err(format!(
            "{name} is outside the zone {zone}: a profile answers a name inside it, e.g. api.{zone}"
        ));
    }
    if ns.iter().any(|n| n.name == name) {
        return Err(format!(
            "{name} is a name server's name: the profile needs a name of its own"
        ));
    }
    Ok(name)
}

/// An endpoint's target: an address, or a host name (answered as a CNAME).
pub(crate) fn target(text: &str) -> Result<String, String> {
    let t = text.trim();
    if let Ok(a) = t.parse::<IpAddr>() {
        if a.is_unspecified() || a.is_multicast() {
            return Err(format!("{a} cannot be answered as an endpoint's address"));
        }
        return Ok(a.to_string());
    }
    switchyard::config::check_target(t)?;
    Ok(t.trim_end_matches('.').to_string())
}

/// [`target`], for a profile whose answers must be addresses: one at the
/// zone apex (a CNAME cannot live there) or a multivalue one.
pub(crate) fn address_target(text: &str, apex: bool, method: InitMethod) -> Result<String, String> {
    let t = target(text)?;
    if t.parse::<IpAddr>().is_ok() {
        return Ok(t);
    }
    if apex {
        return Err(format!(
            "`{t}` is a host name, answered as a CNAME, which cannot live at the zone apex: give an address"
        ));
    }
    if method == InitMethod::Multivalue {
        return Err(format!(
            "`{t}` is a host name: multivalue answers addresses only"
        ));
    }
    Ok(t)
}

/// An endpoint's health URL: http:// or https://, a host, no credentials
/// or fragment.
pub(crate) fn health_url(text: &str) -> Result<HealthUrl, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{}` is not an http:// or https:// URL, e.g. https://192.0.2.10/health",
            shown(t)
        )
    };
    if t.contains(['#', '"', '\\', ' ']) {
        return Err(bad());
    }
    let uri: http::Uri = t.parse().map_err(|_| bad())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad()),
    };
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{}`: credentials in a health URL are not sent; the monitor's `key` puts a secret in the path instead (profiles/README.md)",
            shown(t)
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    if host.parse::<IpAddr>().is_err() {
        target(host).map_err(|_| format!("`{}`: the host `{}` is not valid", shown(t), host))?;
    }
    let port = match (authority.port_u16(), authority.as_str().ends_with(':')) {
        (Some(0), _) | (None, true) => return Err(format!("`{}`: bad port", shown(t))),
        (p, _) => p,
    };
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    Ok(HealthUrl {
        https,
        host: host.to_string(),
        port,
        path,
    })
}

/// An endpoint's name: 1-64 letters, digits, `-`, `_`, `.`.
pub(crate) fn endpoint_name(text: &str, taken: &[Endpoint]) -> Result<String, String> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(format!(
            "`{}` is not an endpoint name: 1 to 64 letters, digits, `-`, `_` or `.`",
            shown(t)
        ));
    }
    if taken.iter().any(|e| e.name == t) {
        return Err(format!(
            "two endpoints are named `{t}`: each needs its own name"
        ));
    }
    Ok(t.to_string())
}

/// The method's endpoint value (`weight=`, `location=`, `regions=`,
/// `subnets=`) as TOML, checked by the configuration's own rules
/// (`config::methods`); `None` for an empty subnet list (the fallback).
pub(crate) fn method_value(method: InitMethod, text: &str) -> Result<Option<String>, String> {
    use switchyard::config::methods;
    let t = text.trim();
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let list = |t: &str, check: &dyn Fn(&str) -> Result<(), String>| {
        let items: Vec<&str> = t.split(['+', ' ']).filter(|s| !s.is_empty()).collect();
        items.iter().try_for_each(|i| check(i))?;
        Ok::<_, String>(items.iter().map(|i| quote(i)).collect::<Vec<_>>())
    };
    match method {
        InitMethod::Weighted => match t.parse::<u16>() {
            Ok(w) if (1..=1000).contains(&w) => Ok(Some(w.to_string())),
            _ => Err(format!(
                "weight `{}`: a whole number from 1 to 1000 (a share of queries relative to the others')",
                shown(t)
            )),
        },
        InitMethod::Performance => match t.split_once('/') {
            Some((lat, lon)) => {
                let (Ok(lat), Ok(lon)) = (lat.trim().parse::<f64>(), lon.trim().parse::<f64>())
                else {
                    return Err(format!(
                        "location `{}`: LAT/LON in degrees, e.g. 48.86/2.35",
                        shown(t)
                    ));
                };
                methods::coordinates(lat, lon)?;
                Ok(Some(format!("{{ lat = {lat:?}, lon = {lon:?} }}")))
            }
            None => {
                methods::region_point(t)?;
                Ok(Some(quote(t)))
            }
        },
        InitMethod::Geographic => {
            let codes = list(t, &|c| methods::region_code(c).map(|_| ()))?;
            if codes.is_empty() {
                return Err(
                    "regions: one or more of WORLD, GEO-EU (and the other groups), a country (DE) or a subdivision (US-CA), joined by +"
                        .to_string(),
                );
            }
            Ok(Some(format!("[{}]", codes.join(", "))))
        }
        InitMethod::Subnet => {
            let nets = list(t, &|n| methods::subnet(n).map(|_| ()))?;
            if nets.is_empty() {
                return Ok(None);
            }
            Ok(Some(format!("[{}]", nets.join(", "))))
        }
        InitMethod::Priority | InitMethod::Multivalue => Ok(None),
    }
}

/// `--endpoint NAME=TARGET,HEALTH_URL[,KEY=VALUE]`.
pub(crate) fn endpoint(
    text: &str,
    method: InitMethod,
    taken: &[Endpoint],
) -> Result<Endpoint, String> {
    let form = "write it as NAME=TARGET,HEALTH_URL, e.g. eu=192.0.2.10,https://192.0.2.10/health";
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("`{}`: no `=`: {form}", shown(text)))?;
    let name = endpoint_name(name, taken)?;
    let mut parts = rest.split(',');
    let target = target(parts.next().unwrap_or_default()).map_err(|e| format!("`{name}`: {e}"))?;
    let health = match parts.next() {
        Some(u) => health_url(u).map_err(|e| format!("`{name}`: {e}"))?,
        None => return Err(format!("`{name}` has no health URL: {form}")),
    };
    let mut method_value = None;
    let mut given = false;
    for extra in parts {
        let (key, value) = extra.split_once('=').unwrap_or((extra, ""));
        match method.endpoint_key() {
            Some(k) if k == key.trim() && !given => {
                method_value =
                    self::method_value(method, value).map_err(|e| format!("`{name}`: {e}"))?;
                given = true;
            }
            _ => {
                let expected = match method.endpoint_key() {
                    Some(k) => format!("the {} method reads `{k}=`", method.name()),
                    None => format!("the {} method reads no endpoint key", method.name()),
                };
                return Err(format!(
                    "`{name}`: `{}` is not expected after the health URL: {expected} (a comma inside the URL is written %2C)",
                    shown(extra)
                ));
            }
        }
    }
    if !given && matches!(method, InitMethod::Performance | InitMethod::Geographic) {
        let k = method.endpoint_key().unwrap_or_default();
        return Err(format!(
            "`{name}`: the {} method needs `,{k}=...` after the health URL",
            method.name()
        ));
    }
    Ok(Endpoint {
        name,
        target,
        health,
        method_value,
    })
}

/// A listen address, `ADDRESS:PORT` (`[::]:53` for IPv6).
pub(crate) fn listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "`{}` is not ADDRESS:PORT, e.g. 0.0.0.0:53 or [::]:53",
            shown(text)
        )
    })
}

/// `text` as error messages show it.
fn shown(text: &str) -> String {
    switchyard::fsutil::shown(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z() -> DomainName {
        zone("tm.example.com").unwrap()
    }

    #[test]
    fn zones() {
        assert_eq!(z().as_str(), "tm.example.com.");
        assert!(zone("com").unwrap_err().contains("two labels"));
        assert!(zone("bad..zone").is_err());
        assert!(zone("under score!.com").is_err());
    }

    #[test]
    fn name_servers_inside_need_glue_outside_none() {
        let ns = name_server("ns1=192.0.2.53", &z()).unwrap();
        assert_eq!(ns.name.as_str(), "ns1.tm.example.com.");
        assert_eq!(ns.addrs, vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
        let e = name_server("ns1", &z()).unwrap_err();
        assert!(e.contains("needs its address (glue)"), "{e}");
        let e = name_server("ns1.provider.example=192.0.2.1", &z()).unwrap_err();
        assert!(e.contains("outside the zone"), "{e}");
        let ns = name_server("ns1.provider.example.", &z()).unwrap();
        assert!(ns.addrs.is_empty());
        let ns = name_server("ns2.tm.example.com=2001:db8::53,192.0.2.54", &z()).unwrap();
        assert_eq!(ns.addrs.len(), 2);
        assert!(
            name_server("ns1=192.0.2.300", &z())
                .unwrap_err()
                .contains("not an IPv4")
        );
        assert!(name_server("ns1=0.0.0.0", &z()).is_err());
        let merged = merge_name_servers(vec![
            name_server("ns1=192.0.2.53", &z()).unwrap(),
            name_server("ns1=2001:db8::53", &z()).unwrap(),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].addrs.len(), 2);
    }

    #[test]
    fn profiles_are_inside() {
        let ns = [name_server("ns1=192.0.2.53", &z()).unwrap()];
        assert_eq!(
            profile("api", &z(), &ns).unwrap().as_str(),
            "api.tm.example.com."
        );
        assert!(
            profile("api.other.example.", &z(), &ns)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            profile("ns1", &z(), &ns)
                .unwrap_err()
                .contains("name server")
        );
    }

    #[test]
    fn urls() {
        let u = health_url("https://eu.example.net:8443/health?x=1").unwrap();
        assert_eq!(
            u,
            HealthUrl {
                https: true,
                host: "eu.example.net".into(),
                port: Some(8443),
                path: "/health?x=1".into()
            }
        );
        let u = health_url("http://[2001:db8::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port_or_default(), u.path.as_str()),
            ("2001:db8::1", 80, "/")
        );
        for bad in [
            "ftp://x.example/",
            "/health",
            "https://u:p@x.example/",
            "https://x.example/#f",
            "http://:80/",
        ] {
            assert!(health_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        let e = endpoint(
            "eu=192.0.2.10,https://192.0.2.10/health",
            InitMethod::Priority,
            &[],
        )
        .unwrap();
        assert_eq!((e.name.as_str(), e.target.as_str()), ("eu", "192.0.2.10"));
        let e2 = endpoint(
            "eu=192.0.2.11,http://192.0.2.11/",
            InitMethod::Priority,
            &[e],
        )
        .unwrap_err();
        assert!(e2.contains("two endpoints are named `eu`"), "{e2}");
        let w = endpoint(
            "a=192.0.2.1,http://192.0.2.1/,weight=90",
            InitMethod::Weighted,
            &[],
        )
        .unwrap();
        assert_eq!(w.method_value.as_deref(), Some("90"));
        let e = endpoint(
            "a=192.0.2.1,http://192.0.2.1/,weight=90",
            InitMethod::Priority,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("reads no endpoint key"), "{e}");
        let e = endpoint(
            "a=192.0.2.1,http://192.0.2.1/",
            InitMethod::Performance,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("needs `,location=...`"), "{e}");
        let p = endpoint(
            "a=192.0.2.1,http://192.0.2.1/,location=-23.5/-46.6",
            InitMethod::Performance,
            &[],
        )
        .unwrap();
        assert_eq!(
            p.method_value.as_deref(),
            Some("{ lat = -23.5, lon = -46.6 }")
        );
        let g = endpoint(
            "a=192.0.2.1,http://192.0.2.1/,regions=GEO-EU+DE",
            InitMethod::Geographic,
            &[],
        )
        .unwrap();
        assert_eq!(g.method_value.as_deref(), Some("[\"GEO-EU\", \"DE\"]"));
        assert!(endpoint("a=192.0.2.7O,http://x.example/", InitMethod::Priority, &[]).is_err());
        assert!(
            endpoint("a=192.0.2.1", InitMethod::Priority, &[])
                .unwrap_err()
                .contains("no health URL")
        );
        assert!(endpoint("a b=192.0.2.1,http://x.example/", InitMethod::Priority, &[]).is_err());
        let h = endpoint(
            "cdn=static.cdn.example.net,https://static.cdn.example.net/ok",
            InitMethod::Priority,
            &[],
        )
        .unwrap();
        assert_eq!(h.target, "static.cdn.example.net");
    }
}
