//! The admin commands of the CLI: thin clients of the admin API.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::Value;

use switchyard::admin::client;

/// Prints a line; a closed pipe (`switchyard status | head`) ends the
/// command quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }};
}

mod status;

pub use status::status;

/// The admin token, without a trailing line ending (as `admin.token` reads
/// it: a Kubernetes Secret made `--from-file` keeps the file's newline).
fn token() -> Option<String> {
    std::env::var("SWITCHYARD_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
        .filter(|t| !t.is_empty())
}

fn call(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (code, body) = rt
        .block_on(client::request(addr, method, path, token().as_deref()))
        .map_err(anyhow::Error::msg)?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((code, json))
}

fn fail(code: u16, v: &Value) -> anyhow::Error {
    let msg = v
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    if code == 401 && token().is_none() {
        anyhow::anyhow!("{msg} (set SWITCHYARD_ADMIN_TOKEN)")
    } else if code == 401 {
        anyhow::anyhow!("{msg} (check SWITCHYARD_ADMIN_TOKEN)")
    } else {
        anyhow::anyhow!("admin API answered {code}: {msg}")
    }
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn age(iso: Option<&str>) -> String {
    let Some(t) = iso.and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
    else {
        return "-".into();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs());
    match secs {
        0..=89 => format!("{secs}s"),
        90..=5399 => format!("{}m", secs / 60),
        5400..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// `switchyard status`
/// `switchyard cluster`: the nodes as the running server sees them.
pub fn cluster(addr: SocketAddr, json: bool) -> Result<ExitCode> {
    let (code, doc) = call(addr, "GET", "/api/v1/status")?;
    if code != 200 {
        return Err(fail(code, &doc));
    }
    let Some(c) = doc.get("cluster").filter(|c| c.is_object()) else {
        out!(
            "not in a cluster: the configuration has no [cluster] (see README, \"Running two or more name servers\")"
        );
        return Ok(ExitCode::SUCCESS);
    };
    if json {
        out!("{}", serde_json::to_string_pretty(c)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![vec![
        "NODE".to_string(),
        "ADDRESS".into(),
        "STATE".into(),
        "LAST HEARD".into(),
        "CONFIG DIGEST".into(),
        "VERSION".into(),
    ]];
    let mut drifted = 0;
    let mut impaired = Vec::new();
    for n in c["nodes"].as_array().into_iter().flatten() {
        let mut name = n["name"].as_str().unwrap_or("?").to_string();
        if n["this_node"].as_bool() == Some(true) {
            name.push_str(" (this node)");
        }
        let mut digest = n["digest"].as_str().unwrap_or("?").to_string();
        if n["drifted"].as_bool() == Some(true) {
            digest.push_str(" DRIFTED");
            drifted += 1;
        }
        let mut state = n["state"].as_str().unwrap_or("?").to_string();
        if let Some(held) = n["vote_held_s"].as_f64() {
            state.push_str(&format!(" (last vote counts {}s more)", held.ceil()));
        }
        if let Some(twin) = n["twin"].as_str() {
            state.push_str(&format!(" (ALSO GOSSIPED FROM {twin})"));
        }
        if n["impaired"].is_string() {
            state.push_str(" (PROBER IMPAIRED: NOT VOTING)");
            impaired.push(format!(
                "{}: {}",
                n["name"].as_str().unwrap_or("?"),
                n["impaired"].as_str().unwrap_or("")
            ));
        }
        rows.push(vec![
            name,
            n["address"].as_str().unwrap_or("?").to_string(),
            state,
            format!("{}s ago", n["last_heard_s"].as_f64().unwrap_or(0.0)),
            digest,
            n["version"].as_str().unwrap_or("?").to_string(),
        ]);
    }
    print_table(&rows)?;
    out!();
    out!("quorum: {}", c["quorum"].as_str().unwrap_or("?"));
    for line in impaired {
        out!("{line}");
    }
    if drifted > 0 {
        out!(
            "{drifted} node(s) run another configuration than most nodes ({}): keep profiles and zones the same on every node",
            c["majority_digest"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `switchyard cluster forget NODE`.
pub fn forget_node(addr: SocketAddr, node: &str) -> Result<ExitCode> {
    let path = format!("/api/v1/cluster/forget/{}", enc(node));
    let (code, doc) = call(addr, "POST", &path)?;
    if code != 200 {
        return Err(fail(code, &doc));
    }
    out!("{node}: forgotten (every node stops listing it; it is listed again if it comes back)");
    Ok(ExitCode::SUCCESS)
}

/// Prints rows as aligned columns (the last one unpadded).
fn print_table(rows: &[Vec<String>]) -> Result<ExitCode> {
    for line in aligned(rows) {
        out!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows as lines of aligned columns (the last one unpadded).
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if i + 1 == cols {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}", w = widths[i])
                    }
                })
                .collect();
            line.join("  ").trim_end().to_string()
        })
        .collect()
}

/// `switchyard explain`
pub fn explain(
    addr: SocketAddr,
    name: &str,
    qtype: &str,
    client: Option<&str>,
    ecs: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let mut path = format!("/api/v1/explain?name={}&type={}", enc(name), enc(qtype));
    if let Some(c) = client {
        path.push_str(&format!("&client={}", enc(c)));
    }
    if let Some(e) = ecs {
        path.push_str(&format!("&ecs={}", enc(e)));
    }
    let (code, doc) = call(addr, "GET", &path)?;
    if code != 200 {
        return Err(fail(code, &doc));
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{} {} -> {}{}{}",
        doc["name"].as_str().unwrap_or(name),
        doc["type"].as_str().unwrap_or(qtype),
        doc["rcode"].as_str().unwrap_or("?"),
        doc["ttl"]
            .as_u64()
            .map_or(String::new(), |t| format!(", TTL {t}")),
        doc["ecs_scope"]
            .as_u64()
            .map_or(String::new(), |s| format!(", ECS scope /{s}")),
    );
    for a in doc["answers"].as_array().into_iter().flatten() {
        out!("  answer:   {}", a.as_str().unwrap_or(""));
    }
    for a in doc["authority"].as_array().into_iter().flatten() {
        out!("  authority: {}", a.as_str().unwrap_or(""));
    }
    out!("why:");
    for s in doc["steps"].as_array().into_iter().flatten() {
        out!("  - {}", s.as_str().unwrap_or(""));
    }
    let excluded = doc["excluded"].as_array().cloned().unwrap_or_default();
    if !excluded.is_empty() {
        out!("left out:");
        for e in excluded {
            out!(
                "  - {}: {}",
                e["endpoint"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `switchyard endpoint`.
pub struct OverrideOptions<'a> {
    /// Allow taking out the last answerable endpoint.
    pub force: bool,
    /// `--for`.
    pub for_: Option<&'a str>,
    /// `--reason`.
    pub reason: Option<&'a str>,
    /// `--wait` (drain).
    pub wait: bool,
    /// `--percent` (shed).
    pub percent: Option<u16>,
    /// `--over` (drain).
    pub over: Option<&'a str>,
}

/// `switchyard endpoint disable|drain|shed|enable|resume`
pub fn endpoint(
    addr: SocketAddr,
    action: &str,
    profile: &str,
    endpoint: &str,
    opts: OverrideOptions<'_>,
) -> Result<ExitCode> {
    if opts.wait && action != "drain" {
        bail!("--wait goes with drain");
    }
    if opts.for_.is_some() && matches!(action, "enable" | "resume") {
        bail!("--for goes with disable, drain and shed");
    }
    match (action, opts.percent) {
        ("shed", None) => {
            bail!("shed needs --percent N: the share of client networks to move away, 1 to 100")
        }
        ("shed", _) | (_, None) => {}
        (_, Some(_)) => bail!("--percent goes with shed"),
    }
    if opts.over.is_some() && action != "drain" {
        bail!("--over goes with drain");
    }
    let mut query = Vec::new();
    if opts.force {
        query.push("force=1".to_string());
    }
    if let Some(f) = opts.for_ {
        query.push(format!("for={}", enc(f)));
    }
    if let Some(p) = opts.percent {
        query.push(format!("percent={p}"));
    }
    if let Some(o) = opts.over {
        query.push(format!("over={}", enc(o)));
    }
    if let Some(r) = opts.reason {
        query.push(format!("reason={}", enc(r)));
    }
    let path = format!(
        "/api/v1/profiles/{}/endpoints/{}/{action}{}{}",
        enc(profile),
        enc(endpoint),
        if query.is_empty() { "" } else { "?" },
        query.join("&")
    );
    let (code, doc) = call(addr, "POST", &path)?;
    if code != 200 {
        return Err(fail(code, &doc));
    }
    let profile = doc["profile"].as_str().unwrap_or(profile).to_string();
    let o = &doc["override"];
    let until = o["until"]
        .as_str()
        .map(|u| {
            format!(
                " until {} ({} left)",
                short_time(u),
                left(o["remaining_s"].as_u64())
            )
        })
        .unwrap_or_default();
    let what = match action {
        "disable" if until.is_empty() => " (disabled at runtime until enabled again)".to_string(),
        "disable" => format!(" (disabled at runtime{until})"),
        "drain" if o["ramp"].is_object() => format!(
            " (draining{until}; {}; {})",
            ramp_line(&o["ramp"]),
            drain_line(&o["drain"])
        ),
        "drain" => format!(" (draining{until}; {})", drain_line(&o["drain"])),
        "shed" if until.is_empty() => format!(
            " (shedding {} % of new traffic by hand until enabled again)",
            o["shed_percent"]
        ),
        "shed" => format!(
            " (shedding {} % of new traffic by hand{until})",
            o["shed_percent"]
        ),
        _ => String::new(),
    };
    out!(
        "{profile}/{endpoint}: {}{what}",
        doc["status"].as_str().unwrap_or("?"),
    );
    if doc["saved"] == Value::Bool(false) {
        out!("note: no state_file is configured, so this lasts until the next restart");
    }
    if opts.wait {
        return wait_drained(addr, &profile, endpoint);
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-12-02T14:32:10.123Z` as `14:32:10 UTC`, or the text as is.
fn short_time(t: &str) -> String {
    match t.split_once('T') {
        Some((_, rest)) => format!("{} UTC", rest.get(..8).unwrap_or(rest)),
        None => t.to_string(),
    }
}

/// Seconds as `29m 59s`.
fn left(s: Option<u64>) -> String {
    let s = s.unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
}

/// Where a drain's ramp (`--over`) stands, in words.
fn ramp_line(r: &Value) -> String {
    let out = short_time(r["out_at"].as_str().unwrap_or("?"));
    if r["done"].as_bool() == Some(true) {
        format!("ramped out, out of answers since {out}")
    } else {
        format!(
            "ramping over {}: {} % shed (step {} of {}), out of answers at {out}, in {}",
            left(r["over_s"].as_f64().map(|s| s as u64)),
            r["shed_percent"].as_f64().unwrap_or(0.0),
            r["step"],
            r["steps"],
            left(r["remaining_s"].as_u64())
        )
    }
}

/// Where a drain stands, in words.
fn drain_line(d: &Value) -> String {
    let at = short_time(d["drained_at"].as_str().unwrap_or("?"));
    let last = d["last_served"]
        .as_str()
        .map_or("not answered since tracked".to_string(), |l| {
            format!("last answered {}", short_time(l))
        });
    if d["drained"].as_bool() == Some(true) {
        format!("drained at {at}; {last}")
    } else {
        format!(
            "drained at {at}, in {}; {last}",
            left(d["remaining_s"].as_u64())
        )
    }
}

/// How often `drain --wait` prints where the drain stands when its output
/// is not a terminal: every 5 s, every 30 s while more than two minutes are
/// left. On a terminal it rewrites one line every second.
fn progress_every(remaining_s: u64) -> std::time::Duration {
    std::time::Duration::from_secs(if remaining_s > 120 { 30 } else { 5 })
}

/// `2026-12-02T14:32:10.123Z` as a time.
fn parse_time(t: &Value) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(t.as_str()?).ok()
}

/// A drain in progress, in one line: the time left, when, and the last
/// answer that named the endpoint (how long before the status was made).
fn drain_progress(d: &Value, generated_at: &Value) -> String {
    let at = short_time(d["drained_at"].as_str().unwrap_or("?"));
    let last = match d["last_served"].as_str() {
        Some(l) => {
            let ago = parse_time(generated_at)
                .zip(parse_time(&d["last_served"]))
                .and_then(|(now, then)| now.duration_since(then).ok())
                .map(|ago| format!(" ({} ago)", left(Some(ago.as_secs()))))
                .unwrap_or_default();
            format!("last answered {}{ago}", short_time(l))
        }
        None => "not answered since tracked".to_string(),
    };
    format!(
        "draining, {} left (drained at {at}); {last}",
        left(d["remaining_s"].as_u64())
    )
}

/// Polls the status until the drain of `profile`/`endpoint` is complete,
/// showing how it stands meanwhile ([`progress_every`]).
fn wait_drained(addr: SocketAddr, profile: &str, endpoint: &str) -> Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    let mut printed: Option<std::time::Instant> = None;
    // Bounded: a drain completes within the longest TTL (at most about
    // 68 years by the protocol, a day or so in practice); the loop also
    // ends when the drain is undone.
    loop {
        let (code, doc) = call(addr, "GET", "/api/v1/status")?;
        if code != 200 {
            return Err(fail(code, &doc));
        }
        let ep = doc["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(profile))
            .and_then(|p| {
                p["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["name"].as_str() == Some(endpoint))
                    .cloned()
            });
        // On a terminal, the progress line is replaced by the result, and
        // ended (kept) before an error.
        let progressing = tty && printed.is_some();
        let end = || {
            if progressing {
                println!();
            }
        };
        let Some(ep) = ep else {
            end();
            bail!("{profile}/{endpoint} is no longer in the configuration");
        };
        let o = &ep["override"];
        if o["action"].as_str() != Some("drain") || o["in_force"].as_bool() != Some(true) {
            end();
            bail!("the drain of {profile}/{endpoint} was undone or ran out before it completed");
        }
        let d = &o["drain"];
        if d["drained"].as_bool() == Some(true) {
            let clear = if progressing { "\r\x1b[2K" } else { "" };
            out!("{clear}{profile}/{endpoint}: {}", drain_line(d));
            return Ok(ExitCode::SUCCESS);
        }
        let remaining = d["remaining_s"].as_u64().unwrap_or(1);
        let line = match &o["ramp"] {
            r if r["done"].as_bool() == Some(false) => {
                format!("{profile}/{endpoint}: {}", ramp_line(r))
            }
            _ => format!(
                "{profile}/{endpoint}: {}",
                drain_progress(d, &doc["generated_at"])
            ),
        };
        let every = progress_every(remaining);
        let pause = if tty {
            let mut stdout = std::io::stdout().lock();
            if write!(stdout, "\r\x1b[2K{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return Ok(ExitCode::SUCCESS);
            }
            printed = Some(std::time::Instant::now());
            std::time::Duration::from_secs(1)
        } else {
            if printed.is_none_or(|t| t.elapsed() + std::time::Duration::from_millis(500) >= every)
            {
                out!("{line}");
                printed = Some(std::time::Instant::now());
            }
            every.min(std::time::Duration::from_secs(remaining.max(1)))
        };
        std::thread::sleep(pause);
    }
}

/// `switchyard check --diff`: the running server's dry-run reload of the
/// configuration on disk, what it would change in the answers. The diff
/// needs the running server (its health decides the answers), so an
/// unreachable one is an error (exit 2), never a guess.
///
/// With `staged`, the configuration on disk with the staged profiles
/// (`profiles.staged/`) on top: what `switchyard apply` would change.
pub fn check_diff(addr: SocketAddr, json: bool, staged: bool) -> Result<ExitCode> {
    let path = if staged {
        "/api/v1/reload?dry_run=1&staged=1"
    } else {
        "/api/v1/reload?dry_run=1"
    };
    let (code, doc) = match call(addr, "POST", path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: no diff: {e}\nhint: the diff is computed by the running server, at its current health; start it (`switchyard serve`), or name its configuration with -c or its admin API with --admin"
            );
            return Ok(ExitCode::from(2));
        }
    };
    match code {
        200 => {
            if json {
                out!("{}", serde_json::to_string_pretty(&doc["dry_run"])?);
                return Ok(ExitCode::SUCCESS);
            }
            if staged && doc["staged"].is_null() {
                bail!(
                    "the running server at {addr} does not read staged profiles (it is older than this command): nothing compared"
                );
            }
            let dry = &doc["dry_run"];
            let config = doc["config"].as_str().unwrap_or("its configuration");
            match doc["staged"].as_str() {
                Some(dir) => out!(
                    "the running server at {addr}, reading {config} with the profiles staged in {dir} (nothing applied):"
                ),
                None => out!("the running server at {addr}, reading {config} (nothing applied):"),
            }
            for line in dry["text"].as_str().unwrap_or("").lines() {
                out!("{line}");
            }
            if let Some(line) = restart_line(&dry["restart_needed"]) {
                out!("{line}");
            }
            if dry["health_changed"].as_bool() == Some(true) {
                out!(
                    "note: an endpoint's health changed while comparing; run it again for a settled view"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        422 => {
            for e in doc["errors"].as_array().into_iter().flatten() {
                out!("{}", e.as_str().unwrap_or(""));
            }
            eprintln!(
                "the running server rejects this configuration (nothing changed); a reload would keep the previous one"
            );
            Ok(ExitCode::from(1))
        }
        _ => bail!(fail(code, &doc)),
    }
}

/// The settings a reload changed that only a restart applies, in a line
/// (`None`: none).
fn restart_line(list: &Value) -> Option<String> {
    let pending: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    (!pending.is_empty()).then(|| {
        format!(
            "changed, and applied only at the next restart: {}",
            pending.join(", ")
        )
    })
}

/// `switchyard reload`
pub fn reload(addr: SocketAddr) -> Result<ExitCode> {
    let (code, doc) = call(addr, "POST", "/api/v1/reload")?;
    match code {
        200 => {
            let s = &doc["summary"];
            out!(
                "reloaded: {} profiles, {} endpoints, {} probes",
                s["profiles"],
                s["endpoints"],
                s["probes"]
            );
            if let Some(line) = restart_line(&s["restart_needed"]) {
                out!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        422 => {
            for e in doc["errors"].as_array().into_iter().flatten() {
                out!("{}", e.as_str().unwrap_or(""));
            }
            eprintln!("configuration rejected; the previous one keeps serving");
            Ok(ExitCode::from(1))
        }
        _ => bail!(fail(code, &doc)),
    }
}

/// `switchyard healthcheck`: the admin `/healthz` (no token needed),
/// `ok` and exit 0 on 200; what it answered, or why it could not be
/// reached, and exit 1 otherwise.
pub fn healthcheck(addr: SocketAddr) -> Result<ExitCode> {
    let (code, body) = call(addr, "GET", "/healthz")?;
    let text = body.as_str().map(str::trim).unwrap_or_default();
    if code == 200 {
        out!("ok");
        Ok(ExitCode::SUCCESS)
    } else {
        out!("unhealthy: {code} {text}");
        Ok(ExitCode::from(1))
    }
}
