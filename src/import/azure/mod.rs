//! Azure Traffic Manager profiles (the JSON `az network traffic-manager
//! profile show` prints, an ARM resource, or an exported ARM template) to
//! Switchyard profile files.
//!
//! The mapping, setting by setting (`profiles/README.md` has the keys):
//!
//! | Azure | Switchyard |
//! |---|---|
//! | `dnsConfig.relativeName` | `name = "<relativeName>.<zone>."`, file `<relativeName>.toml` |
//! | `trafficRoutingMethod` | `routing` |
//! | `dnsConfig.ttl` | `ttl` |
//! | `profileStatus: Disabled` | `enabled = false` |
//! | `maxReturn` (MultiValue) | `max_answers` |
//! | `monitorConfig` | `[monitor]`: protocol, port, path (as is), interval, timeout, `tolerated_failures`, `expected_status`, `headers`, and `tls_verify = false` for HTTPS, since Azure does not verify probe certificates |
//! | endpoint `target` | `target` (address: A/AAAA; host name: CNAME) |
//! | nested endpoint | `profile = "<child relativeName>.<zone>."` when the child is imported too |
//! | `endpointStatus: Disabled` / `alwaysServe: Enabled` | `enabled = false` / `always_serve = true` |
//! | `priority`, `weight`, `endpointLocation`, `geoMapping`, `subnets`, `minChildEndpoints` | `priority`, `weight`, `location`, `regions`, `subnets`, `min_child_endpoints` |
//! | endpoint `customHeaders` | `probe = { headers = ... }` |
//!
//! Everything else is reported, one [`Notice`] per setting, never dropped
//! quietly: the key tables (`PROFILE_KEYS`, `ENDPOINT_KEYS`, ...) say what
//! becomes of each key the importer knows, and a test checks every key of
//! the fixtures is carried over or named. An endpoint that cannot be written (no address, no known
//! location, no valid region) is written commented out, with the reason.
//!
//! The files of this folder, in the order of the work: `model` (the
//! input's shapes) and `keys` (what becomes of each key), `cx` (reading
//! and reporting), `profile`, `monitor` and `endpoint` (the mapping, into
//! the `draft`), `leftovers` (the keys not carried over), `nested` (child
//! profiles, once all are mapped) and `render` (the TOML text).

mod cx;
mod draft;
mod endpoint;
mod keys;
mod leftovers;
mod model;
mod monitor;
mod nested;
mod profile;
mod render;

use serde_json::Value;

use super::arm;
use super::{Import, Notice, ProfileFile};
use cx::Cx;
use draft::Draft;
use nested::resolve_nested;
use render::render;

/// One input document and the name to report it by (its file name).
#[derive(Debug, Clone)]
pub struct Input {
    /// How messages name the input (the file as given).
    pub file: String,
    /// The parsed JSON.
    pub doc: Value,
}

/// Imports every Traffic Manager profile of `inputs` as profiles under
/// `zone` (e.g. `tm.example.com`). Nested endpoints whose child profile is
/// among the inputs become nested profiles. Errors (input that cannot be
/// mapped at all) are returned together, each naming its file and JSON
/// path; then nothing should be written.
pub fn import(inputs: &[Input], zone: &str) -> Result<Import, Vec<String>> {
    let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Err(e) = crate::proto::name::DomainName::parse(&format!("{zone}."), None) {
        return Err(vec![format!("--zone `{zone}`: {e}")]);
    }
    let mut notices = Vec::new();
    let mut errors = Vec::new();
    let mut drafts = map_inputs(inputs, &zone, &mut notices, &mut errors);
    imported_twice(&drafts, &mut errors);
    resolve_nested(&mut drafts);
    without_endpoints(&mut drafts, &mut notices, &mut errors);
    if !errors.is_empty() {
        for n in &notices {
            errors.push(n.to_string());
        }
        return Err(errors);
    }
    Ok(output(drafts, notices, &zone))
}

/// Maps every profile of every input, each with the notices about it; the
/// notices of the inputs themselves, and of the profiles that could not be
/// mapped, go to `notices`.
fn map_inputs(
    inputs: &[Input],
    zone: &str,
    notices: &mut Vec<Notice>,
    errors: &mut Vec<String>,
) -> Vec<(Draft, Vec<Notice>)> {
    let mut drafts = Vec::new();
    for input in inputs {
        match arm::profiles(&input.doc, &input.file, notices) {
            Ok((found, tpl)) => {
                for f in found {
                    let mut cx = Cx {
                        file: &input.file,
                        expressions: Vec::new(),
                        tpl: &tpl,
                        notices: Vec::new(),
                        errors: Vec::new(),
                    };
                    let draft = cx.profile(&f, zone);
                    errors.append(&mut cx.errors);
                    if let Some(d) = draft {
                        drafts.push((d, cx.notices));
                    } else {
                        notices.append(&mut cx.notices);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    drafts
}

/// Two inputs of one name would write one file twice.
fn imported_twice(drafts: &[(Draft, Vec<Notice>)], errors: &mut Vec<String>) {
    for (i, (d, _)) in drafts.iter().enumerate() {
        if let Some((o, _)) = drafts[..i].iter().find(|(o, _)| o.name == d.name) {
            errors.push(format!(
                "{}: {}: profile `{}` is also imported from {}: {}; import each profile once",
                d.file, d.at_relative, d.relative, o.file, o.at_relative
            ));
        }
    }
}

/// A profile none of whose endpoints can be written is an error (a
/// Switchyard profile needs one); its notices say why.
fn without_endpoints(
    drafts: &mut [(Draft, Vec<Notice>)],
    notices: &mut Vec<Notice>,
    errors: &mut Vec<String>,
) {
    for (d, n) in drafts {
        if !d.endpoints.iter().any(|e| e.skip.is_none()) {
            errors.push(format!(
                "{}: {}: profile `{}` has no endpoint that can be written (a Switchyard profile needs at least one){}",
                d.file,
                d.at_endpoints,
                d.relative,
                if d.endpoints.is_empty() {
                    String::new()
                } else {
                    "; see the warnings above".into()
                }
            ));
            notices.append(n);
        }
    }
}

/// The files, the notices (the inputs' first, then each profile's) and the
/// next steps for the operator.
fn output(drafts: Vec<(Draft, Vec<Notice>)>, notices: Vec<Notice>, zone: &str) -> Import {
    let mut out = Import::default();
    for (d, mut n) in drafts {
        let text = render(&d, &n);
        out.files.push(ProfileFile {
            file_name: format!("{}.toml", d.relative),
            profile: d.name.clone(),
            routing: d.routing.to_string(),
            endpoints: d.endpoints.iter().filter(|e| e.skip.is_none()).count(),
            text,
        });
        if matches!(d.routing, "performance" | "geographic") {
            out.next_steps.push(format!(
                "{} routes by the client's location: the configuration needs `[geoip] database` (see geoip/README.md)",
                d.name
            ));
        }
        out.next_steps.push(format!(
            "compare `dig @YOUR-SWITCHYARD {}` with `dig {}`, then point the names that are CNAMEs to {} at {}",
            d.name.trim_end_matches('.'),
            d.fqdn,
            d.fqdn,
            d.name
        ));
        out.notices.append(&mut n);
    }
    out.notices.splice(0..0, notices);
    out.next_steps.push(format!(
        "{zone} must be delegated to Switchyard's name servers (NS records in its parent zone: README, \"Using it for a real domain\")"
    ));
    out
}

#[cfg(test)]
mod tests;
