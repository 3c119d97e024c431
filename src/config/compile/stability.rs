//! Stage: `[prober]`'s static stability keys: when the prober counts as
//! impaired (`impaired_share`, `impaired_min_targets`) and its canaries
//! (`canaries`, `canary_interval`, `canary_timeout`). See
//! [`crate::health::impaired`] for what they mean.

use super::*;
use crate::config::keys;
use crate::health::impaired::{CanarySpec, DEFAULT_SHARE, Settings};
use crate::health::spec::Protocol;

/// Most canaries: a handful proves the route out; more is load on others.
const MAX_CANARIES: usize = 16;

/// The static stability keys, checked: every key is read (so one run
/// reports every problem), and they stand only if every one was right.
pub(super) fn stability(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawProber,
    source_v4: Option<std::net::Ipv4Addr>,
    source_v6: Option<std::net::Ipv6Addr>,
) -> Option<(Settings, Vec<CanarySpec>)> {
    let share = match &raw.impaired_share {
        None => Some(Some(DEFAULT_SHARE)),
        Some(v) if *v.get_ref() == 0.0 => Some(None),
        Some(v) if (0.5..=1.0).contains(v.get_ref()) => Some(Some(*v.get_ref())),
        Some(v) => {
            r.err(
                src,
                v,
                "prober.impaired_share",
                "must be 0 (off) or between 0.5 and 1: the share of the healthy probe targets that, failing together, means this host is the one failing (under half would blame the host for most endpoints being fine)",
            );
            None
        }
    };
    let mut k = r.section(src);
    let mut min_targets = keys::IMPAIRED_MIN_TARGETS.default_int() as usize;
    k.key(
        &raw.impaired_min_targets,
        &keys::IMPAIRED_MIN_TARGETS,
        &mut min_targets,
    );
    let ok = k.done(());
    let interval = r.bounded(
        src,
        raw.canary_interval.as_ref(),
        None,
        &keys::CANARY_INTERVAL,
    );
    let mut timeout = r.bounded(
        src,
        raw.canary_timeout.as_ref(),
        None,
        &keys::CANARY_TIMEOUT,
    );
    if let (Some(i), Some(t)) = (interval, timeout)
        && t >= i
    {
        let at = raw
            .canary_timeout
            .as_ref()
            .map(|v| r.at(src, v, "prober.canary_timeout"))
            .or_else(|| {
                raw.canary_interval
                    .as_ref()
                    .map(|v| r.at(src, v, "prober.canary_interval"))
            });
        if let Some(at) = at {
            r.error(
                &at,
                format!(
                    "the canary timeout ({}) must be shorter than its interval ({})",
                    keys::dur(t),
                    keys::dur(i)
                ),
            );
        }
        timeout = None;
    }
    let targets = canaries(r, src, raw);
    let (interval, timeout, targets) = (interval?, timeout?, targets?);
    ok?;
    let canaries = targets
        .into_iter()
        .map(|(name, protocol, host, port, path)| CanarySpec {
            name,
            protocol,
            host,
            port,
            path,
            interval,
            timeout,
            source_v4,
            source_v6,
        })
        .collect();
    Some((
        Settings {
            share: share?,
            min_targets,
        },
        canaries,
    ))
}

/// A canary as written: its name, protocol, host, port and path.
type Target = (String, Protocol, String, u16, String);

/// `canaries`: each a URL naming what to reach.
fn canaries(
    r: &mut Report,
    src: usize,
    raw: &crate::config::raw::RawProber,
) -> Option<Vec<Target>> {
    let Some(list) = &raw.canaries else {
        return Some(Vec::new());
    };
    if list.get_ref().len() > MAX_CANARIES {
        r.err(
            src,
            list,
            "prober.canaries",
            format!("at most {MAX_CANARIES} canaries: a few prove the route out"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, c) in list.get_ref().iter().enumerate() {
        let field = format!("prober.canaries[{i}]");
        match parse(c.get_ref()) {
            Ok(t) if out.iter().any(|o: &Target| o.0 == t.0) => {
                r.err(src, c, &field, format!("`{}` is listed twice", t.0));
                ok = false;
            }
            Ok(t) => out.push(t),
            Err(why) => {
                r.err(
                    src,
                    c,
                    &field,
                    format!(
                        "`{}` {why}; write tcp://host:port, http://host/path or https://host/path",
                        crate::fsutil::shown(c.get_ref())
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// One canary URL.
fn parse(text: &str) -> Result<Target, String> {
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|_| "is not a URL".to_string())?;
    let protocol = match uri.scheme_str() {
        Some("tcp") => Protocol::Tcp,
        Some("http") => Protocol::Http,
        Some("https") => Protocol::Https,
        Some(other) => return Err(format!("has scheme `{other}`, not tcp, http or https")),
        None => return Err("has no scheme".into()),
    };
    let host = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .ok_or("has no host")?
        .to_string();
    let port = match (uri.port_u16(), protocol) {
        (Some(0), _) => return Err("has port 0".into()),
        (Some(p), _) => p,
        (None, Protocol::Https) => 443,
        (None, Protocol::Http) => 80,
        // Only tcp, http and https parse above.
        (None, _) => return Err("has no port (tcp://host:port)".into()),
    };
    let path = match (protocol, uri.path_and_query()) {
        (Protocol::Tcp, Some(p)) if p.as_str() != "/" && !p.as_str().is_empty() => {
            return Err("is tcp: it takes no path".into());
        }
        (Protocol::Tcp, _) => String::new(),
        (_, Some(p)) if !p.as_str().is_empty() => p.as_str().to_string(),
        _ => "/".to_string(),
    };
    Ok((text.trim().to_string(), protocol, host, port, path))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn canary_urls() {
        let t = parse("tcp://192.0.2.53:53").unwrap();
        assert_eq!(
            (t.1, t.2.as_str(), t.3, t.4.as_str()),
            (Protocol::Tcp, "192.0.2.53", 53, "")
        );
        let t = parse("https://www.example.com/").unwrap();
        assert_eq!(
            (t.1, t.2.as_str(), t.3, t.4.as_str()),
            (Protocol::Https, "www.example.com", 443, "/")
        );
        let t = parse("http://[2001:db8::1]:8080/ping?x=1").unwrap();
        assert_eq!(
            (t.1, t.2.as_str(), t.3, t.4.as_str()),
            (Protocol::Http, "2001:db8::1", 8080, "/ping?x=1")
        );
        assert_eq!(parse("http://example.com").unwrap().4, "/");
        for (bad, why) in [
            ("tcp://192.0.2.53", "no port"),
            ("udp://192.0.2.53:53", "scheme `udp`"),
            ("192.0.2.53:53", "scheme"),
            ("tcp://192.0.2.53:53/x", "no path"),
            ("not a url", "not a URL"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_and_settings() {
        let c = load_text("", &[]).unwrap();
        let p = &c.settings.prober;
        assert_eq!(p.impaired.share, Some(0.8));
        assert_eq!(p.impaired.min_targets, 5);
        assert!(p.canaries.is_empty());
        let c = load_text(
            "[prober]\nsource_v4 = \"127.0.0.2\"\nimpaired_share = 0\nimpaired_min_targets = 3\ncanaries = [\"tcp://192.0.2.53:53\", \"https://www.example.com/\"]\ncanary_interval = \"1s\"\ncanary_timeout = \"500ms\"\n",
            &[],
        )
        .unwrap();
        let p = &c.settings.prober;
        assert_eq!(p.impaired.share, None);
        assert_eq!(p.impaired.min_targets, 3);
        assert_eq!(p.canaries.len(), 2);
        let c0 = &p.canaries[0];
        assert_eq!(c0.interval, std::time::Duration::from_secs(1));
        assert_eq!(c0.timeout, std::time::Duration::from_millis(500));
        assert_eq!(c0.source_v4, Some("127.0.0.2".parse().unwrap()));
        // A whole number is a share too.
        let c = load_text("[prober]\nimpaired_share = 1\n", &[]).unwrap();
        assert_eq!(c.settings.prober.impaired.share, Some(1.0));
    }

    #[test]
    fn every_mistake_is_named_in_one_run() {
        let e = errors(load_text(
            "[prober]\nsource_v4 = \"::1\"\nimpaired_share = 0.3\nimpaired_min_targets = 1\ncanaries = [\"tcp://x\", \"tcp://a:1\", \"tcp://a:1\"]\ncanary_interval = \"1s\"\ncanary_timeout = \"2s\"\n",
            &[],
        ))
        .join("\n");
        for want in [
            "prober.source_v4",
            "prober.impaired_share: must be 0 (off) or between 0.5 and 1",
            "prober.impaired_min_targets",
            "prober.canaries[0]: `tcp://x` has no port",
            "prober.canaries[2]: `tcp://a:1` is listed twice",
            "prober.canary_timeout: the canary timeout (2s) must be shorter than its interval (1s)",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
    }
}
