//! One probe: an HTTP(S) GET or a TCP connect, judged within a deadline.
//!
//! Each probe opens its own connection (a pooled connection could hide a
//! dead backend), speaks HTTP/1.1 through hyper's connection API, never
//! follows a redirect, never goes through a proxy, and reads at most 64 KiB
//! of body (only when `body_match` needs it). Failure reasons are built from
//! error kinds, never from the request, so the health key cannot leak into a
//! log line or the API.
//!
//! Why hyper's connection API and not reqwest: a client library's pool,
//! middleware and per-request set-up are wasted on a fresh connection per
//! probe, and it would close each connection with a FIN exchange. Measured
//! with `benches/prober.sh` (1,000 endpoints probed every second), reqwest
//! cost 220 µs of CPU per probe; this costs less than half (see
//! `benches/README.md`).

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::spec::{ProbeSpec, Protocol};
use crate::secret::Secret;

/// Most body bytes read for `body_match`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Largest response head (status line and headers) a probe reads.
pub const HEADER_LIMIT: usize = 16 * 1024;

/// Why a probe failed; the label doubles as the metric's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
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
    /// The probe could not be made for a reason of this host's (no file
    /// descriptor, no buffer space, no memory, no local port): says nothing
    /// about the endpoint, so it never counts against it.
    Local,
}

impl FailureKind {
    /// Every kind that counts against an endpoint, in declaration (and
    /// counter) order: all but [`FailureKind::Local`].
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Status,
        FailureKind::Body,
        FailureKind::Protocol,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::Protocol => "protocol",
            FailureKind::Local => "local",
        }
    }
}

/// Why a probe could not be made on this host, for the
/// `switchyard_prober_faults_total` metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LocalFault {
    /// EMFILE or ENFILE: no file descriptor.
    FdLimit,
    /// ENOBUFS: no buffer space.
    NoBuffers,
    /// ENOMEM.
    NoMemory,
    /// EADDRNOTAVAIL or EADDRINUSE: no local address or port to connect from.
    NoLocalAddress,
    /// The probe's timeout fired far later than set: this host stalled
    /// (stopped, or starved of CPU), so the silence was its own.
    Stalled,
}

impl LocalFault {
    /// Every fault, in counter order.
    pub const ALL: [LocalFault; 5] = [
        LocalFault::FdLimit,
        LocalFault::NoBuffers,
        LocalFault::NoMemory,
        LocalFault::NoLocalAddress,
        LocalFault::Stalled,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalFault::FdLimit => "fd_limit",
            LocalFault::NoBuffers => "no_buffers",
            LocalFault::NoMemory => "no_memory",
            LocalFault::NoLocalAddress => "no_local_address",
            LocalFault::Stalled => "stalled",
        }
    }

    /// The local fault an OS error stands for, if it is one.
    pub fn of(e: &std::io::Error) -> Option<LocalFault> {
        match e.raw_os_error()? {
            23 | 24 => Some(LocalFault::FdLimit),        // ENFILE, EMFILE
            105 => Some(LocalFault::NoBuffers),          // ENOBUFS
            12 => Some(LocalFault::NoMemory),            // ENOMEM
            98 | 99 => Some(LocalFault::NoLocalAddress), // EADDRINUSE, EADDRNOTAVAIL
            _ => None,
        }
    }
}

/// True when a timeout set for `timeout` fired after `took`, so late that
/// the host, not the endpoint, was not running: later by the timeout
/// itself and by at least half a second (a busy host delays timers by
/// milliseconds).
pub fn stalled(timeout: Duration, took: Duration) -> bool {
    took > timeout * 2 && took > timeout + Duration::from_millis(500)
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
    /// For [`FailureKind::Local`]: which local resource ran out.
    pub local: Option<LocalFault>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Set when the probe could not be made for a local reason: the
    /// outcome then says nothing about the endpoint.
    pub local_fault: Option<LocalFault>,
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

    /// What the outcome says about the endpoint: healthy (`Some(true)`),
    /// failing (`Some(false)`), or nothing (`None`: a local fault, which is
    /// never evidence against an endpoint).
    pub fn verdict(&self) -> Option<bool> {
        match &self.failure {
            None => Some(true),
            Some(f) if f.kind == FailureKind::Local => None,
            Some(_) => Some(false),
        }
    }
}

/// Everything needed to run one probe target repeatedly, built once.
pub struct Target {
    kind: Kind,
    timeout: Duration,
    /// `[prober]` source addresses.
    source: Source,
    /// For last-resort redaction of error text.
    key: Option<Secret>,
}

/// Where probes leave from (`[prober] source_v4`, `source_v6`).
#[derive(Clone, Copy, Debug, Default)]
struct Source {
    v4: Option<std::net::Ipv4Addr>,
    v6: Option<std::net::Ipv6Addr>,
}

impl Source {
    /// Connects to `host:port`, from the configured source address of each
    /// address family. A source address the host does not have fails with
    /// EADDRNOTAVAIL: a local fault, never held against the endpoint.
    async fn connect(self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        if self.v4.is_none() && self.v6.is_none() {
            return TcpStream::connect((host, port)).await;
        }
        let mut last = None;
        for addr in tokio::net::lookup_host((host, port)).await? {
            let (socket, from) = match addr {
                std::net::SocketAddr::V4(_) => {
                    (tokio::net::TcpSocket::new_v4()?, self.v4.map(IpAddr::V4))
                }
                std::net::SocketAddr::V6(_) => {
                    (tokio::net::TcpSocket::new_v6()?, self.v6.map(IpAddr::V6))
                }
            };
            if let Some(ip) = from {
                socket.bind(std::net::SocketAddr::new(ip, 0))?;
            }
            match socket.connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")
        }))
    }
}

enum Kind {
    Tcp { host: String, port: u16 },
    Http(Box<HttpProbe>),
}

struct HttpProbe {
    /// Address or host name to connect to, and port.
    host: String,
    port: u16,
    /// TLS configuration and the name to present and verify (https only).
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// Request target (path and query). Holds the health key: never log it.
    path: http::Uri,
    headers: HeaderMap,
    expected: Vec<RangeInclusive<u16>>,
    body_match: Option<String>,
}

impl Target {
    /// Builds the probe for `spec`. `tls` gives the shared TLS configuration
    /// for HTTPS. Errors are configuration problems (bad header, bad URL).
    pub fn new(spec: &ProbeSpec, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Target, String> {
        let m = &spec.monitor;
        let kind = match m.protocol {
            Protocol::Tcp => Kind::Tcp {
                host: spec.host.clone(),
                port: spec.port,
            },
            Protocol::Http | Protocol::Https => {
                let https = m.protocol == Protocol::Https;
                let default_port = if https { 443 } else { 80 };
                let configured_host = spec
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.clone());
                let path = match &m.key {
                    Some(k) => spec.path.replace("{key}", &encode_path_segment(k.expose())),
                    None => spec.path.clone(),
                };
                let path: http::Uri = path
                    .parse()
                    .map_err(|_| "the probe path is not a valid request target".to_string())?;
                let mut headers = HeaderMap::new();
                headers.insert(
                    USER_AGENT,
                    HeaderValue::from_static(concat!(
                        "switchyard-probe/",
                        env!("CARGO_PKG_VERSION")
                    )),
                );
                for (k, v) in &spec.headers {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("bad header name `{k}`"))?;
                    let value = HeaderValue::from_str(v)
                        .map_err(|_| format!("bad value for header `{k}`"))?;
                    headers.insert(name, value);
                }
                // Host: as configured; else the endpoint's (or probe
                // address's) host name; else the address. The port is added
                // when it is not the scheme's default, as a browser would.
                let host_name = configured_host
                    .clone()
                    .or_else(|| spec.default_host.clone())
                    .unwrap_or_else(|| match spec.host.parse::<IpAddr>() {
                        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                        _ => spec.host.clone(),
                    });
                if configured_host.is_none() {
                    let value = if spec.port == default_port {
                        host_name.clone()
                    } else {
                        format!("{host_name}:{}", spec.port)
                    };
                    let value = HeaderValue::from_str(&value)
                        .map_err(|_| "bad Host header value".to_string())?;
                    headers.insert(HOST, value);
                }
                let tls = match (https, tls) {
                    (true, Some(config)) => {
                        // Present and verify the Host name when there is one,
                        // else the address we connect to.
                        let bare = host_name
                            .rsplit_once(':')
                            .filter(|(_, p)| p.parse::<u16>().is_ok() && !host_name.ends_with(']'))
                            .map_or(host_name.as_str(), |(h, _)| h);
                        let bare = bare.trim_start_matches('[').trim_end_matches(']');
                        let name = ServerName::try_from(bare.to_string())
                            .map_err(|_| format!("`{bare}` is not a name TLS can verify"))?;
                        Some((tokio_rustls::TlsConnector::from(config), name))
                    }
                    (true, None) => return Err("https probe without a TLS configuration".into()),
                    (false, _) => None,
                };
                Kind::Http(Box::new(HttpProbe {
                    host: spec.host.clone(),
                    port: spec.port,
                    tls,
                    path,
                    headers,
                    expected: m.expected_status.clone(),
                    body_match: m.body_match.clone(),
                }))
            }
        };
        Ok(Target {
            kind,
            timeout: m.timeout,
            source: Source {
                v4: m.source_v4,
                v6: m.source_v6,
            },
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
            Err(_) if stalled(self.timeout, latency) => (
                None,
                Some(Failure {
                    kind: FailureKind::Local,
                    reason: format!(
                        "not sent: local fault (this host stalled: the {} ms timeout fired after {} ms)",
                        self.timeout.as_millis(),
                        latency.as_millis()
                    ),
                    local: Some(LocalFault::Stalled),
                }),
            ),
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
        let local_fault = failure.as_ref().and_then(|f| f.local);
        Outcome {
            local_fault,
            at,
            latency,
            http_status,
            failure,
        }
    }

    async fn attempt(&self) -> Result<Option<u16>, (Option<u16>, Failure)> {
        match &self.kind {
            Kind::Tcp { host, port } => {
                let stream = self
                    .source
                    .connect(host, *port)
                    .await
                    .map_err(|e| (None, io_failure(&e)))?;
                close_with_reset(&stream);
                drop(stream);
                Ok(None)
            }
            Kind::Http(h) => h.get(self.source).await,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Skips the graceful write shutdown hyper performs on `Connection: close`:
/// the probe is over by then, and the socket is reset on drop
/// ([`close_with_reset`]), which costs the kernel far less than a FIN
/// exchange.
struct NoShutdown(Box<dyn Io>);

impl AsyncRead for NoShutdown {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for NoShutdown {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

type Attempt = Result<Option<u16>, (Option<u16>, Failure)>;

impl HttpProbe {
    async fn get(&self, source: Source) -> Attempt {
        let tcp = source
            .connect(&self.host, self.port)
            .await
            .map_err(|e| (None, io_failure(&e)))?;
        let _ = tcp.set_nodelay(true);
        close_with_reset(&tcp);
        let io: Box<dyn Io> = match &self.tls {
            Some((connector, name)) => Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| (None, tls_failure(&e)))?,
            ),
            None => Box::new(tcp),
        };
        // The read buffer bounds the response head: a backend sending
        // endless headers fails the probe instead of being buffered.
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(HEADER_LIMIT)
            .handshake(TokioIo::new(NoShutdown(io)))
            .await
            .map_err(|e| (None, hyper_failure(&e)))?;
        let mut req = http::Request::get(self.path.clone())
            .body(Empty::<Bytes>::new())
            .map_err(|_| (None, fail(FailureKind::Protocol, "protocol: bad request")))?;
        *req.headers_mut() = self.headers.clone();
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| (None, hyper_failure(&e)))?;
            let status = resp.status().as_u16();
            if !self.expected.iter().any(|r| r.contains(&status)) {
                return Err((
                    Some(status),
                    fail(FailureKind::Status, format!("status {status}")),
                ));
            }
            let Some(needle) = &self.body_match else {
                return Ok(Some(status));
            };
            let needle = needle.as_bytes();
            let mut body_stream = resp.into_body();
            let mut body: Vec<u8> = Vec::with_capacity(4096);
            while body.len() < BODY_LIMIT {
                let frame = match body_stream.frame().await {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => return Err((Some(status), hyper_failure(&e))),
                    None => break,
                };
                let Ok(chunk) = frame.into_data() else {
                    continue;
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
        };
        // The connection future drives the socket. It may finish (the
        // server closed after answering) before the exchange has read the
        // buffered response, so keep polling the exchange until it ends; a
        // connection error explains a failed exchange best.
        tokio::pin!(conn);
        tokio::pin!(exchange);
        let mut conn_failure = None;
        let mut conn_done = false;
        loop {
            tokio::select! {
                biased;
                r = &mut exchange => {
                    return match (r, conn_failure) {
                        (Err((status, f)), Some(cf)) if f.kind == FailureKind::Protocol => Err((status, cf)),
                        (r, _) => r,
                    };
                }
                c = &mut conn, if !conn_done => {
                    conn_done = true;
                    if let Err(e) = c {
                        conn_failure = Some(hyper_failure(&e));
                    }
                }
            }
        }
    }
}

/// Makes closing the probe connection send a reset instead of the FIN
/// exchange, as HAProxy's checks do: the probe has what it needs by then,
/// and neither side keeps a TIME_WAIT socket per probe (a thousand a second
/// adds up), which also halves the kernel work per probe.
fn close_with_reset(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

fn fail(kind: FailureKind, reason: impl Into<String>) -> Failure {
    Failure {
        kind,
        reason: reason.into(),
        local: None,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
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
    if let Some(local) = LocalFault::of(e) {
        return Failure {
            kind: FailureKind::Local,
            reason: format!("not sent: local fault ({e}); the endpoint keeps its status"),
            local: Some(local),
        };
    }
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

/// A rustls error as a reason: its own text (which names the variant, for
/// searching) and, for the ones operators meet, what it means and what to
/// change.
fn tls_reason(e: &rustls::Error) -> String {
    let raw = e.to_string();
    let hint = if raw.contains("UnknownIssuer") {
        "not signed by a CA the prober trusts: for a private CA, set `ca_cert`"
    } else if raw.contains("CaUsedAsEndEntity") {
        "the server presents a CA certificate as its own: it must present a server certificate signed by that CA"
    } else if raw.contains("NotValidForName") || raw.contains("not valid for name") {
        "the certificate does not name the host checked: set a `Host` header in [monitor] to a name it carries (it is also the TLS server name)"
    } else if raw.contains("Expired") && !raw.contains("RevocationList") {
        "the certificate has expired"
    } else if raw.contains("NotValidYet") {
        "the certificate is not valid yet (or this host's clock is behind)"
    } else if raw.contains("BadSignature") {
        "the certificate's signature does not verify"
    } else if raw.contains("InvalidPurpose") {
        "the certificate is not for TLS servers (extended key usage)"
    } else {
        ""
    };
    if hint.is_empty() {
        format!("tls: {raw}")
    } else {
        format!("tls: {raw}: {hint}")
    }
}

/// A TLS handshake failure: the rustls error inside the io::Error.
fn tls_failure(e: &std::io::Error) -> Failure {
    if LocalFault::of(e).is_some() {
        return io_failure(e);
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return fail(FailureKind::Tls, tls_reason(tls));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => fail(
            FailureKind::Tls,
            "tls: connection closed during the handshake",
        ),
        _ => {
            let f = io_failure(e);
            fail(FailureKind::Tls, format!("tls: {}", f.reason))
        }
    }
}

/// Turns a hyper error into a reason, looking through its causes (a TLS
/// alert or a reset surfaces as an io::Error inside).
fn hyper_failure(e: &hyper::Error) -> Failure {
    if e.is_parse_too_large() {
        return fail(
            FailureKind::Protocol,
            format!(
                "protocol: response headers larger than {} KiB",
                HEADER_LIMIT / 1024
            ),
        );
    }
    if e.is_parse() || e.is_parse_status() {
        return fail(FailureKind::Protocol, "protocol: not an HTTP response");
    }
    if e.is_incomplete_message() {
        return fail(
            FailureKind::Protocol,
            "protocol: connection closed before a complete response",
        );
    }
    if e.is_timeout() {
        return fail(FailureKind::Timeout, "timeout");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return fail(FailureKind::Tls, tls_reason(tls));
            }
            let f = io_failure(io);
            return match f.kind {
                FailureKind::Connect | FailureKind::Timeout | FailureKind::Local => f,
                _ => fail(FailureKind::Protocol, format!("protocol: {}", f.reason)),
            };
        }
        cause = c.source();
    }
    fail(FailureKind::Protocol, format!("protocol: {e}"))
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
    fn local_faults_are_not_endpoint_failures() {
        for (errno, fault) in [
            (24, LocalFault::FdLimit),
            (23, LocalFault::FdLimit),
            (105, LocalFault::NoBuffers),
            (12, LocalFault::NoMemory),
            (99, LocalFault::NoLocalAddress),
        ] {
            let e = std::io::Error::from_raw_os_error(errno);
            let f = io_failure(&e);
            assert_eq!((f.kind, f.local), (FailureKind::Local, Some(fault)), "{e}");
            assert_eq!(tls_failure(&e).kind, FailureKind::Local);
            let o = Outcome {
                local_fault: f.local,
                at: SystemTime::now(),
                latency: Duration::ZERO,
                http_status: None,
                failure: Some(f),
            };
            assert_eq!(o.verdict(), None, "{e}");
        }
        // The endpoint's own faults still count.
        for errno in [111, 104, 113] {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(io_failure(&e).kind, FailureKind::Connect, "{e}");
        }
    }

    #[test]
    fn key_is_percent_encoded_in_the_path() {
        assert_eq!(encode_path_segment("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
        assert_eq!(encode_path_segment("Abc-123_~"), "Abc-123_~");
    }
}
