//! A webhook target: its configuration (`[[notify]]`, validated), the
//! URL as logs may show it, and its counters.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::event::Kind;
use crate::secret::Secret;

/// `format = ...`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The generic JSON document ([`payload::Message`](super::payload::Message)).
    Json,
    /// `{"text": ...}` for Slack-compatible incoming webhooks.
    Slack,
}

/// One `[[notify]]` target, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetConfig {
    /// Unique; the `target` label of its metrics.
    pub name: String,
    /// `http://` or `https://`. Treated as a secret (chat webhook URLs are
    /// credentials): only [`TargetConfig::shown_url`] is ever printed.
    pub url: Secret,
    /// Payload format.
    pub format: Format,
    /// Signs each request (`X-Switchyard-Signature`) when set.
    pub secret: Option<Secret>,
    /// The events sent (`None`: all).
    pub events: Option<Vec<Kind>>,
    /// Flap window per (profile, endpoint); zero: every change at once.
    pub coalesce: Duration,
    /// Bound of one attempt (connect, TLS, request, response head).
    pub timeout: Duration,
    /// How long after it was queued a message is still retried.
    pub retry_for: Duration,
    /// Messages waiting for this target; more are dropped (and counted).
    pub queue: usize,
    /// Extra trusted CA certificates (PEM) for an `https` URL.
    pub ca_cert: Option<PathBuf>,
}

impl TargetConfig {
    /// The URL's scheme, host and port: what logs may show.
    pub fn shown_url(&self) -> String {
        shown_url(self.url.expose())
    }

    pub(super) fn wants(&self, kind: Kind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }
}

/// `scheme://host:port/…` of a URL, without its path, query or credentials.
pub fn shown_url(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme_str().unwrap_or("?"),
            u.host().unwrap_or("?"),
            u.port_u16().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// A target's counters (read by `/metrics`).
#[derive(Debug, Default)]
pub struct TargetStats {
    /// Messages delivered (a 2xx answer).
    pub sent: AtomicU64,
    /// Messages given up on (`retry_for` passed, or a permanent error).
    pub failed: AtomicU64,
    /// Messages not queued: the target's queue was full.
    pub dropped: AtomicU64,
    /// Attempts retried.
    pub retries: AtomicU64,
    /// Messages waiting now.
    pub queued: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_path_or_credentials() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:9000/hook?token=x"),
            "http://127.0.0.1:9000"
        );
        let t = TargetConfig {
            name: "oncall".into(),
            url: Secret::from("https://example.test/very-secret-path".to_string()),
            format: Format::Json,
            secret: Some(Secret::from("hmac-secret-value".to_string())),
            events: None,
            coalesce: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(600),
            queue: 256,
            ca_cert: None,
        };
        let debug = format!("{t:?}");
        assert!(!debug.contains("very-secret-path"), "{debug}");
        assert!(!debug.contains("hmac-secret-value"), "{debug}");
    }
}
