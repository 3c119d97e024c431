//! Stage: a profile's `[monitor]` table, resolved into [`MonitorSettings`].

use super::*;
use crate::config::keys;

/// A probe's path: starts with `/`, no spaces, `{key}` only with a key.
/// `None` when wrong (reported).
pub(super) fn check_path(
    r: &mut Report,
    src: usize,
    v: &Spanned<String>,
    field: &str,
    protocol: Protocol,
    has_key: bool,
) -> Option<String> {
    let path = v.get_ref();
    let problem = if protocol == Protocol::Tcp {
        "tcp probes have no path"
    } else if protocol == Protocol::Dns {
        "dns probes have no path: they ask `query_name`"
    } else if protocol.is_grpc() {
        "grpc probes have no path: they call grpc.health.v1.Health/Check (name the service with `service`)"
    } else if !path.starts_with('/') {
        "must start with `/`"
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else if path.contains("{key}") && !has_key {
        "uses {key} but the monitor has no `key`"
    } else {
        return Some(path.clone());
    };
    r.err(src, v, field, problem);
    None
}

/// Request headers: at most 8, valid names, no control characters.
pub(super) fn headers(
    r: &mut Report,
    src: usize,
    h: &Spanned<BTreeMap<String, Spanned<String>>>,
    field: &str,
) -> Option<Vec<(String, String)>> {
    let mut k = r.section(src);
    let mut out = Vec::new();
    if h.get_ref().len() > 8 {
        k.r.err(src, h, field, "at most 8 headers");
        k.fail();
    }
    for (name, v) in h.get_ref() {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        let problem = if !token {
            format!("`{name}` is not a valid header name")
        } else if v.get_ref().chars().any(|c| c.is_control() && c != '\t') {
            "header values must not contain control characters".to_string()
        } else {
            out.push((name.clone(), v.get_ref().clone()));
            continue;
        };
        k.r.err(src, v, &format!("{field}.{name}"), problem);
        k.fail();
    }
    k.done(out)
}

/// A profile's `[monitor]`: every key read, the settings only if all were
/// right.
pub(super) fn monitor(
    r: &mut Report,
    src: usize,
    prefix: &str,
    m: &Spanned<RawMonitor>,
) -> Option<MonitorSettings> {
    let raw = m.get_ref();
    let protocol = protocol(r, src, prefix, raw);
    // With an unknown protocol, the rest is checked as for http.
    let p = protocol.unwrap_or(Protocol::Http);
    let target = target(r, src, prefix, m, p);
    let timing = timing(r, src, prefix, m);
    let expected_status = expected_status(r, src, prefix, raw, p);
    let headers = match &raw.headers {
        Some(h) if matches!(p, Protocol::Tcp | Protocol::Dns) => {
            r.err(
                src,
                h,
                &format!("{prefix}.headers"),
                format!("{} probes send no headers", name(p)),
            );
            headers(r, src, h, &format!("{prefix}.headers")).and(None)
        }
        Some(h) if p.is_grpc() => {
            let field = format!("{prefix}.headers");
            let metadata = monitor_grpc::metadata(r, src, h, &field);
            headers(r, src, h, &field).filter(|_| metadata)
        }
        Some(h) => headers(r, src, h, &format!("{prefix}.headers")),
        None => Some(Vec::new()),
    };
    let grpc_service = monitor_grpc::service(r, src, prefix, raw, p);
    let tls = tls(r, src, prefix, m, p);
    let body_match = match &raw.body_match {
        None => Some(None),
        Some(b) => {
            let problem = if b.get_ref().is_empty() {
                Some("must not be empty")
            } else if p == Protocol::Tcp {
                Some("tcp probes have no body")
            } else if p == Protocol::Dns {
                Some("dns probes have no body: `expected_answer` checks the answer")
            } else if p.is_grpc() {
                Some("grpc probes have no body to match: they pass on SERVING")
            } else {
                None
            };
            match problem {
                Some(msg) => {
                    r.err(src, b, &format!("{prefix}.body_match"), msg);
                    None
                }
                None => Some(Some(b.get_ref().clone())),
            }
        }
    };
    let cert_warning = cert_warning(r, src, prefix, raw, p);
    // An unknown protocol with a query_name was meant to be dns: its keys
    // are read as such rather than each refused.
    let dns_p = match protocol {
        None if raw.query_name.is_some() => Protocol::Dns,
        _ => p,
    };
    let dns = super::monitor_dns::dns(r, src, prefix, m, dns_p);
    let (port, path, key) = target?;
    let timing = timing?;
    let tls = tls?;
    Some(MonitorSettings {
        protocol: protocol?,
        port,
        path,
        key,
        interval: timing.interval,
        timeout: timing.timeout,
        tolerated_failures: timing.tolerated_failures,
        required_successes: timing.required_successes,
        expected_status: expected_status?,
        headers: headers?,
        tls_verify: raw.tls_verify.unwrap_or(true),
        ca_cert: tls.ca_cert,
        client_cert: tls.client_cert,
        client_key: tls.client_key,
        body_match: body_match?,
        cert_warning: cert_warning?,
        grpc_service: grpc_service?,
        quorum: None,
        source_v4: None,
        source_v6: None,
        dns: dns?,
    })
}

/// `cert_warning`: within its key's range, https only (zero for the
/// other protocols, which see no certificate).
fn cert_warning(
    r: &mut Report,
    src: usize,
    prefix: &str,
    raw: &RawMonitor,
    protocol: Protocol,
) -> Option<Duration> {
    let field = &format!("{prefix}.cert_warning");
    let warning = r.bounded(
        src,
        raw.cert_warning.as_ref(),
        Some(field.as_str()),
        &keys::CERT_WARNING,
    )?;
    match &raw.cert_warning {
        Some(v) if protocol != Protocol::Https => {
            r.err(
                src,
                v,
                field,
                "certificate warnings need protocol = \"https\"",
            );
            None
        }
        _ if protocol != Protocol::Https => Some(Duration::ZERO),
        _ => Some(warning),
    }
}

/// The protocol as written in the configuration, for messages.
fn name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::Https => "https",
        Protocol::Tcp => "tcp",
        Protocol::Dns => "dns",
        Protocol::Grpc { .. } => "grpc",
    }
}

/// `protocol`.
fn protocol(r: &mut Report, src: usize, prefix: &str, raw: &RawMonitor) -> Option<Protocol> {
    let Some(v) = &raw.protocol else {
        return Some(Protocol::Http);
    };
    let tls = raw.tls.as_ref().is_some_and(|t| *t.get_ref());
    match v.get_ref().as_str() {
        "http" => Some(Protocol::Http),
        "https" => Some(Protocol::Https),
        "tcp" => Some(Protocol::Tcp),
        "dns" => Some(Protocol::Dns),
        "grpc" => Some(Protocol::Grpc { tls }),
        "push" => {
            r.err(
                src,
                v,
                &format!("{prefix}.protocol"),
                "a pushed monitor is a named one: write [[monitors]] with a `name` and protocol = \"push\"",
            );
            None
        }
        other => {
            r.err(
                src,
                v,
                &format!("{prefix}.protocol"),
                format!("unknown protocol `{other}` (expected http, https, tcp, dns or grpc; push for a named monitor)"),
            );
            None
        }
    }
}

/// What is probed: `port`, `path` and `key`.
fn target(
    r: &mut Report,
    src: usize,
    prefix: &str,
    m: &Spanned<RawMonitor>,
    protocol: Protocol,
) -> Option<(u16, String, Option<Secret>)> {
    let raw = m.get_ref();
    let default_port = match protocol {
        Protocol::Https => 443,
        Protocol::Dns => 53,
        _ => 80,
    };
    let port = match &raw.port {
        Some(v) => r.int(src, v, &format!("{prefix}.port"), 1, 65535),
        None if protocol == Protocol::Tcp => {
            r.err(src, m, &format!("{prefix}.port"), "tcp probes need a port");
            None
        }
        None if protocol.is_grpc() => {
            r.err(src, m, &format!("{prefix}.port"), "grpc probes need a port");
            None
        }
        None => Some(default_port),
    };
    let key = match &raw.key {
        Some(k) if protocol == Protocol::Dns => {
            r.err(src, k, &format!("{prefix}.key"), "dns probes send no key");
            None
        }
        Some(k) if protocol.is_grpc() => {
            r.err(
                src,
                k,
                &format!("{prefix}.key"),
                "grpc probes send no key (the key goes into an HTTP probe's path)",
            );
            None
        }
        Some(k) => r.secret(src, k, &format!("{prefix}.key")).map(Some),
        None => Some(None),
    };
    let path = match &raw.path {
        Some(v) => check_path(
            r,
            src,
            v,
            &format!("{prefix}.path"),
            protocol,
            raw.key.is_some(),
        ),
        None => Some("/".to_string()),
    };
    if let (Some(k), Some(p)) = (&raw.key, &raw.path)
        && protocol != Protocol::Dns
        && !p.get_ref().contains("{key}")
        && !protocol.is_grpc()
    {
        r.warn(
            src,
            k,
            &format!("{prefix}.key"),
            "the key is never sent: `path` has no {key}",
        );
    }
    Some((port?, path?, key?))
}

/// How often, how long, and how many failures and successes change the
/// status.
struct Timing {
    interval: Duration,
    timeout: Duration,
    tolerated_failures: u32,
    required_successes: u32,
}

/// `interval`, `timeout`, `tolerated_failures`, `required_successes`.
fn timing(r: &mut Report, src: usize, prefix: &str, m: &Spanned<RawMonitor>) -> Option<Timing> {
    let raw = m.get_ref();
    let mut interval = match &raw.interval {
        Some(v) => r.duration(src, v, &format!("{prefix}.interval")),
        None => Some(Duration::from_secs(30)),
    };
    if let (Some(i), Some(v)) = (interval, &raw.interval)
        && i < Duration::from_millis(100)
    {
        r.err(
            src,
            v,
            &format!("{prefix}.interval"),
            "must be at least 100ms",
        );
        interval = None;
    }
    let mut timeout = match &raw.timeout {
        Some(v) => r.duration(src, v, &format!("{prefix}.timeout")),
        None => interval.map(|i| (i / 2).min(Duration::from_secs(10))),
    };
    if let (Some(t), Some(i)) = (timeout, interval)
        && (t.is_zero() || t >= i)
    {
        let at = match &raw.timeout {
            Some(t) => r.at(src, t, &format!("{prefix}.timeout")),
            None => r.at(src, m, &format!("{prefix}.timeout")),
        };
        r.error(
            &at,
            format!(
                "timeout ({}) must be above zero and below interval ({})",
                humantime::format_duration(t),
                humantime::format_duration(i)
            ),
        );
        timeout = None;
    }
    let mut k = r.section(src);
    let (failures, successes) = (keys::TOLERATED_FAILURES, keys::REQUIRED_SUCCESSES);
    let mut tolerated_failures = failures.default_int() as u32;
    let mut required_successes = successes.default_int() as u32;
    let f = |key: &keys::Key| format!("{prefix}.{}", key.name);
    k.int(
        &raw.tolerated_failures,
        &f(&failures),
        failures.range(),
        &mut tolerated_failures,
    );
    k.int(
        &raw.required_successes,
        &f(&successes),
        successes.range(),
        &mut required_successes,
    );
    k.done(())?;
    Some(Timing {
        interval: interval?,
        timeout: timeout?,
        tolerated_failures,
        required_successes,
    })
}

/// `expected_status`: 1 to 8 codes or ranges within 100-599.
fn expected_status(
    r: &mut Report,
    src: usize,
    prefix: &str,
    raw: &RawMonitor,
    protocol: Protocol,
) -> Option<Vec<std::ops::RangeInclusive<u16>>> {
    let Some(list) = &raw.expected_status else {
        return Some(vec![200..=200]);
    };
    let mut k = r.section(src);
    let mut out = Vec::new();
    if list.get_ref().is_empty() || list.get_ref().len() > 8 {
        k.r.err(
            src,
            list,
            &format!("{prefix}.expected_status"),
            "give 1 to 8 codes or ranges",
        );
        k.fail();
    }
    for (i, s) in list.get_ref().iter().enumerate() {
        let parsed = match s.get_ref() {
            StatusSpec::Code(c) => Some((*c, *c)),
            StatusSpec::Text(t) => {
                let (a, b) = t.split_once('-').unwrap_or((t, t));
                match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                    (Ok(a), Ok(b)) => Some((a, b)),
                    _ => None,
                }
            }
        };
        match parsed {
            Some((a, b)) if (100..=599).contains(&a) && (100..=599).contains(&b) && a <= b => {
                out.push(a as u16..=b as u16);
            }
            _ => {
                k.r.err(
                    src,
                    s,
                    &format!("{prefix}.expected_status[{i}]"),
                    "expected a status code or range within 100-599, e.g. 200 or \"200-299\"",
                );
                k.fail();
            }
        }
    }
    if protocol == Protocol::Tcp {
        k.r.err(
            src,
            list,
            &format!("{prefix}.expected_status"),
            "tcp probes have no status",
        );
        k.fail();
    } else if protocol == Protocol::Dns {
        k.r.err(
            src,
            list,
            &format!("{prefix}.expected_status"),
            "dns probes have no HTTP status: `expected_rcode` checks the reply",
        );
        k.fail();
    } else if protocol.is_grpc() {
        k.r.err(
            src,
            list,
            &format!("{prefix}.expected_status"),
            "grpc probes pass on SERVING, not on HTTP status codes",
        );
        k.fail();
    }
    k.done(out)
}

/// The monitor's certificate files.
struct TlsFiles {
    ca_cert: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// `ca_cert`, `client_cert`, `client_key`: readable, in pairs, TLS only
/// (https, grpc with `tls = true`);
/// then the TLS configuration is built, so malformed or mismatched
/// certificates and keys are reported by `check`.
fn tls(
    r: &mut Report,
    src: usize,
    prefix: &str,
    m: &Spanned<RawMonitor>,
    protocol: Protocol,
) -> Option<TlsFiles> {
    let raw = m.get_ref();
    let base = base_dir(&r.sources[src].path);
    let mut k = r.section(src);
    let file = |k: &mut report::Section, v: &Option<Spanned<String>>, field: &str| {
        let v = v.as_ref()?;
        let path = base.join(v.get_ref());
        if let Err(e) = std::fs::File::open(&path) {
            k.r.err(
                src,
                v,
                field,
                format!("cannot read {}: {e}", path.display()),
            );
            k.fail();
        }
        Some(path)
    };
    let client_cert = file(&mut k, &raw.client_cert, &format!("{prefix}.client_cert"));
    let client_key = file(&mut k, &raw.client_key, &format!("{prefix}.client_key"));
    let ca_cert = file(&mut k, &raw.ca_cert, &format!("{prefix}.ca_cert"));
    if let Some(c) = &raw.ca_cert
        && !protocol.uses_tls()
    {
        let msg = if protocol.is_grpc() {
            "CA certificates need TLS: set `tls = true`"
        } else {
            "CA certificates need protocol = \"https\""
        };
        k.r.err(src, c, &format!("{prefix}.ca_cert"), msg);
        k.fail();
    }
    let pairing = match (&raw.client_cert, &raw.client_key) {
        (Some(c), None) => Some((c, "client_key", "client_cert needs client_key")),
        (None, Some(key)) => Some((key, "client_cert", "client_key needs client_cert")),
        (Some(c), Some(_)) if !protocol.uses_tls() => Some((
            c,
            "client_cert",
            if protocol.is_grpc() {
                "client certificates need TLS: set `tls = true`"
            } else {
                "client certificates need protocol = \"https\""
            },
        )),
        _ => None,
    };
    if let Some((v, field, msg)) = pairing {
        k.r.err(src, v, &format!("{prefix}.{field}"), msg);
        k.fail();
    }
    let files = k.done(TlsFiles {
        ca_cert,
        client_cert,
        client_key,
    })?;
    if protocol.uses_tls() {
        let key = TlsKey {
            verify: raw.tls_verify.unwrap_or(true),
            ca_cert: files.ca_cert.clone(),
            identity: files.client_cert.clone().zip(files.client_key.clone()),
        };
        if let Err(e) = crate::health::tls::client_config(&key) {
            let blame = raw
                .client_cert
                .as_ref()
                .map(|c| (c, "client_cert"))
                .or(raw.ca_cert.as_ref().map(|c| (c, "ca_cert")));
            match blame {
                Some((v, field)) => r.err(src, v, &format!("{prefix}.{field}"), e),
                None => r.err(src, m, prefix, e),
            }
            return None;
        }
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn monitor_settings_and_their_detection_time() {
        let p = profile(
            "routing = \"priority\"\n[monitor]\nprotocol = \"tcp\"\nport = 443\ninterval = \"2s\"\ntimeout = \"1s\"\ntolerated_failures = 2\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        );
        let c = load_text("", &[("p.toml", &p)]).unwrap();
        assert_eq!(c.probes.len(), 1);
        assert_eq!(c.probes[0].port, 443);
        assert_eq!(
            c.table.profiles[0].detection,
            Some(std::time::Duration::from_secs(7))
        );
        let p = profile(
            "routing = \"priority\"\n[monitor]\nprotocol = \"tcp\"\nport = 443\ninterval = \"1s\"\ntimeout = \"2s\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        );
        let e = errors(load_text("", &[("p.toml", &p)]));
        assert!(e[0].starts_with("monitor.timeout: "), "{e:?}");
    }

    #[test]
    fn cert_warning_is_https_only_and_bounded() {
        let with = |monitor: &str| {
            profile(&format!(
                "routing = \"priority\"\n[monitor]\n{monitor}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
            ))
        };
        let day = std::time::Duration::from_secs(86_400);
        let c = load_text("", &[("p.toml", &with("protocol = \"https\""))]).unwrap();
        assert_eq!(c.probes[0].monitor.cert_warning, 14 * day, "the default");
        let c = load_text(
            "",
            &[(
                "p.toml",
                &with("protocol = \"https\"\ncert_warning = \"30d\""),
            )],
        )
        .unwrap();
        assert_eq!(c.probes[0].monitor.cert_warning, 30 * day);
        let c = load_text("", &[("p.toml", &with("protocol = \"http\""))]).unwrap();
        assert_eq!(c.probes[0].monitor.cert_warning, std::time::Duration::ZERO);
        // Every problem at once, each naming the field.
        for (monitor, want) in [
            (
                "protocol = \"http\"\ncert_warning = \"14d\"",
                "monitor.cert_warning: certificate warnings need protocol = \"https\"",
            ),
            (
                "protocol = \"tcp\"\nport = 443\ncert_warning = \"14d\"",
                "monitor.cert_warning: certificate warnings need protocol = \"https\"",
            ),
            (
                "protocol = \"https\"\ncert_warning = \"400d\"",
                "monitor.cert_warning: must be between 0s and 365d",
            ),
            (
                "protocol = \"https\"\ncert_warning = \"two weeks\"",
                "monitor.cert_warning: `two weeks` is not a duration",
            ),
        ] {
            let e = errors(load_text("", &[("p.toml", &with(monitor))]));
            assert!(e.iter().any(|e| e.starts_with(want)), "{monitor}: {e:?}");
        }
    }
}
