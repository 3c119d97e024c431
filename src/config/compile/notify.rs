//! Stage: `[[notify]]`, the webhook targets.

use super::*;
use crate::config::raw::RawNotify;
use crate::notify::{Format, Kind, TargetConfig};

/// Shortest signing secret: shorter ones are guessable.
const MIN_SECRET_LEN: usize = 16;

impl Loader<'_> {
    /// Every `[[notify]]` target, checked.
    pub(super) fn notify(
        &mut self,
        src: usize,
        raw: &[Spanned<RawNotify>],
        base: &Path,
    ) -> Vec<TargetConfig> {
        let mut out: Vec<TargetConfig> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let p = format!("notify[{i}]");
            let r = t.get_ref();
            let errors_before = self.diag.errors.len();
            let name = r.name.get_ref().trim().to_string();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.err(
                    src,
                    &r.name,
                    &format!("{p}.name"),
                    "target names are 1-64 letters, digits, `-` or `_` (they label the metrics)",
                );
            } else if names.contains(&name) {
                self.err(
                    src,
                    &r.name,
                    &format!("{p}.name"),
                    format!("another [[notify]] target is named `{name}`"),
                );
            }
            names.push(name.clone());
            let url = self.notify_url(src, &r.url, &format!("{p}.url"), base);
            let format = match r.format.as_ref().map(|f| (f, f.get_ref().as_str())) {
                None | Some((_, "json")) => Format::Json,
                Some((_, "slack")) => Format::Slack,
                Some((f, other)) => {
                    self.err(
                        src,
                        f,
                        &format!("{p}.format"),
                        format!(
                            "`{}` is not a format: \"json\" or \"slack\"",
                            crate::fsutil::shown(other)
                        ),
                    );
                    Format::Json
                }
            };
            let secret = r.secret.as_ref().and_then(|s| {
                let field = format!("{p}.secret");
                let v = self.secret(src, s, &field)?;
                if v.expose().len() < MIN_SECRET_LEN {
                    self.err(
                        src,
                        s,
                        &field,
                        format!("the signing secret must be at least {MIN_SECRET_LEN} characters; make one with `head -c 32 /dev/urandom | base64`"),
                    );
                }
                Some(v)
            });
            let events = r.events.as_ref().map(|list| {
                let mut kinds = Vec::new();
                if list.get_ref().is_empty() {
                    self.err(
                        src,
                        list,
                        &format!("{p}.events"),
                        "list at least one event, or leave `events` out to send them all",
                    );
                }
                for (j, e) in list.get_ref().iter().enumerate() {
                    match Kind::parse(e.get_ref()) {
                        Some(k) if !kinds.contains(&k) => kinds.push(k),
                        Some(_) => {}
                        None => {
                            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                            self.err(
                                src,
                                e,
                                &format!("{p}.events[{j}]"),
                                format!(
                                    "`{}` is not an event; the events are {}",
                                    crate::fsutil::shown(e.get_ref()),
                                    names.join(", ")
                                ),
                            );
                        }
                    }
                }
                kinds
            });
            let coalesce = self.bounded_duration(
                src,
                r.coalesce.as_ref(),
                &format!("{p}.coalesce"),
                Duration::from_secs(60),
                Duration::ZERO..=Duration::from_secs(3600),
            );
            let timeout = self.bounded_duration(
                src,
                r.timeout.as_ref(),
                &format!("{p}.timeout"),
                Duration::from_secs(5),
                Duration::from_millis(100)..=Duration::from_secs(60),
            );
            let retry_for = self.bounded_duration(
                src,
                r.retry_for.as_ref(),
                &format!("{p}.retry_for"),
                Duration::from_secs(600),
                Duration::ZERO..=Duration::from_secs(86_400),
            );
            let queue = match &r.queue {
                Some(q) => self
                    .int::<usize>(src, q, &format!("{p}.queue"), 1, 100_000)
                    .unwrap_or(256),
                None => 256,
            };
            let ca_cert = r.ca_cert.as_ref().map(|c| {
                let path = base.join(c.get_ref());
                if let Err(e) = crate::health::tls::load_certs(&path) {
                    self.err(src, c, &format!("{p}.ca_cert"), e);
                }
                if url
                    .as_ref()
                    .is_some_and(|u| !u.expose().starts_with("https://"))
                {
                    self.warn(src, c, &format!("{p}.ca_cert"), "only used for https URLs");
                }
                path
            });
            if self.diag.errors.len() != errors_before {
                continue;
            }
            let Some(url) = url else { continue };
            out.push(TargetConfig {
                name,
                url,
                format,
                secret,
                events,
                coalesce,
                timeout,
                retry_for,
                queue,
                ca_cert,
            });
        }
        out
    }

    /// A webhook URL: a string, `{ env }` or `{ file }`, always `http://`
    /// or `https://` with a host. Messages never quote it (chat webhook URLs
    /// are credentials).
    fn notify_url(
        &mut self,
        src: usize,
        v: &Spanned<SecretSource>,
        field: &str,
        base: &Path,
    ) -> Option<Secret> {
        let url = match v.get_ref().resolve(base) {
            Ok(u) => u,
            Err(e) => {
                self.err(src, v, field, e);
                return None;
            }
        };
        let text = url.expose().trim();
        let problem = match text.parse::<http::Uri>() {
            Err(_) => Some("not a URL".to_string()),
            Ok(u) => match (u.scheme_str(), u.authority()) {
                (Some("http" | "https"), Some(a)) if a.as_str().contains('@') => Some(
                    "credentials in the URL are not sent: use a token in the path or query, or `secret` to sign requests".to_string(),
                ),
                (Some("http" | "https"), Some(a)) if !a.host().is_empty() => None,
                (Some("http" | "https"), _) => Some("the URL has no host".to_string()),
                (Some(other), _) => Some(format!(
                    "`{}` URLs are not supported: webhooks are http:// or https://",
                    crate::fsutil::shown(other)
                )),
                (None, _) => Some(
                    "not an absolute URL: write e.g. \"https://hooks.example.com/switchyard\""
                        .to_string(),
                ),
            },
        };
        match problem {
            Some(p) => {
                self.err(src, v, field, p);
                None
            }
            None => Some(Secret::from(text.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use std::time::Duration;

    #[test]
    fn targets_are_read_with_defaults() {
        let c = load_text(
            "[[notify]]\nname = \"oncall\"\nurl = \"https://hooks.example.test/x/y\"\n\
             [[notify]]\nname = \"chat\"\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"slack\"\n\
             events = [\"profile.failing_open\", \"endpoint.status\"]\ncoalesce = \"0s\"\n\
             timeout = \"1s\"\nretry_for = \"30s\"\nqueue = 8\n",
            &[],
        )
        .unwrap();
        let n = &c.settings.notify;
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, "oncall");
        assert_eq!(n[0].format, crate::notify::Format::Json);
        assert_eq!(n[0].coalesce, Duration::from_secs(60));
        assert_eq!(n[0].timeout, Duration::from_secs(5));
        assert_eq!(n[0].retry_for, Duration::from_secs(600));
        assert_eq!(n[0].queue, 256);
        assert!(n[0].events.is_none() && n[0].secret.is_none());
        assert_eq!(n[1].format, crate::notify::Format::Slack);
        assert_eq!(n[1].events.as_ref().unwrap().len(), 2);
        assert_eq!(n[1].coalesce, Duration::ZERO);
        assert_eq!(n[1].queue, 8);
    }

    #[test]
    fn bad_targets_are_located_errors() {
        let e = errors(load_text(
            "[[notify]]\nname = \"on call\"\nurl = \"ftp://x/\"\nformat = \"xml\"\n\
             events = [\"endpoint.flap\"]\ntimeout = \"2h\"\nqueue = 0\nsecret = \"short\"\n\
             [[notify]]\nname = \"b\"\nurl = \"https://user:pw@example.test/\"\n\
             [[notify]]\nname = \"b\"\nurl = \"/relative\"\n",
            &[],
        ));
        let want = [
            "notify[0].name: target names are 1-64",
            "notify[0].url: `ftp` URLs are not supported",
            "notify[0].format: `xml` is not a format",
            "notify[0].secret: the signing secret must be at least 16",
            "notify[0].events[0]: `endpoint.flap` is not an event; the events are endpoint.status,",
            "notify[0].timeout: must be between 100ms and 1m",
            "notify[0].queue: 0 is out of range",
            "notify[1].url: credentials in the URL are not sent",
            "notify[2].name: another [[notify]] target is named `b`",
            "notify[2].url: not an absolute URL",
        ];
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "no {w:?} in {e:#?}");
        }
        // The URL is never quoted (it may hold a token).
        assert!(!e.iter().any(|m| m.contains("pw@")), "{e:#?}");
        let e = errors(load_text(
            "[[notify]]\nname = \"a\"\nurl = \"http://x/\"\nsurprise = 1\n",
            &[],
        ));
        assert!(e[0].contains("unknown field `surprise`"), "{e:?}");
    }

    #[test]
    fn url_and_secret_from_the_environment_or_a_file() {
        let e = errors(load_text(
            "[[notify]]\nname = \"a\"\nurl = { env = \"SWITCHYARD_TEST_NOTIFY_URL_UNSET\" }\n",
            &[],
        ));
        assert!(
            e[0].starts_with(
                "notify[0].url: environment variable `SWITCHYARD_TEST_NOTIFY_URL_UNSET` is not set"
            ),
            "{e:?}"
        );
    }
}
