//! `switchyard dnssec`: a zone's signing key made, or its DS records
//! printed for the parent zone.

use std::process::ExitCode;

use anyhow::Result;

use super::args::DnssecCommand;
use switchyard::config;

/// Runs `switchyard dnssec keygen` or `ds`, printing what they make.
pub(crate) fn run(command: DnssecCommand, config_path: &std::path::Path) -> Result<ExitCode> {
    use switchyard::dnssec::cli;
    let lines = match command {
        DnssecCommand::Keygen {
            zone,
            algorithm,
            out,
            force,
        } => cli::keygen(&zone, algorithm, out.as_deref(), force, config_path),
        DnssecCommand::Ds {
            zone,
            key: Some(key),
        } => cli::ds(&zone, &key),
        DnssecCommand::Ds { zone, key: None } => configured_ds(&zone, config_path),
    }
    .map_err(anyhow::Error::msg)?;
    for line in lines {
        out!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The DS records of every key `zone` publishes in the configuration at
/// `path` (its CDS set: the signing key and any `publish` key).
fn configured_ds(zone: &str, path: &std::path::Path) -> Result<Vec<String>, String> {
    let name = switchyard::proto::name::DomainName::parse(zone, None)
        .map_err(|e| format!("`{zone}`: {e}"))?;
    let cfg = config::load(path).map_err(|e| {
        format!(
            "{}: the configuration has problems (run `switchyard check`), or pass --key FILE:\n{e}",
            path.display()
        )
    })?;
    let t = &cfg.table;
    let z = t.zones.iter().find(|z| z.origin == name).ok_or_else(|| {
        format!(
            "{} serves no zone {name} (pass --key FILE for a key of another zone)",
            path.display()
        )
    })?;
    if z.signer.is_none() {
        return Err(format!(
            "zone {name} is not signed in {}: add `dnssec = {{ key = {{ file = \"...\" }} }}` to it, or pass --key FILE",
            path.display()
        ));
    }
    let apex = &t.nodes[z.apex as usize];
    let lines = apex
        .set(switchyard::proto::rr::rtype::CDS)
        .map(|set| {
            set.rrs
                .iter()
                .map(|rr| {
                    let d = rr.rdata();
                    let hex: String = d[4..].iter().map(|b| format!("{b:02X}")).collect();
                    format!(
                        "{} {} IN DS {} {} {} {hex}",
                        z.origin,
                        switchyard::dnssec::cli::DEFAULT_TTL,
                        u16::from_be_bytes([d[0], d[1]]),
                        d[2],
                        d[3]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(lines)
}
