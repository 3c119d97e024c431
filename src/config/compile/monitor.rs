//! Stage: a profile's `[monitor]` table, resolved into [`MonitorSettings`].

use super::*;

impl Loader<'_> {
    pub(super) fn check_path(
        &mut self,
        src: usize,
        v: &Spanned<String>,
        field: &str,
        protocol: Protocol,
        has_key: bool,
    ) {
        let path = v.get_ref();
        if protocol == Protocol::Tcp {
            self.r.err(src, v, field, "tcp probes have no path");
        } else if !path.starts_with('/') {
            self.r.err(src, v, field, "must start with `/`");
        } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.r.err(
                src,
                v,
                field,
                "must not contain spaces or control characters",
            );
        } else if path.contains("{key}") && !has_key {
            self.r
                .err(src, v, field, "uses {key} but the monitor has no `key`");
        }
    }

    pub(super) fn headers(
        &mut self,
        src: usize,
        h: &Spanned<BTreeMap<String, Spanned<String>>>,
        field: &str,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if h.get_ref().len() > 8 {
            self.r.err(src, h, field, "at most 8 headers");
        }
        for (k, v) in h.get_ref() {
            let token = !k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
            if !token {
                self.r.err(
                    src,
                    v,
                    &format!("{field}.{k}"),
                    format!("`{k}` is not a valid header name"),
                );
                continue;
            }
            if v.get_ref().chars().any(|c| c.is_control() && c != '\t') {
                self.r.err(
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

    pub(super) fn monitor(
        &mut self,
        src: usize,
        m: &Spanned<RawMonitor>,
    ) -> Option<MonitorSettings> {
        let m_ref = m.get_ref();
        let before = self.r.diag.errors.len();
        let protocol = match &m_ref.protocol {
            None => Protocol::Http,
            Some(v) => match v.get_ref().as_str() {
                "http" => Protocol::Http,
                "https" => Protocol::Https,
                "tcp" => Protocol::Tcp,
                other => {
                    self.r.err(
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
                .r
                .int(src, v, "monitor.port", 1, 65535)
                .unwrap_or(default_port),
            None if protocol == Protocol::Tcp => {
                self.r.err(src, m, "monitor.port", "tcp probes need a port");
                0
            }
            None => default_port,
        };
        let key = m_ref
            .key
            .as_ref()
            .and_then(|k| self.r.secret(src, k, "monitor.key"));
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
            self.r.warn(
                src,
                k,
                "monitor.key",
                "the key is never sent: `path` has no {key}",
            );
        }
        let interval = match &m_ref.interval {
            Some(v) => self
                .r
                .duration(src, v, "monitor.interval")
                .unwrap_or(Duration::from_secs(30)),
            None => Duration::from_secs(30),
        };
        if interval < Duration::from_millis(100)
            && let Some(v) = &m_ref.interval
        {
            self.r
                .err(src, v, "monitor.interval", "must be at least 100ms");
        }
        let timeout = match &m_ref.timeout {
            Some(v) => self
                .r
                .duration(src, v, "monitor.timeout")
                .unwrap_or(Duration::from_secs(10)),
            None => (interval / 2).min(Duration::from_secs(10)),
        };
        if timeout.is_zero() || timeout >= interval {
            let at = m_ref
                .timeout
                .as_ref()
                .map(|t| self.r.at(src, t, "monitor.timeout"))
                .unwrap_or_else(|| self.r.at(src, m, "monitor.timeout"));
            self.r.error(
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
                .r
                .int(src, v, "monitor.tolerated_failures", 0, 9)
                .unwrap_or(3),
            None => 3,
        };
        let required_successes = match &m_ref.required_successes {
            Some(v) => self
                .r
                .int(src, v, "monitor.required_successes", 1, 10)
                .unwrap_or(1),
            None => 1,
        };
        let mut expected_status = Vec::new();
        if let Some(list) = &m_ref.expected_status {
            if list.get_ref().is_empty() || list.get_ref().len() > 8 {
                self.r.err(
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
                    _ => self.r.err(
                        src,
                        s,
                        &field,
                        "expected a status code or range within 100-599, e.g. 200 or \"200-299\"",
                    ),
                }
            }
            if protocol == Protocol::Tcp {
                self.r.err(
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
                    self.r
                        .err(src, h, "monitor.headers", "tcp probes send no headers");
                }
                self.headers(src, h, "monitor.headers")
            }
            None => Vec::new(),
        };
        let base = base_dir(&self.r.sources[src].path);
        let file = |this: &mut Self, v: &Option<Spanned<String>>, field: &str| -> Option<PathBuf> {
            let v = v.as_ref()?;
            let path = base.join(v.get_ref());
            if let Err(e) = std::fs::File::open(&path) {
                this.r.err(
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
            self.r.err(
                src,
                c,
                "monitor.ca_cert",
                "CA certificates need protocol = \"https\"",
            );
        }
        match (&m_ref.client_cert, &m_ref.client_key) {
            (Some(c), None) => {
                self.r
                    .err(src, c, "monitor.client_key", "client_cert needs client_key")
            }
            (None, Some(k)) => self.r.err(
                src,
                k,
                "monitor.client_cert",
                "client_key needs client_cert",
            ),
            (Some(c), Some(_)) if protocol != Protocol::Https => {
                self.r.err(
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
        if protocol == Protocol::Https && self.r.diag.errors.len() == before {
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
                    Some((v, field)) => self.r.err(src, v, field, e),
                    None => self.r.err(src, m, "monitor", e),
                }
            }
        }
        let body_match = m_ref.body_match.as_ref().map(|b| {
            if b.get_ref().is_empty() {
                self.r
                    .err(src, b, "monitor.body_match", "must not be empty");
            }
            if protocol == Protocol::Tcp {
                self.r
                    .err(src, b, "monitor.body_match", "tcp probes have no body");
            }
            b.get_ref().clone()
        });
        if self.r.diag.errors.len() != before {
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
            quorum: None,
            source_v4: None,
            source_v6: None,
        })
    }

    // ---------------------------------------------------------------- finish
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
}
