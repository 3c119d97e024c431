//! One probe: an HTTP(S) GET or a TCP connect, judged within a deadline.
//!
//! A probe never reuses a connection (a pooled connection could hide a dead
//! backend), never follows a redirect, never goes through a proxy, and reads
//! at most 64 KiB of body (only when `body_match` needs it). Failure reasons
//! are built from the error kinds, never from the request URL, so the health
//! key cannot leak into a log line or the API.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};

use crate::config::{ProbeSpec, Protocol, Secret};

/// Most body bytes read for `body_match`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Why a probe failed; the label doubles as the metric's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No complete answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, reset).
    Connect,
    /// TLS handshake or certificate problem.
    Tls,
    /// Status code outside `expected_status`.
    Status,
    /// `body_match` not found in the first 64 KiB.
    Body,
    /// The peer does not speak HTTP (or broke the exchange).
    Protocol,
}

impl FailureKind {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Protocol => "protocol",
        }
    }
}

/// A failed probe: its kind and a precise, secret-free description such as
/// `connect refused`, `tls: invalid peer certificate: UnknownIssuer` or
/// `status 503`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Classification.
    pub kind: FailureKind,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// When it started (wall clock, for display).
    pub at: SystemTime,
    /// How long it took.
    pub latency: Duration,
    /// The HTTP status received, if any.
    pub http_status: Option<u16>,
    /// Why it failed; `None` on success.
    pub failure: Option<Failure>,
}

impl Outcome {
    /// True when the probe succeeded.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }
}

/// Everything needed to run one probe target repeatedly, built once.
pub struct Target {
    kind: Kind,
    timeout: Duration,
    /// For last-resort redaction of error text.
    key: Option<Secret>,
}

enum Kind {
    Tcp { host: String, port: u16 },
    Http(Box<HttpProbe>),
}

struct HttpProbe {
    client: reqwest::Client,
    /// Holds the health key: never log or display.
    url: reqwest::Url,
    headers: HeaderMap,
    expected: Vec<RangeInclusive<u16>>,
    body_match: Option<String>,
}

impl Target {
    /// Builds the probe for `spec`. `tls` gives the shared TLS configuration
    /// for HTTPS. Errors are configuration problems (bad header, bad URL).
    pub fn new(spec: &ProbeSpec, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Target, String> {
        super::tls::ensure_provider();
        let m = &spec.monitor;
        let kind = match m.protocol {
            Protocol::Tcp => Kind::Tcp {
                host: spec.host.clone(),
                port: spec.port,
            },
            Protocol::Http | Protocol::Https => {
                let scheme = if m.protocol == Protocol::Https {
                    "https"
                } else {
                    "http"
                };
                let default_port = if m.protocol == Protocol::Https {
                    443
                } else {
                    80
                };
                let configured_host = spec
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.clone());
                let host_header = configured_host
                    .clone()
                    .or_else(|| spec.default_host.clone());
                let connect_ip: Option<IpAddr> = spec.host.parse().ok();
                // With an address to connect to and a name to present, keep
                // the name in the URL (so TLS sends it as SNI and verifies
                // it) and pin the name to the address.
                let url_host = match (&connect_ip, &host_header) {
                    (Some(_), Some(name)) if is_dns_name(name) => name.clone(),
                    (Some(IpAddr::V6(v6)), _) => format!("[{v6}]"),
                    _ => spec.host.clone(),
                };
                let path = match &m.key {
                    Some(k) => spec.path.replace("{key}", &encode_path_segment(k.expose())),
                    None => spec.path.clone(),
                };
                let url =
                    reqwest::Url::parse(&format!("{scheme}://{url_host}:{}{path}", spec.port))
                        .map_err(|e| format!("cannot build the probe URL: {e}"))?;
                let mut builder = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .pool_max_idle_per_host(0)
                    .http1_only()
                    .tcp_nodelay(true)
                    .connect_timeout(m.timeout)
                    .timeout(m.timeout)
                    .user_agent(concat!("switchyard-probe/", env!("CARGO_PKG_VERSION")));
                if let (Some(ip), true) = (
                    connect_ip,
                    url_host != spec.host && !url_host.starts_with('['),
                ) {
                    builder = builder.resolve(&url_host, SocketAddr::new(ip, spec.port));
                }
                if let Some(tls) = tls {
                    builder = builder.tls_backend_preconfigured((*tls).clone());
                }
                let client = builder
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                let mut headers = HeaderMap::new();
                for (k, v) in &spec.headers {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("bad header name `{k}`"))?;
                    let value = HeaderValue::from_str(v)
                        .map_err(|_| format!("bad value for header `{k}`"))?;
                    headers.insert(name, value);
                }
                // The default Host carries the port when it is not the
                // scheme's default, as a browser would send it.
                if configured_host.is_none()
                    && let Some(h) = &spec.default_host
                {
                    let value = if spec.port == default_port {
                        h.clone()
                    } else {
                        format!("{h}:{}", spec.port)
                    };
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(HOST, v);
                    }
                }
                Kind::Http(Box::new(HttpProbe {
                    client,
                    url,
                    headers,
                    expected: m.expected_status.clone(),
                    body_match: m.body_match.clone(),
                }))
            }
        };
        Ok(Target {
            kind,
            timeout: m.timeout,
            key: m.key.clone(),
        })
    }

    /// Runs one probe. Never takes longer than the timeout (plus scheduling).
    pub async fn run(&self) -> Outcome {
        let at = SystemTime::now();
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.attempt()).await;
        let latency = start.elapsed();
        let (http_status, failure) = match result {
            Err(_) => (None, Some(fail(FailureKind::Timeout, "timeout"))),
            Ok(Ok(status)) => (status, None),
            Ok(Err((status, f))) => (status, Some(f)),
        };
        let failure = failure.map(|mut f| {
            if let Some(k) = &self.key {
                f.reason = f.reason.replace(k.expose(), "<redacted>");
            }
            f
        });
        Outcome {
            at,
            latency,
            http_status,
            failure,
        }
    }

    async fn attempt(&self) -> Result<Option<u16>, (Option<u16>, Failure)> {
        match &self.kind {
            Kind::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| (None, io_failure(&e)))?;
                drop(stream);
                Ok(None)
            }
            Kind::Http(h) => {
                let HttpProbe {
                    client,
                    url,
                    headers,
                    expected,
                    body_match,
                } = &**h;
                let mut resp = client
                    .get(url.clone())
                    .headers(headers.clone())
                    .send()
                    .await
                    .map_err(|e| (None, classify(&e)))?;
                let status = resp.status().as_u16();
                if !expected.iter().any(|r| r.contains(&status)) {
                    return Err((
                        Some(status),
                        fail(FailureKind::Status, format!("status {status}")),
                    ));
                }
                let Some(needle) = body_match else {
                    return Ok(Some(status));
                };
                let needle = needle.as_bytes();
                let mut body: Vec<u8> = Vec::with_capacity(4096);
                while body.len() < BODY_LIMIT {
                    let chunk = match resp.chunk().await {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => return Err((Some(status), classify(&e))),
                    };
                    // Search only what this chunk can have completed.
                    let from = body.len().saturating_sub(needle.len().saturating_sub(1));
                    let take = chunk.len().min(BODY_LIMIT - body.len());
                    body.extend_from_slice(&chunk[..take]);
                    if contains(&body[from..], needle) {
                        return Ok(Some(status));
                    }
                }
                Err((
                    Some(status),
                    fail(
                        FailureKind::Body,
                        format!("body mismatch (not in the first {} bytes)", body.len()),
                    ),
                ))
            }
        }
    }
}

fn fail(kind: FailureKind, reason: impl Into<String>) -> Failure {
    Failure {
        kind,
        reason: reason.into(),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn is_dns_name(s: &str) -> bool {
    s.parse::<IpAddr>().is_err() && !s.is_empty() && !s.contains(':') && !s.contains('/')
}

/// Percent-encodes what cannot appear raw in a path segment.
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn io_failure(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => fail(FailureKind::Connect, "connect refused"),
        ConnectionReset => fail(FailureKind::Connect, "connection reset"),
        ConnectionAborted => fail(FailureKind::Connect, "connection aborted"),
        TimedOut => fail(FailureKind::Timeout, "timeout"),
        HostUnreachable => fail(FailureKind::Connect, "connect: host unreachable"),
        NetworkUnreachable => fail(FailureKind::Connect, "connect: network unreachable"),
        _ => fail(FailureKind::Connect, format!("connect: {e}")),
    }
}

/// Turns a reqwest error into a reason, looking through its causes. The
/// top-level error is never printed: its text contains the URL.
fn classify(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return fail(FailureKind::Timeout, "timeout");
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut last_io = None;
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return fail(FailureKind::Tls, format!("tls: {tls}"));
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return fail(FailureKind::Protocol, "protocol: not an HTTP response");
            }
            if h.is_incomplete_message() {
                return fail(
                    FailureKind::Protocol,
                    "protocol: connection closed before a complete response",
                );
            }
            if std::error::Error::source(h).is_none() {
                return fail(FailureKind::Protocol, format!("protocol: {h}"));
            }
        }
        // io::Error hides what it wraps from `source()`: look inside.
        cause = match c.downcast_ref::<std::io::Error>() {
            Some(io) => {
                last_io = Some(io);
                io.get_ref()
                    .map(|inner| inner as &(dyn std::error::Error + 'static))
            }
            None => c.source(),
        };
    }
    if let Some(io) = last_io {
        let f = io_failure(io);
        if e.is_connect() || f.kind == FailureKind::Timeout {
            return f;
        }
        return fail(FailureKind::Protocol, format!("protocol: {}", f.reason));
    }
    if e.is_connect() {
        return fail(FailureKind::Connect, "connect failed");
    }
    if e.is_body() || e.is_decode() {
        return fail(FailureKind::Protocol, "protocol: bad response body");
    }
    fail(FailureKind::Protocol, "protocol: request failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needle_search() {
        assert!(contains(b"xxHealthCheck OKyy", b"HealthCheck OK"));
        assert!(!contains(b"HealthCheck O", b"HealthCheck OK"));
    }

    #[test]
    fn key_is_percent_encoded_in_the_path() {
        assert_eq!(encode_path_segment("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
        assert_eq!(encode_path_segment("Abc-123_~"), "Abc-123_~");
    }
}
