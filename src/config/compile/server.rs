//! Stage: the server settings (`switchyard.toml` outside zones): DNS,
//! rate limiting, cookies, admin, GeoIP, profiles directory.

use super::*;

impl Loader<'_> {
    pub(super) fn settings(&mut self, src: usize, raw: &RawServer, base: &Path) -> Settings {
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
        if let Some(n) = &raw.dns.nsid {
            let text = n.get_ref();
            if text.is_empty() || text.len() > 128 || !text.chars().all(|c| c.is_ascii_graphic()) {
                self.err(
                    src,
                    n,
                    "dns.nsid",
                    "1-128 printable ASCII characters without spaces, e.g. the node's name \"ns1\"",
                );
            } else {
                dns.nsid = Some(text.clone());
            }
        }
        if let Some(n) = &raw.dns.signature_cache
            && let Some(n) = self.int::<usize>(src, n, "dns.signature_cache", 64, 16_777_216)
        {
            dns.signature_cache = n;
        }
        if let Some(n) = &raw.dns.signatures_per_second
            && let Some(n) = self.int(src, n, "dns.signatures_per_second", 0, 10_000_000)
        {
            dns.signing.per_second = n;
        }
        if let Some(n) = &raw.dns.signatures_per_client
            && let Some(n) = self.int(src, n, "dns.signatures_per_client", 0, 1_000_000)
        {
            dns.signing.per_client = n;
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
            listen: crate::config::DEFAULT_ADMIN_LISTEN,
            token: None,
            tokens: Vec::new(),
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
        if let Some(named) = &raw.admin.tokens {
            for (name, t) in named.get_ref() {
                let field = format!("admin.tokens.{name}");
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
                if !ok {
                    self.err(
                        src,
                        t,
                        &field,
                        "a token's name is 1 to 64 letters, digits, '-', '_', '.' or '@' (it is shown in the status page's history)",
                    );
                    continue;
                }
                if let Some(secret) = self.secret(src, t, &field) {
                    admin.tokens.push((name.clone(), secret));
                }
            }
        }
        if !admin.listen.ip().is_loopback()
            && raw.admin.token.is_none()
            && raw
                .admin
                .tokens
                .as_ref()
                .is_none_or(|t| t.get_ref().is_empty())
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
                .unwrap_or(crate::config::DEFAULT_PROFILE_FILE_LIMIT),
            None => crate::config::DEFAULT_PROFILE_FILE_LIMIT,
        };
        let state_file = raw.state_file.as_ref().map(|s| base.join(s.get_ref()));
        let cluster = raw.cluster.as_ref().and_then(|c| self.cluster(src, c));
        let prober = self.prober(src, &raw.prober);
        let notify = self.notify(src, &raw.notify, base);
        Settings {
            dns,
            admin,
            geoip_database,
            profiles_dir,
            profiles_max_file_size,
            watch: raw.profiles.watch.unwrap_or(true),
            state_file,
            cluster,
            prober,
            notify,
        }
    }

    /// `[dns.rate_limit]`: `None` when disabled.
    pub(super) fn rate_limit(
        &mut self,
        src: usize,
        raw: &crate::config::raw::RawRateLimit,
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
        // Unset, the total follows the rate: ten times it (the default
        // 1,000 for the default 100), so raising `responses_per_second`
        // for a busy network is not undone by a fixed total.
        c.total_per_second = c
            .responses_per_second
            .saturating_mul(crate::dns::rrl::TOTAL_PER_RATE)
            .min(1_000_000);
        if let Some(v) = &raw.total_per_second
            && let Some(n) = self.int(src, v, &f("total_per_second"), 0, 1_000_000)
        {
            c.total_per_second = n;
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
    pub(super) fn cookies(
        &mut self,
        src: usize,
        raw: &crate::config::raw::RawCookies,
    ) -> crate::config::CookieSettings {
        let mut c = crate::config::CookieSettings {
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
