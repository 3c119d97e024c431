//! Configuration: `switchyard.toml` and `profiles/*.toml`, read strictly,
//! validated completely, and compiled into one immutable [`Snapshot`].
//!
//! Parse, then compile, then serve: the raw serde structs stay in this
//! module; everything else sees only the validated table and settings. A
//! load either succeeds whole or reports every problem it found as
//! `FILE:LINE:COL: field.path: message`, and applies nothing.

mod compile;
pub mod diag;
pub mod diff;
pub mod keys;
pub mod methods;
mod raw;
pub mod secret;
pub mod serials;

use crate::snapshot::EndpointKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use crate::health::spec::{MonitorSettings, ProbeKey, ProbeSpec, Protocol};
pub use compile::check_target;
pub use diag::{ConfigError, ConfigErrors};
pub use secret::Secret;

use crate::health::HealthCell;
use crate::snapshot::Snapshot;

/// Largest server configuration file read (fixed: it is the operator's own
/// file, not a drop directory; profiles have `profiles.max_file_size`).
pub const SERVER_FILE_LIMIT: u64 = 1 << 20;
/// Default of `profiles.max_file_size`.
pub const DEFAULT_PROFILE_FILE_LIMIT: u64 = 1 << 20;
/// Largest secret file (`{ file = ... }`) read.
pub const SECRET_FILE_LIMIT: u64 = 64 << 10;
pub use crate::health::tls::PEM_FILE_LIMIT;

/// A fully validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The server config file it was loaded from.
    pub path: PathBuf,
    /// Server settings (`[dns]`, `[admin]`, paths).
    pub settings: Settings,
    /// The compiled routing table.
    pub table: Snapshot,
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
    /// `[profiles] max_file_size`: larger profile files are refused unread.
    pub profiles_max_file_size: u64,
    /// `[profiles] watch`: reload when the configuration files change
    /// (false: only `SIGHUP` and the API reload, so an edit can be
    /// previewed with `switchyard check --diff` before it goes live).
    pub watch: bool,
    /// `state_file`, resolved against the config directory.
    pub state_file: Option<PathBuf>,
    /// `[cluster]`: `None` runs alone.
    pub cluster: Option<ClusterSettings>,
    /// `[prober]`
    pub prober: ProberSettings,
    /// `[[notify]]`: webhook targets.
    pub notify: Vec<crate::notify::TargetConfig>,
    /// `[rum]`: real user measurements (`None`: off).
    pub rum: Option<RumSettings>,
    /// `[latency]`
    pub latency: LatencySettings,
    /// `[traffic]`: the Traffic View.
    pub traffic: TrafficSettings,
}

/// `[traffic]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficSettings {
    /// Record where answered queries came from and what they got.
    pub enabled: bool,
    /// Counters per Space-Saving sketch of client networks (k).
    pub networks: usize,
    /// Runs of answers the queue holds between drains (a restart applies
    /// a change).
    pub queue: usize,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        TrafficSettings {
            enabled: true,
            networks: keys::TRAFFIC_NETWORKS.default_int() as usize,
            queue: keys::TRAFFIC_QUEUE.default_int() as usize,
        }
    }
}

/// `[latency]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySettings {
    /// `file`, resolved against the config directory: operators' own
    /// measurements, re-read when it changes.
    pub file: Option<PathBuf>,
    /// `min_samples`, `band`, `max_networks`, `half_life`.
    pub policy: crate::latency::Policy,
}

/// `[rum]`: the public listener of real user measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct RumSettings {
    /// Where the script, tokens and beacons are served.
    pub listen: SocketAddr,
    /// The zone whose names carry the tokens (`<token>.<zone>`), lowercase
    /// with the final dot.
    pub zone: String,
    /// What token names resolve to (A and AAAA).
    pub answer: Vec<std::net::IpAddr>,
    /// HTTPS: the certificate chain and key files (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Beacons a second from one client network (/24, /56).
    pub beacons_per_second: u32,
    /// Largest beacon body, bytes.
    pub max_body: u64,
    /// How long a token is accepted after it was issued.
    pub token_lifetime: Duration,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The keys pages embed.
    pub keys: Vec<RumKey>,
}

/// `[[rum.keys]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RumKey {
    /// The key (never logged or shown).
    pub key: Secret,
    /// The profiles it measures, normalised (lowercase, final dot).
    pub profiles: Vec<String>,
}

/// TTL of the answers to token names: short (each name is asked once).
pub const RUM_ANSWER_TTL: u32 = 60;
/// Default `rum.max_body`.
pub const DEFAULT_RUM_MAX_BODY: u64 = 4 << 10;

/// `[cluster]`
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's unique name.
    pub node: String,
    /// Gossip socket (UDP).
    pub listen: SocketAddr,
    /// Where other nodes reach this one.
    pub advertise: SocketAddr,
    /// Other nodes to contact first (`host:port`).
    pub seeds: Vec<String>,
    /// Authenticates and encrypts gossip.
    pub key: Secret,
    /// The default quorum rule (profiles may override it).
    pub quorum: crate::health::quorum::Quorum,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Longest wait for peers before a starting node answers.
    pub warm_start: Duration,
    /// Phi above which the failure detector suspects a node.
    pub phi_threshold: f64,
    /// Least silence before a suspected node is declared dead.
    pub dead_after: Duration,
    /// How long a dead node's last observations keep counting in quorums.
    pub vote_hold: Duration,
    /// How long a dead node stays listed (`switchyard cluster forget`
    /// drops it sooner).
    pub forget_dead_after: Duration,
}

/// `[prober]`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProberSettings {
    /// IPv4 source address of probes.
    pub source_v4: Option<std::net::Ipv4Addr>,
    /// IPv6 source address of probes.
    pub source_v6: Option<std::net::Ipv6Addr>,
    /// Static stability: `impaired_share` and `impaired_min_targets`.
    pub impaired: crate::health::impaired::Settings,
    /// `canaries`, with `canary_interval` and `canary_timeout`.
    pub canaries: Vec<crate::health::impaired::CanarySpec>,
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
    /// TCP connections open at once (all listeners); at the cap the
    /// longest-idle one is closed to admit a new one.
    pub max_tcp_connections: usize,
    /// TCP connections one client (a /32, or a /64 for IPv6) may hold.
    pub max_tcp_per_client: usize,
    /// UDP worker threads per listen address; 0 = one per CPU.
    pub udp_workers: usize,
    /// `[dns.rate_limit]`; `None` when disabled.
    pub rate_limit: Option<crate::dns::rrl::Config>,
    /// `[dns.cookies]`.
    pub cookies: CookieSettings,
    /// `dns.nsid`: the identifier sent to clients that ask (RFC 5001).
    pub nsid: Option<String>,
    /// `dns.signature_cache`: most RRSIGs kept (signed zones).
    pub signature_cache: usize,
    /// `dns.signatures_per_second` and `dns.signatures_per_client`: the
    /// budget of new signatures (signed zones).
    pub signing: crate::dnssec::budget::Config,
    /// `[dns.xdp]`: the AF_XDP fast path; `None` when not configured.
    pub xdp: Option<XdpSettings>,
}

/// `[dns.xdp]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSettings {
    /// Interfaces, each with one queue or `None` for all of its queues.
    pub interfaces: Vec<(String, Option<u32>)>,
    /// Addresses answered through XDP (each also served by `dns.listen`).
    pub listen: Vec<SocketAddr>,
    /// Serve with sockets alone (logged) when XDP cannot start, instead
    /// of refusing to start.
    pub fallback_to_sockets: bool,
}

/// `[dns.cookies]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// Answer DNS cookies (RFC 7873).
    pub enabled: bool,
    /// The configured secret (random at start when `None`).
    pub secret: Option<crate::dns::cookie::Secret>,
    /// A secret still accepted.
    pub previous: Option<crate::dns::cookie::Secret>,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            enabled: true,
            secret: None,
            previous: None,
        }
    }
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
            max_tcp_connections: keys::MAX_TCP_CONNECTIONS.default_int() as usize,
            max_tcp_per_client: keys::MAX_TCP_PER_CLIENT.default_int() as usize,
            udp_workers: keys::UDP_WORKERS.default_int() as usize,
            rate_limit: Some(crate::dns::rrl::Config::default()),
            cookies: CookieSettings::default(),
            nsid: None,
            signature_cache: keys::SIGNATURE_CACHE.default_int() as usize,
            signing: crate::dnssec::budget::Config::default(),
            xdp: None,
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
    /// Named bearer tokens (`[admin.tokens]`), any of which is accepted
    /// too; overrides record the name of the one used.
    pub tokens: Vec<(String, Secret)>,
}

/// The admin API's address when `[admin] listen` is not set.
pub const DEFAULT_ADMIN_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8053);

/// Where the CLI reaches the admin API of the server that runs the
/// configuration at `path`: its `[admin] listen`, with an unspecified
/// address (`0.0.0.0`, `::`) read as loopback. Reads only that key, so a
/// configuration with other problems still names its server.
/// `Ok(None)`: there is no file at `path`.
pub fn admin_address(path: &Path) -> Result<Option<std::net::SocketAddr>, String> {
    let text = match crate::fsutil::read_text(path, SERVER_FILE_LIMIT, "configuration") {
        Ok(t) => t,
        Err(crate::fsutil::ReadError::NotFound) => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: not valid TOML ({})", path.display(), e.message()))?;
    let Some(listen) = doc.get("admin").and_then(|a| a.get("listen")) else {
        return Ok(Some(DEFAULT_ADMIN_LISTEN));
    };
    let mut addr: std::net::SocketAddr =
        listen
            .as_str()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| {
                format!(
                    "{}: admin.listen is not an address with a port",
                    path.display()
                )
            })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(Some(addr))
}

/// Loads and validates the configuration at `path` and every profile it
/// names. Nothing is half-applied: any error rejects the whole load.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    compile::load(path, &Carry::default(), false)
}

/// Loads like [`load`], keeping what `carry` holds from the running
/// configuration: health cells of unchanged probes (status and history),
/// endpoint runtime state by name, runtime overrides, and the GeoIP
/// database when its file has not changed.
pub fn load_with(path: &Path, carry: &Carry) -> Result<Config, ConfigErrors> {
    compile::load(path, carry, false)
}

/// Where profile files wait before they go live: `profiles.staged/` beside
/// the profiles directory `profiles/` (`<dir>.staged`). `switchyard import`
/// writes there; the file watch, reloads and the server never read it;
/// `switchyard check --staged` and `check --diff --staged` read it on top
/// of the live profiles, and `switchyard apply` moves its files into the
/// profiles directory.
pub fn staged_dir(profiles_dir: &Path) -> PathBuf {
    match profiles_dir.file_name() {
        Some(name) => {
            let mut staged = name.to_os_string();
            staged.push(".staged");
            profiles_dir.with_file_name(staged)
        }
        None => profiles_dir.join("staged"),
    }
}

/// Loads like [`load_with`], with the staged profile files
/// ([`staged_dir`]) as if they were in the profiles directory: each
/// replaces the live file of its name, or adds to them. What applying them
/// would load.
pub fn load_staged(path: &Path, carry: &Carry) -> Result<Config, ConfigErrors> {
    compile::load(path, carry, true)
}

/// What a running server hands to the next load.
#[derive(Debug, Default)]
pub struct Carry {
    /// Health cells by probe identity.
    pub cells: std::collections::HashMap<ProbeKey, Arc<HealthCell>>,
    /// The cells of endpoints with named monitors, by name, with the
    /// identity of their combination ([`crate::health::combine::Monitors`]).
    pub combined: std::collections::HashMap<EndpointKey, (u64, Arc<HealthCell>)>,
    /// The cells of push monitors, by endpoint and monitor name.
    pub pushed: std::collections::HashMap<(EndpointKey, String), Arc<HealthCell>>,
    /// Endpoint runtime state by name.
    pub runtimes: std::collections::HashMap<EndpointKey, Arc<crate::snapshot::EndpointRuntime>>,
    /// The runtime overrides (winning records), applied to the endpoints
    /// they name.
    pub overrides: crate::overrides::Overrides,
    /// The GeoIP database in use.
    pub geo: Option<Arc<crate::geo::GeoDb>>,
    /// The endpoints the running configuration gives `failback =
    /// "manual"`; `None` at start (no running configuration: a hold kept
    /// in the state file stands).
    pub held: Option<std::collections::HashSet<EndpointKey>>,
    /// The cookie secrets in use.
    pub cookies: Option<Arc<crate::proto::cookie::Secrets>>,
    /// The signature cache in use (signed zones).
    pub signatures: Option<Arc<crate::dnssec::cache::SigCache>>,
    /// The signing budget in use (signed zones): kept by a reload that
    /// does not change its settings.
    pub sign_budget: Option<Arc<crate::dnssec::budget::SignBudget>>,
    /// Each running zone's content digest and serial, so a reload keeps a
    /// serial whose content did not change and raises one whose did;
    /// `None` at start (the serials file beside the state file has them).
    pub serials: Option<serials::History>,
}

impl Carry {
    /// A copy that shares no mutable state with the running server: each
    /// health cell is a new one holding the running status, and endpoint
    /// runtimes are left out (the load makes new ones, with the runtime
    /// overrides applied). A dry-run reload compiles with it, so the
    /// candidate sees today's health and can change nothing that runs.
    pub fn detached(&self) -> Carry {
        Carry {
            cells: self
                .cells
                .iter()
                .map(|(key, cell)| {
                    let copy = HealthCell::new();
                    copy.set(cell.get());
                    // Holds (`failback = "manual"`) hold in the copy too.
                    copy.restore_recovered(cell.recovered_ms());
                    (key.clone(), Arc::new(copy))
                })
                .collect(),
            // A dry run's copies are other cells, so its combinations are
            // new ones, computed from the copies.
            combined: Default::default(),
            pushed: Default::default(),
            runtimes: Default::default(),
            overrides: self.overrides.clone(),
            geo: self.geo.clone(),
            held: self.held.clone(),
            cookies: self.cookies.clone(),
            signatures: self.signatures.clone(),
            sign_budget: None,
            serials: self.serials.clone(),
        }
    }

    /// Everything `table` and `probes` hold that a reload should keep.
    pub fn from_running(
        table: &Snapshot,
        probes: &[ProbeSpec],
        overrides: crate::overrides::Overrides,
        geo: Option<Arc<crate::geo::GeoDb>>,
    ) -> Carry {
        let cells = probes
            .iter()
            .map(|p| (p.key.clone(), p.cell.clone()))
            .collect();
        let runtimes = table
            .endpoints
            .iter()
            .map(|e| {
                let profile = table.profiles[e.profile as usize].name.as_str();
                (EndpointKey::new(profile, &e.name), e.runtime.clone())
            })
            .collect();
        let combined = table
            .endpoints
            .iter()
            .filter_map(|e| {
                let (m, crate::snapshot::Health::Monitored(cell)) =
                    (e.monitors.as_ref()?, &e.health)
                else {
                    return None;
                };
                let profile = table.profiles[e.profile as usize].name.as_str();
                Some((
                    EndpointKey::new(profile, &e.name),
                    (m.identity, cell.clone()),
                ))
            })
            .collect();
        let pushed = table
            .endpoints
            .iter()
            .flat_map(|e| {
                let profile = table.profiles[e.profile as usize].name.as_str();
                let key = EndpointKey::new(profile, &e.name);
                e.monitors
                    .iter()
                    .flat_map(|m| m.inputs.iter())
                    .filter(|i| i.push.is_some())
                    .map(move |i| ((key.clone(), i.name.to_string()), i.cell.clone()))
            })
            .collect();
        let held = table
            .endpoints
            .iter()
            .filter(|e| e.hold.is_some())
            .map(|e| {
                let profile = table.profiles[e.profile as usize].name.as_str();
                EndpointKey::new(profile, &e.name)
            })
            .collect();
        Carry {
            cells,
            combined,
            pushed,
            runtimes,
            overrides,
            geo,
            held: Some(held),
            cookies: table.cookies.clone(),
            signatures: table
                .zones
                .iter()
                .find_map(|z| z.signer.as_ref().map(|s| s.cache.clone())),
            sign_budget: table.sign_budget.clone(),
            serials: Some(serials::of(table)),
        }
    }
}
