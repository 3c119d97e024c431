//! The status page's first view, rendered on the server from the same
//! document `/api/v1/status` returns, so the page shows the profiles
//! without JavaScript (`curl`, text browsers, a screenshot taken at once).
//! The page's script then replaces it with its own rendering every 2 s;
//! both write the same elements, classes and text (see `page.html`), so a
//! reader sees no jump. The override buttons need the script: they are not
//! rendered here.
//!
//! Everything from the document is HTML-escaped: profile and endpoint
//! names, reasons and probe errors come from configuration files, operators
//! and remote servers.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::status::{
    CertificateDoc, EndpointDoc, HistoryDoc, ProbeDoc, QuorumDoc, StatusDoc, TransitionDoc,
};

/// Country shapes for the Traffic View's map: SVG path data by ISO
/// 3166-1 alpha-2 code, equirectangular, from Natural Earth's 1:110m
/// countries (public domain), made by `tools/gen-world.py`. JSON inside
/// a `<script type="application/json">`: no `<` in it.
const WORLD: &str = include_str!("world.json");

/// The page with its first view in place (`<!--ssr:NAME-->` markers of
/// `template`).
pub fn render(template: &str, doc: &StatusDoc, now: SystemTime) -> String {
    let r = Renderer { now };
    template
        .replacen("<!--ssr:meta-->", &r.meta(doc), 1)
        .replacen("<!--ssr:made-->", &esc(&clock_of(now)), 1)
        .replacen("<!--ssr:notices-->", &r.notices(doc), 1)
        .replacen("<!--ssr:cluster-->", &r.cluster(doc), 1)
        .replacen("<!--ssr:profiles-->", &r.profiles(doc), 1)
        .replacen("<!--ssr:history-->", &r.history(doc), 1)
        .replacen("<!--ssr:world-->", WORLD, 1)
}

/// Text for HTML, in elements and in quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `<span class="badge Status">Status</span>`, the class without what is
/// not a letter (`Online (held)` is `Onlineheld`).
fn badge(s: &str) -> String {
    let class: String = s.chars().filter(char::is_ascii_alphabetic).collect();
    format!("<span class=\"badge {class}\">{}</span>", esc(s))
}

/// `14:32:10 UTC` of an RFC 3339 time, as the script's `clock`.
fn clock(iso: &str) -> String {
    let time = iso.split_once('T').map_or(iso, |(_, t)| t);
    let time = time.split(['.', 'Z']).next().unwrap_or(time);
    format!("{time} UTC")
}

fn clock_of(t: SystemTime) -> String {
    clock(&crate::clock::rfc3339_millis(t))
}

/// Seconds left, as the script's `left`.
fn left(s: Option<u64>) -> String {
    match s {
        None => String::new(),
        Some(s) if s < 90 => format!("{s} s"),
        Some(s) if s < 5400 => format!("{} min", (s as f64 / 60.0).round()),
        Some(s) => format!("{} h", (s as f64 / 3600.0).round()),
    }
}

/// A table head.
fn head(columns: &[&str]) -> String {
    let mut out = String::from("<thead><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead>");
    out
}

struct Renderer {
    now: SystemTime,
}

impl Renderer {
    /// How long ago `iso` was, as the script's `ago`.
    fn ago(&self, iso: Option<&str>) -> String {
        let Some(t) = iso.and_then(|i| humantime::parse_rfc3339_weak(i).ok()) else {
            return String::new();
        };
        let s = self.now.duration_since(t).map_or(0.0, |d| d.as_secs_f64());
        let s = s.round();
        if s < 90.0 {
            format!("{s} s")
        } else if s < 5400.0 {
            format!("{} min", (s / 60.0).round())
        } else if s < 172_800.0 {
            format!("{} h", (s / 3600.0).round())
        } else {
            format!("{} d", (s / 86_400.0).round())
        }
    }

    fn meta(&self, doc: &StatusDoc) -> String {
        esc(&format!(
            "{} profiles \u{b7} configuration loaded {} ago \u{b7} updated {}",
            doc.profiles.len(),
            self.ago(doc.config_loaded_at.as_deref()),
            clock_of(self.now)
        ))
    }

    fn notices(&self, doc: &StatusDoc) -> String {
        let mut out = String::new();
        if let Some(n) = &doc.prober.notice {
            let _ = write!(
                out,
                "<div class=\"notice frozen\"><strong>Prober impaired: </strong>{}</div>",
                esc(n)
            );
        }
        for p in &doc.problems {
            let _ = write!(
                out,
                "<div class=\"notice\"><strong>{} ago: </strong>{}</div>",
                esc(&self.ago(Some(&p.at))),
                esc(&p.message)
            );
        }
        out
    }

    fn cluster(&self, doc: &StatusDoc) -> String {
        let Some(c) = &doc.cluster else {
            return String::new();
        };
        let mut out = format!(
            "<h2>Cluster \u{b7} quorum {}</h2><table>{}<tbody>",
            esc(&c.quorum),
            head(&[
                "node",
                "address",
                "state",
                "last heard",
                "config digest",
                "version"
            ])
        );
        for n in &c.nodes {
            let _ = write!(
                out,
                "<tr data-node=\"{name}\"><td><strong>{name}</strong>{this}</td><td class=\"mono\">{addr}</td><td>{state}{held}{twin}{impaired}</td><td>{heard} s ago</td><td class=\"mono\">{digest}{drifted}</td><td>{version}</td></tr>",
                name = esc(&n.name),
                this = if n.this_node {
                    "<span class=\"muted\"> (this node)</span>"
                } else {
                    ""
                },
                addr = esc(&n.address),
                state = badge(n.state),
                held = n.vote_held_s.map_or_else(String::new, |h| format!(
                    "<span class=\"muted\"> last vote counts {}s more</span>",
                    h.ceil()
                )),
                twin = n.twin.as_deref().map_or_else(String::new, |t| format!(
                    "<span class=\"drifted\"> also gossiped from {}</span>",
                    esc(t)
                )),
                impaired = n
                    .impaired
                    .as_deref()
                    .map_or_else(String::new, |why| format!(
                        "<span class=\"drifted\" title=\"{}\"> prober impaired: not voting</span>",
                        esc(why)
                    )),
                heard = n.last_heard_s,
                digest = esc(&n.digest),
                drifted = if n.drifted {
                    "<span class=\"drifted\"> drifted</span>"
                } else {
                    ""
                },
                version = esc(&n.version),
            );
        }
        out.push_str("</tbody></table>");
        out
    }

    fn profiles(&self, doc: &StatusDoc) -> String {
        let mut out = String::new();
        for p in &doc.profiles {
            let failover = p
                .worst_failover_s
                .map(|w| format!(" \u{b7} worst-case failover {w} s"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<section data-profile=\"{name}\"><h2>{name}{badge}<span class=\"serving {serving_class}\" title=\"what the name answers now\">serving: {serving}</span><span class=\"method\">{method}</span></h2><table>{head}<tbody>",
                name = esc(&p.name),
                badge = badge(p.status),
                serving_class = esc(&p.serving.replacen(' ', "-", 1)),
                serving = esc(p.serving),
                method = esc(&format!("{} \u{b7} TTL {}{failover}", p.routing, p.ttl)),
                head = head(&[
                    "endpoint",
                    "target",
                    "status",
                    "for",
                    "last probe",
                    "answers",
                    "transitions"
                ]),
            );
            for e in &p.endpoints {
                out.push_str(&self.endpoint(e));
            }
            out.push_str("</tbody></table></section>");
        }
        out
    }

    fn endpoint(&self, e: &EndpointDoc) -> String {
        format!(
            "<tr data-endpoint=\"{name}\"><td><strong>{name}</strong>{overrides}</td><td class=\"mono\">{target}</td><td>{badge}{observed}</td><td>{since}</td><td>{probe}</td><td>{answers}</td><td>{transitions}</td></tr>",
            name = esc(&e.name),
            overrides = self.override_lines(e),
            target = esc(&e.target),
            badge = badge(e.status),
            observed = e.cluster.as_ref().map(observed).unwrap_or_default(),
            since = esc(&self.ago(e.since.as_deref())),
            probe = self.probe(e.last_probe.as_ref()) + &cert_line(e.certificate.as_ref()),
            answers = e.answers,
            transitions = transitions(&e.transitions),
        )
    }

    /// What a runtime override, a drain or a hold means for the endpoint
    /// now, as the script's `overrideLine`.
    fn override_lines(&self, e: &EndpointDoc) -> String {
        let mut out = String::new();
        if let Some(o) = e.override_.as_ref().filter(|o| o.in_force) {
            let who = format!(
                "{}{}",
                o.by.as_deref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default(),
                o.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            let until = match &o.until {
                Some(u) => format!(" until {} ({} left)", clock(u), left(o.remaining_s)),
                None => " until enabled".to_string(),
            };
            let ramping = o.ramp.as_ref().filter(|r| !r.done);
            match (&o.drain, o.action, ramping) {
                (_, "shed", _) => {
                    let _ = write!(
                        out,
                        "<div class=\"override shed\">{}</div>",
                        esc(&format!(
                            "shed {} % by hand{until}{who}",
                            o.shed_percent.unwrap_or(0)
                        ))
                    );
                }
                (Some(d), "drain", Some(r)) => {
                    let _ = write!(
                        out,
                        "<div class=\"override draining\" data-drain=\"ramping\">{}</div>",
                        esc(&format!(
                            "draining: {} % shed (step {} of {}), out of answers at {} (in {}), drained at {} \u{b7} drain over {}{until}{who}",
                            r.shed_percent,
                            r.step.unwrap_or(0),
                            r.steps,
                            clock(&r.out_at),
                            left(Some(r.remaining_s)),
                            clock(&d.drained_at),
                            left(Some(r.over_s as u64)),
                        ))
                    );
                }
                (Some(d), "drain", None) => {
                    let state = if d.drained {
                        format!("drained at {}", clock(&d.drained_at))
                    } else {
                        format!(
                            "draining: drained at {} (in {})",
                            clock(&d.drained_at),
                            left(Some(d.remaining_s))
                        )
                    };
                    let last = match &d.last_served {
                        Some(l) => format!(" \u{b7} last answered {}", clock(l)),
                        None => " \u{b7} not answered since".to_string(),
                    };
                    let _ = write!(
                        out,
                        "<div class=\"override draining\" data-drain=\"{}\">{}</div>",
                        if d.drained { "drained" } else { "draining" },
                        esc(&format!("{state}{last} \u{b7} drain{until}{who}"))
                    );
                }
                _ => {
                    let _ = write!(
                        out,
                        "<div class=\"override disabled\">{}</div>",
                        esc(&format!("disabled{until}{who}"))
                    );
                }
            }
        }
        // Shedding by load (a shed by hand or a ramp is said above).
        let manual = e
            .override_
            .as_ref()
            .is_some_and(|o| o.in_force && (o.action == "shed" || o.ramp.is_some()));
        if let Some(shed) = e.shed.as_deref().filter(|_| !manual) {
            let _ = write!(out, "<div class=\"override shed\">{}</div>", esc(shed));
        }
        if let Some(h) = &e.held {
            let until = match &h.until {
                Some(u) => format!(" until {} ({} left)", clock(u), left(h.remaining_s)),
                None => " until resumed".to_string(),
            };
            let _ = write!(
                out,
                "<div class=\"override held\">{}</div>",
                esc(&format!(
                    "held since {}{until} (failback = manual)",
                    clock(&h.since)
                ))
            );
        }
        out
    }

    fn probe(&self, p: Option<&ProbeDoc>) -> String {
        let Some(p) = p else {
            return "<span class=\"muted\">not probed</span>".to_string();
        };
        let what = match (&p.error, p.http_status) {
            (Some(e), _) => format!("<span class=\"err\">{}</span>", esc(e)),
            (None, Some(s)) => format!("<span>HTTP {s}</span>"),
            (None, None) => "<span>ok</span>".to_string(),
        };
        format!(
            "<span>{what}<span class=\"muted\">{}</span></span>",
            esc(&format!(
                " \u{b7} {} ms \u{b7} {} ago",
                p.latency_ms,
                self.ago(Some(&p.at))
            ))
        )
    }

    fn history(&self, doc: &StatusDoc) -> String {
        if doc.history.is_empty() {
            return String::new();
        }
        let mut out = format!(
            "<h2>Runtime overrides \u{b7} history</h2><table>{}<tbody>",
            head(&[
                "when", "profile", "endpoint", "action", "until", "by", "reason", "node"
            ])
        );
        for r in &doc.history {
            let when = r.at.replacen('T', " ", 1);
            let when = when.split('.').next().unwrap_or(&when);
            let _ = write!(
                out,
                "<tr data-history=\"{action}\"><td class=\"mono\">{when}</td><td>{profile}</td><td>{endpoint}</td><td>{what}</td><td class=\"mono\">{until}</td><td>{by}</td><td>{reason}</td><td>{node}</td></tr>",
                action = esc(r.action),
                what = esc(&history_action(r)),
                when = esc(when),
                profile = esc(&r.profile),
                endpoint = esc(&r.endpoint),
                until = esc(&r.until.as_deref().map(clock).unwrap_or_default()),
                by = esc(r.by.as_deref().unwrap_or("")),
                reason = esc(r.reason.as_deref().unwrap_or("")),
                node = esc(&r.node),
            );
        }
        out.push_str("</tbody></table>");
        out
    }
}

/// A history row's action with its share or ramp (`shed 30 %`, `drain
/// over 10 min`), as the script's `historyAction`.
fn history_action(r: &HistoryDoc) -> String {
    match (r.shed_percent, r.over_s) {
        (Some(p), _) => format!("{} {p} %", r.action),
        (_, Some(o)) => format!("{} over {}", r.action, left(Some(o as u64))),
        _ => r.action.to_string(),
    }
}

/// How the cluster decided, as the script's `observed`.
fn observed(c: &QuorumDoc) -> String {
    let title: Vec<String> = c
        .observations
        .iter()
        .map(|o| {
            let mut line = format!("{}: {}", o.node, o.status);
            if !o.counted {
                let _ = write!(line, " (not counted: {})", o.note.as_deref().unwrap_or(""));
            } else if let Some(note) = &o.note {
                let _ = write!(line, " ({note})");
            }
            if !o.summary.is_empty() {
                let _ = write!(line, " \u{b7} {}", o.summary);
            }
            line
        })
        .collect();
    format!(
        "<div class=\"muted\" title=\"{}\">{}</div>",
        esc(&title.join("\n")),
        esc(&c.summary)
    )
}

/// Recent status changes, newest first, as the script's `transitions`.
fn transitions(list: &[TransitionDoc]) -> String {
    if list.is_empty() {
        return "<span class=\"muted\">none</span>".to_string();
    }
    let mut out = format!(
        "<details><summary>{} recent</summary><ul class=\"mono\">",
        list.len()
    );
    for t in list.iter().rev() {
        let at = t.at.replacen('T', " ", 1).replacen('Z', "", 1);
        let _ = write!(
            out,
            "<li>{}</li>",
            esc(&format!(
                "{at}  {} \u{2192} {}  ({})",
                t.from, t.to, t.reason
            ))
        );
    }
    out.push_str("</ul></details>");
    out
}

/// HTTPS: the certificate's expiry, a warning within `cert_warning`, as
/// the script's `certLine`.
fn cert_line(c: Option<&CertificateDoc>) -> String {
    match c {
        None => String::new(),
        Some(CertificateDoc {
            warning: Some(w), ..
        }) => format!("<div class=\"cert expiring\">{}</div>", esc(w)),
        Some(c) => format!(
            "<div class=\"cert muted\">certificate: {} days left</div>",
            c.days_left
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_the_document_is_escaped() {
        assert_eq!(
            esc("<b onclick='x'>&\"</b>"),
            "&lt;b onclick=&#39;x&#39;&gt;&amp;&quot;&lt;/b&gt;"
        );
        assert_eq!(
            badge("Online (held)"),
            "<span class=\"badge Onlineheld\">Online (held)</span>"
        );
        assert_eq!(clock("2026-12-02T14:32:10.123Z"), "14:32:10 UTC");
        assert_eq!(left(Some(89)), "89 s");
        assert_eq!(left(Some(1800)), "30 min");
        assert_eq!(left(Some(7200)), "2 h");
    }
}
