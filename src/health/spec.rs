//! What to probe: the resolved `[monitor]` settings and one specification
//! per distinct probe target. Configuration builds them; the prober runs
//! them. They live here, beside the prober, so that health depends on
//! nothing above it.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::HealthCell;
use crate::secret::Secret;

/// An endpoint's index in the routing table.
pub type EndpointId = u32;

/// Probe protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP GET.
    Http,
    /// HTTP GET over TLS.
    Https,
    /// TCP connect.
    Tcp,
    /// A DNS query over UDP or TCP ([`DnsQuery`]).
    Dns,
    /// The standard gRPC health check (`grpc.health.v1.Health/Check`) over
    /// HTTP/2: with TLS (ALPN h2) or plaintext (h2c, prior knowledge).
    Grpc {
        /// Over TLS.
        tls: bool,
    },
}

impl Protocol {
    /// True when the probe speaks TLS (https, grpc with `tls = true`).
    pub fn uses_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Grpc { tls: true })
    }

    /// True for the gRPC health check.
    pub fn is_grpc(self) -> bool {
        matches!(self, Protocol::Grpc { .. })
    }
}

/// How a `dns` probe reaches its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram each way; a truncated reply is asked again over TCP.
    Udp,
    /// One length-prefixed query on a fresh connection.
    Tcp,
}

/// What a `dns` probe asks and what it expects back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsQuery {
    /// `query_name`.
    pub name: crate::proto::name::DomainName,
    /// `query_type`, as a type code.
    pub qtype: u16,
    /// `transport`.
    pub transport: Transport,
    /// `expected_rcode`, as a code.
    pub expected_rcode: u16,
    /// `expected_answer`: an address, a name or a text that one answer
    /// record's data must be.
    pub expected_answer: Option<String>,
}

/// A profile's `[monitor]` settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MonitorSettings {
    /// http | https | tcp | grpc.
    pub protocol: Protocol,
    /// Port probed.
    pub port: u16,
    /// Request path; `{key}` is replaced by `key` when the request is made.
    pub path: String,
    /// Health key.
    pub key: Option<Secret>,
    /// Time between probes.
    pub interval: Duration,
    /// Probe deadline (< interval).
    pub timeout: Duration,
    /// Consecutive failures tolerated before Degraded.
    pub tolerated_failures: u32,
    /// Consecutive successes needed to come back Online.
    pub required_successes: u32,
    /// Accepted HTTP status ranges.
    pub expected_status: Vec<RangeInclusive<u16>>,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Verify TLS chain and name.
    pub tls_verify: bool,
    /// Extra trusted CA certificates (PEM), besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM file).
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM file).
    pub client_key: Option<PathBuf>,
    /// The first 64 KiB of the body must contain this.
    pub body_match: Option<String>,
    /// HTTPS: warn (in `status`, and with a notification) when the
    /// endpoint's certificate has less than this left.
    pub cert_warning: Duration,
    /// grpc: the service whose health is asked (`None`: the server as a
    /// whole, the empty service name).
    pub grpc_service: Option<String>,
    /// In a cluster: the profile's quorum rule (`None`: the cluster's).
    pub quorum: Option<super::quorum::Quorum>,
    /// `[prober] source_v4`: probes to IPv4 leave from it.
    pub source_v4: Option<std::net::Ipv4Addr>,
    /// `[prober] source_v6`: probes to IPv6 leave from it.
    pub source_v6: Option<std::net::Ipv6Addr>,
    /// For `protocol = "dns"`: the question and the expected reply.
    pub dns: Option<DnsQuery>,
}

/// One distinct probe target, and the endpoints whose status it decides.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// Identity: equal keys are the same probe.
    pub key: ProbeKey,
    /// The endpoints sharing this probe (identical settings, any profile).
    pub endpoints: Vec<EndpointId>,
    /// `(profile, endpoint)` of each of `endpoints`, for log lines.
    pub labels: Vec<(std::sync::Arc<str>, std::sync::Arc<str>)>,
    /// The endpoints it is a named monitor of (`[[monitors]]`), with the
    /// monitor's name: its status is one input of theirs, not theirs.
    pub monitor_of: Vec<(EndpointId, Arc<str>)>,
    /// `(profile, endpoint, monitor)` of each of `monitor_of`, for log
    /// lines.
    pub monitor_labels: Vec<(Arc<str>, Arc<str>, Arc<str>)>,
    /// Where its result is published.
    pub cell: Arc<HealthCell>,
    /// Host or address to connect to.
    pub host: String,
    /// Port (endpoint override or monitor port).
    pub port: u16,
    /// Path template (endpoint override or monitor path).
    pub path: String,
    /// Headers (monitor headers with endpoint overrides applied).
    pub headers: Vec<(String, String)>,
    /// Host header when none is configured: the endpoint's or the probe
    /// address's host name.
    pub default_host: Option<String>,
    /// TLS settings (https only).
    pub tls: Option<crate::health::tls::TlsKey>,
    /// The profile's monitor settings.
    pub monitor: Arc<MonitorSettings>,
}

impl ProbeSpec {
    /// A probe's identity across nodes: everything that makes it this
    /// probe ([`ProbeKey`]: what is probed, how it is judged, how often and
    /// with what thresholds, the profile's quorum) but the source address,
    /// which differs from node to node by design. Two probes with equal
    /// fingerprints are the same probe, so each node publishes one
    /// observation per fingerprint. Never includes the key itself, only a
    /// hash of it.
    pub fn fingerprint(&self) -> String {
        let spec = self;
        let m = &spec.monitor;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut add = |part: &str| {
            ctx.update(&(part.len() as u32).to_be_bytes());
            ctx.update(part.as_bytes());
        };
        add(match m.protocol {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
            Protocol::Dns => "dns",
            Protocol::Grpc { tls: false } => "grpc",
            Protocol::Grpc { tls: true } => "grpc+tls",
        });
        add(&spec.host.to_ascii_lowercase());
        add(&spec.port.to_string());
        add(&spec.path);
        let mut headers: Vec<String> = spec
            .headers
            .iter()
            .map(|(k, v)| format!("{}:{v}", k.to_ascii_lowercase()))
            .collect();
        headers.sort();
        add(&headers.join("\n"));
        add(spec.default_host.as_deref().unwrap_or(""));
        let key = m.key.as_ref().map_or_else(String::new, |k| {
            hex(ring::digest::digest(&ring::digest::SHA256, k.expose().as_bytes()).as_ref())
        });
        add(&key);
        let expected: Vec<String> = m
            .expected_status
            .iter()
            .map(|r| format!("{}-{}", r.start(), r.end()))
            .collect();
        add(&expected.join(","));
        add(m.body_match.as_deref().unwrap_or(""));
        add(if m.tls_verify { "verify" } else { "no-verify" });
        for path in [&m.ca_cert, &m.client_cert, &m.client_key] {
            add(&path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()));
        }
        // Not `cert_warning`: it changes what is said of a certificate, not
        // what a probe observes, so nodes that differ there still share
        // their observations.
        add(&format!(
            "{:?} {:?} {} {} {:?}",
            m.interval, m.timeout, m.tolerated_failures, m.required_successes, m.quorum
        ));
        // Only dns probes add parts: every other probe's fingerprint stays
        // what older nodes compute.
        if let Some(d) = &m.dns {
            add(&hex(d.name.wire()));
            add(&format!(
                "{} {:?} {}",
                d.qtype, d.transport, d.expected_rcode
            ));
            add(d.expected_answer.as_deref().unwrap_or(""));
        }
        // Added only when set, so the fingerprints of every other probe
        // stay what they were (nodes of two versions still agree).
        if let Some(service) = &m.grpc_service {
            add("grpc_service");
            add(service);
        }
        hex(&ctx.finish().as_ref()[..8])
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What makes two probes the same probe: equal keys share one health cell
/// and one probing task, across profiles and across reloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) default_host: Option<String>,
    pub(crate) monitor: MonitorSettings,
}
