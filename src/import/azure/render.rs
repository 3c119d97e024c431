//! Writing a mapped profile as the text of a Switchyard profile file
//! (TOML), with what was not carried over in its header.

use std::fmt::Write as _;

use super::draft::{Draft, Ep, Monitor};
use crate::import::Notice;

/// A TOML string.
pub(super) fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// An inline TOML table of strings: `{ "k" = "v", ... }`.
fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", q(k), q(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// The profile file for `d`, the notices about it in its header.
pub(super) fn render(d: &Draft, notices: &[Notice]) -> String {
    let mut o = String::new();
    header(&mut o, d, notices);
    settings(&mut o, d);
    monitor(&mut o, &d.monitor);
    for e in &d.endpoints {
        let b = endpoint(e);
        let _ = writeln!(o);
        match &e.skip {
            None => o.push_str(&b),
            Some(why) => {
                let _ = writeln!(o, "# Not imported ({why}): complete it and uncomment.");
                for line in b.lines() {
                    let _ = writeln!(o, "# {line}");
                }
            }
        }
    }
    o
}

/// The comment the file starts with: where it comes from, and every
/// notice about the profile, so that the file keeps what was left out.
fn header(o: &mut String, d: &Draft, notices: &[Notice]) {
    let _ = writeln!(
        o,
        "# Imported from Azure Traffic Manager profile `{}` ({}) by",
        d.resource_name.as_deref().unwrap_or(&d.relative),
        d.fqdn
    );
    let _ = writeln!(o, "# `switchyard import azure {}`.", d.file);
    if !notices.is_empty() {
        let _ = writeln!(o, "#\n# Not carried over, or carried over differently:");
        for n in notices {
            let text = n.to_string().replace('\n', " ");
            let _ = writeln!(o, "#   {text}");
        }
    }
    let _ = writeln!(o);
}

/// The profile's own keys: name, routing method, and the settings Azure
/// gave it.
fn settings(o: &mut String, d: &Draft) {
    let _ = writeln!(o, "name = {}", q(&d.name));
    let _ = writeln!(o, "routing = {}", q(d.routing));
    if let Some(t) = d.ttl {
        let _ = writeln!(o, "ttl = {t}");
    }
    if !d.enabled {
        let _ = writeln!(o, "enabled = false  # profileStatus: Disabled");
    }
    if let Some(n) = d.max_answers {
        let _ = writeln!(o, "max_answers = {n}  # maxReturn");
    }
}

/// The `[monitor]` table.
fn monitor(o: &mut String, m: &Monitor) {
    let _ = writeln!(o, "\n[monitor]  # monitorConfig");
    let _ = writeln!(o, "protocol = {}", q(m.protocol));
    if let Some(p) = m.port {
        let _ = writeln!(o, "port = {p}");
    }
    if let Some(p) = &m.path {
        let _ = writeln!(o, "path = {}", q(p));
    }
    let _ = writeln!(o, "interval = \"{}s\"", m.interval);
    let _ = writeln!(o, "timeout = \"{}\"", super::monitor::millis(m.timeout_ms));
    let _ = writeln!(o, "tolerated_failures = {}", m.tolerated);
    if !m.expected.is_empty() {
        let _ = writeln!(o, "expected_status = [{}]", m.expected.join(", "));
    }
    if !m.headers.is_empty() {
        let _ = writeln!(o, "headers = {}", inline_table(&m.headers));
    }
    if m.protocol == "https" {
        let _ = writeln!(
            o,
            "tls_verify = false  # Azure does not verify probe certificates; true once they are valid for the Host names"
        );
    }
}

/// One `[[endpoints]]` table, uncommented (the caller comments out the
/// endpoints that cannot be written).
fn endpoint(e: &Ep) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "[[endpoints]]");
    let _ = writeln!(b, "name = {}", q(&e.name));
    if let Some(c) = &e.child {
        let _ = writeln!(b, "profile = {}  # nested endpoint", q(c));
    } else if let Some(t) = &e.target {
        let _ = writeln!(b, "target = {}", q(t));
    }
    if let Some(p) = e.priority {
        let _ = writeln!(b, "priority = {p}");
    }
    if let Some(w) = e.weight {
        let _ = writeln!(b, "weight = {w}");
    }
    if let Some((v, c)) = &e.location {
        if c.is_empty() {
            let _ = writeln!(b, "location = {v}");
        } else {
            let _ = writeln!(b, "location = {v}  # {c}");
        }
    }
    if !e.regions.is_empty() {
        let r: Vec<String> = e.regions.iter().map(|r| q(r)).collect();
        let _ = writeln!(b, "regions = [{}]", r.join(", "));
    }
    if !e.subnets.is_empty() {
        let r: Vec<String> = e.subnets.iter().map(|r| q(r)).collect();
        let _ = writeln!(b, "subnets = [{}]", r.join(", "));
    }
    if let Some(n) = e.min_child {
        let _ = writeln!(b, "min_child_endpoints = {n}");
    }
    if !e.enabled {
        let _ = writeln!(b, "enabled = false  # endpointStatus: Disabled");
    }
    if e.always_serve {
        let _ = writeln!(b, "always_serve = true");
    }
    if !e.headers.is_empty() {
        let line = format!("probe = {{ headers = {} }}", inline_table(&e.headers));
        if e.always_serve || !e.enabled {
            let _ = writeln!(b, "# {line}  # Azure's; not probed now");
        } else {
            let _ = writeln!(b, "{line}");
        }
    }
    b
}
