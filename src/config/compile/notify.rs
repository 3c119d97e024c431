//! Stage: `[[notify]]`, the webhook targets.

use super::*;
use crate::config::keys;
use crate::config::raw::RawNotify;
use crate::notify::{Format, Kind, TargetConfig};

/// Shortest signing secret: shorter ones are guessable.
const MIN_SECRET_LEN: usize = 16;

/// Every `[[notify]]` target, checked; `None` when one was wrong.
pub(super) fn notify(
    r: &mut Report,
    src: usize,
    raw: &[Spanned<RawNotify>],
    base: &Path,
) -> Option<Vec<TargetConfig>> {
    let mut out = Some(Vec::new());
    let mut names: Vec<String> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let target = target(
            r,
            src,
            &format!("notify[{i}]"),
            t.get_ref(),
            base,
            &mut names,
        );
        match (target, &mut out) {
            (Some(t), Some(out)) => out.push(t),
            _ => out = None,
        }
    }
    out
}

/// One target; `names` are the targets' names so far.
fn target(
    r: &mut Report,
    src: usize,
    p: &str,
    t: &RawNotify,
    base: &Path,
    names: &mut Vec<String>,
) -> Option<TargetConfig> {
    let name = target_name(r, src, p, t, names);
    let url = notify_url(r, src, &t.url, &format!("{p}.url"), base);
    let format = match t.format.as_ref().map(|f| (f, f.get_ref().as_str())) {
        None | Some((_, "json")) => Some(Format::Json),
        Some((_, "slack")) => Some(Format::Slack),
        Some((f, other)) => {
            r.err(
                src,
                f,
                &format!("{p}.format"),
                format!(
                    "`{}` is not a format: \"json\" or \"slack\"",
                    crate::fsutil::shown(other)
                ),
            );
            None
        }
    };
    let secret = match &t.secret {
        None => Some(None),
        Some(s) => signing_secret(r, src, p, s).map(Some),
    };
    let events = match &t.events {
        None => Some(None),
        Some(list) => events(r, src, p, list).map(Some),
    };
    let coalesce = r.bounded(
        src,
        t.coalesce.as_ref(),
        Some(&format!("{p}.coalesce")),
        &keys::NOTIFY_COALESCE,
    );
    let timeout = r.bounded(
        src,
        t.timeout.as_ref(),
        Some(&format!("{p}.timeout")),
        &keys::NOTIFY_TIMEOUT,
    );
    let retry_for = r.bounded(
        src,
        t.retry_for.as_ref(),
        Some(&format!("{p}.retry_for")),
        &keys::NOTIFY_RETRY_FOR,
    );
    let queue = match &t.queue {
        Some(q) => r.int::<usize>(src, q, &format!("{p}.queue"), 1, 100_000),
        None => Some(256),
    };
    let ca_cert = match &t.ca_cert {
        None => Some(None),
        Some(c) => {
            let path = base.join(c.get_ref());
            let loaded = crate::health::tls::load_certs(&path);
            if let Err(e) = &loaded {
                r.err(src, c, &format!("{p}.ca_cert"), e.to_string());
            }
            if url
                .as_ref()
                .is_some_and(|u| !u.expose().starts_with("https://"))
            {
                r.warn(src, c, &format!("{p}.ca_cert"), "only used for https URLs");
            }
            loaded.ok().map(|_| Some(path))
        }
    };
    Some(TargetConfig {
        name: name?,
        url: url?,
        format: format?,
        secret: secret?,
        events: events?,
        coalesce: coalesce?,
        timeout: timeout?,
        retry_for: retry_for?,
        queue: queue?,
        ca_cert: ca_cert?,
    })
}

/// `name`: a metrics label, unique among the targets.
fn target_name(
    r: &mut Report,
    src: usize,
    p: &str,
    t: &RawNotify,
    names: &mut Vec<String>,
) -> Option<String> {
    let name = t.name.get_ref().trim().to_string();
    let problem = if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some(
            "target names are 1-64 letters, digits, `-` or `_` (they label the metrics)"
                .to_string(),
        )
    } else if names.contains(&name) {
        Some(format!("another [[notify]] target is named `{name}`"))
    } else {
        None
    };
    names.push(name.clone());
    match problem {
        Some(msg) => {
            r.err(src, &t.name, &format!("{p}.name"), msg);
            None
        }
        None => Some(name),
    }
}

/// `secret`: long enough not to be guessed.
fn signing_secret(
    r: &mut Report,
    src: usize,
    p: &str,
    s: &Spanned<SecretSource>,
) -> Option<Secret> {
    let field = format!("{p}.secret");
    let v = r.secret(src, s, &field)?;
    if v.expose().len() < MIN_SECRET_LEN {
        r.err(
            src,
            s,
            &field,
            format!("the signing secret must be at least {MIN_SECRET_LEN} characters; make one with `head -c 32 /dev/urandom | base64`"),
        );
        return None;
    }
    Some(v)
}

/// `events`: at least one, each known (repeats are dropped).
fn events(
    r: &mut Report,
    src: usize,
    p: &str,
    list: &Spanned<Vec<Spanned<String>>>,
) -> Option<Vec<Kind>> {
    let mut kinds = Some(Vec::new());
    if list.get_ref().is_empty() {
        r.err(
            src,
            list,
            &format!("{p}.events"),
            "list at least one event, or leave `events` out to send them all",
        );
        kinds = None;
    }
    for (j, e) in list.get_ref().iter().enumerate() {
        match (Kind::parse(e.get_ref()), &mut kinds) {
            (Some(k), Some(kinds)) if !kinds.contains(&k) => kinds.push(k),
            (Some(_), _) => {}
            (None, _) => {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                r.err(
                    src,
                    e,
                    &format!("{p}.events[{j}]"),
                    format!(
                        "`{}` is not an event; the events are {}",
                        crate::fsutil::shown(e.get_ref()),
                        names.join(", ")
                    ),
                );
                kinds = None;
            }
        }
    }
    kinds
}

/// A webhook URL: a string, `{ env }` or `{ file }`, always `http://`
/// or `https://` with a host. Messages never quote it (chat webhook URLs
/// are credentials).
fn notify_url(
    r: &mut Report,
    src: usize,
    v: &Spanned<SecretSource>,
    field: &str,
    base: &Path,
) -> Option<Secret> {
    let url = match v.get_ref().resolve(base) {
        Ok(u) => u,
        Err(e) => {
            r.err(src, v, field, e);
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
            r.err(src, v, field, p);
            None
        }
        None => Some(Secret::from(text.to_string())),
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
