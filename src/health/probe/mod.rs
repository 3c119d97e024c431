//! One probe: an HTTP(S) GET, a TCP connect, a DNS query or a gRPC health
//! check, judged within a deadline. One file per kind of probe beside this
//! one (`http_get.rs`, `dns.rs`, `grpc.rs`); what they share (outcomes,
//! failure kinds, local faults, the connect) is here.
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
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;

use super::spec::{ProbeSpec, Protocol};
use crate::secret::Secret;

pub mod cert;
mod dns;
mod grpc;
mod http_get;

use dns::DnsProbe;
pub use dns::UDP_REPLY_LIMIT;
use grpc::GrpcProbe;
use http_get::HttpProbe;
pub use http_get::{BODY_LIMIT, HEADER_LIMIT};

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
    /// Status code outside `expected_status`; for dns, an rcode other
    /// than `expected_rcode`; for gRPC, any answer but SERVING (a serving
    /// status or a `grpc-status` error).
    Status,
    /// `body_match` not found in the first 64 KiB; for dns,
    /// `expected_answer` not among the answers.
    Body,
    /// The peer does not speak HTTP (or gRPC), or broke the exchange; for
    /// dns, a malformed reply, or one to another query.
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
    /// HTTPS: the `notAfter` of the certificate the endpoint presented,
    /// when the handshake got that far (whatever became of the request).
    pub cert_not_after: Option<SystemTime>,
    /// HTTP(S): the load the health response reported (the
    /// `X-Switchyard-Load` header, or a JSON body's `load`), in
    /// thousandths: 1000 is at capacity (a load of 1.0).
    pub load: Option<u32>,
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
    Dns(Box<DnsProbe>),
    Grpc(Box<GrpcProbe>),
}

impl Target {
    /// Builds the probe for `spec`. `tls` gives the shared TLS configuration
    /// for HTTPS and gRPC over TLS. Errors are configuration problems (bad header, bad URL).
    pub fn new(spec: &ProbeSpec, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Target, String> {
        let m = &spec.monitor;
        let kind = match m.protocol {
            Protocol::Tcp => Kind::Tcp {
                host: spec.host.clone(),
                port: spec.port,
            },
            Protocol::Http | Protocol::Https => Kind::Http(Box::new(HttpProbe::new(spec, tls)?)),
            Protocol::Dns => Kind::Dns(Box::new(DnsProbe::new(spec)?)),
            Protocol::Grpc { .. } => Kind::Grpc(Box::new(GrpcProbe::new(spec, tls)?)),
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
        // Filled in by an HTTPS probe as soon as its handshake is done, so a
        // probe that times out later still reports the certificate.
        let mut cert_not_after = None;
        let mut load = None;
        let result =
            tokio::time::timeout(self.timeout, self.attempt(&mut cert_not_after, &mut load)).await;
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
        let failure_is_none = failure.is_none();
        Outcome {
            local_fault,
            at,
            latency,
            http_status,
            failure,
            cert_not_after,
            // A load is reported by a healthy answer only.
            load: load.filter(|_| failure_is_none),
        }
    }

    async fn attempt(
        &self,
        cert_not_after: &mut Option<SystemTime>,
        load: &mut Option<u32>,
    ) -> Result<Option<u16>, (Option<u16>, Failure)> {
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
            Kind::Http(h) => h.get(self.source, cert_not_after, load).await,
            Kind::Dns(d) => d
                .ask(self.source)
                .await
                .map(|()| None)
                .map_err(|f| (None, f)),
            Kind::Grpc(g) => g.check(self.source).await,
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

/// The name an HTTP(S) or gRPC probe presents, as (host name, header
/// value): the configured `Host` as written; else the endpoint's (or probe
/// address's) host name, else the address, with the port when it is not
/// the scheme's `default_port` (as a browser writes it). The header is
/// HTTP's `Host` and gRPC's `:authority`.
pub(super) fn host_header(spec: &ProbeSpec, default_port: u16) -> (String, String) {
    let configured = spec
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let host_name = configured
        .clone()
        .or_else(|| spec.default_host.clone())
        .unwrap_or_else(|| match spec.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => spec.host.clone(),
        });
    let header = match configured {
        Some(h) => h,
        None if spec.port == default_port => host_name.clone(),
        None => format!("{host_name}:{}", spec.port),
    };
    (host_name, header)
}

/// The name TLS presents and verifies for `host` (a Host value): without
/// a port and the brackets of an IPv6 address.
pub(super) fn bare_host(host: &str) -> &str {
    let bare = host
        .rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok() && !host.ends_with(']'))
        .map_or(host, |(h, _)| h);
    bare.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::http_get::{contains, encode_path_segment, tls_failure};
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
                cert_not_after: None,
                load: None,
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
