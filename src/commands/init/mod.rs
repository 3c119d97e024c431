//! `switchyard init`: a new configuration (a zone with its name servers and
//! glue, one profile, an admin token, optionally a DNSSEC key) from flags,
//! or from answers on a terminal ([`prompt`]); then the records to give
//! the parent zone and the commands to run next.
//!
//! Nothing is written until everything is known to be right: every answer
//! is checked as it is read ([`input`]), no file may exist yet, and the
//! configuration must compile with the code `switchyard check` runs
//! ([`plan::Plan::compile`]); then the files are written as new ones,
//! all or none.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::args::{InitArgs, InitMethod};
use plan::{Answers, Plan};

mod input;
mod plan;
mod prompt;

/// The default `--listen`: port 53 on every address.
const DEFAULT_LISTEN: [&str; 2] = ["0.0.0.0:53", "[::]:53"];

/// Runs `switchyard init`.
pub(crate) fn run(args: InitArgs) -> Result<ExitCode> {
    let missing = missing_flags(&args);
    let answers = if missing.is_empty() {
        from_flags(&args)?
    } else if !args.non_interactive && std::io::stdin().is_terminal() {
        let stdin = std::io::stdin();
        let mut p = prompt::Prompter::new(stdin.lock(), std::io::stderr());
        prompt::ask(&args, &mut p)?
    } else {
        anyhow::bail!(
            "missing {} (run it on a terminal to be asked instead); nothing written",
            missing.join(", ")
        );
    };
    let plan = Plan::new(&answers).map_err(anyhow::Error::msg)?;
    let refusals = plan.refusals();
    if !refusals.is_empty() {
        anyhow::bail!(
            "{}\nnothing written: init never replaces a file (choose another --dir, or move these away)",
            refusals.join("\n")
        );
    }
    match plan.compile() {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
        Err(errors) => anyhow::bail!(
            "the configuration it would write does not pass `switchyard check` (the lines are those of the files it would write):\n{}\nnothing written",
            errors.join("\n")
        ),
    }
    if !missing.is_empty() {
        let stdin = std::io::stdin();
        let mut p = prompt::Prompter::new(stdin.lock(), std::io::stderr());
        let files: Vec<String> = plan
            .files
            .iter()
            .map(|f| plan.dir.join(&f.path).display().to_string())
            .collect();
        if !p.yes_no(&format!("Write {}?", files.join(", ")), true)? {
            anyhow::bail!("nothing written");
        }
    }
    plan.write()
        .map_err(|e| anyhow::anyhow!("{e}; nothing written"))?;
    report(&plan, &answers)
}

/// The flags `init` needs that were not given.
fn missing_flags(args: &InitArgs) -> Vec<&'static str> {
    let mut out = Vec::new();
    if args.zone.is_none() {
        out.push("--zone");
    }
    if args.ns.is_empty() {
        out.push("--ns");
    }
    if args.profile.is_none() {
        out.push("--profile");
    }
    match args.endpoints.len() {
        0 => out.push("--endpoint (two or more)"),
        1 => {
            out.push("a second --endpoint (a profile of one endpoint has nothing to fail over to)")
        }
        _ => {}
    }
    if args.dir.is_none() {
        out.push("--dir");
    }
    out
}

/// The answers from the flags alone (every one given: [`missing_flags`]);
/// every problem, one per line.
fn from_flags(args: &InitArgs) -> Result<Answers> {
    let zone = input::zone(args.zone.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("--zone {e}\nnothing written"))?;
    let mut errors = Vec::new();
    let mut ns = Vec::new();
    for text in &args.ns {
        ns.extend(take(input::name_server(text, &zone), "--ns", &mut errors));
    }
    let ns = input::merge_name_servers(ns);
    let profile = args.profile.as_deref().unwrap_or_default();
    let profile = take(
        input::profile(profile, &zone, &ns),
        "--profile",
        &mut errors,
    );
    let method = args.method.unwrap_or(InitMethod::Priority);
    let mut endpoints = Vec::new();
    for text in &args.endpoints {
        let e = take(
            input::endpoint(text, method, &endpoints),
            "--endpoint",
            &mut errors,
        );
        endpoints.extend(e);
    }
    take(plan::one_protocol(&endpoints), "", &mut errors);
    let listen = take(listen_addresses(&args.listen), "", &mut errors);
    let admin_listen = match args.admin_listen.as_deref() {
        Some(a) => take(input::listen(a), "--admin-listen", &mut errors),
        None => Some(switchyard::config::DEFAULT_ADMIN_LISTEN),
    };
    let geoip = match args.geoip.as_deref() {
        Some(g) => take(geoip_file(g), "", &mut errors).map(Some),
        None => Some(None),
    };
    if let Some(g) = &geoip {
        take(geoip_needed(method, g.is_some()), "", &mut errors);
    }
    let (Some(profile), Some(listen), Some(admin_listen), Some(geoip), true) =
        (profile, listen, admin_listen, geoip, errors.is_empty())
    else {
        anyhow::bail!("{}\nnothing written", errors.join("\n"));
    };
    let algorithm = args
        .algorithm
        .unwrap_or(switchyard::dnssec::Algorithm::EcdsaP256Sha256);
    Ok(Answers {
        zone,
        ns,
        profile,
        method,
        endpoints,
        dir: args.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        dnssec: args.dnssec.then_some(algorithm),
        listen,
        admin_listen,
        geoip,
    })
}

/// `r`'s value, or `None` with its problem (after `flag`) kept in `errors`.
fn take<T>(r: Result<T, String>, flag: &str, errors: &mut Vec<String>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if flag.is_empty() => {
            errors.push(e);
            None
        }
        Err(e) => {
            errors.push(format!("{flag} {e}"));
            None
        }
    }
}

/// `--listen`, or port 53 on every address.
fn listen_addresses(given: &[String]) -> Result<Vec<SocketAddr>, String> {
    let defaults: Vec<String> = DEFAULT_LISTEN.iter().map(|s| s.to_string()).collect();
    let list = if given.is_empty() { &defaults } else { given };
    let mut out = Vec::new();
    for l in list {
        let a = input::listen(l).map_err(|e| format!("--listen {e}"))?;
        if out.contains(&a) {
            return Err(format!("--listen {a} is given twice"));
        }
        out.push(a);
    }
    Ok(out)
}

/// `--geoip FILE`: an existing file, named absolutely in the
/// configuration (which may live elsewhere).
fn geoip_file(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| format!("--geoip {}: no such file", path.display()))
}

/// Performance and geographic routing read the client's location.
fn geoip_needed(method: InitMethod, given: bool) -> Result<(), String> {
    if given || !matches!(method, InitMethod::Performance | InitMethod::Geographic) {
        return Ok(());
    }
    Err(format!(
        "--method {} needs a GeoIP database: --geoip FILE (the bundled geoip/geo-whois-asn-country.mmdb, or a MaxMind GeoLite2 City file)",
        method.name()
    ))
}

/// What was written, the records for the parent zone, the next commands.
fn report(plan: &Plan, a: &Answers) -> Result<ExitCode> {
    for f in &plan.files {
        let path = plan.dir.join(&f.path);
        let what = if f.path == Path::new(plan::TOKEN_FILE) {
            " (mode 0600: the admin API's token)".to_string()
        } else if f.secret {
            match plan.key {
                Some((tag, alg)) => format!(
                    " (mode 0600: the zone's signing key, key tag {tag}, algorithm {} ({}))",
                    alg.number(),
                    alg.name()
                ),
                None => " (mode 0600)".to_string(),
            }
        } else {
            String::new()
        };
        out!("wrote {}{what}", path.display());
    }
    let parent = a
        .zone
        .parent()
        .map_or_else(|| "the parent zone".to_string(), |p| p.to_string());
    out!("");
    out!("Give the parent zone ({parent}) these records, at your registrar or in its zone file:");
    for r in &plan.parent_records {
        out!("{r}");
    }
    if a.ns.len() < 2 {
        eprintln!(
            "note: one name server: most registries ask for two or more, on different networks (RFC 2182); add one to `ns` and its glue to `records` in {}",
            plan.dir.join(plan::CONFIG_FILE).display()
        );
    }
    let config = plan.dir.join(plan::CONFIG_FILE);
    let local = a.listen.first().map_or("127.0.0.1".to_string(), |l| {
        let ip = match l.ip() {
            std::net::IpAddr::V4(v) if v.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(v) if v.is_unspecified() => "::1".to_string(),
            ip => ip.to_string(),
        };
        if l.port() == 53 {
            format!("@{ip}")
        } else {
            format!("@{ip} -p {}", l.port())
        }
    });
    let again = |c: &str| super::again(&config, true, c);
    out!("");
    out!("Next:");
    out!("  {}", again("check"));
    out!(
        "  {}    # port 53 needs root or CAP_NET_BIND_SERVICE",
        again("serve")
    );
    out!("  dig +norec {local} {}    # answered, flag aa", a.profile);
    out!(
        "  dig +trace {}    # from outside, once the parent has the records",
        a.profile
    );
    if a.dnssec.is_some() {
        out!(
            "  delv {}    # \"; fully validated\", once the parent has the DS",
            a.profile
        );
    }
    out!(
        "  export SWITCHYARD_ADMIN_TOKEN=\"$(cat {})\"    # for `switchyard endpoint ...`",
        plan.dir.join(plan::TOKEN_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
