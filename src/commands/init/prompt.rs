//! `switchyard init` on a terminal: asks for each answer the flags left
//! out, one line at a time, with its default in brackets; a bad answer is
//! explained and asked again. Plain line reading: the terminal's own line
//! editing is all the questions need (no crate; see the commit that added
//! it for dialoguer's measured cost).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::input::{self, Endpoint, NameServer};
use super::plan::{self, Answers};
use crate::commands::args::{InitArgs, InitMethod};
use switchyard::dnssec::Algorithm;

/// Questions on `out`, answers from `input`.
pub(crate) struct Prompter<R, W> {
    input: R,
    out: W,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    pub(crate) fn new(input: R, out: W) -> Self {
        Prompter { input, out }
    }

    /// Prints a line.
    fn say(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    /// One line of input, trimmed; an error at the end of the input.
    fn line(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        match default {
            Some(d) if !d.is_empty() => write!(self.out, "{question} [{d}]: ")?,
            _ => write!(self.out, "{question}: ")?,
        }
        self.out.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            writeln!(self.out)?;
            anyhow::bail!("the input ended before every question was answered; nothing written");
        }
        Ok(line.trim().to_string())
    }

    /// Asks until `parse` accepts the answer (the default for an empty
    /// one, when there is a default).
    pub(crate) fn ask<T>(
        &mut self,
        question: &str,
        default: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T> {
        loop {
            let answer = self.line(question, default)?;
            let answer = match (answer.is_empty(), default) {
                (true, Some(d)) => d.to_string(),
                (true, None) => {
                    self.say("  an answer is needed")?;
                    continue;
                }
                (false, _) => answer,
            };
            match parse(&answer) {
                Ok(v) => return Ok(v),
                Err(e) => self.say(&format!("  {e}; try again"))?,
            }
        }
    }

    /// Asks like [`Prompter::ask`]; an empty answer is `None`.
    fn ask_optional<T>(
        &mut self,
        question: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        loop {
            let answer = self.line(question, None)?;
            if answer.is_empty() {
                return Ok(None);
            }
            match parse(&answer) {
                Ok(v) => return Ok(Some(v)),
                Err(e) => self.say(&format!("  {e}; try again"))?,
            }
        }
    }

    /// A yes or no question.
    pub(crate) fn yes_no(&mut self, question: &str, default: bool) -> Result<bool> {
        let d = if default { "Y/n" } else { "y/N" };
        loop {
            match self.line(question, Some(d))?.to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => self.say("  answer y or n; try again")?,
            }
        }
    }
}

/// Asks for what `args` leaves out; the flags given are checked as they
/// would be without a terminal.
pub(crate) fn ask<R: BufRead, W: Write>(
    args: &InitArgs,
    p: &mut Prompter<R, W>,
) -> Result<Answers> {
    p.say("switchyard init: a configuration for one zone and its first profile. Enter takes the [default].")?;
    let zone = match &args.zone {
        Some(z) => input::zone(z).map_err(|e| anyhow::anyhow!("--zone {e}"))?,
        None => p.ask(
            "Zone these servers answer for (e.g. tm.example.com)",
            None,
            input::zone,
        )?,
    };
    let ns = name_servers(args, p, &zone)?;
    let profile = match &args.profile {
        Some(t) => input::profile(t, &zone, &ns).map_err(|e| anyhow::anyhow!("--profile {e}"))?,
        None => p.ask(
            &format!("Profile name (a name in {zone}, e.g. api)"),
            None,
            |t| input::profile(t, &zone, &ns),
        )?,
    };
    let method = match args.method {
        Some(m) => m,
        None => {
            let names: Vec<&str> = InitMethod::ALL.iter().map(|m| m.name()).collect();
            p.ask(
                &format!("Routing method ({})", names.join(", ")),
                Some("priority"),
                |t| {
                    InitMethod::ALL
                        .into_iter()
                        .find(|m| m.name() == t.to_ascii_lowercase())
                        .ok_or_else(|| format!("`{t}` is not one of {}", names.join(", ")))
                },
            )?
        }
    };
    let geoip = match (&args.geoip, method) {
        (Some(g), _) => Some(super::geoip_file(g).map_err(anyhow::Error::msg)?),
        (None, InitMethod::Performance | InitMethod::Geographic) => Some(p.ask(
            "GeoIP database file (MaxMind DB), which this method needs",
            bundled_geoip().as_deref(),
            |t| {
                super::geoip_file(std::path::Path::new(t))
                    .map_err(|e| e.replacen("--geoip ", "", 1))
            },
        )?),
        (None, _) => None,
    };
    let endpoints = endpoints(args, p, method, profile == zone)?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => p.ask("Directory to write into", Some("."), |t| {
            let dir = PathBuf::from(t);
            match [plan::CONFIG_FILE, plan::TOKEN_FILE]
                .iter()
                .map(|f| dir.join(f))
                .find(|f| f.symlink_metadata().is_ok())
            {
                Some(f) => Err(format!(
                    "{} already exists, and init never replaces a file: choose another directory",
                    f.display()
                )),
                None => Ok(dir),
            }
        })?,
    };
    let dnssec = match (args.dnssec, args.algorithm) {
        (true, a) => Some(a.unwrap_or(Algorithm::EcdsaP256Sha256)),
        (false, _) if p.yes_no("Sign the zone with DNSSEC?", false)? => Some(p.ask(
            "Signing algorithm (ecdsap256sha256, ed25519)",
            Some("ecdsap256sha256"),
            Algorithm::parse,
        )?),
        (false, _) => None,
    };
    let listen = if args.listen.is_empty() {
        p.ask(
            "Addresses to answer DNS on (ADDRESS:PORT, space-separated)",
            Some(&super::DEFAULT_LISTEN.join(" ")),
            |t| {
                let list: Vec<String> = t
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                super::listen_addresses(&list).map_err(|e| e.replacen("--listen ", "", 1))
            },
        )?
    } else {
        super::listen_addresses(&args.listen).map_err(anyhow::Error::msg)?
    };
    let admin_listen = match &args.admin_listen {
        Some(a) => input::listen(a).map_err(|e| anyhow::anyhow!("--admin-listen {e}"))?,
        None => p.ask(
            "Admin API address",
            Some(&switchyard::config::DEFAULT_ADMIN_LISTEN.to_string()),
            input::listen,
        )?,
    };
    Ok(Answers {
        zone,
        ns,
        profile,
        method,
        endpoints,
        dir,
        dnssec,
        listen,
        admin_listen,
        geoip,
    })
}

/// The GeoIP database shipped with the binary, where one is found.
fn bundled_geoip() -> Option<String> {
    [
        "geoip/geo-whois-asn-country.mmdb",
        "/usr/share/switchyard/geo-whois-asn-country.mmdb",
        "/usr/share/switchyard/geoip/geo-whois-asn-country.mmdb",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).is_file())
    .map(String::from)
}

/// `--ns`, or asked one per line until an empty line.
fn name_servers<R: BufRead, W: Write>(
    args: &InitArgs,
    p: &mut Prompter<R, W>,
    zone: &switchyard::proto::name::DomainName,
) -> Result<Vec<NameServer>> {
    if !args.ns.is_empty() {
        let list = args
            .ns
            .iter()
            .map(|t| input::name_server(t, zone).map_err(|e| anyhow::anyhow!("--ns {e}")))
            .collect::<Result<Vec<_>>>()?;
        return Ok(input::merge_name_servers(list));
    }
    p.say(&format!(
        "Name servers of {zone}, one per line: NAME=ADDRESS for one inside the zone (ns1=192.0.2.53; its address is the glue the parent publishes), a name alone outside it; an empty line when done."
    ))?;
    let mut list: Vec<NameServer> = Vec::new();
    loop {
        let n = list.len() + 1;
        let q = format!("Name server {n}");
        let next = if list.is_empty() {
            Some(p.ask(&q, None, |t| input::name_server(t, zone))?)
        } else {
            p.ask_optional(&q, |t| input::name_server(t, zone))?
        };
        match next {
            Some(ns) => {
                list.push(ns);
                list = input::merge_name_servers(list);
            }
            None => return Ok(list),
        }
    }
}

/// `--endpoint` (two or more), or asked: two, then more until an empty name.
fn endpoints<R: BufRead, W: Write>(
    args: &InitArgs,
    p: &mut Prompter<R, W>,
    method: InitMethod,
    apex: bool,
) -> Result<Vec<Endpoint>> {
    let mut list: Vec<Endpoint> = Vec::new();
    for t in &args.endpoints {
        let e = input::endpoint(t, method, &list).map_err(|e| anyhow::anyhow!("--endpoint {e}"))?;
        list.push(e);
    }
    plan::one_protocol(&list).map_err(anyhow::Error::msg)?;
    if list.len() >= 2 {
        return Ok(list);
    }
    p.say("Endpoints of the profile, two or more (in priority order for priority routing); an empty name after the second ends the list.")?;
    loop {
        let n = list.len() + 1;
        let q = format!("Endpoint {n} name");
        let name = if list.len() < 2 {
            let default = ["primary", "secondary"][list.len()];
            let default = (!list.iter().any(|e| e.name == default)).then_some(default);
            p.ask(&q, default, |t| input::endpoint_name(t, &list))?
        } else {
            match p.ask_optional(&q, |t| input::endpoint_name(t, &list))? {
                Some(name) => name,
                None => return Ok(list),
            }
        };
        let target = p.ask(
            &format!("  {name}: address or host name answered"),
            None,
            |t| input::address_target(t, apex, method),
        )?;
        let health = p.ask(
            &format!("  {name}: health URL (http:// or https://)"),
            None,
            |t| {
                let h = input::health_url(t)?;
                match list.first() {
                    Some(f) if f.health.https != h.https => Err(format!(
                        "`{}` is checked over {}: a profile's health URLs share one protocol",
                        f.name,
                        f.health.protocol()
                    )),
                    _ => Ok(h),
                }
            },
        )?;
        let method_value = match method {
            InitMethod::Weighted => {
                p.ask(&format!("  {name}: weight (1-1000)"), Some("1"), |t| input::method_value(method, t))?
            }
            InitMethod::Performance => p.ask(
                &format!("  {name}: location (a cloud region such as westeurope, or LAT/LON)"),
                None,
                |t| input::method_value(method, t),
            )?,
            InitMethod::Geographic => p.ask(
                &format!("  {name}: regions (WORLD, GEO-EU, DE, US-CA...; joined by + or spaces)"),
                None,
                |t| input::method_value(method, t),
            )?,
            InitMethod::Subnet => p
                .ask_optional(
                    &format!("  {name}: client networks (CIDRs joined by + or spaces; empty: the fallback)"),
                    |t| input::method_value(method, t),
                )?
                .flatten(),
            InitMethod::Priority | InitMethod::Multivalue => None,
        };
        list.push(Endpoint {
            name,
            target,
            health,
            method_value,
        });
    }
}
