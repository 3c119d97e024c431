//! Stage: the server settings (`switchyard.toml` outside zones): DNS,
//! rate limiting, cookies, admin, GeoIP, profiles directory.

use super::*;
use crate::config::keys;

/// The server file's sections, each read on its own: `None` where one was
/// wrong (reported). Zones and profiles are still checked with defaults
/// standing in for a wrong section, so one run reports every problem; the
/// settings stand only if every section does ([`Sections::settings`]).
pub(super) struct Sections {
    pub(super) dns: Option<DnsSettings>,
    pub(super) admin: Option<AdminSettings>,
    /// `[geoip]`: the database's path and the database, opened.
    pub(super) geoip: Option<Geoip>,
    /// `[profiles]`.
    pub(super) profiles: Option<ProfilesSection>,
    pub(super) state_file: Option<PathBuf>,
    /// `[cluster]`, if there is one.
    pub(super) cluster: Option<Option<crate::config::ClusterSettings>>,
    pub(super) prober: Option<crate::config::ProberSettings>,
    pub(super) notify: Option<Vec<crate::notify::TargetConfig>>,
    /// `[rum]`, if there is one.
    pub(super) rum: Option<Option<crate::config::RumSettings>>,
    pub(super) latency: Option<crate::config::LatencySettings>,
    pub(super) traffic: Option<crate::config::TrafficSettings>,
}

/// `[geoip]`, read.
#[derive(Default)]
pub(super) struct Geoip {
    /// `database`, relative to the server file's directory.
    pub(super) path: Option<PathBuf>,
    /// The database, opened (or the running one, unchanged on disk).
    pub(super) db: Option<Arc<crate::geo::GeoDb>>,
}

/// `[profiles]`, read.
pub(super) struct ProfilesSection {
    /// `None` when the directory named is missing (reported).
    pub(super) dir: Option<PathBuf>,
    pub(super) max_file_size: u64,
    /// `false` when `max_file_size` was wrong (reported; the default
    /// stands in).
    pub(super) max_ok: bool,
    pub(super) watch: bool,
}

impl Sections {
    /// The settings, if every section was right.
    pub(super) fn settings(self) -> Option<Settings> {
        let profiles = self.profiles.filter(|p| p.max_ok)?;
        Some(Settings {
            dns: self.dns?,
            admin: self.admin?,
            geoip_database: self.geoip?.path,
            profiles_dir: profiles.dir?,
            profiles_max_file_size: profiles.max_file_size,
            watch: profiles.watch,
            state_file: self.state_file,
            cluster: self.cluster?,
            prober: self.prober?,
            notify: self.notify?,
            rum: self.rum?,
            latency: self.latency?,
            traffic: self.traffic?,
        })
    }
}

/// Every section of the server file.
pub(super) fn sections(
    r: &mut Report,
    src: usize,
    raw: &RawServer,
    base: &Path,
    carry: &Carry,
) -> Sections {
    Sections {
        dns: dns(r, src, &raw.dns),
        admin: admin(r, src, &raw.admin),
        geoip: geoip(r, src, raw, base, carry),
        profiles: profiles(r, src, raw, base),
        state_file: raw.state_file.as_ref().map(|s| base.join(s.get_ref())),
        cluster: match &raw.cluster {
            Some(c) => super::cluster::cluster(r, src, c).map(Some),
            None => Some(None),
        },
        prober: super::cluster::prober(r, src, &raw.prober),
        notify: super::notify::notify(r, src, &raw.notify, base),
        rum: match &raw.rum {
            Some(c) => super::rum::rum(r, src, c, base).map(Some),
            None => Some(None),
        },
        latency: latency(r, src, &raw.latency, base),
        traffic: traffic(r, src, &raw.traffic),
    }
}

/// `[latency]`. The file itself is read by the server (and re-read when
/// it changes): a bad one is reported there and never stops a reload.
fn latency(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawLatency,
    base: &Path,
) -> Option<crate::config::LatencySettings> {
    let mut policy = crate::latency::Policy::default();
    let half_life = r.bounded(src, raw.half_life.as_ref(), None, &keys::LATENCY_HALF_LIFE);
    let mut k = r.section(src);
    k.key(
        &raw.min_samples,
        &keys::LATENCY_MIN_SAMPLES,
        &mut policy.min_samples,
    );
    k.key(
        &raw.max_networks,
        &keys::LATENCY_MAX_NETWORKS,
        &mut policy.max_networks,
    );
    if let Some(h) = k.take(half_life) {
        policy.half_life = h;
    }
    if let Some(b) = &raw.band {
        match crate::latency::Band::parse(b.get_ref()) {
            Ok(band) => policy.band = band,
            Err(e) => {
                k.r.err(src, b, "latency.band", e);
                k.fail();
            }
        }
    }
    let file = raw.file.as_ref().map(|f| base.join(f.get_ref()));
    k.done(crate::config::LatencySettings { file, policy })
}

/// `[traffic]`.
fn traffic(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawTraffic,
) -> Option<crate::config::TrafficSettings> {
    let mut t = crate::config::TrafficSettings::default();
    let mut k = r.section(src);
    if let Some(on) = raw.enabled {
        t.enabled = on;
    }
    k.key(&raw.networks, &keys::TRAFFIC_NETWORKS, &mut t.networks);
    k.key(&raw.queue, &keys::TRAFFIC_QUEUE, &mut t.queue);
    k.done(t)
}

/// `[dns]`.
fn dns(r: &mut Report, src: usize, raw: &crate::config::raw::RawDns) -> Option<DnsSettings> {
    let mut dns = DnsSettings::default();
    let mut k = r.section(src);
    if let Some(listen) = &raw.listen {
        let listen = listen_addresses(k.r, src, listen);
        dns.listen = k.take(listen).unwrap_or_default();
    }
    if let Some(ecs) = raw.ecs {
        dns.ecs = ecs;
    }
    if let Some(n) = &raw.nsid {
        let text = n.get_ref();
        if text.is_empty() || text.len() > 128 || !text.chars().all(|c| c.is_ascii_graphic()) {
            k.r.err(
                src,
                n,
                "dns.nsid",
                "1-128 printable ASCII characters without spaces, e.g. the node's name \"ns1\"",
            );
            k.fail();
        } else {
            dns.nsid = Some(text.clone());
        }
    }
    k.key(
        &raw.signature_cache,
        &keys::SIGNATURE_CACHE,
        &mut dns.signature_cache,
    );
    k.key(
        &raw.signatures_per_second,
        &keys::SIGNATURES_PER_SECOND,
        &mut dns.signing.per_second,
    );
    k.key(
        &raw.signatures_per_client,
        &keys::SIGNATURES_PER_CLIENT,
        &mut dns.signing.per_client,
    );
    if let Some(t) = &raw.tcp_idle_timeout {
        let d = k.r.duration(src, t, "dns.tcp_idle_timeout");
        match k.take(d) {
            Some(d) if d < Duration::from_millis(100) || d > Duration::from_secs(3600) => {
                k.r.err(
                    src,
                    t,
                    "dns.tcp_idle_timeout",
                    "must be between 100ms and 1h",
                );
                k.fail();
            }
            Some(d) => dns.tcp_idle_timeout = d,
            None => {}
        }
    }
    k.key(
        &raw.max_tcp_connections,
        &keys::MAX_TCP_CONNECTIONS,
        &mut dns.max_tcp_connections,
    );
    k.key(
        &raw.max_tcp_per_client,
        &keys::MAX_TCP_PER_CLIENT,
        &mut dns.max_tcp_per_client,
    );
    k.key(&raw.udp_workers, &keys::UDP_WORKERS, &mut dns.udp_workers);
    if let Some(rl) = &raw.rate_limit {
        let rl = rate_limit(k.r, src, rl.get_ref());
        dns.rate_limit = k.take(rl).flatten();
    }
    if let Some(c) = &raw.cookies {
        let c = cookies(k.r, src, c.get_ref());
        dns.cookies = k.take(c).unwrap_or_default();
    }
    if let Some(x) = &raw.xdp {
        let x = super::xdp::xdp(k.r, src, x, &dns.listen);
        dns.xdp = k.take(x);
    }
    k.done(dns)
}

/// `dns.listen`: at least one address, none twice.
fn listen_addresses(
    r: &mut Report,
    src: usize,
    listen: &Spanned<Vec<Spanned<String>>>,
) -> Option<Vec<SocketAddr>> {
    let mut k = r.section(src);
    let mut out = Vec::new();
    if listen.get_ref().is_empty() {
        k.r.err(
            src,
            listen,
            "dns.listen",
            "at least one address is required",
        );
        k.fail();
    }
    for (i, a) in listen.get_ref().iter().enumerate() {
        let field = format!("dns.listen[{i}]");
        match a.get_ref().parse::<SocketAddr>() {
            Ok(addr) if out.contains(&addr) => {
                k.r.err(src, a, &field, format!("{addr} is listed twice"));
                k.fail();
            }
            Ok(addr) => out.push(addr),
            Err(_) => {
                k.r.err(
                    src,
                    a,
                    &field,
                    format!(
                        "`{}` is not an address with a port, e.g. \"127.0.0.1:53\" or \"[::1]:53\"",
                        a.get_ref()
                    ),
                );
                k.fail();
            }
        }
    }
    k.done(out)
}

/// `[admin]`.
fn admin(r: &mut Report, src: usize, raw: &crate::config::raw::RawAdmin) -> Option<AdminSettings> {
    let mut admin = AdminSettings {
        listen: crate::config::DEFAULT_ADMIN_LISTEN,
        token: None,
        tokens: Vec::new(),
    };
    let mut k = r.section(src);
    if let Some(l) = &raw.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => admin.listen = a,
            Err(_) => {
                k.r.err(
                    src,
                    l,
                    "admin.listen",
                    format!("`{}` is not an address with a port", l.get_ref()),
                );
                k.fail();
            }
        }
    }
    if let Some(t) = &raw.token {
        let token = k.r.secret(src, t, "admin.token");
        admin.token = k.take(token);
    }
    if let Some(named) = &raw.tokens {
        for (name, t) in named.get_ref() {
            let field = format!("admin.tokens.{name}");
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
            if !ok {
                k.r.err(
                    src,
                    t,
                    &field,
                    "a token's name is 1 to 64 letters, digits, '-', '_', '.' or '@' (it is shown in the status page's history)",
                );
                k.fail();
                continue;
            }
            let secret = k.r.secret(src, t, &field);
            if let Some(secret) = k.take(secret) {
                admin.tokens.push((name.clone(), secret));
            }
        }
    }
    if !admin.listen.ip().is_loopback()
        && raw.token.is_none()
        && raw.tokens.as_ref().is_none_or(|t| t.get_ref().is_empty())
        && let Some(l) = &raw.listen
    {
        k.r.warn(
            src,
            l,
            "admin.listen",
            "the admin API listens beyond loopback without a token: anyone who can reach it can disable endpoints",
        );
    }
    k.done(admin)
}

/// `[geoip]`: the database opened, or the running one kept when its file
/// has not changed.
fn geoip(r: &mut Report, src: usize, raw: &RawServer, base: &Path, carry: &Carry) -> Option<Geoip> {
    let Some(d) = raw.geoip.as_ref().and_then(|g| g.database.as_ref()) else {
        return Some(Geoip::default());
    };
    let path = base.join(d.get_ref());
    if let Some(old) = &carry.geo
        && old.path() == path
        && old.stamp.is_some()
        && old.stamp == crate::geo::file_stamp(&path)
    {
        return Some(Geoip {
            path: Some(path),
            db: Some(old.clone()),
        });
    }
    match crate::geo::GeoDb::open(&path) {
        Ok(db) => Some(Geoip {
            path: Some(path),
            db: Some(Arc::new(db)),
        }),
        Err(e) => {
            r.err(src, d, "geoip.database", e);
            None
        }
    }
}

/// `[profiles]`: a directory named here must exist (the default one may
/// be missing: no profiles yet).
fn profiles(r: &mut Report, src: usize, raw: &RawServer, base: &Path) -> Option<ProfilesSection> {
    let dir = match &raw.profiles.dir {
        Some(d) => {
            let p = base.join(d.get_ref());
            if p.is_dir() {
                Some(p)
            } else {
                r.err(
                    src,
                    d,
                    "profiles.dir",
                    format!("{} is not a directory", p.display()),
                );
                None
            }
        }
        None => Some(base.join("profiles")),
    };
    let max = match &raw.profiles.max_file_size {
        Some(s) => r.size(src, s, "profiles.max_file_size", 1 << 10, 256 << 20),
        None => Some(crate::config::DEFAULT_PROFILE_FILE_LIMIT),
    };
    Some(ProfilesSection {
        dir,
        max_file_size: max.unwrap_or(crate::config::DEFAULT_PROFILE_FILE_LIMIT),
        max_ok: max.is_some(),
        watch: raw.profiles.watch.unwrap_or(true),
    })
}

/// `[dns.rate_limit]`: `Some(None)` when disabled.
fn rate_limit(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawRateLimit,
) -> Option<Option<crate::dns::rrl::Config>> {
    let mut c = crate::dns::rrl::Config::default();
    let mut k = r.section(src);
    let f = |key: &str| format!("dns.rate_limit.{key}");
    k.key(
        &raw.responses_per_second,
        &keys::RESPONSES_PER_SECOND,
        &mut c.responses_per_second,
    );
    k.key(
        &raw.nxdomains_per_second,
        &keys::NXDOMAINS_PER_SECOND,
        &mut c.nxdomains_per_second,
    );
    k.key(
        &raw.errors_per_second,
        &keys::ERRORS_PER_SECOND,
        &mut c.errors_per_second,
    );
    // Unset, the total follows the rate: ten times it (the default
    // 1,000 for the default 100), so raising `responses_per_second`
    // for a busy network is not undone by a fixed total.
    c.total_per_second = c
        .responses_per_second
        .saturating_mul(crate::dns::rrl::TOTAL_PER_RATE)
        .min(1_000_000);
    k.int(
        &raw.total_per_second,
        &f("total_per_second"),
        (0, 1_000_000),
        &mut c.total_per_second,
    );
    k.key(&raw.slip, &keys::SLIP, &mut c.slip);
    k.key(&raw.ipv4_prefix, &keys::IPV4_PREFIX, &mut c.ipv4_prefix);
    k.key(&raw.ipv6_prefix, &keys::IPV6_PREFIX, &mut c.ipv6_prefix);
    k.key(&raw.table_size, &keys::TABLE_SIZE, &mut c.table_size);
    if let Some(list) = &raw.exempt {
        c.exempt.clear();
        for (i, n) in list.get_ref().iter().enumerate() {
            let text = n.get_ref().trim();
            let field = f(&format!("exempt[{i}]"));
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(net) if net != net.trunc() => {
                    k.r.warn(
                        src,
                        n,
                        &field,
                        format!("`{text}` has host bits set: it means {}", net.trunc()),
                    );
                    c.exempt.push(net.trunc());
                }
                Ok(net) => c.exempt.push(net),
                Err(_) => {
                    k.r.err(
                        src,
                        n,
                        &field,
                        format!("`{text}` is not a network: write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\""),
                    );
                    k.fail();
                }
            }
        }
    }
    k.done((raw.enabled != Some(false)).then_some(c))
}

/// `[dns.cookies]`.
fn cookies(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawCookies,
) -> Option<crate::config::CookieSettings> {
    let mut c = crate::config::CookieSettings {
        enabled: raw.enabled != Some(false),
        ..Default::default()
    };
    let mut k = r.section(src);
    for (v, field, slot) in [
        (&raw.secret, "dns.cookies.secret", &mut c.secret),
        (
            &raw.previous_secret,
            "dns.cookies.previous_secret",
            &mut c.previous,
        ),
    ] {
        let Some(v) = v else { continue };
        let secret = k.r.secret(src, v, field);
        if let Some(s) = k.take(secret) {
            match crate::dns::cookie::parse_secret(s.expose()) {
                Ok(s) => *slot = Some(s),
                Err(e) => {
                    k.r.err(src, v, field, e);
                    k.fail();
                }
            }
        }
    }
    if raw.secret.is_none()
        && let Some(v) = &raw.previous_secret
    {
        k.r.err(
            src,
            v,
            "dns.cookies.previous_secret",
            "set `secret` too: the previous secret is only accepted beside a current one",
        );
        k.fail();
    }
    k.done(c)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn server_settings_are_read_and_located() {
        let c = load_text(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\ntcp_idle_timeout = \"3s\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.settings.dns.tcp_idle_timeout,
            std::time::Duration::from_secs(3)
        );
        let e = errors(load_text(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\ntcp_idle_timeout = \"soon\"\n",
            &[],
        ));
        assert!(e[0].starts_with("dns.tcp_idle_timeout: "), "{e:?}");
        let e = errors(load_text("[admin]\nlisten = \"nowhere\"\n", &[]));
        assert_eq!(e, ["admin.listen: `nowhere` is not an address with a port"]);
    }

    #[test]
    fn nsid() {
        let c = load_text("[dns]\nnsid = \"ns1\"\n", &[]).unwrap();
        assert_eq!(c.table.nsid.as_deref(), Some(&b"ns1"[..]));
        for bad in ["\"\"", "\"ns 1\"", &format!("\"{}\"", "x".repeat(129))] {
            let e = errors(load_text(&format!("[dns]\nnsid = {bad}\n"), &[]));
            assert!(
                e[0].starts_with("dns.nsid: 1-128 printable ASCII"),
                "{bad}: {e:?}"
            );
        }
    }
}
