//! Configuration: `switchyard.toml` and `profiles/*.toml`, read strictly,
//! validated completely, and compiled into one immutable [`RoutingTable`].
//!
//! Parse, then compile, then serve: the raw serde structs stay in this
//! module; everything else sees only the validated table and settings. A
//! load either succeeds whole or reports every problem it found as
//! `FILE:LINE:COL: field.path: message`, and applies nothing.

mod compile;
pub mod diag;
mod methods;
mod raw;
pub mod secret;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diag::{ConfigError, ConfigErrors};
pub use secret::Secret;

use crate::health::HealthCell;
use crate::routing::{EndpointId, RoutingTable};

/// A fully validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The server config file it was loaded from.
    pub path: PathBuf,
    /// Server settings (`[dns]`, `[admin]`, paths).
    pub settings: Settings,
    /// The compiled routing table.
    pub table: RoutingTable,
    /// One entry per distinct probe target, for the prober.
    pub probes: Vec<ProbeSpec>,
    /// The GeoIP database, opened and verified, when configured.
    pub geo: Option<Arc<crate::geo::GeoDb>>,
    /// Accepted but worth fixing (e.g. a literal secret).
    pub warnings: Vec<ConfigError>,
}

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[dns]`
    pub dns: DnsSettings,
    /// `[admin]`
    pub admin: AdminSettings,
    /// `[geoip] database`, resolved against the config directory.
    pub geoip_database: Option<PathBuf>,
    /// `[profiles] dir`, resolved against the config directory.
    pub profiles_dir: PathBuf,
    /// `state_file`, resolved against the config directory.
    pub state_file: Option<PathBuf>,
}

/// `[dns]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Each address serves UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Honour EDNS Client Subnet.
    pub ecs: bool,
    /// Idle TCP connections are closed after this long.
    pub tcp_idle_timeout: Duration,
    /// Connections beyond this are closed at once.
    pub max_tcp_connections: usize,
    /// UDP worker threads per listen address; 0 = one per CPU.
    pub udp_workers: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            listen: vec![
                SocketAddr::from(([127, 0, 0, 1], 5353)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 5353)),
            ],
            ecs: true,
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
            udp_workers: 0,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// HTTP listen address (loopback by default).
    pub listen: SocketAddr,
    /// Bearer token for non-GET requests.
    pub token: Option<Secret>,
}

/// Probe protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP GET.
    Http,
    /// HTTP GET over TLS.
    Https,
    /// TCP connect.
    Tcp,
}

/// A profile's `[monitor]` settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MonitorSettings {
    /// http | https | tcp.
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
}

/// One distinct probe target, and the endpoints whose status it decides.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// The endpoints sharing this probe (identical settings, any profile).
    pub endpoints: Vec<EndpointId>,
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

/// Loads and validates the configuration at `path` and every profile it
/// names. Nothing is half-applied: any error rejects the whole load.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    compile::load(path)
}
