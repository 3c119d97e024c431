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
    m: &Spanned<RawMonitor>,
) -> Option<MonitorSettings> {
    let raw = m.get_ref();
    let protocol = protocol(r, src, raw);
    // With an unknown protocol, the rest is checked as for http.
    let p = protocol.unwrap_or(Protocol::Http);
    let target = target(r, src, m, p);
    let timing = timing(r, src, m);
    let expected_status = expected_status(r, src, raw, p);
    let headers = match &raw.headers {
        Some(h) if p == Protocol::Tcp => {
            r.err(src, h, "monitor.headers", "tcp probes send no headers");
            headers(r, src, h, "monitor.headers").and(None)
        }
        Some(h) if p.is_grpc() => {
            let metadata = grpc_metadata(r, src, h, "monitor.headers");
            headers(r, src, h, "monitor.headers").filter(|_| metadata)
        }
        Some(h) => headers(r, src, h, "monitor.headers"),
        None => Some(Vec::new()),
    };
    let grpc_service = grpc_service(r, src, raw, p);
    let tls = tls(r, src, m, p);
    let body_match = match &raw.body_match {
        None => Some(None),
        Some(b) => {
            let problem = if b.get_ref().is_empty() {
                Some("must not be empty")
            } else if p == Protocol::Tcp {
                Some("tcp probes have no body")
            } else if p.is_grpc() {
                Some("grpc probes have no body to match: they pass on SERVING")
            } else {
                None
            };
            match problem {
                Some(msg) => {
                    r.err(src, b, "monitor.body_match", msg);
                    None
                }
                None => Some(Some(b.get_ref().clone())),
            }
        }
    };
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
        grpc_service: grpc_service?,
        quorum: None,
        source_v4: None,
        source_v6: None,
    })
}

/// `protocol`.
fn protocol(r: &mut Report, src: usize, raw: &RawMonitor) -> Option<Protocol> {
    let Some(v) = &raw.protocol else {
        return Some(Protocol::Http);
    };
    let tls = raw.tls.as_ref().is_some_and(|t| *t.get_ref());
    match v.get_ref().as_str() {
        "http" => Some(Protocol::Http),
        "https" => Some(Protocol::Https),
        "tcp" => Some(Protocol::Tcp),
        "grpc" => Some(Protocol::Grpc { tls }),
        other => {
            r.err(
                src,
                v,
                "monitor.protocol",
                format!("unknown protocol `{other}` (expected http, https, tcp or grpc)"),
            );
            None
        }
    }
}

/// The keys only grpc probes have, `tls` and `service`: wrong with any
/// other protocol; `service` must be a name a server could register.
fn grpc_service(
    r: &mut Report,
    src: usize,
    raw: &RawMonitor,
    protocol: Protocol,
) -> Option<Option<String>> {
    let mut ok = true;
    if let Some(t) = &raw.tls
        && !protocol.is_grpc()
    {
        let msg = if protocol == Protocol::Http && *t.get_ref() {
            "`tls` is for protocol = \"grpc\"; HTTP over TLS is protocol = \"https\""
        } else {
            "`tls` is for protocol = \"grpc\""
        };
        r.err(src, t, "monitor.tls", msg);
        ok = false;
    }
    let Some(v) = &raw.service else {
        return ok.then_some(None);
    };
    let name = v.get_ref();
    let problem = if !protocol.is_grpc() {
        "`service` is for protocol = \"grpc\" (the gRPC health service name)"
    } else if name.len() > 200 {
        "at most 200 bytes"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else {
        // The empty name is the server as a whole, as when omitted: one
        // spelling, so the two are the same probe.
        return ok.then(|| (!name.is_empty()).then(|| name.clone()));
    };
    r.err(src, v, "monitor.service", problem);
    None
}

/// Headers of a grpc probe are sent as gRPC metadata: the names gRPC and
/// HTTP/2 reserve for themselves are refused (`Host` is the HTTP/2
/// `:authority`). True when all are usable.
pub(super) fn grpc_metadata(
    r: &mut Report,
    src: usize,
    h: &Spanned<BTreeMap<String, Spanned<String>>>,
    field: &str,
) -> bool {
    let mut ok = true;
    for (name, v) in h.get_ref() {
        let lower = name.to_ascii_lowercase();
        let problem = if lower.starts_with("grpc-") {
            "names starting with `grpc-` are reserved by gRPC"
        } else if ["content-type", "te", "content-length"].contains(&lower.as_str()) {
            "set by the gRPC probe itself"
        } else if [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ]
        .contains(&lower.as_str())
        {
            "HTTP/2 forbids connection-specific headers"
        } else if lower.ends_with("-bin") {
            "binary metadata (`-bin`) is not supported"
        } else {
            continue;
        };
        r.err(src, v, &format!("{field}.{name}"), problem);
        ok = false;
    }
    ok
}

/// What is probed: `port`, `path` and `key`.
fn target(
    r: &mut Report,
    src: usize,
    m: &Spanned<RawMonitor>,
    protocol: Protocol,
) -> Option<(u16, String, Option<Secret>)> {
    let raw = m.get_ref();
    let default_port = match protocol {
        Protocol::Https => 443,
        _ => 80,
    };
    let port = match &raw.port {
        Some(v) => r.int(src, v, "monitor.port", 1, 65535),
        None if protocol == Protocol::Tcp => {
            r.err(src, m, "monitor.port", "tcp probes need a port");
            None
        }
        None if protocol.is_grpc() => {
            r.err(src, m, "monitor.port", "grpc probes need a port");
            None
        }
        None => Some(default_port),
    };
    let key = match &raw.key {
        Some(k) if protocol.is_grpc() => {
            r.err(
                src,
                k,
                "monitor.key",
                "grpc probes send no key (the key goes into an HTTP probe's path)",
            );
            None
        }
        Some(k) => r.secret(src, k, "monitor.key").map(Some),
        None => Some(None),
    };
    let path = match &raw.path {
        Some(v) => check_path(r, src, v, "monitor.path", protocol, raw.key.is_some()),
        None => Some("/".to_string()),
    };
    if let (Some(k), Some(p)) = (&raw.key, &raw.path)
        && !p.get_ref().contains("{key}")
        && !protocol.is_grpc()
    {
        r.warn(
            src,
            k,
            "monitor.key",
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
fn timing(r: &mut Report, src: usize, m: &Spanned<RawMonitor>) -> Option<Timing> {
    let raw = m.get_ref();
    let mut interval = match &raw.interval {
        Some(v) => r.duration(src, v, "monitor.interval"),
        None => Some(Duration::from_secs(30)),
    };
    if let (Some(i), Some(v)) = (interval, &raw.interval)
        && i < Duration::from_millis(100)
    {
        r.err(src, v, "monitor.interval", "must be at least 100ms");
        interval = None;
    }
    let mut timeout = match &raw.timeout {
        Some(v) => r.duration(src, v, "monitor.timeout"),
        None => interval.map(|i| (i / 2).min(Duration::from_secs(10))),
    };
    if let (Some(t), Some(i)) = (timeout, interval)
        && (t.is_zero() || t >= i)
    {
        let at = match &raw.timeout {
            Some(t) => r.at(src, t, "monitor.timeout"),
            None => r.at(src, m, "monitor.timeout"),
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
    let f = |key: &keys::Key| format!("monitor.{}", key.name);
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
            "monitor.expected_status",
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
                    &format!("monitor.expected_status[{i}]"),
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
            "monitor.expected_status",
            "tcp probes have no status",
        );
        k.fail();
    }
    if protocol.is_grpc() {
        k.r.err(
            src,
            list,
            "monitor.expected_status",
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
    let client_cert = file(&mut k, &raw.client_cert, "monitor.client_cert");
    let client_key = file(&mut k, &raw.client_key, "monitor.client_key");
    let ca_cert = file(&mut k, &raw.ca_cert, "monitor.ca_cert");
    if let Some(c) = &raw.ca_cert
        && !protocol.uses_tls()
    {
        let msg = if protocol.is_grpc() {
            "CA certificates need TLS: set `tls = true`"
        } else {
            "CA certificates need protocol = \"https\""
        };
        k.r.err(src, c, "monitor.ca_cert", msg);
        k.fail();
    }
    let pairing = match (&raw.client_cert, &raw.client_key) {
        (Some(c), None) => Some((c, "monitor.client_key", "client_cert needs client_key")),
        (None, Some(key)) => Some((key, "monitor.client_cert", "client_key needs client_cert")),
        (Some(c), Some(_)) if !protocol.uses_tls() => Some((
            c,
            "monitor.client_cert",
            if protocol.is_grpc() {
                "client certificates need TLS: set `tls = true`"
            } else {
                "client certificates need protocol = \"https\""
            },
        )),
        _ => None,
    };
    if let Some((v, field, msg)) = pairing {
        k.r.err(src, v, field, msg);
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
                .map(|c| (c, "monitor.client_cert"))
                .or(raw.ca_cert.as_ref().map(|c| (c, "monitor.ca_cert")));
            match blame {
                Some((v, field)) => r.err(src, v, field, e),
                None => r.err(src, m, "monitor", e),
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
    fn grpc_settings_and_their_fingerprint() {
        use crate::health::spec::Protocol;
        let load = |monitor: &str| {
            let p = profile(&format!(
                "routing = \"priority\"\n[monitor]\nprotocol = \"grpc\"\nport = 50051\n{monitor}\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
            ));
            load_text("", &[("p.toml", &p)])
        };
        let c =
            load("service = \"todo.v1.Api\"\nheaders = { Host = \"api.example.com\" }").unwrap();
        let spec = &c.probes[0];
        assert_eq!(spec.monitor.protocol, Protocol::Grpc { tls: false });
        assert_eq!(spec.monitor.grpc_service.as_deref(), Some("todo.v1.Api"));
        assert!(spec.tls.is_none());
        let tls = load("tls = true\ntls_verify = false").unwrap();
        assert_eq!(tls.probes[0].monitor.protocol, Protocol::Grpc { tls: true });
        assert!(tls.probes[0].tls.is_some());
        // The empty name is the server as a whole: the same probe as none.
        let whole = load("").unwrap();
        let empty = load("service = \"\"").unwrap();
        assert_eq!(empty.probes[0].monitor.grpc_service, None);
        assert_eq!(whole.probes[0].fingerprint(), empty.probes[0].fingerprint());
        // Service and TLS make a different probe.
        assert_ne!(whole.probes[0].fingerprint(), spec.fingerprint());
        assert_ne!(whole.probes[0].fingerprint(), tls.probes[0].fingerprint());
        // Metadata gRPC reserves.
        let e = errors(load(
            "headers = { \"Grpc-Encoding\" = \"gzip\", \"x-bin\" = \"AA\" }",
        ));
        assert_eq!(
            e,
            [
                "monitor.headers.Grpc-Encoding: names starting with `grpc-` are reserved by gRPC",
                "monitor.headers.x-bin: binary metadata (`-bin`) is not supported"
            ]
        );
    }
}
