//! Raw configuration -> validated [`Config`] with a compiled [`RoutingTable`].
//!
//! Every check reports into [`Diagnostics`] and carries on, so one run of
//! `switchyard check` lists every problem; the table is only returned when
//! there were none.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::diag::{self, ConfigErrors, Diagnostics, Source};
use super::methods;
use super::raw::{
    RawEndpoint, RawLocation, RawMonitor, RawProfile, RawRecord, RawServer, RawZone, SizeSpec,
    StatusSpec,
};
use super::secret::{Secret, SecretSource};
use super::{
    AdminSettings, Carry, Config, DnsSettings, MonitorSettings, ProbeKey, ProbeSpec, Protocol,
    Settings,
};
use crate::health::HealthCell;
use crate::health::tls::TlsKey;
use crate::proto::name::DomainName;
use crate::proto::rr::{self, Link, WireRr, rtype};
use crate::routing::{
    Endpoint, EndpointRuntime, Health, Node, NodeData, NodeId, OnAllDown, Profile, ProfileId,
    Routing, RoutingTable, RrSet, SubnetRange, Target, Zone, ZoneId,
};

/// Largest TTL allowed (RFC 2181 §8).
const MAX_TTL: i64 = 2_147_483_647;
/// Routing methods the schema knows.
const KNOWN_METHODS: &[&str] = &[
    "priority",
    "weighted",
    "performance",
    "geographic",
    "subnet",
    "multivalue",
];

/// Where something was written: for errors that point back at it.
#[derive(Clone, Debug, Default)]
struct At {
    src: usize,
    span: std::ops::Range<usize>,
    field: String,
}

/// Loader state: sources for diagnostics and the table under construction.
struct Loader<'c> {
    /// What the previous configuration leaves to this one.
    carry: &'c Carry,
    /// The profile being compiled (its name as written), for runtime state.
    current_profile: String,
    /// Nested endpoints to resolve once every profile is known:
    /// (endpoint id, child profile name, where written).
    nested: Vec<(u32, DomainName, At)>,
    /// Host-name targets of endpoints, checked against our zones at the end.
    host_targets: Vec<(DomainName, At)>,
    diag: Diagnostics,
    sources: Vec<Source>,
    table: RoutingTable,
    /// Names defined so far (records and profiles), before nodes exist.
    pending: Vec<Pending>,
    pending_index: FxHashMap<Box<[u8]>, usize>,
    /// Zone NS entries, for the glue check.
    ns_hosts: Vec<(ZoneId, DomainName, At)>,
    probes: Vec<ProbeSpec>,
    probe_index: HashMap<ProbeKey, usize>,
    /// The GeoIP database, opened while reading `[geoip]`.
    geo: Option<Arc<crate::geo::GeoDb>>,
    /// Whether `[geoip] database` was given (even if it failed to open).
    geo_configured: bool,
    now: SystemTime,
}

/// The per-method keys of one endpoint, checked.
#[derive(Default)]
struct MethodKeys {
    /// Where the endpoint was written (its name).
    at: At,
    point: Option<crate::geo::Point>,
    location_given: bool,
    regions_given: bool,
    regions: Vec<(crate::routing::RegionCode, String, At)>,
    subnets: Vec<(bool, u128, u128, String, At)>,
}

struct Pending {
    name: DomainName,
    zone: ZoneId,
    kind: PendingKind,
    at: At,
}

enum PendingKind {
    /// Static RRsets, each record with where it was written.
    Records(Vec<(RrSet, Vec<At>)>),
    Profile(ProfileId),
}

pub(super) fn load(path: &Path, carry: &Carry) -> Result<Config, ConfigErrors> {
    let mut l = Loader {
        carry,
        current_profile: String::new(),
        nested: Vec::new(),
        host_targets: Vec::new(),
        diag: Diagnostics::default(),
        sources: Vec::new(),
        table: RoutingTable::default(),
        pending: Vec::new(),
        pending_index: FxHashMap::default(),
        ns_hosts: Vec::new(),
        probes: Vec::new(),
        probe_index: HashMap::new(),
        geo: None,
        geo_configured: false,
        now: SystemTime::now(),
    };
    let settings = l.load_all(path);
    match settings {
        Some(settings) if l.diag.ok() => Ok(Config {
            path: path.to_path_buf(),
            settings,
            table: l.table,
            probes: l.probes,
            geo: l.geo,
            warnings: l.diag.warnings,
        }),
        _ => Err(ConfigErrors(l.diag.errors)),
    }
}

/// The cookie secrets to serve with (see [`crate::proto::cookie::Secrets::next`]).
fn cookie_secrets(
    settings: &super::CookieSettings,
    running: Option<&crate::proto::cookie::Secrets>,
) -> Option<Arc<crate::proto::cookie::Secrets>> {
    use crate::dns::cookie::{self, Secrets};
    if !settings.enabled {
        return None;
    }
    Some(Arc::new(Secrets::next(
        settings.secret,
        settings.previous,
        running,
        cookie::now(),
    )))
}

/// `"1MiB"`, `"512 KiB"`, `"2MB"`, `"100"` (bytes) -> bytes.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Loader<'_> {
    /// Reads a configuration file of at most `limit` bytes (checked before
    /// reading: a huge file costs nothing).
    fn read(&mut self, path: &Path, limit: u64, what: &str) -> Option<usize> {
        match crate::fsutil::read_text(path, limit, what) {
            Ok(text) => {
                self.sources.push(Source {
                    path: path.to_path_buf(),
                    text,
                });
                Some(self.sources.len() - 1)
            }
            Err(crate::fsutil::ReadError::NotFound) => {
                self.diag
                    .file_error(path, "cannot read configuration: no such file");
                None
            }
            Err(e) => {
                self.diag
                    .file_error(path, format!("cannot read configuration: {e}"));
                None
            }
        }
    }

    fn error(&mut self, at: &At, msg: impl Into<String>) {
        let src = &self.sources[at.src];
        self.diag.error(src, at.span.clone(), &at.field, msg);
    }

    fn err<T>(&mut self, src: usize, v: &Spanned<T>, field: &str, msg: impl Into<String>) {
        let at = self.at(src, v, field);
        self.error(&at, msg);
    }

    fn warn<T>(&mut self, src: usize, v: &Spanned<T>, field: &str, msg: impl Into<String>) {
        let source = &self.sources[src];
        self.diag.warn(source, v.span(), field, msg);
    }

    fn at<T>(&self, src: usize, v: &Spanned<T>, field: &str) -> At {
        At {
            src,
            span: v.span(),
            field: field.to_string(),
        }
    }

    /// Checks an integer against a range, reporting a located error.
    fn int<T: TryFrom<i64>>(
        &mut self,
        src: usize,
        v: &Spanned<i64>,
        field: &str,
        lo: i64,
        hi: i64,
    ) -> Option<T> {
        let n = *v.get_ref();
        if n < lo || n > hi {
            self.err(src, v, field, format!("{n} is out of range ({lo}..={hi})"));
            return None;
        }
        T::try_from(n).ok()
    }

    /// A size in bytes within `lo..=hi`: an integer, or `"512KiB"`, `"1MiB"`.
    fn size(
        &mut self,
        src: usize,
        v: &Spanned<SizeSpec>,
        field: &str,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = match v.get_ref() {
            SizeSpec::Bytes(n) => u64::try_from(*n).ok(),
            SizeSpec::Text(t) => parse_size(t),
        };
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    src,
                    v,
                    field,
                    format!(
                        "{n} bytes is out of range ({}..={})",
                        crate::fsutil::human_size(lo),
                        crate::fsutil::human_size(hi)
                    ),
                );
                None
            }
            None => {
                self.err(
                    src,
                    v,
                    field,
                    "not a size: write bytes, or e.g. \"512KiB\", \"4MiB\"",
                );
                None
            }
        }
    }

    fn duration(&mut self, src: usize, v: &Spanned<String>, field: &str) -> Option<Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    src,
                    v,
                    field,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"1m\"",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn secret(&mut self, src: usize, v: &Spanned<SecretSource>, field: &str) -> Option<Secret> {
        let base = base_dir(&self.sources[src].path);
        if let SecretSource::Literal(_) = v.get_ref() {
            self.warn(
                src,
                v,
                field,
                "secret written in the file; prefer { env = \"NAME\" } or { file = \"path\" }",
            );
        }
        match v.get_ref().resolve(&base) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(src, v, field, e);
                None
            }
        }
    }

    // ---------------------------------------------------------------- server

    fn load_all(&mut self, path: &Path) -> Option<Settings> {
        let src = self.read(
            path,
            super::SERVER_FILE_LIMIT,
            "the fixed limit for the server configuration file",
        )?;
        let raw: RawServer = diag::parse(&self.sources[src], &mut self.diag)?;
        let base = base_dir(path);
        let settings = self.settings(src, &raw, &base);
        self.table.ecs = settings.dns.ecs;
        self.table.cookies = cookie_secrets(&settings.dns.cookies, self.carry.cookies.as_deref());
        self.table.loaded_at = Some(self.now);
        let zones: Vec<_> = raw.zones.iter().map(|z| self.zone(src, z)).collect();
        // Records after every origin is known, so each lands in its own zone.
        for (z, built) in raw.zones.iter().zip(zones) {
            if let Some((zone, origin, ttl)) = built {
                for (i, r) in z.get_ref().records.iter().enumerate() {
                    self.record(src, zone, &origin, ttl, i, r);
                }
            }
        }
        if raw.zones.is_empty() {
            self.diag.file_error(
                path,
                "no [[zones]] configured: Switchyard only answers for its zones",
            );
        }
        let dir = settings.profiles_dir.clone();
        self.profiles_dir(&dir, settings.profiles_max_file_size);
        self.finish();
        Some(settings)
    }

    fn settings(&mut self, src: usize, raw: &RawServer, base: &Path) -> Settings {
        let mut dns = DnsSettings::default();
        if let Some(listen) = &raw.dns.listen {
            dns.listen.clear();
            if listen.get_ref().is_empty() {
                self.err(
                    src,
                    listen,
                    "dns.listen",
                    "at least one address is required",
                );
            }
            for (i, a) in listen.get_ref().iter().enumerate() {
                let field = format!("dns.listen[{i}]");
                match a.get_ref().parse::<SocketAddr>() {
                    Ok(addr) if dns.listen.contains(&addr) => {
                        self.err(src, a, &field, format!("{addr} is listed twice"));
                    }
                    Ok(addr) => dns.listen.push(addr),
                    Err(_) => self.err(
                        src,
                        a,
                        &field,
                        format!(
                            "`{}` is not an address with a port, e.g. \"127.0.0.1:53\" or \"[::1]:53\"",
                            a.get_ref()
                        ),
                    ),
                }
            }
        }
        if let Some(ecs) = raw.dns.ecs {
            dns.ecs = ecs;
        }
        if let Some(t) = &raw.dns.tcp_idle_timeout
            && let Some(d) = self.duration(src, t, "dns.tcp_idle_timeout")
        {
            if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                self.err(
                    src,
                    t,
                    "dns.tcp_idle_timeout",
                    "must be between 100ms and 1h",
                );
            }
            dns.tcp_idle_timeout = d;
        }
        if let Some(n) = &raw.dns.max_tcp_connections
            && let Some(n) = self.int(src, n, "dns.max_tcp_connections", 1, 65_535)
        {
            dns.max_tcp_connections = n;
        }
        if let Some(n) = &raw.dns.max_tcp_per_client
            && let Some(n) = self.int(src, n, "dns.max_tcp_per_client", 1, 65_535)
        {
            dns.max_tcp_per_client = n;
        }
        if let Some(n) = &raw.dns.udp_workers
            && let Some(n) = self.int(src, n, "dns.udp_workers", 0, 64)
        {
            dns.udp_workers = n;
        }
        if let Some(r) = &raw.dns.rate_limit {
            dns.rate_limit = self.rate_limit(src, r.get_ref());
        }
        if let Some(c) = &raw.dns.cookies {
            dns.cookies = self.cookies(src, c.get_ref());
        }

        let mut admin = AdminSettings {
            listen: super::DEFAULT_ADMIN_LISTEN,
            token: None,
        };
        if let Some(l) = &raw.admin.listen {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(a) => admin.listen = a,
                Err(_) => self.err(
                    src,
                    l,
                    "admin.listen",
                    format!("`{}` is not an address with a port", l.get_ref()),
                ),
            }
        }
        if let Some(t) = &raw.admin.token {
            admin.token = self.secret(src, t, "admin.token");
        }
        if !admin.listen.ip().is_loopback()
            && raw.admin.token.is_none()
            && let Some(l) = &raw.admin.listen
        {
            self.warn(
                src,
                l,
                "admin.listen",
                "the admin API listens beyond loopback without a token: anyone who can reach it can disable endpoints",
            );
        }

        let geoip_database = raw
            .geoip
            .as_ref()
            .and_then(|g| g.database.as_ref())
            .map(|d| {
                self.geo_configured = true;
                let p = base.join(d.get_ref());
                if let Some(old) = &self.carry.geo
                    && old.path() == p
                    && old.stamp.is_some()
                    && old.stamp == crate::geo::file_stamp(&p)
                {
                    self.geo = Some(old.clone());
                    return p;
                }
                match crate::geo::GeoDb::open(&p) {
                    Ok(db) => self.geo = Some(Arc::new(db)),
                    Err(e) => self.err(src, d, "geoip.database", e),
                }
                p
            });
        let profiles_dir = match &raw.profiles.dir {
            Some(d) => {
                let p = base.join(d.get_ref());
                if !p.is_dir() {
                    self.err(
                        src,
                        d,
                        "profiles.dir",
                        format!("{} is not a directory", p.display()),
                    );
                }
                p
            }
            None => base.join("profiles"),
        };
        let profiles_max_file_size = match &raw.profiles.max_file_size {
            Some(s) => self
                .size(src, s, "profiles.max_file_size", 1 << 10, 256 << 20)
                .unwrap_or(super::DEFAULT_PROFILE_FILE_LIMIT),
            None => super::DEFAULT_PROFILE_FILE_LIMIT,
        };
        let state_file = raw.state_file.as_ref().map(|s| base.join(s.get_ref()));
        Settings {
            dns,
            admin,
            geoip_database,
            profiles_dir,
            profiles_max_file_size,
            state_file,
        }
    }

    /// `[dns.rate_limit]`: `None` when disabled.
    fn rate_limit(
        &mut self,
        src: usize,
        raw: &super::raw::RawRateLimit,
    ) -> Option<crate::dns::rrl::Config> {
        let mut c = crate::dns::rrl::Config::default();
        let f = |k: &str| format!("dns.rate_limit.{k}");
        for (v, field, slot) in [
            (
                &raw.responses_per_second,
                "responses_per_second",
                &mut c.responses_per_second,
            ),
            (
                &raw.nxdomains_per_second,
                "nxdomains_per_second",
                &mut c.nxdomains_per_second,
            ),
            (
                &raw.errors_per_second,
                "errors_per_second",
                &mut c.errors_per_second,
            ),
        ] {
            if let Some(v) = v
                && let Some(n) = self.int(src, v, &f(field), 1, 1_000_000)
            {
                *slot = n;
            }
        }
        if let Some(v) = &raw.slip
            && let Some(n) = self.int(src, v, &f("slip"), 0, 10)
        {
            c.slip = n;
        }
        if let Some(v) = &raw.ipv4_prefix
            && let Some(n) = self.int(src, v, &f("ipv4_prefix"), 8, 32)
        {
            c.ipv4_prefix = n;
        }
        if let Some(v) = &raw.ipv6_prefix
            && let Some(n) = self.int(src, v, &f("ipv6_prefix"), 16, 128)
        {
            c.ipv6_prefix = n;
        }
        if let Some(v) = &raw.table_size
            && let Some(n) = self.int(src, v, &f("table_size"), 1024, 16 << 20)
        {
            c.table_size = n;
        }
        if let Some(list) = &raw.exempt {
            c.exempt.clear();
            for (i, n) in list.get_ref().iter().enumerate() {
                let text = n.get_ref().trim();
                let net = text
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                match net {
                    Ok(net) if net != net.trunc() => {
                        self.warn(
                            src,
                            n,
                            &format!("dns.rate_limit.exempt[{i}]"),
                            format!("`{text}` has host bits set: it means {}", net.trunc()),
                        );
                        c.exempt.push(net.trunc());
                    }
                    Ok(net) => c.exempt.push(net),
                    Err(_) => self.err(
                        src,
                        n,
                        &format!("dns.rate_limit.exempt[{i}]"),
                        format!("`{text}` is not a network: write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\""),
                    ),
                }
            }
        }
        (raw.enabled != Some(false)).then_some(c)
    }

    /// `[dns.cookies]`.
    fn cookies(&mut self, src: usize, raw: &super::raw::RawCookies) -> super::CookieSettings {
        let mut c = super::CookieSettings {
            enabled: raw.enabled != Some(false),
            ..Default::default()
        };
        for (v, field, slot) in [
            (&raw.secret, "dns.cookies.secret", &mut c.secret),
            (
                &raw.previous_secret,
                "dns.cookies.previous_secret",
                &mut c.previous,
            ),
        ] {
            let Some(v) = v else { continue };
            if let Some(s) = self.secret(src, v, field) {
                match crate::dns::cookie::parse_secret(s.expose()) {
                    Ok(s) => *slot = Some(s),
                    Err(e) => self.err(src, v, field, e),
                }
            }
        }
        if raw.secret.is_none()
            && let Some(v) = &raw.previous_secret
        {
            self.err(
                src,
                v,
                "dns.cookies.previous_secret",
                "set `secret` too: the previous secret is only accepted beside a current one",
            );
        }
        c
    }

    // ----------------------------------------------------------------- zones

    fn zone(&mut self, src: usize, z: &Spanned<RawZone>) -> Option<(ZoneId, DomainName, u32)> {
        let zi = self.table.zones.len();
        let p = format!("zones[{zi}]");
        let z = z.get_ref();
        let origin = match DomainName::parse(z.origin.get_ref(), None) {
            Ok(o) => o,
            Err(e) => {
                self.err(src, &z.origin, &format!("{p}.origin"), e);
                return None;
            }
        };
        if self.table.zones.iter().any(|other| other.origin == origin) {
            self.err(
                src,
                &z.origin,
                &format!("{p}.origin"),
                format!("zone {origin} is configured twice"),
            );
            return None;
        }
        let ttl = match &z.ttl {
            Some(t) => self
                .int(src, t, &format!("{p}.ttl"), 0, MAX_TTL)
                .unwrap_or(3600),
            None => 3600,
        };

        // NS set.
        let mut ns_rrs = Vec::new();
        let mut ns_ats = Vec::new();
        if z.ns.get_ref().is_empty() {
            self.err(
                src,
                &z.ns,
                &format!("{p}.ns"),
                "at least one name server is required",
            );
        }
        for (i, ns) in z.ns.get_ref().iter().enumerate() {
            let field = format!("{p}.ns[{i}]");
            match DomainName::parse(ns.get_ref(), Some(&origin)) {
                Ok(host) if host.is_hostname() => match WireRr::ns(ttl, &host) {
                    Ok(rr) => {
                        ns_rrs.push(rr);
                        let at = self.at(src, ns, &field);
                        ns_ats.push(at.clone());
                        self.ns_hosts.push((zi as ZoneId, host, at));
                    }
                    Err(e) => self.err(src, ns, &field, e),
                },
                Ok(_) => self.err(
                    src,
                    ns,
                    &field,
                    format!("`{}` is not a host name", ns.get_ref()),
                ),
                Err(e) => self.err(src, ns, &field, e),
            }
        }

        // SOA.
        let soa = z.soa.as_ref().map(|s| s.get_ref());
        let name_or = |this: &mut Self,
                       v: Option<&Spanned<String>>,
                       field: &str,
                       default: Option<DomainName>| {
            match v {
                Some(v) => {
                    // Accept rname as an e-mail address too.
                    let text = if field.ends_with("rname") {
                        v.get_ref().replacen('@', ".", 1)
                    } else {
                        v.get_ref().clone()
                    };
                    match DomainName::parse(&text, Some(&origin)) {
                        Ok(n) => Some(n),
                        Err(e) => {
                            this.err(src, v, field, e);
                            None
                        }
                    }
                }
                None => default,
            }
        };
        let first_ns = ns_rrs.first().and_then(|rr| rr.target().cloned());
        let mname = name_or(
            self,
            soa.and_then(|s| s.mname.as_ref()),
            &format!("{p}.soa.mname"),
            first_ns,
        );
        let hostmaster = DomainName::parse("hostmaster", Some(&origin)).ok();
        let rname = name_or(
            self,
            soa.and_then(|s| s.rname.as_ref()),
            &format!("{p}.soa.rname"),
            hostmaster,
        );
        let num = |this: &mut Self,
                   v: Option<&Spanned<i64>>,
                   field: &str,
                   default: u32,
                   lo: i64,
                   hi: i64|
         -> u32 {
            match v {
                Some(v) => this
                    .int(src, v, &format!("{p}.soa.{field}"), lo, hi)
                    .unwrap_or(default),
                None => default,
            }
        };
        let default_serial = self
            .now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let serial = num(
            self,
            soa.and_then(|s| s.serial.as_ref()),
            "serial",
            default_serial,
            0,
            u32::MAX as i64,
        );
        let refresh = num(
            self,
            soa.and_then(|s| s.refresh.as_ref()),
            "refresh",
            3600,
            0,
            MAX_TTL,
        );
        let retry = num(
            self,
            soa.and_then(|s| s.retry.as_ref()),
            "retry",
            600,
            0,
            MAX_TTL,
        );
        let expire = num(
            self,
            soa.and_then(|s| s.expire.as_ref()),
            "expire",
            1_209_600,
            0,
            MAX_TTL,
        );
        let minimum = num(
            self,
            soa.and_then(|s| s.minimum.as_ref()),
            "minimum",
            60,
            0,
            MAX_TTL,
        );
        let (Some(mname), Some(rname)) = (mname, rname) else {
            if !ns_rrs.is_empty() {
                self.err(
                    src,
                    &z.origin,
                    &format!("{p}.soa"),
                    "cannot build the SOA record",
                );
            }
            return None;
        };
        let soa_rr = match WireRr::soa(ttl, &mname, &rname, serial, refresh, retry, expire, minimum)
        {
            Ok(rr) => rr,
            Err(e) => {
                self.err(src, &z.origin, &format!("{p}.soa"), e);
                return None;
            }
        };
        let negative_soa = soa_rr.with_ttl(ttl.min(minimum));

        let zone_at = self.at(src, &z.origin, &format!("{p}.origin"));
        self.table.zones.push(Zone {
            origin: origin.clone(),
            apex: NodeId::MAX, // set in finish()
            negative_soa,
            serial,
        });
        let soa_at = zone_at.clone();
        let apex_sets = vec![
            (
                RrSet {
                    rtype: rtype::SOA,
                    rrs: vec![soa_rr],
                },
                vec![soa_at],
            ),
            (
                RrSet {
                    rtype: rtype::NS,
                    rrs: ns_rrs,
                },
                ns_ats,
            ),
        ];
        self.define(
            origin.clone(),
            zi as ZoneId,
            PendingKind::Records(apex_sets),
            zone_at,
        );
        Some((zi as ZoneId, origin, ttl))
    }

    fn record(
        &mut self,
        src: usize,
        zone: ZoneId,
        origin: &DomainName,
        zone_ttl: u32,
        i: usize,
        r: &Spanned<RawRecord>,
    ) {
        let p = format!("zones[{zone}].records[{i}]");
        let r = r.get_ref();
        let name = match DomainName::parse(r.name.get_ref(), Some(origin)) {
            Ok(n) => n,
            Err(e) => return self.err(src, &r.name, &format!("{p}.name"), e),
        };
        if !name.is_within(origin) {
            return self.err(
                src,
                &r.name,
                &format!("{p}.name"),
                format!("{name} is not inside zone {origin}"),
            );
        }
        if crate::proto::name::labels(name.wire()).any(|l| l == b"*") {
            return self.err(
                src,
                &r.name,
                &format!("{p}.name"),
                "wildcard records are not supported; list each name",
            );
        }
        let owner_zone = self.table.zone_of(&name);
        if owner_zone != Some(zone) {
            let other = owner_zone
                .map(|z| self.table.zones[z as usize].origin.to_string())
                .unwrap_or_default();
            return self.err(
                src,
                &r.name,
                &format!("{p}.name"),
                format!("{name} belongs to zone {other}; define it there"),
            );
        }
        let t = r.rtype.get_ref().to_ascii_uppercase();
        if t == "NS" {
            return self.err(
                src,
                &r.rtype,
                &format!("{p}.type"),
                "NS records come from the zone's `ns` list; delegations below the apex are not supported",
            );
        }
        let ttl = match &r.ttl {
            Some(v) => match self.int(src, v, &format!("{p}.ttl"), 0, MAX_TTL) {
                Some(t) => t,
                None => return,
            },
            None => zone_ttl,
        };
        let wire = match rr::parse_record(&t, r.value.get_ref(), origin, ttl) {
            Ok(w) => w,
            Err(e) if e.starts_with("unsupported record type") => {
                return self.err(src, &r.rtype, &format!("{p}.type"), e);
            }
            Err(e) => return self.err(src, &r.value, &format!("{p}.value"), e),
        };
        let at = self.at(src, &r.name, &format!("{p}.name"));
        let code = wire.rtype();
        if let Some(&idx) = self.pending_index.get(name.wire()) {
            let existing = &mut self.pending[idx];
            let PendingKind::Records(sets) = &mut existing.kind else {
                let msg = format!("{name} is already the name of a routing profile");
                return self.error(&at, msg);
            };
            let is_apex = name == *origin;
            let has_cname = sets.iter().any(|(s, _)| s.rtype == rtype::CNAME);
            if code == rtype::CNAME && (is_apex || !sets.is_empty()) {
                let msg = if is_apex {
                    "a CNAME cannot be at the zone apex (it holds SOA and NS)".to_string()
                } else if has_cname {
                    format!("{name} has more than one CNAME record")
                } else {
                    format!("{name} has other records; a CNAME must be the only record at its name")
                };
                return self.error(&at, msg);
            }
            if has_cname {
                let msg = format!(
                    "{name} has a CNAME record; a CNAME must be the only record at its name"
                );
                return self.error(&at, msg);
            }
            match sets.iter_mut().find(|(s, _)| s.rtype == code) {
                Some((set, ats)) => {
                    if set.rrs.iter().any(|x| x.rdata() == wire.rdata()) {
                        let msg = format!("duplicate {t} record for {name}");
                        return self.error(&at, msg);
                    }
                    set.rrs.push(wire);
                    ats.push(at);
                }
                None => sets.push((
                    RrSet {
                        rtype: code,
                        rrs: vec![wire],
                    },
                    vec![at],
                )),
            }
        } else {
            let set = RrSet {
                rtype: code,
                rrs: vec![wire],
            };
            self.define(
                name,
                zone,
                PendingKind::Records(vec![(set, vec![at.clone()])]),
                at,
            );
        }
    }

    fn define(&mut self, name: DomainName, zone: ZoneId, kind: PendingKind, at: At) {
        self.pending_index
            .insert(name.wire().into(), self.pending.len());
        self.pending.push(Pending {
            name,
            zone,
            kind,
            at,
        });
    }

    // -------------------------------------------------------------- profiles

    fn profiles_dir(&mut self, dir: &Path, limit: u64) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                // Already reported when the directory was configured explicitly.
                if self.diag.errors.iter().all(|x| x.field != "profiles.dir") {
                    self.diag
                        .file_error(dir, format!("cannot read profiles directory: {e}"));
                }
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            if let Some(src) = self.read(&f, limit, "profiles.max_file_size")
                && let Some(raw) = diag::parse::<RawProfile>(&self.sources[src], &mut self.diag)
            {
                self.profile(src, raw);
            }
        }
    }

    /// Validates a profile's name: inside a zone, below its apex, unique.
    fn profile_name(&mut self, src: usize, raw: &RawProfile) -> Option<(DomainName, ZoneId)> {
        let name = match DomainName::parse(raw.name.get_ref(), None) {
            Ok(n) => n,
            Err(e) => {
                self.err(src, &raw.name, "name", e);
                return None;
            }
        };
        let Some(zone) = self.table.zone_of(&name) else {
            let zones: Vec<String> = self
                .table
                .zones
                .iter()
                .map(|z| z.origin.to_string())
                .collect();
            let list = if zones.is_empty() {
                "none configured".to_string()
            } else {
                zones.join(", ")
            };
            self.err(
                src,
                &raw.name,
                "name",
                format!("{name} is not inside any configured zone ({list})"),
            );
            return None;
        };
        if self.table.zones[zone as usize].origin == name {
            self.err(
                src,
                &raw.name,
                "name",
                format!("{name} is the zone apex; a profile must be a name below it"),
            );
            return None;
        }
        if let Some(&idx) = self.pending_index.get(name.wire()) {
            let other = &self.pending[idx];
            let what = match other.kind {
                PendingKind::Profile(_) => "another profile",
                PendingKind::Records(_) => "static records",
            };
            let where_ = self.sources[other.at.src].path.display().to_string();
            let (line, _) = self.sources[other.at.src].line_col(other.at.span.start);
            self.err(
                src,
                &raw.name,
                "name",
                format!("{name} is already defined by {what} at {where_}:{line}"),
            );
            return None;
        }
        Some((name, zone))
    }

    fn profile(&mut self, src: usize, raw: RawProfile) {
        let profile_id = self.table.profiles.len() as ProfileId;
        // Keep checking after the first problem so one run reports them all;
        // the profile is only added when none was found.
        let errors_before = self.diag.errors.len();
        let named = self.profile_name(src, &raw);
        self.current_profile = named
            .as_ref()
            .map(|(n, _)| n.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let mut method = raw.routing.get_ref().as_str();
        if !KNOWN_METHODS.contains(&method) {
            self.err(
                src,
                &raw.routing,
                "routing",
                format!(
                    "unknown routing method `{method}` (expected one of: {})",
                    KNOWN_METHODS.join(", ")
                ),
            );
            method = "";
        } else if matches!(method, "performance" | "geographic") && self.geo.is_none() {
            let msg = if self.geo_configured {
                format!(
                    "`{method}` routing needs the GeoIP database, which did not load (see its error)"
                )
            } else {
                format!(
                    "`{method}` routing needs a GeoIP database: set [geoip] database in the server configuration (geoip/ ships one)"
                )
            };
            self.err(src, &raw.routing, "routing", msg);
        }
        let ttl = match &raw.ttl {
            Some(t) => self.int(src, t, "ttl", 0, MAX_TTL).unwrap_or(60),
            None => 60,
        };
        let enabled = raw.enabled.unwrap_or(true);
        let max_answers = match (&raw.max_answers, method) {
            (Some(m), "multivalue") => self.int::<u8>(src, m, "max_answers", 1, 10).unwrap_or(1),
            (Some(m), _) => {
                self.err(src, m, "max_answers", "only used by multivalue routing");
                1
            }
            (None, _) => 8,
        };
        let monitor = raw
            .monitor
            .as_ref()
            .and_then(|m| self.monitor(src, m))
            .map(Arc::new);

        if raw.endpoints.is_empty() {
            return self.err(
                src,
                &raw.name,
                "endpoints",
                "a profile needs at least one [[endpoints]]",
            );
        }
        let first_ep = self.table.endpoints.len() as u32;
        let mut keys: Vec<MethodKeys> = Vec::new();
        let mut names: Vec<(String, At)> = Vec::new();
        let mut priorities: Vec<(u16, String)> = Vec::new();
        let mut missing_priority: Vec<At> = Vec::new();
        for (i, e) in raw.endpoints.iter().enumerate() {
            let p = format!("endpoints[{i}]");
            let ep_raw = e.get_ref();
            let ep_name = ep_raw.name.get_ref().clone();
            let name_ok = !ep_name.is_empty()
                && ep_name.len() <= 64
                && ep_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                self.err(
                    src,
                    &ep_raw.name,
                    &format!("{p}.name"),
                    "endpoint names are 1-64 letters, digits, `-`, `_` or `.`",
                );
            } else if let Some((_, first)) =
                names.iter().find(|(n, _)| n.eq_ignore_ascii_case(&ep_name))
            {
                let (line, _) = self.sources[first.src].line_col(first.span.start);
                self.err(
                    src,
                    &ep_raw.name,
                    &format!("{p}.name"),
                    format!("duplicate endpoint name `{ep_name}` (first used on line {line})"),
                );
            }
            names.push((
                ep_name.clone(),
                self.at(src, &ep_raw.name, &format!("{p}.name")),
            ));
            if method == "priority" {
                match &ep_raw.priority {
                    Some(pv) => {
                        if let Some(prio) =
                            self.int::<u16>(src, pv, &format!("{p}.priority"), 1, 1000)
                        {
                            if let Some((_, other)) = priorities.iter().find(|(x, _)| *x == prio) {
                                let msg = format!(
                                    "duplicate priority {prio} (also used by endpoint `{other}`); priorities must be unique"
                                );
                                self.err(src, pv, &format!("{p}.priority"), msg);
                            }
                            priorities.push((prio, ep_name.clone()));
                        }
                    }
                    None => {
                        missing_priority.push(self.at(src, &ep_raw.name, &format!("{p}.priority")))
                    }
                }
            }
            keys.push(self.method_keys(src, &p, ep_raw));
            self.unused_method_keys(src, &p, ep_raw, method);
            if let Some(ep) =
                self.endpoint(src, &p, ep_raw, profile_id, ttl, method, monitor.as_ref())
            {
                self.table.endpoints.push(ep);
            }
        }
        if method == "priority" && !priorities.is_empty() {
            for at in &missing_priority {
                self.error(
                    at,
                    "priority is required on every endpoint once one endpoint sets it",
                );
            }
        }
        let method_routing = self.method_routing(method, &keys, &names);
        let last_ep = self.table.endpoints.len() as u32;
        let Some((name, zone)) = named else {
            self.table.endpoints.truncate(first_ep as usize);
            return;
        };
        if self.diag.errors.len() != errors_before
            || last_ep - first_ep != raw.endpoints.len() as u32
        {
            // Problems are recorded; nothing of this profile is built.
            self.table.endpoints.truncate(first_ep as usize);
            return;
        }
        let eps = &self.table.endpoints[first_ep as usize..last_ep as usize];
        let routing = match method {
            "priority" => {
                let mut order: Vec<u32> = (0..eps.len() as u32).collect();
                if !priorities.is_empty() {
                    order.sort_by_key(|&i| eps[i as usize].priority);
                }
                Routing::Priority {
                    order: order.into(),
                }
            }
            "weighted" => Routing::Weighted {
                alias: crate::routing::weighted::alias_table(eps),
            },
            "multivalue" => Routing::Multivalue { max_answers },
            _ => match method_routing {
                Some(r) => r,
                None => return,
            },
        };
        let on_all_down = match &raw.on_all_down {
            None => OnAllDown::ServeAll,
            Some(v) => match v.get_ref().as_str() {
                "serve-all" => OnAllDown::ServeAll,
                "nodata" => OnAllDown::NoData,
                "nxdomain" => OnAllDown::NxDomain,
                "servfail" => OnAllDown::ServFail,
                other => match eps.iter().position(|e| &*e.name == other) {
                    Some(i) => OnAllDown::Endpoint(i as u32),
                    None => {
                        let list: Vec<&str> = eps.iter().map(|e| &*e.name).collect();
                        return self.err(
                            src,
                            v,
                            "on_all_down",
                            format!(
                                "`{other}` is neither a policy (serve-all, nodata, nxdomain, servfail) nor an endpoint of this profile ({})",
                                list.join(", ")
                            ),
                        );
                    }
                },
            },
        };
        if let OnAllDown::Endpoint(i) = on_all_down
            && matches!(routing, Routing::Multivalue { .. })
            && matches!(eps[i as usize].target, Target::Host(_))
        {
            // Unreachable: multivalue endpoints are validated to be addresses.
        }
        let at = self.at(src, &raw.name, "name");
        self.table.profiles.push(Profile {
            name: name.clone(),
            node: NodeId::MAX, // set in finish()
            source: self.sources[src].path.clone(),
            routing,
            ttl,
            enabled,
            on_all_down,
            endpoints: first_ep..last_ep,
            detection: monitor
                .as_ref()
                .map(|m| m.interval * (m.tolerated_failures + 1) + m.timeout),
        });
        self.define(name, zone, PendingKind::Profile(profile_id), at);
    }

    #[allow(clippy::too_many_arguments)]
    fn endpoint(
        &mut self,
        src: usize,
        p: &str,
        e: &RawEndpoint,
        profile: ProfileId,
        ttl: u32,
        method: &str,
        monitor: Option<&Arc<MonitorSettings>>,
    ) -> Option<Endpoint> {
        let runtime = self.runtime(e.name.get_ref());
        if let Some(child) = &e.profile {
            return self.nested_endpoint(src, p, e, child, profile, method, runtime);
        }
        if let Some(m) = &e.min_child_endpoints {
            self.err(
                src,
                m,
                &format!("{p}.min_child_endpoints"),
                "only used with `profile` (nested endpoints)",
            );
        }
        let Some(t) = &e.target else {
            self.err(
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
                // `192.0.2.7O` is a valid host name, and almost certainly
                // a mistyped address.
                Ok(h) if h.is_hostname() && !looks_like_an_address(text) => Target::Host(h),
                _ => {
                    self.err(src, t, &field, not_a_target(text));
                    return None;
                }
            }
        };
        if let Target::Host(h) = &target {
            let at = self.at(src, t, &field);
            self.host_targets.push((h.clone(), at));
        }
        if method == "multivalue" && matches!(target, Target::Host(_)) {
            self.err(
                src,
                t,
                &field,
                "multivalue routing answers addresses only; use an IPv4 or IPv6 address",
            );
            return None;
        }
        let weight = match &e.weight {
            Some(w) => self.int(src, w, &format!("{p}.weight"), 1, 1000)?,
            None => 1,
        };
        let priority = match &e.priority {
            Some(v) if (1..=1000).contains(v.get_ref()) => *v.get_ref() as u16,
            _ => 0,
        };
        let rr = match &target {
            Target::V4(ip) => WireRr::a(ttl, *ip),
            Target::V6(ip) => WireRr::aaaa(ttl, *ip),
            Target::Host(h) => match WireRr::cname(ttl, h) {
                Ok(rr) => rr,
                Err(err) => {
                    self.err(src, t, &field, err);
                    return None;
                }
            },
            Target::Nested(_) => WireRr::none(),
        };
        let enabled = e.enabled.unwrap_or(true);
        let always_serve = e.always_serve.unwrap_or(false);
        let mut health = if !enabled {
            Health::Disabled
        } else if always_serve || monitor.is_none() {
            Health::Unmonitored
        } else {
            Health::Monitored(Arc::new(HealthCell::new()))
        };
        if let (Some(m), Health::Monitored(_)) = (monitor, &health) {
            let probe = e.probe.as_ref().map(|pr| pr.get_ref());
            let (host, address_is_name) = match probe.and_then(|pr| pr.address.as_ref()) {
                Some(a) => {
                    let a_text = a.get_ref().trim();
                    let is_ip = a_text.parse::<IpAddr>().is_ok();
                    let is_name = DomainName::parse(a_text, None).is_ok_and(|n| n.is_hostname());
                    if !is_ip && !is_name {
                        self.err(src, a, &format!("{p}.probe.address"), not_a_target(a_text));
                    }
                    (a_text.trim_end_matches('.').to_string(), is_name && !is_ip)
                }
                None => match &target {
                    Target::Host(h) => (h.as_str().trim_end_matches('.').to_string(), true),
                    other => (other.to_string(), false),
                },
            };
            // Host defaults to the endpoint's host name, else the probe
            // address's host name; an IP-only endpoint sends its address.
            let default_host = match &target {
                Target::Host(h) => Some(h.as_str().trim_end_matches('.').to_string()),
                _ if address_is_name => Some(host.clone()),
                _ => None,
            };
            let port = match probe.and_then(|pr| pr.port.as_ref()) {
                Some(v) => self
                    .int(src, v, &format!("{p}.probe.port"), 1, 65535)
                    .unwrap_or(m.port),
                None => m.port,
            };
            let path = match probe.and_then(|pr| pr.path.as_ref()) {
                Some(v) => {
                    self.check_path(
                        src,
                        v,
                        &format!("{p}.probe.path"),
                        m.protocol,
                        m.key.is_some(),
                    );
                    v.get_ref().clone()
                }
                None => m.path.clone(),
            };
            let mut headers = m.headers.clone();
            if let Some(h) = probe.and_then(|pr| pr.headers.as_ref()) {
                for (k, v) in self.headers(src, h, &format!("{p}.probe.headers")) {
                    headers.retain(|(x, _)| !x.eq_ignore_ascii_case(&k));
                    headers.push((k, v));
                }
                if headers.len() > 8 {
                    self.err(
                        src,
                        h,
                        &format!("{p}.probe.headers"),
                        "at most 8 headers in all",
                    );
                }
            }
            // Verified HTTPS to an address, with no name to verify: the
            // certificate would have to name the address itself.
            if m.protocol == Protocol::Https
                && m.tls_verify
                && default_host.is_none()
                && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"))
            {
                self.warn(
                    src,
                    t,
                    &field,
                    format!(
                        "an HTTPS check of the address {host} verifies a certificate for that address, which certificates rarely name: set a `Host` header in [monitor] headers (or this endpoint's probe) to the name its certificate carries; it is also the TLS server name"
                    ),
                );
            }
            let tls = (m.protocol == Protocol::Https).then(|| TlsKey {
                verify: m.tls_verify,
                ca_cert: m.ca_cert.clone(),
                identity: m.client_cert.clone().zip(m.client_key.clone()),
            });
            let endpoint_id = self.table.endpoints.len() as u32;
            // Identical probes (same target, settings and key) run once and
            // share one health cell, whichever profiles they belong to.
            let identity = ProbeKey {
                host: host.clone(),
                port,
                path: path.clone(),
                headers: headers.clone(),
                default_host: default_host.clone(),
                monitor: (**m).clone(),
            };
            match self.probe_index.get(&identity) {
                Some(&i) => {
                    let spec = &mut self.probes[i];
                    spec.endpoints.push(endpoint_id);
                    health = Health::Monitored(spec.cell.clone());
                }
                None => {
                    // An unchanged probe keeps its cell (status, history)
                    // across a reload.
                    let cell = match self.carry.cells.get(&identity) {
                        Some(old) => old.clone(),
                        None => Arc::new(HealthCell::new()),
                    };
                    health = Health::Monitored(cell.clone());
                    self.probe_index.insert(identity.clone(), self.probes.len());
                    self.probes.push(ProbeSpec {
                        key: identity,
                        endpoints: vec![endpoint_id],
                        cell,
                        host,
                        port,
                        path,
                        headers,
                        default_host,
                        tls,
                        monitor: m.clone(),
                        labels: Vec::new(), // filled in finish()
                    });
                }
            }
        } else if let Some(pr) = &e.probe {
            let why = if monitor.is_none() {
                "the profile has no [monitor]"
            } else {
                "the endpoint is not probed (disabled or always_serve)"
            };
            self.warn(src, pr, &format!("{p}.probe"), format!("ignored: {why}"));
        }
        Some(Endpoint {
            name: e.name.get_ref().as_str().into(),
            profile,
            target,
            priority,
            weight,
            health,
            runtime,
            rr,
        })
    }

    /// The runtime state of an endpoint: the previous configuration's when
    /// the same profile has an endpoint of the same name, with the runtime
    /// override (state file) applied.
    fn runtime(&self, endpoint: &str) -> Arc<EndpointRuntime> {
        let key = (self.current_profile.clone(), endpoint.to_string());
        let rt = self.carry.runtimes.get(&key).cloned().unwrap_or_default();
        rt.set_disabled(self.carry.disabled.contains(&key));
        rt
    }

    #[allow(clippy::too_many_arguments)]
    fn nested_endpoint(
        &mut self,
        src: usize,
        p: &str,
        e: &RawEndpoint,
        child: &Spanned<String>,
        profile: ProfileId,
        method: &str,
        runtime: Arc<EndpointRuntime>,
    ) -> Option<Endpoint> {
        let field = format!("{p}.profile");
        if let Some(t) = &e.target {
            self.err(src, t, &format!("{p}.target"), "a nested endpoint answers with its child profile's choice: remove `target` (or `profile`)");
            return None;
        }
        if method == "multivalue" {
            self.err(
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
                self.err(src, child, &field, msg);
                return None;
            }
        };
        let min = match &e.min_child_endpoints {
            Some(m) => self.int(src, m, &format!("{p}.min_child_endpoints"), 1, 1000)?,
            None => 1,
        };
        if let Some(pr) = &e.probe {
            self.warn(
                src,
                pr,
                &format!("{p}.probe"),
                "ignored: a nested endpoint's status comes from its child profile",
            );
        }
        // Validated exactly as a plain endpoint's (priority: with the
        // profile's other priorities, above).
        let weight = match &e.weight {
            Some(w) => self.int(src, w, &format!("{p}.weight"), 1, 1000)?,
            None => 1,
        };
        let priority = match &e.priority {
            Some(v) if (1..=1000).contains(v.get_ref()) => *v.get_ref() as u16,
            _ => 0,
        };
        let id = self.table.endpoints.len() as u32;
        let at = self.at(src, child, &field);
        self.nested.push((id, name, at));
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
            profile,
            target: Target::Nested(u32::MAX),
            priority,
            weight,
            health,
            runtime,
            rr: WireRr::none(),
        })
    }

    /// Points nested endpoints at their child profiles, rejecting unknown
    /// children, loops and nesting deeper than ten.
    fn resolve_nested(&mut self) {
        let nested = std::mem::take(&mut self.nested);
        for (id, name, at) in &nested {
            let child = self.table.profiles.iter().position(|p| p.name == *name);
            let ep = &mut self.table.endpoints[*id as usize];
            match child {
                Some(c) if c as u32 == ep.profile => {
                    let msg = format!(
                        "{name} is this endpoint's own profile: a profile cannot nest itself"
                    );
                    self.error(at, msg);
                }
                Some(c) => {
                    ep.target = Target::Nested(c as u32);
                    if let Health::Nested { child, .. } = &mut ep.health {
                        *child = c as u32;
                    }
                }
                None => {
                    let msg = format!("no profile is named {name}");
                    self.error(at, msg);
                }
            }
        }
        if !self.diag.ok() {
            return;
        }
        // Depth of nesting below each profile; a profile on the current path
        // again is a loop.
        fn depth(t: &RoutingTable, p: usize, path: &mut Vec<usize>) -> Result<usize, Vec<usize>> {
            if path.contains(&p) {
                path.push(p);
                return Err(path.clone());
            }
            path.push(p);
            let mut d = 0;
            for ep in t.endpoints_of(&t.profiles[p]) {
                if let Target::Nested(c) = ep.target {
                    d = d.max(1 + depth(t, c as usize, path)?);
                }
            }
            path.pop();
            Ok(d)
        }
        for (id, _, at) in &nested {
            let p = self.table.endpoints[*id as usize].profile as usize;
            match depth(&self.table, p, &mut Vec::new()) {
                Err(cycle) => {
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&i| self.table.profiles[i].name.as_str())
                        .collect();
                    let msg = format!("nested profiles form a loop: {}", names.join(" -> "));
                    self.error(at, msg);
                    return;
                }
                Ok(d) if d > crate::routing::MAX_NESTING => {
                    let msg = format!(
                        "profiles are nested {d} deep; at most {} levels are allowed",
                        crate::routing::MAX_NESTING
                    );
                    self.error(at, msg);
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// Warns about endpoint keys the profile's method does not use: they are
    /// kept valid (a method can be switched), but a user may be expecting
    /// them to matter.
    fn unused_method_keys(&mut self, src: usize, p: &str, e: &RawEndpoint, method: &str) {
        if method.is_empty() {
            return;
        }
        let note = |this: &mut Self, span: std::ops::Range<usize>, key: &str, user: &str| {
            if method != user {
                let source = &this.sources[src];
                this.diag.warn(
                    source,
                    span,
                    &format!("{p}.{key}"),
                    format!("ignored: only {user} routing uses `{key}` (this profile is {method})"),
                );
            }
        };
        if let Some(v) = &e.priority {
            note(self, v.span(), "priority", "priority");
        }
        if let Some(v) = &e.weight {
            note(self, v.span(), "weight", "weighted");
        }
        if let Some(v) = &e.location {
            note(self, v.span(), "location", "performance");
        }
        if let Some(v) = &e.regions {
            note(self, v.span(), "regions", "geographic");
        }
        if let Some(v) = &e.subnets {
            note(self, v.span(), "subnets", "subnet");
        }
    }

    /// Reads and checks `location`, `regions` and `subnets` of one endpoint,
    /// whatever the method (so a switch of method finds them valid).
    fn method_keys(&mut self, src: usize, p: &str, e: &RawEndpoint) -> MethodKeys {
        let mut k = MethodKeys {
            at: self.at(src, &e.name, &format!("{p}.name")),
            ..MethodKeys::default()
        };
        if let Some(loc) = &e.location {
            k.location_given = true;
            let field = format!("{p}.location");
            let point = match loc.get_ref() {
                RawLocation::Region(name) => methods::region_point(name),
                RawLocation::Coordinates { lat, lon } => methods::coordinates(*lat, *lon),
            };
            match point {
                Ok(pt) => k.point = Some(pt),
                Err(msg) => self.err(src, loc, &field, msg),
            }
        }
        if let Some(list) = &e.regions {
            k.regions_given = true;
            for (i, r) in list.get_ref().iter().enumerate() {
                let field = format!("{p}.regions[{i}]");
                match methods::region_code(r.get_ref()) {
                    Ok((code, _)) => k.regions.push((
                        code,
                        r.get_ref().to_ascii_uppercase(),
                        self.at(src, r, &field),
                    )),
                    Err(msg) => self.err(src, r, &field, msg),
                }
            }
        }
        if let Some(list) = &e.subnets {
            for (i, sn) in list.get_ref().iter().enumerate() {
                let field = format!("{p}.subnets[{i}]");
                match methods::subnet(sn.get_ref()) {
                    Ok((lo, hi)) => {
                        let ((v6, lo), (_, hi)) = (methods::ip_key(lo), methods::ip_key(hi));
                        k.subnets.push((
                            v6,
                            lo,
                            hi,
                            sn.get_ref().trim().to_string(),
                            self.at(src, sn, &field),
                        ));
                    }
                    Err(msg) => self.err(src, sn, &field, msg),
                }
            }
        }
        k
    }

    /// Builds the routing data of performance, geographic and subnet
    /// profiles, checking what needs every endpoint at once.
    fn method_routing(
        &mut self,
        method: &str,
        keys: &[MethodKeys],
        names: &[(String, At)],
    ) -> Option<Routing> {
        let name_of = |i: usize| names.get(i).map_or("?", |(n, _)| n.as_str());
        match method {
            "performance" => {
                let mut points = Vec::with_capacity(keys.len());
                for k in keys {
                    match k.point {
                        Some(pt) => points.push(pt),
                        // Already reported where it was written.
                        None if k.location_given => {}
                        None => {
                            let at = At {
                                field: k.at.field.replace(".name", ".location"),
                                ..k.at.clone()
                            };
                            self.error(&at, "performance routing needs a `location` on every endpoint: a cloud region name or { lat, lon }");
                        }
                    }
                }
                (points.len() == keys.len()).then(|| Routing::Performance {
                    points: points.into(),
                })
            }
            "geographic" => {
                let mut regions: FxHashMap<crate::routing::RegionCode, u32> = FxHashMap::default();
                let mut ok = true;
                for (i, k) in keys.iter().enumerate() {
                    if k.regions.is_empty() {
                        if !k.regions_given
                            || !self.diag.errors.iter().any(|e| {
                                e.field
                                    .starts_with(&k.at.field.replace(".name", ".regions"))
                            })
                        {
                            let at = At {
                                field: k.at.field.replace(".name", ".regions"),
                                ..k.at.clone()
                            };
                            self.error(&at, "geographic routing needs `regions` on every endpoint (WORLD, GEO-xx, countries, subdivisions)");
                        }
                        ok = false;
                    }
                    for (code, text, at) in &k.regions {
                        match regions.get(code) {
                            Some(&other) if other as usize != i => {
                                let msg = format!(
                                    "`{text}` is already served by endpoint `{}`; a region code maps to one endpoint per profile",
                                    name_of(other as usize)
                                );
                                self.error(at, msg);
                                ok = false;
                            }
                            Some(_) => {}
                            None => {
                                regions.insert(*code, i as u32);
                            }
                        }
                    }
                }
                ok.then_some(Routing::Geographic { regions })
            }
            "subnet" => {
                let mut ranges: Vec<(bool, u128, u128, u32, &str, &At)> = Vec::new();
                let mut fallback: Option<u32> = None;
                let mut ok = true;
                for (i, k) in keys.iter().enumerate() {
                    if k.subnets.is_empty() {
                        if let Some(f) = fallback {
                            let at = At {
                                field: k.at.field.replace(".name", ".subnets"),
                                ..k.at.clone()
                            };
                            self.error(&at, format!(
                                "endpoint `{}` is already the fallback (the one without subnets); give this one subnets",
                                name_of(f as usize)
                            ));
                            ok = false;
                        }
                        fallback = Some(i as u32);
                    }
                    for (v6, lo, hi, text, at) in &k.subnets {
                        ranges.push((*v6, *lo, *hi, i as u32, text.as_str(), at));
                    }
                }
                ranges.sort_by_key(|r| (r.0, r.1, r.2));
                let mut merged: Vec<SubnetRange> = Vec::with_capacity(ranges.len());
                let mut prev: Option<&(bool, u128, u128, u32, &str, &At)> = None;
                for r in &ranges {
                    if let (Some(p), Some(last)) = (prev, merged.last_mut())
                        && p.0 == r.0
                        && r.1 <= last.hi
                    {
                        if p.3 != r.3 {
                            let msg = format!(
                                "`{}` of endpoint `{}` overlaps `{}` of endpoint `{}`; a client address must match one endpoint",
                                r.4,
                                name_of(r.3 as usize),
                                p.4,
                                name_of(p.3 as usize)
                            );
                            self.error(r.5, msg);
                            ok = false;
                        }
                        last.hi = last.hi.max(r.2);
                        continue;
                    }
                    merged.push(SubnetRange {
                        v6: r.0,
                        lo: r.1,
                        hi: r.2,
                        endpoint: r.3,
                    });
                    prev = Some(r);
                }
                ok.then(|| Routing::Subnet {
                    ranges: merged.into(),
                    fallback,
                })
            }
            _ => None,
        }
    }

    fn check_path(
        &mut self,
        src: usize,
        v: &Spanned<String>,
        field: &str,
        protocol: Protocol,
        has_key: bool,
    ) {
        let path = v.get_ref();
        if protocol == Protocol::Tcp {
            self.err(src, v, field, "tcp probes have no path");
        } else if !path.starts_with('/') {
            self.err(src, v, field, "must start with `/`");
        } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.err(
                src,
                v,
                field,
                "must not contain spaces or control characters",
            );
        } else if path.contains("{key}") && !has_key {
            self.err(src, v, field, "uses {key} but the monitor has no `key`");
        }
    }

    fn headers(
        &mut self,
        src: usize,
        h: &Spanned<BTreeMap<String, Spanned<String>>>,
        field: &str,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if h.get_ref().len() > 8 {
            self.err(src, h, field, "at most 8 headers");
        }
        for (k, v) in h.get_ref() {
            let token = !k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
            if !token {
                self.err(
                    src,
                    v,
                    &format!("{field}.{k}"),
                    format!("`{k}` is not a valid header name"),
                );
                continue;
            }
            if v.get_ref().chars().any(|c| c.is_control() && c != '\t') {
                self.err(
                    src,
                    v,
                    &format!("{field}.{k}"),
                    "header values must not contain control characters",
                );
                continue;
            }
            out.push((k.clone(), v.get_ref().clone()));
        }
        out
    }

    fn monitor(&mut self, src: usize, m: &Spanned<RawMonitor>) -> Option<MonitorSettings> {
        let m_ref = m.get_ref();
        let before = self.diag.errors.len();
        let protocol = match &m_ref.protocol {
            None => Protocol::Http,
            Some(v) => match v.get_ref().as_str() {
                "http" => Protocol::Http,
                "https" => Protocol::Https,
                "tcp" => Protocol::Tcp,
                other => {
                    self.err(
                        src,
                        v,
                        "monitor.protocol",
                        format!("unknown protocol `{other}` (expected http, https or tcp)"),
                    );
                    Protocol::Http
                }
            },
        };
        let default_port = match protocol {
            Protocol::Https => 443,
            _ => 80,
        };
        let port = match &m_ref.port {
            Some(v) => self
                .int(src, v, "monitor.port", 1, 65535)
                .unwrap_or(default_port),
            None if protocol == Protocol::Tcp => {
                self.err(src, m, "monitor.port", "tcp probes need a port");
                0
            }
            None => default_port,
        };
        let key = m_ref
            .key
            .as_ref()
            .and_then(|k| self.secret(src, k, "monitor.key"));
        let path = match &m_ref.path {
            Some(v) => {
                self.check_path(src, v, "monitor.path", protocol, m_ref.key.is_some());
                v.get_ref().clone()
            }
            None => "/".to_string(),
        };
        if let (Some(k), Some(p)) = (&m_ref.key, &m_ref.path)
            && !p.get_ref().contains("{key}")
        {
            self.warn(
                src,
                k,
                "monitor.key",
                "the key is never sent: `path` has no {key}",
            );
        }
        let interval = match &m_ref.interval {
            Some(v) => self
                .duration(src, v, "monitor.interval")
                .unwrap_or(Duration::from_secs(30)),
            None => Duration::from_secs(30),
        };
        if interval < Duration::from_millis(100)
            && let Some(v) = &m_ref.interval
        {
            self.err(src, v, "monitor.interval", "must be at least 100ms");
        }
        let timeout = match &m_ref.timeout {
            Some(v) => self
                .duration(src, v, "monitor.timeout")
                .unwrap_or(Duration::from_secs(10)),
            None => (interval / 2).min(Duration::from_secs(10)),
        };
        if timeout.is_zero() || timeout >= interval {
            let at = m_ref
                .timeout
                .as_ref()
                .map(|t| self.at(src, t, "monitor.timeout"))
                .unwrap_or_else(|| self.at(src, m, "monitor.timeout"));
            self.error(
                &at,
                format!(
                    "timeout ({}) must be above zero and below interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            );
        }
        let tolerated_failures = match &m_ref.tolerated_failures {
            Some(v) => self
                .int(src, v, "monitor.tolerated_failures", 0, 9)
                .unwrap_or(3),
            None => 3,
        };
        let required_successes = match &m_ref.required_successes {
            Some(v) => self
                .int(src, v, "monitor.required_successes", 1, 10)
                .unwrap_or(1),
            None => 1,
        };
        let mut expected_status = Vec::new();
        if let Some(list) = &m_ref.expected_status {
            if list.get_ref().is_empty() || list.get_ref().len() > 8 {
                self.err(
                    src,
                    list,
                    "monitor.expected_status",
                    "give 1 to 8 codes or ranges",
                );
            }
            for (i, s) in list.get_ref().iter().enumerate() {
                let field = format!("monitor.expected_status[{i}]");
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
                    Some((a, b))
                        if (100..=599).contains(&a) && (100..=599).contains(&b) && a <= b =>
                    {
                        expected_status.push(a as u16..=b as u16);
                    }
                    _ => self.err(
                        src,
                        s,
                        &field,
                        "expected a status code or range within 100-599, e.g. 200 or \"200-299\"",
                    ),
                }
            }
            if protocol == Protocol::Tcp {
                self.err(
                    src,
                    list,
                    "monitor.expected_status",
                    "tcp probes have no status",
                );
            }
        } else {
            expected_status.push(200..=200);
        }
        let headers = match &m_ref.headers {
            Some(h) => {
                if protocol == Protocol::Tcp {
                    self.err(src, h, "monitor.headers", "tcp probes send no headers");
                }
                self.headers(src, h, "monitor.headers")
            }
            None => Vec::new(),
        };
        let base = base_dir(&self.sources[src].path);
        let file = |this: &mut Self, v: &Option<Spanned<String>>, field: &str| -> Option<PathBuf> {
            let v = v.as_ref()?;
            let path = base.join(v.get_ref());
            if let Err(e) = std::fs::File::open(&path) {
                this.err(
                    src,
                    v,
                    field,
                    format!("cannot read {}: {e}", path.display()),
                );
            }
            Some(path)
        };
        let client_cert = file(self, &m_ref.client_cert, "monitor.client_cert");
        let client_key = file(self, &m_ref.client_key, "monitor.client_key");
        let ca_cert = file(self, &m_ref.ca_cert, "monitor.ca_cert");
        if let Some(c) = &m_ref.ca_cert
            && protocol != Protocol::Https
        {
            self.err(
                src,
                c,
                "monitor.ca_cert",
                "CA certificates need protocol = \"https\"",
            );
        }
        match (&m_ref.client_cert, &m_ref.client_key) {
            (Some(c), None) => {
                self.err(src, c, "monitor.client_key", "client_cert needs client_key")
            }
            (None, Some(k)) => self.err(
                src,
                k,
                "monitor.client_cert",
                "client_key needs client_cert",
            ),
            (Some(c), Some(_)) if protocol != Protocol::Https => {
                self.err(
                    src,
                    c,
                    "monitor.client_cert",
                    "client certificates need protocol = \"https\"",
                );
            }
            _ => {}
        }
        // Build the TLS configuration now, so unreadable, malformed or
        // mismatched certificates and keys are reported by `check`.
        if protocol == Protocol::Https && self.diag.errors.len() == before {
            let key = TlsKey {
                verify: m_ref.tls_verify.unwrap_or(true),
                ca_cert: ca_cert.clone(),
                identity: client_cert.clone().zip(client_key.clone()),
            };
            if let Err(e) = crate::health::tls::client_config(&key) {
                let blame = m_ref
                    .client_cert
                    .as_ref()
                    .map(|c| (c, "monitor.client_cert"))
                    .or(m_ref.ca_cert.as_ref().map(|c| (c, "monitor.ca_cert")));
                match blame {
                    Some((v, field)) => self.err(src, v, field, e),
                    None => self.err(src, m, "monitor", e),
                }
            }
        }
        let body_match = m_ref.body_match.as_ref().map(|b| {
            if b.get_ref().is_empty() {
                self.err(src, b, "monitor.body_match", "must not be empty");
            }
            if protocol == Protocol::Tcp {
                self.err(src, b, "monitor.body_match", "tcp probes have no body");
            }
            b.get_ref().clone()
        });
        if self.diag.errors.len() != before {
            return None;
        }
        Some(MonitorSettings {
            protocol,
            port,
            path,
            key,
            interval,
            timeout,
            tolerated_failures,
            required_successes,
            expected_status,
            headers,
            tls_verify: m_ref.tls_verify.unwrap_or(true),
            ca_cert,
            client_cert,
            client_key,
            body_match,
        })
    }

    // ---------------------------------------------------------------- finish

    /// Creates nodes (with empty non-terminals), resolves links, and checks
    /// what needs the whole picture: glue, CNAME loops.
    fn finish(&mut self) {
        if !self.diag.ok() {
            return;
        }
        self.resolve_nested();
        if !self.diag.ok() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut ats: Vec<(NodeId, Vec<Vec<At>>)> = Vec::new();
        for p in pending {
            let data = match p.kind {
                PendingKind::Records(sets) => {
                    let (sets, where_): (Vec<RrSet>, Vec<Vec<At>>) = sets.into_iter().unzip();
                    ats.push((self.table.nodes.len() as NodeId, where_));
                    NodeData::Records(sets)
                }
                PendingKind::Profile(pid) => NodeData::Profile(pid),
            };
            let id = self.table.add_node(Node {
                name: p.name.clone(),
                zone: p.zone,
                data,
            });
            match &self.table.nodes[id as usize].data {
                NodeData::Profile(pid) => self.table.profiles[*pid as usize].node = id,
                _ if self.table.zones[p.zone as usize].origin == p.name => {
                    self.table.zones[p.zone as usize].apex = id;
                }
                _ => {}
            }
        }
        // Empty non-terminals: every ancestor up to the apex exists.
        let names: Vec<(DomainName, ZoneId)> = self
            .table
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.zone))
            .collect();
        for (name, zone) in names {
            let origin = self.table.zones[zone as usize].origin.clone();
            let mut cur = name.parent();
            while let Some(n) = cur {
                if !n.is_within(&origin) || self.table.node_id(n.wire()).is_some() {
                    break;
                }
                self.table.add_node(Node {
                    name: n.clone(),
                    zone,
                    data: NodeData::Empty,
                });
                cur = n.parent();
            }
        }
        // Links from record data to nodes.
        let link_of = |table: &RoutingTable, rr: &WireRr| -> Link {
            let Some(target) = rr.target() else {
                return Link::None;
            };
            match table.lookup(target.wire()) {
                crate::routing::Lookup::Found(id) => Link::Node(id),
                crate::routing::Lookup::NxDomain(z) => Link::Missing(z),
                crate::routing::Lookup::Outside => Link::None,
            }
        };
        for i in 0..self.table.nodes.len() {
            let links: Vec<Vec<Link>> = match &self.table.nodes[i].data {
                NodeData::Records(sets) => sets
                    .iter()
                    .map(|s| s.rrs.iter().map(|rr| link_of(&self.table, rr)).collect())
                    .collect(),
                _ => continue,
            };
            if let NodeData::Records(sets) = &mut self.table.nodes[i].data {
                for (set, l) in sets.iter_mut().zip(links) {
                    for (rr, link) in set.rrs.iter_mut().zip(l) {
                        rr.link = link;
                    }
                }
            }
        }
        for i in 0..self.table.endpoints.len() {
            let link = link_of(&self.table, &self.table.endpoints[i].rr);
            self.table.endpoints[i].rr.link = link;
        }
        self.check_glue(&ats);
        self.check_cname_loops(&ats);
        self.check_host_targets();
        // Each probe's (profile, endpoint) names, for the prober's logs.
        for spec in &mut self.probes {
            spec.labels = spec
                .endpoints
                .iter()
                .filter_map(|&id| {
                    let ep = self.table.endpoints.get(id as usize)?;
                    let profile = self.table.profiles.get(ep.profile as usize)?;
                    Some((profile.name.as_str().into(), (*ep.name).into()))
                })
                .collect();
        }
    }

    /// Warns about host-name targets inside a zone we serve that name
    /// nothing there: every answer through them ends in NXDOMAIN.
    fn check_host_targets(&mut self) {
        for (host, at) in std::mem::take(&mut self.host_targets) {
            if let crate::routing::Lookup::NxDomain(z) = self.table.lookup(host.wire()) {
                let zone = self.table.zones[z as usize].origin.clone();
                let src = &self.sources[at.src];
                self.diag.warn(
                    src,
                    at.span.clone(),
                    &at.field,
                    format!(
                        "{host} is inside zone {zone}, which this server answers, and nothing is named so there: answers through this endpoint will be NXDOMAIN"
                    ),
                );
            }
        }
    }

    fn check_glue(&mut self, _ats: &[(NodeId, Vec<Vec<At>>)]) {
        let ns_hosts = std::mem::take(&mut self.ns_hosts);
        for (zone, host, at) in ns_hosts {
            if self.table.zone_of(&host) != Some(zone) {
                continue;
            }
            let has_addr = self.table.node_id(host.wire()).is_some_and(|id| {
                matches!(&self.table.nodes[id as usize].data, NodeData::Records(sets)
                    if sets.iter().any(|s| s.rtype == rtype::A || s.rtype == rtype::AAAA))
            });
            if !has_addr {
                self.error(
                    &at,
                    format!("{host} is inside the zone but has no A or AAAA record: add one to `records` (glue)"),
                );
            }
        }
    }

    /// Rejects CNAME chains that loop, through static CNAMEs and profile
    /// endpoints whose host-name targets are in our zones.
    fn check_cname_loops(&mut self, ats: &[(NodeId, Vec<Vec<At>>)]) {
        let n = self.table.nodes.len();
        // Edges: node -> (next node, where the edge was written).
        let mut edges: Vec<Vec<(NodeId, Option<At>)>> = vec![Vec::new(); n];
        let where_of: FxHashMap<NodeId, &Vec<Vec<At>>> =
            ats.iter().map(|(id, w)| (*id, w)).collect();
        for (i, node) in self.table.nodes.iter().enumerate() {
            match &node.data {
                NodeData::Records(sets) => {
                    for (si, set) in sets.iter().enumerate() {
                        if set.rtype != rtype::CNAME {
                            continue;
                        }
                        if let Link::Node(to) = set.rrs[0].link {
                            let at = where_of
                                .get(&(i as NodeId))
                                .and_then(|w| w.get(si))
                                .and_then(|w| w.first())
                                .cloned();
                            edges[i].push((to, at));
                        }
                    }
                }
                NodeData::Profile(pid) => {
                    let p = &self.table.profiles[*pid as usize];
                    for ep in self.table.endpoints_of(p) {
                        if let Link::Node(to) = ep.rr.link {
                            edges[i].push((to, None));
                        }
                        // A nested endpoint answers with its child's
                        // targets, as if the name were the child's.
                        if let Target::Nested(child) = ep.target
                            && let Some(c) = self.table.profiles.get(child as usize)
                        {
                            edges[i].push((c.node, None));
                        }
                    }
                }
                NodeData::Empty => {}
            }
        }
        // Iterative DFS with colours: 0 new, 1 on stack, 2 done.
        let mut colour = vec![0u8; n];
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if let Some((to, at)) = edges[v].get(*next).cloned() {
                    *next += 1;
                    let to = to as usize;
                    if colour[to] == 1 {
                        let from = self.table.nodes[v].name.clone();
                        let msg = format!(
                            "CNAME loop: {from} leads back to {} through CNAMEs in our zones",
                            self.table.nodes[to].name
                        );
                        match at {
                            Some(at) => self.error(&at, msg),
                            None => {
                                let path = self.profile_source(v);
                                self.diag.file_error(&path, msg);
                            }
                        }
                        return;
                    }
                    if colour[to] == 0 {
                        colour[to] = 1;
                        stack.push((to, 0));
                    }
                } else {
                    colour[v] = 2;
                    stack.pop();
                }
            }
        }
    }

    fn profile_source(&self, node: usize) -> PathBuf {
        match &self.table.nodes[node].data {
            NodeData::Profile(pid) => self.table.profiles[*pid as usize].source.clone(),
            _ => self
                .sources
                .first()
                .map(|s| s.path.clone())
                .unwrap_or_default(),
        }
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
    use super::*;

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
