//! The profile's monitor (`monitorConfig`) and the probe headers of its
//! endpoints, in the limits Switchyard's prober keeps.

use super::cx::Cx;
use super::draft::Monitor;
use super::keys::MONITOR_KEYS;
use super::model::{AzHeader, AzMonitor, AzRange};
use crate::import::arm::Flat;

impl Cx<'_> {
    /// The profile's `[monitor]`, setting by setting; Azure's defaults
    /// when it has no `monitorConfig`.
    pub(super) fn monitor(&mut self, p: &Flat, m: Option<AzMonitor>) -> Monitor {
        let Some(m) = m else {
            self.note(&p.path("monitorConfig"), "missing: Azure's defaults written (HTTP on port 80, path /, every 30s, timeout 10s, 3 tolerated failures)");
            return Monitor {
                protocol: "http",
                port: Some(80),
                path: Some("/".into()),
                interval: 30,
                timeout_ms: 10_000,
                tolerated: 3,
                ..Monitor::default()
            };
        };
        self.unknown(p, "monitorConfig", &m.other, MONITOR_KEYS);
        let at = |k: &str| p.path(&format!("monitorConfig.{k}"));
        let protocol = self.protocol(&at("protocol"), m.protocol.as_deref());
        let port = self.port(&at("port"), m.port, protocol);
        let path = self.path(&at("path"), m.path, protocol);
        let interval = self.interval(&at("intervalInSeconds"), m.interval_in_seconds);
        let timeout_ms = self.timeout(&at("timeoutInSeconds"), m.timeout_in_seconds, interval);
        let tolerated = self.tolerated(
            &at("toleratedNumberOfFailures"),
            m.tolerated_number_of_failures,
        );
        let ranges = m.expected_status_code_ranges.unwrap_or_default();
        let expected = self.expected_status(p, &ranges, protocol);
        if protocol == "https" {
            self.note(&at("protocol"), "HTTPS: Azure does not verify the certificates of its probes, so `tls_verify = false` is written; Switchyard verifies by default: remove it once the endpoints' certificates name their Host");
        }
        let headers = self.headers(
            p,
            "monitorConfig.customHeaders",
            m.custom_headers.as_deref(),
            protocol,
        );
        Monitor {
            protocol,
            port,
            path,
            interval,
            timeout_ms,
            tolerated,
            expected,
            headers,
        }
    }

    /// `protocol`: HTTP (also when missing), HTTPS or TCP.
    fn protocol(&mut self, at: &str, protocol: Option<&str>) -> &'static str {
        match protocol.map(str::to_ascii_lowercase).as_deref() {
            Some("https") => "https",
            Some("tcp") => "tcp",
            Some("http") | None => "http",
            Some(other) => {
                self.error(
                    at,
                    format!("unknown protocol `{other}` (expected HTTP, HTTPS or TCP)"),
                );
                "http"
            }
        }
    }

    /// `port`: optional, but for TCP.
    fn port(&mut self, at: &str, port: Option<i64>, protocol: &str) -> Option<i64> {
        match port {
            Some(n) if (1..=65535).contains(&n) => Some(n),
            Some(n) => {
                self.error(at, format!("{n} is not a port"));
                None
            }
            None if protocol == "tcp" => {
                self.error(at, "missing: a TCP monitor needs a port");
                None
            }
            None => None,
        }
    }

    /// `path`, as is: a request path (`/` when missing) without the
    /// `{key}` Switchyard fills in; none for TCP.
    fn path(&mut self, at: &str, path: Option<String>, protocol: &str) -> Option<String> {
        if protocol == "tcp" {
            return None;
        }
        match path {
            Some(path) if path.contains("{key}") => {
                self.error(at, format!("`{path}` contains `{{key}}`, which Switchyard replaces with the monitor's health key; rename the health check path"));
                None
            }
            Some(path)
                if path.starts_with('/')
                    && !path.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Some(path)
            }
            Some(path) => {
                self.error(
                    at,
                    format!(
                        "`{path}` is not a request path (it must start with `/`, without spaces)"
                    ),
                );
                None
            }
            None => Some("/".into()),
        }
    }

    /// `intervalInSeconds`: Azure's 30 when missing.
    fn interval(&mut self, at: &str, interval: Option<i64>) -> i64 {
        match interval {
            Some(n) if n >= 1 => n,
            Some(n) => {
                self.error(at, format!("{n} is not an interval"));
                30
            }
            None => 30,
        }
    }

    /// `timeoutInSeconds`, in milliseconds: below the interval, as
    /// Switchyard requires (half of a 1 s interval: whole seconds cannot
    /// be below it).
    fn timeout(&mut self, at: &str, timeout: Option<i64>, interval: i64) -> i64 {
        let fallback = if interval >= 2 {
            (interval - 1).clamp(1, 10) * 1000
        } else {
            interval * 500
        };
        match timeout {
            Some(n) if n >= 1 && n < interval => n * 1000,
            Some(n) => {
                self.warn(
                    at,
                    format!(
                        "{n}s is not below the {interval}s interval, as Switchyard requires: written as {}",
                        millis(fallback)
                    ),
                );
                fallback
            }
            None => fallback,
        }
    }

    /// `toleratedNumberOfFailures`: within Switchyard's 0..9, Azure's 3
    /// when missing.
    fn tolerated(&mut self, at: &str, tolerated: Option<i64>) -> i64 {
        match tolerated {
            Some(n) if (0..=9).contains(&n) => n,
            Some(n) => {
                let t = n.clamp(0, 9);
                self.warn(
                    at,
                    format!("{n} is outside Switchyard's 0..9: written as {t}"),
                );
                t
            }
            None => 3,
        }
    }

    /// `expectedStatusCodeRanges` as `expected_status` items (TOML text):
    /// at most 8, narrowed to the HTTP status codes; none for TCP.
    fn expected_status(&mut self, p: &Flat, ranges: &[AzRange], protocol: &str) -> Vec<String> {
        let at = |k: &str| p.path(&format!("monitorConfig.{k}"));
        let mut expected = Vec::new();
        if protocol == "tcp" && !ranges.is_empty() {
            self.warn(
                &at("expectedStatusCodeRanges"),
                "not used by TCP probes (nor by Azure's); not carried over",
            );
            return expected;
        }
        for (i, r) in ranges.iter().enumerate() {
            let rat = at(&format!("expectedStatusCodeRanges[{i}]"));
            let (Some(lo), Some(hi)) = (r.min.or(r.max), r.max.or(r.min)) else {
                self.warn(&rat, "a range without min or max; not carried over");
                continue;
            };
            let (a, b) = (lo.clamp(100, 599), hi.clamp(100, 599));
            if a > b || (a, b) != (lo, hi) {
                if lo > 599 || hi < 100 || lo > hi {
                    self.warn(&rat, format!("{lo}-{hi} is outside the HTTP status codes Switchyard accepts (100-599); not carried over"));
                    continue;
                }
                self.warn(
                    &rat,
                    format!(
                        "{lo}-{hi} narrowed to {a}-{b}, the HTTP status codes Switchyard accepts"
                    ),
                );
            }
            if expected.len() == 8 {
                self.warn(
                    &rat,
                    "more than 8 ranges: not carried over (Switchyard takes at most 8)",
                );
                continue;
            }
            expected.push(if a == b {
                a.to_string()
            } else {
                format!("\"{a}-{b}\"")
            });
        }
        expected
    }

    /// Custom headers (of the monitor, or of an endpoint's probe) that
    /// Switchyard can send: valid, each once, at most 8; none for TCP.
    pub(super) fn headers(
        &mut self,
        flat: &Flat,
        key: &str,
        list: Option<&[AzHeader]>,
        protocol: &str,
    ) -> Vec<(String, String)> {
        let list = list.unwrap_or_default();
        let mut out: Vec<(String, String)> = Vec::new();
        if list.is_empty() {
            return out;
        }
        if protocol == "tcp" {
            self.warn(
                &flat.path(key),
                "custom headers are not sent by TCP probes (nor by Azure's); not carried over",
            );
            return out;
        }
        for (i, h) in list.iter().enumerate() {
            let at = flat.path(&format!("{key}[{i}]"));
            let (Some(name), Some(value)) = (h.name.clone(), h.value.clone()) else {
                self.warn(&at, "a header without name or value; not carried over");
                continue;
            };
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
            if !token || value.chars().any(|c| c.is_control() && c != '\t') {
                self.warn(
                    &at,
                    format!("`{name}` is not a valid HTTP header; not carried over"),
                );
            } else if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                self.warn(&at, format!("`{name}` is given twice; the first is kept"));
            } else if out.len() == 8 {
                self.warn(
                    &at,
                    "more than 8 headers: not carried over (Switchyard sends at most 8)",
                );
            } else {
                out.push((name, value));
            }
        }
        out
    }
}

/// Milliseconds as a duration Switchyard reads: `5s`, `500ms`.
pub(super) fn millis(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
