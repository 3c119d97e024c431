//! `switchyard status`: the status document as tables (the endpoints, the
//! profiles' summary) and the overrides and holds in force, one line each.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;

use super::{age, aligned, call, drain_line, fail, left, ramp_line, short_time};

/// `switchyard status`: every endpoint's status and last probe, what
/// each profile serves and how long its failover can take, and the
/// overrides and holds in force (or the status document as JSON).
pub fn status(addr: SocketAddr, json: bool) -> Result<ExitCode> {
    let (code, doc) = call(addr, "GET", "/api/v1/status")?;
    if code != 200 {
        return Err(fail(code, &doc));
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = Vec::new();
    // The prober is the one failing: say so before anything else, since
    // every status below is frozen.
    if let Some(notice) = doc["prober"]["notice"].as_str() {
        lines.push(format!("PROBER IMPAIRED: {notice}"));
        lines.push(
            "  every status below is as it was before; probes go on, and statuses thaw when they succeed again"
                .into(),
        );
        lines.push(String::new());
    }
    lines.extend(aligned(&endpoint_rows(&doc)));
    lines.push(String::new());
    lines.extend(profile_summary(&doc));
    let notes = overrides_and_holds(&doc);
    if !notes.is_empty() {
        lines.push(String::new());
        lines.push("OVERRIDES AND HOLDS".into());
        lines.extend(notes);
    }
    lines.push(String::new());
    lines.push(udp_path(&doc));
    let warnings = warnings(&doc);
    if !warnings.is_empty() {
        lines.push(String::new());
        lines.push("WARNINGS".into());
        lines.extend(warnings);
    }
    for line in lines {
        out!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Which path answers UDP queries, one line.
fn udp_path(doc: &Value) -> String {
    let d = &doc["dns"];
    match d["udp_path"].as_str() {
        Some("xdp") => {
            let ifs: Vec<String> = d["xdp_interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let queues: Vec<String> = i["queues"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|q| q.to_string())
                        .collect();
                    format!(
                        "{} ({}, queues {})",
                        i["name"].as_str().unwrap_or("?"),
                        i["mode"].as_str().unwrap_or("?"),
                        queues.join(",")
                    )
                })
                .collect();
            let listen: Vec<&str> = d["xdp_listen"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .collect();
            format!(
                "UDP: XDP on {} for {}; sockets answer TCP and the rest",
                ifs.join(", "),
                listen.join(" ")
            )
        }
        Some("fallback") => format!(
            "UDP: sockets (XDP did not start: {})",
            d["xdp_error"].as_str().unwrap_or("?")
        ),
        _ => "UDP: sockets".into(),
    }
}

/// The endpoints table: a header, then a row for every endpoint of every
/// profile.
fn endpoint_rows(doc: &Value) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "PROFILE".to_string(),
        "ENDPOINT".into(),
        "TARGET".into(),
        "STATUS".into(),
        "SINCE".into(),
        "LAST PROBE".into(),
    ]];
    for p in doc["profiles"].as_array().into_iter().flatten() {
        let pname = p["name"].as_str().unwrap_or("?");
        for e in p["endpoints"].as_array().into_iter().flatten() {
            rows.push(vec![
                pname.to_string(),
                e["name"].as_str().unwrap_or("?").to_string(),
                e["target"].as_str().unwrap_or("?").to_string(),
                status_cell(e),
                age(e["since"].as_str()),
                probe_cell(e),
            ]);
        }
    }
    rows
}

/// An endpoint's last probe: its error or HTTP status (or ok), latency
/// and age; `-` before the first.
fn probe_cell(e: &Value) -> String {
    // Named monitors: each one's verdict, failing ones first.
    if let Some(list) = e["monitors"]["monitors"].as_array() {
        let mut parts: Vec<(u8, String)> = list
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap_or("?");
                let seen = m["last_probe"]["error"].as_str().unwrap_or("ok");
                let inv = if m["invert"] == true {
                    ", inverted"
                } else {
                    ""
                };
                match m["verdict"].as_str() {
                    Some("up") if inv.is_empty() => (2, format!("{name} ok")),
                    Some("up") => (2, format!("{name} ok ({seen}{inv})")),
                    Some("down") => (0, format!("{name}: {seen}{inv}")),
                    _ => (1, format!("{name}: not probed yet")),
                }
            })
            .collect();
        parts.sort_by_key(|(rank, _)| *rank);
        let parts: Vec<String> = parts.into_iter().map(|(_, p)| p).collect();
        return parts.join("; ");
    }
    match e.get("last_probe") {
        Some(Value::Object(lp)) => {
            let what = lp
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    lp.get("http_status")
                        .and_then(Value::as_u64)
                        .map(|c| format!("HTTP {c}"))
                })
                .unwrap_or_else(|| "ok".into());
            format!(
                "{what}, {} ms, {} ago",
                lp.get("latency_ms").and_then(Value::as_f64).unwrap_or(0.0),
                age(lp.get("at").and_then(Value::as_str))
            )
        }
        _ => "-".into(),
    }
}

/// An endpoint's status, marked when set at runtime, and in a cluster how
/// many nodes see it down, of how many.
fn status_cell(e: &Value) -> String {
    let mut status = e["status"].as_str().unwrap_or("?").to_string();
    if e["disabled_at_runtime"].as_bool() == Some(true) {
        status.push_str(" (runtime)");
    }
    if let Some(shed) = e["shed"].as_str() {
        status.push_str(&format!(" [{shed}]"));
    }
    // In a cluster: how many nodes see it down, of how many.
    if let Some(q) = e.get("cluster").filter(|q| q.is_object()) {
        let mut down: Vec<&str> = q["observations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["counted"] == true && o["status"] == "Degraded")
            .filter_map(|o| o["node"].as_str())
            .collect();
        down.sort_unstable();
        let mut other: Vec<&str> = q["observations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["counted"] == false)
            .filter_map(|o| o["node"].as_str())
            .collect();
        other.sort_unstable();
        status.push_str(&format!(
            " [{}/{} down{}{}]",
            q["degraded"],
            q["deciders"],
            if down.is_empty() {
                String::new()
            } else {
                format!(": {}", down.join(","))
            },
            if other.is_empty() {
                String::new()
            } else {
                format!("; not counted, probing it differently: {}", other.join(","))
            }
        ));
    }
    status
}

/// Per profile: is a healthy endpoint answering, and how long a failure
/// can go on reaching clients (detection + TTL).
fn profile_summary(doc: &Value) -> Vec<String> {
    let mut summary = vec![[
        "PROFILE".to_string(),
        "SERVING".into(),
        "WORST FAILOVER".into(),
    ]];
    for p in doc["profiles"].as_array().into_iter().flatten() {
        let worst = match p["worst_failover_s"].as_f64() {
            Some(w) => format!(
                "{}s (detection {}s + TTL {}s)",
                fmt_secs(w),
                fmt_secs(w - p["ttl"].as_f64().unwrap_or(0.0)),
                p["ttl"]
            ),
            None => "- (not monitored)".into(),
        };
        summary.push([
            p["name"].as_str().unwrap_or("?").to_string(),
            p["serving"].as_str().unwrap_or("?").to_string(),
            worst,
        ]);
    }
    let widths: Vec<usize> = (0..2)
        .map(|c| {
            summary
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    summary
        .iter()
        .map(|r| {
            format!(
                "{:<w0$}  {:<w1$}  {}",
                r[0],
                r[1],
                r[2],
                w0 = widths[0],
                w1 = widths[1]
            )
        })
        .collect()
}

/// Overrides in force, drains and holds: what an operator put in place
/// and when it ends, one line each.
fn overrides_and_holds(doc: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    for p in doc["profiles"].as_array().into_iter().flatten() {
        let pname = p["name"].as_str().unwrap_or("?");
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let ename = e["name"].as_str().unwrap_or("?");
            let o = &e["override"];
            if o["in_force"].as_bool() == Some(true) {
                notes.push(override_note(pname, ename, o));
            }
            if let Some(h) = e.get("held").filter(|h| h.is_object()) {
                notes.push(hold_note(pname, ename, h));
            }
        }
    }
    notes
}

/// What needs attention before it fails: certificates within their
/// `cert_warning` of expiring, one line each.
fn warnings(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in doc["profiles"].as_array().into_iter().flatten() {
        let pname = p["name"].as_str().unwrap_or("?");
        for e in p["endpoints"].as_array().into_iter().flatten() {
            if let Some(w) = e["certificate"]["warning"].as_str() {
                let ename = e["name"].as_str().unwrap_or("?");
                out.push(format!("{pname}/{ename}: {w}"));
            }
        }
    }
    out
}

/// An override in force: disabled, draining (and how far the drain or
/// its ramp is) or shedding, until when, by whom and why.
fn override_note(pname: &str, ename: &str, o: &Value) -> String {
    let until = o["until"]
        .as_str()
        .map_or("until enabled".to_string(), |u| {
            format!(
                "until {} ({} left)",
                short_time(u),
                left(o["remaining_s"].as_u64())
            )
        });
    let what = match o["action"].as_str() {
        Some("drain") if o["ramp"].is_object() => format!(
            "drain, {}; {}",
            ramp_line(&o["ramp"]),
            drain_line(&o["drain"])
        ),
        Some("drain") => format!("drain, {}", drain_line(&o["drain"])),
        Some("shed") => format!("shed {} % by hand", o["shed_percent"]),
        _ => "disabled".to_string(),
    };
    format!(
        "{pname}/{ename}: {what}; {until}; by {}{}",
        o["by"].as_str().unwrap_or("?"),
        o["reason"]
            .as_str()
            .map_or(String::new(), |r| format!(": {r}"))
    )
}

/// An endpoint held out by `failback = manual`: since when, until when,
/// and the command that resumes it.
fn hold_note(pname: &str, ename: &str, h: &Value) -> String {
    let until = h["until"]
        .as_str()
        .map_or("until resumed".to_string(), |u| {
            format!(
                "until {} ({} left)",
                short_time(u),
                left(h["remaining_s"].as_u64())
            )
        });
    format!(
        "{pname}/{ename}: held (failback = manual) since {}, {until}: switchyard endpoint resume {pname} {ename}",
        short_time(h["since"].as_str().unwrap_or("?"))
    )
}

/// Seconds without a useless fraction: `35`, `2.5`.
fn fmt_secs(s: f64) -> String {
    let r = (s * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}
