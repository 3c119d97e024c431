//! Stage: a profile's named `[[monitors]]` and `health`, and each
//! endpoint's choice of them (`monitors = [...]`, its own `health`).
//!
//! Each named monitor is read by the same stage as `[monitor]` (so its
//! keys mean the same), under its own field prefix (`monitors[1].port`).
//! Monitors never refer to monitors, so no cycle can be written; what can
//! be wrong is a name (unknown, repeated, missing) or a count (`at_least`
//! above the monitors there are).

use super::*;
use crate::health::combine::Rule;
use crate::health::push::{OnStale, PushSettings};

/// Most named monitors of one profile.
pub(super) const MAX_MONITORS: usize = 16;

/// A profile's named monitor.
pub(super) struct Named {
    /// `name`.
    pub(super) name: Arc<str>,
    /// `invert`.
    pub(super) invert: bool,
    /// What it checks.
    pub(super) check: Check,
}

/// What a named monitor checks.
pub(super) enum Check {
    /// A probe.
    Probe {
        /// Its settings (with the profile's quorum and the prober's
        /// sources).
        settings: Arc<MonitorSettings>,
        /// `address`: probe this host instead of the endpoint.
        address: Option<String>,
    },
    /// `protocol = "push"`: set from outside through the admin API.
    Push(PushSettings),
}

impl Named {
    /// Its probe settings, unless it is pushed.
    pub(super) fn settings(&self) -> Option<&Arc<MonitorSettings>> {
        match &self.check {
            Check::Probe { settings, .. } => Some(settings),
            Check::Push(_) => None,
        }
    }
}

/// Longest `ttl` of a push monitor (and of one push).
pub(super) const MAX_PUSH_TTL: Duration = Duration::from_secs(7 * 86_400);
/// `ttl` when a push monitor sets none.
pub(super) const DEFAULT_PUSH_TTL: Duration = Duration::from_secs(3600);

/// A profile's `[[monitors]]` and its `health` (how an endpoint combines
/// them unless it says otherwise).
pub(super) struct NamedMonitors {
    /// In configuration order.
    pub(super) list: Vec<Named>,
    /// `health` (default `all`).
    pub(super) rule: Rule,
    /// Every name given, those of monitors that were wrong too: an
    /// endpoint naming one is not told it is unknown.
    declared: Vec<String>,
}

impl NamedMonitors {
    fn names(&self) -> String {
        self.list
            .iter()
            .map(|n| &*n.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Monitor names: what endpoints, logs and metric labels use.
fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `[monitor]` keys that only a named monitor has.
pub(super) fn single_only(r: &mut Report, src: usize, m: &RawMonitor) {
    let hint = "only a named monitor has it: write [[monitors]] with a `name`";
    if let Some(v) = &m.name {
        r.err(src, v, "monitor.name", hint);
    }
    if let Some(v) = &m.invert {
        r.err(src, v, "monitor.invert", hint);
    }
    if let Some(v) = &m.address {
        r.err(
            src,
            v,
            "monitor.address",
            "only a named monitor has it (an endpoint's own probe address is `probe.address`)",
        );
    }
}

/// `[[monitors]]` and `health`: `None` when the profile has no named
/// monitors; else the right ones (to check the endpoints against), and
/// whether all were right (problems are reported). `finish` adds what the
/// profile and the server give every monitor.
pub(super) fn named_monitors(
    r: &mut Report,
    src: usize,
    raw: &RawProfile,
    finish: impl Fn(MonitorSettings) -> Arc<MonitorSettings>,
) -> (Option<NamedMonitors>, bool) {
    let Some(first) = raw.monitors.first() else {
        if let Some(h) = &raw.health {
            r.err(
                src,
                h,
                "health",
                "`health` combines named [[monitors]], and this profile has none",
            );
            return (None, false);
        }
        return (None, true);
    };
    let mut ok = true;
    if raw.monitor.is_some() {
        r.err(
            src,
            first,
            "monitors",
            "a profile has one [monitor] or named [[monitors]], not both: give the [monitor] a `name` and write it as [[monitors]]",
        );
        ok = false;
    }
    if raw.monitors.len() > MAX_MONITORS {
        r.err(
            src,
            first,
            "monitors",
            format!("at most {MAX_MONITORS} named monitors per profile"),
        );
        ok = false;
    }
    let mut list: Vec<Named> = Vec::new();
    for (i, m) in raw.monitors.iter().enumerate() {
        let prefix = format!("monitors[{i}]");
        let named = one(r, src, &prefix, m, &list);
        let pushed = m
            .get_ref()
            .protocol
            .as_ref()
            .is_some_and(|p| p.get_ref() == "push");
        let check = if pushed {
            push(r, src, &prefix, m).map(Check::Push)
        } else {
            push_only(r, src, &prefix, m.get_ref());
            super::monitor::monitor(r, src, &prefix, m).map(|s| Check::Probe {
                settings: finish(s),
                address: None,
            })
        };
        match (named, check) {
            (Some((name, address)), Some(check)) => list.push(Named {
                name,
                invert: m.get_ref().invert.as_ref().is_some_and(|v| *v.get_ref()),
                check: match check {
                    Check::Probe { settings, .. } => Check::Probe { settings, address },
                    push => push,
                },
            }),
            _ => ok = false,
        }
    }
    let rule = match &raw.health {
        Some(h) => rule(r, src, h, "health", raw.monitors.len()),
        None => Some(Rule::All),
    };
    ok &= rule.is_some();
    let declared = raw
        .monitors
        .iter()
        .filter_map(|m| Some(m.get_ref().name.as_ref()?.get_ref().clone()))
        .collect();
    let named = NamedMonitors {
        list,
        rule: rule.unwrap_or(Rule::All),
        declared,
    };
    (Some(named), ok)
}

/// `on_stale` and `ttl` belong to push monitors only.
fn push_only(r: &mut Report, src: usize, prefix: &str, m: &RawMonitor) {
    for (v, key) in [(&m.on_stale, "on_stale"), (&m.ttl, "ttl")] {
        if let Some(v) = v {
            r.err(
                src,
                v,
                &format!("{prefix}.{key}"),
                "only a pushed monitor (protocol = \"push\") has it",
            );
        }
    }
}

/// A `protocol = "push"` monitor: `on_stale` and `ttl`, and none of the
/// probe keys (nothing is probed).
fn push(r: &mut Report, src: usize, prefix: &str, m: &Spanned<RawMonitor>) -> Option<PushSettings> {
    let raw = m.get_ref();
    let mut ok = true;
    let probe_keys: [(Option<std::ops::Range<usize>>, &str); 22] = [
        (raw.address.as_ref().map(|v| v.span()), "address"),
        (raw.port.as_ref().map(|v| v.span()), "port"),
        (raw.path.as_ref().map(|v| v.span()), "path"),
        (raw.key.as_ref().map(|v| v.span()), "key"),
        (raw.interval.as_ref().map(|v| v.span()), "interval"),
        (raw.timeout.as_ref().map(|v| v.span()), "timeout"),
        (
            raw.tolerated_failures.as_ref().map(|v| v.span()),
            "tolerated_failures",
        ),
        (
            raw.required_successes.as_ref().map(|v| v.span()),
            "required_successes",
        ),
        (
            raw.expected_status.as_ref().map(|v| v.span()),
            "expected_status",
        ),
        (raw.headers.as_ref().map(|v| v.span()), "headers"),
        (raw.ca_cert.as_ref().map(|v| v.span()), "ca_cert"),
        (raw.client_cert.as_ref().map(|v| v.span()), "client_cert"),
        (raw.client_key.as_ref().map(|v| v.span()), "client_key"),
        (raw.body_match.as_ref().map(|v| v.span()), "body_match"),
        (raw.cert_warning.as_ref().map(|v| v.span()), "cert_warning"),
        (raw.query_name.as_ref().map(|v| v.span()), "query_name"),
        (raw.query_type.as_ref().map(|v| v.span()), "query_type"),
        (raw.transport.as_ref().map(|v| v.span()), "transport"),
        (
            raw.expected_rcode.as_ref().map(|v| v.span()),
            "expected_rcode",
        ),
        (
            raw.expected_answer.as_ref().map(|v| v.span()),
            "expected_answer",
        ),
        (raw.tls.as_ref().map(|v| v.span()), "tls"),
        (raw.service.as_ref().map(|v| v.span()), "service"),
    ];
    for (span, key) in probe_keys {
        if let Some(span) = span {
            let at = Spanned::new(span, ());
            r.err(
                src,
                &at,
                &format!("{prefix}.{key}"),
                "a pushed monitor is not probed: its status comes from PUT /api/v1/health/... or Alertmanager (remove the key, or use another protocol)",
            );
            ok = false;
        }
    }
    if raw.tls_verify.is_some() {
        r.err(
            src,
            m,
            &format!("{prefix}.tls_verify"),
            "a pushed monitor is not probed",
        );
        ok = false;
    }
    let on_stale = match &raw.on_stale {
        None => Some(OnStale::Up),
        Some(v) => match v.get_ref().as_str() {
            "up" => Some(OnStale::Up),
            "down" => Some(OnStale::Down),
            "last" => Some(OnStale::Last),
            other => {
                r.err(
                    src,
                    v,
                    &format!("{prefix}.on_stale"),
                    format!("`{other}`: expected \"up\", \"down\" or \"last\""),
                );
                None
            }
        },
    };
    let ttl = match &raw.ttl {
        None => Some(DEFAULT_PUSH_TTL),
        Some(v) => match r.duration(src, v, &format!("{prefix}.ttl")) {
            Some(d) if d >= Duration::from_secs(1) && d <= MAX_PUSH_TTL => Some(d),
            Some(_) => {
                r.err(
                    src,
                    v,
                    &format!("{prefix}.ttl"),
                    "must be between 1s and 7d",
                );
                None
            }
            None => None,
        },
    };
    let settings = PushSettings {
        on_stale: on_stale?,
        ttl: ttl?,
    };
    ok.then_some(settings)
}

/// A named monitor's `name` (valid, not taken) and `address` (an address or
/// host name).
fn one(
    r: &mut Report,
    src: usize,
    prefix: &str,
    m: &Spanned<RawMonitor>,
    before: &[Named],
) -> Option<(Arc<str>, Option<String>)> {
    let raw = m.get_ref();
    let address = match &raw.address {
        Some(a) => {
            let text = a.get_ref().trim();
            let is_ip = text.parse::<IpAddr>().is_ok();
            if is_ip || DomainName::parse(text, None).is_ok_and(|n| n.is_hostname()) {
                Some(Some(text.trim_end_matches('.').to_string()))
            } else {
                r.err(
                    src,
                    a,
                    &format!("{prefix}.address"),
                    "expected an IPv4 or IPv6 address or a host name",
                );
                None
            }
        }
        None => Some(None),
    };
    let Some(n) = &raw.name else {
        r.err(
            src,
            m,
            &format!("{prefix}.name"),
            "a named monitor needs a `name` (endpoints and `status` refer to it by it)",
        );
        return None;
    };
    let name = n.get_ref();
    let problem = if !valid_name(name) {
        "1-32 lowercase letters, digits, `-` or `_`"
    } else if before.iter().any(|b| &*b.name == name) {
        "another monitor of this profile has this name"
    } else {
        return Some((name.as_str().into(), address?));
    };
    r.err(src, n, &format!("{prefix}.name"), problem);
    None
}

/// `health`: `"all"`, `"any"` or `{ at_least = N }` with N of `count`
/// monitors at most.
fn rule(
    r: &mut Report,
    src: usize,
    v: &Spanned<toml::Value>,
    field: &str,
    count: usize,
) -> Option<Rule> {
    let problem = match v.get_ref() {
        toml::Value::String(s) if s == "all" => return Some(Rule::All),
        toml::Value::String(s) if s == "any" => return Some(Rule::Any),
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("at_least") => {
            match t["at_least"].as_integer() {
                Some(n) if n >= 1 && n as usize <= count => return Some(Rule::AtLeast(n as u32)),
                Some(n) if n >= 1 => format!(
                    "impossible: at_least = {n}, but there {} only {count} monitor{}",
                    if count == 1 { "is" } else { "are" },
                    if count == 1 { "" } else { "s" }
                ),
                _ => "at_least must be a whole number of monitors, at least 1".to_string(),
            }
        }
        _ => "expected \"all\", \"any\" or { at_least = N }".to_string(),
    };
    r.err(src, v, field, problem);
    None
}

/// The monitors an endpoint uses and how they combine: its `monitors`
/// (default: every one of the profile's) and its `health` (default: the
/// profile's). `Some(None)` without named monitors; `None` when wrong.
pub(super) fn chosen<'a>(
    r: &mut Report,
    src: usize,
    p: &str,
    e: &RawEndpoint,
    named: Option<&'a NamedMonitors>,
) -> Option<Option<(Vec<&'a Named>, Rule)>> {
    let Some(named) = named else {
        let at = match (&e.monitors, &e.health) {
            (Some(m), _) => Some(r.at(src, m, &format!("{p}.monitors"))),
            (None, Some(h)) => Some(r.at(src, h, &format!("{p}.health"))),
            (None, None) => None,
        };
        if let Some(at) = at {
            r.error(
                &at,
                "the profile has no named [[monitors]] to choose from (a profile's single [monitor] applies to every endpoint)",
            );
            return None;
        }
        return Some(None);
    };
    let list: Vec<&Named> = match &e.monitors {
        None => named.list.iter().collect(),
        Some(names) => {
            let field = format!("{p}.monitors");
            if names.get_ref().is_empty() {
                r.err(
                    src,
                    names,
                    &field,
                    "list at least one monitor (an endpoint that is never probed has always_serve = true)",
                );
                return None;
            }
            let mut list: Vec<&Named> = Vec::new();
            let mut ok = true;
            for (i, n) in names.get_ref().iter().enumerate() {
                let field = format!("{field}[{i}]");
                match named.list.iter().find(|m| *m.name == **n.get_ref()) {
                    Some(m) if list.iter().any(|x| x.name == m.name) => {
                        r.err(src, n, &field, format!("`{}` is listed twice", m.name));
                        ok = false;
                    }
                    Some(m) => list.push(m),
                    // Declared, but wrong itself (reported there).
                    None if named.declared.contains(n.get_ref()) => ok = false,
                    None => {
                        r.err(
                            src,
                            n,
                            &field,
                            format!(
                                "unknown monitor `{}` (this profile's monitors: {})",
                                n.get_ref(),
                                named.names()
                            ),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(list)?
        }
    };
    let rule = match &e.health {
        Some(h) => rule(r, src, h, &format!("{p}.health"), list.len())?,
        None => match named.rule {
            Rule::AtLeast(n) if n as usize > list.len() => {
                let at = match &e.monitors {
                    Some(m) => r.at(src, m, &format!("{p}.monitors")),
                    None => r.at(src, &e.name, &format!("{p}.name")),
                };
                r.error(
                    &at,
                    format!(
                        "the profile's health = {{ at_least = {n} }} is impossible with this endpoint's {} monitor{}: set this endpoint's `health`",
                        list.len(),
                        if list.len() == 1 { "" } else { "s" }
                    ),
                );
                return None;
            }
            rule => rule,
        },
    };
    Some(Some((list, rule)))
}

/// Warns of named monitors that no monitored endpoint of the profile
/// uses (each one's probes would run for nothing; none run).
pub(super) fn unused(r: &mut Report, src: usize, raw: &RawProfile, eps: &[Endpoint]) {
    for (i, m) in raw.monitors.iter().enumerate() {
        let Some(name) = &m.get_ref().name else {
            continue;
        };
        let used = eps.iter().filter_map(|e| e.monitors.as_ref()).any(|ms| {
            ms.inputs
                .iter()
                .any(|input| *input.name == **name.get_ref())
        });
        if !used && eps.iter().any(|e| e.monitors.is_some()) {
            r.warn(
                src,
                name,
                &format!("monitors[{i}].name"),
                "no endpoint uses this monitor (each endpoint that sets `monitors` leaves it out)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    const TWO: &str = "routing = \"priority\"\n[[monitors]]\nname = \"api\"\nprotocol = \"tcp\"\nport = 443\n[[monitors]]\nname = \"db\"\nprotocol = \"tcp\"\nport = 5432\naddress = \"10.1.2.3\"\n";

    fn errs(text: &str) -> Vec<String> {
        errors(load_text("", &[("p.toml", &profile(text))]))
    }

    #[test]
    fn endpoints_combine_the_named_monitors() {
        let p = profile(&format!(
            "{TWO}[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n[[endpoints]]\nname = \"b\"\ntarget = \"192.0.2.2\"\nmonitors = [\"api\"]\n"
        ));
        let c = load_text("", &[("p.toml", &p)]).unwrap();
        // api on each endpoint, and one db probe shared by both users of it.
        assert_eq!(c.probes.len(), 3);
        let a = c.table.endpoints[0].monitors.as_ref().unwrap();
        assert_eq!(a.inputs.len(), 2);
        assert_eq!(a.inputs[1].what, "tcp 10.1.2.3:5432");
        let b = c.table.endpoints[1].monitors.as_ref().unwrap();
        assert_eq!(b.inputs.len(), 1);
    }

    #[test]
    fn names_and_counts_are_checked() {
        let e = errs(&format!(
            "health = {{ at_least = 3 }}\n{TWO}[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
        ));
        assert!(
            e.iter().any(|e| e
                .starts_with("health: impossible: at_least = 3, but there are only 2 monitors")),
            "{e:?}"
        );
        let e = errs(&format!(
            "{TWO}[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nmonitors = [\"api\", \"dbb\", \"api\"]\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("unknown monitor `dbb` (this profile's monitors: api, db)")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("`api` is listed twice")),
            "{e:?}"
        );
        let e = errs(
            "routing = \"priority\"\n[monitor]\nprotocol = \"tcp\"\nport = 1\nname = \"x\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nmonitors = [\"x\"]\n",
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("monitor.name: only a named monitor")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("endpoints[0].monitors: the profile has no named")),
            "{e:?}"
        );
        let e = errs(
            "routing = \"priority\"\n[[monitors]]\nname = \"API\"\nprotocol = \"tcp\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n",
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("monitors[0].name: 1-32 lowercase")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.starts_with("monitors[0].port: tcp probes need a port")),
            "{e:?}"
        );
        let e = errs(&format!(
            "health = {{ at_least = 2 }}\n{TWO}[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\nmonitors = [\"db\"]\n"
        ));
        assert!(
            e.iter().any(|e| e.contains("the profile's health = { at_least = 2 } is impossible with this endpoint's 1 monitor")),
            "{e:?}"
        );
        // A profile key below a [[monitors]] table says where it goes.
        let e = errs(&format!(
            "{TWO}health = \"any\"\n[[endpoints]]\nname = \"a\"\ntarget = \"192.0.2.1\"\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.contains("write it above the first [[monitors]]")),
            "{e:?}"
        );
    }
}
