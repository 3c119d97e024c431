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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::arm::{self, Flat, FoundProfile, Template};
use super::{Import, Level, Notice, ProfileFile};
use crate::config::methods;

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
    let mut drafts = Vec::new();
    for input in inputs {
        match arm::profiles(&input.doc, &input.file, &mut notices) {
            Ok((found, tpl)) => {
                for f in found {
                    let mut cx = Cx {
                        file: &input.file,
                        expressions: Vec::new(),
                        tpl: &tpl,
                        notices: Vec::new(),
                        errors: Vec::new(),
                    };
                    let draft = cx.profile(&f, &zone);
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
    // Two inputs of one name would write one file twice.
    for (i, (d, _)) in drafts.iter().enumerate() {
        if let Some((o, _)) = drafts[..i].iter().find(|(o, _)| o.name == d.name) {
            errors.push(format!(
                "{}: {}: profile `{}` is also imported from {}: {}; import each profile once",
                d.file, d.at_relative, d.relative, o.file, o.at_relative
            ));
        }
    }
    resolve_nested(&mut drafts);
    for (d, n) in &mut drafts {
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
    if !errors.is_empty() {
        for n in &notices {
            errors.push(n.to_string());
        }
        return Err(errors);
    }
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
    Ok(out)
}

/// A profile being mapped.
#[derive(Debug)]
struct Draft {
    file: String,
    at_relative: String,
    at_endpoints: String,
    /// Azure resource name (what nested endpoints' resource ids end with).
    resource_name: Option<String>,
    relative: String,
    fqdn: String,
    name: String,
    routing: &'static str,
    ttl: Option<i64>,
    enabled: bool,
    max_answers: Option<i64>,
    monitor: Monitor,
    endpoints: Vec<Ep>,
}

#[derive(Debug, Default)]
struct Monitor {
    protocol: &'static str,
    port: Option<i64>,
    path: Option<String>,
    interval: i64,
    timeout: i64,
    tolerated: i64,
    expected: Vec<String>,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Ep {
    at: String,
    name: String,
    target: Option<String>,
    nested: Option<NestedRef>,
    child: Option<String>,
    priority: Option<i64>,
    weight: Option<i64>,
    /// TOML text of the value, and a comment.
    location: Option<(String, String)>,
    regions: Vec<String>,
    subnets: Vec<String>,
    enabled: bool,
    always_serve: bool,
    headers: Vec<(String, String)>,
    min_child: Option<i64>,
    /// Why it is written commented out.
    skip: Option<String>,
}

#[derive(Debug)]
struct NestedRef {
    resource: Option<String>,
    fqdn: Option<String>,
}

// What Azure prints, after `properties` is lifted (`arm::Flat`).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzProfile {
    traffic_routing_method: Option<String>,
    profile_status: Option<String>,
    dns_config: Option<AzDns>,
    monitor_config: Option<AzMonitor>,
    traffic_view_enrollment_status: Option<String>,
    max_return: Option<i64>,
    allowed_endpoint_record_types: Option<Vec<String>>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzDns {
    relative_name: Option<String>,
    ttl: Option<i64>,
    fqdn: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzMonitor {
    protocol: Option<String>,
    port: Option<i64>,
    path: Option<String>,
    interval_in_seconds: Option<i64>,
    timeout_in_seconds: Option<i64>,
    tolerated_number_of_failures: Option<i64>,
    expected_status_code_ranges: Option<Vec<AzRange>>,
    custom_headers: Option<Vec<AzHeader>>,
    #[allow(dead_code)]
    profile_monitor_status: Option<Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct AzRange {
    min: Option<i64>,
    max: Option<i64>,
}

#[derive(Deserialize)]
struct AzHeader {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzEndpoint {
    #[serde(rename = "type")]
    kind: Option<String>,
    target: Option<String>,
    endpoint_status: Option<String>,
    weight: Option<i64>,
    priority: Option<i64>,
    endpoint_location: Option<String>,
    min_child_endpoints: Option<i64>,
    #[serde(rename = "minChildEndpointsIPv4")]
    min_child_v4: Option<i64>,
    #[serde(rename = "minChildEndpointsIPv6")]
    min_child_v6: Option<i64>,
    geo_mapping: Option<Vec<String>>,
    subnets: Option<Vec<AzSubnet>>,
    custom_headers: Option<Vec<AzHeader>>,
    always_serve: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct AzSubnet {
    first: Option<String>,
    last: Option<String>,
    scope: Option<i64>,
}

/// What becomes of a key of the input. With the tables below, the
/// importer's whole vocabulary: every key of a profile, its `dnsConfig`
/// and `monitorConfig`, and its endpoints is carried over or reported, one
/// line each; a key in none of them is reported as unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Carried over; a value that cannot be is reported where it is read.
    Mapped,
    /// Carried over by these routing methods only; in a profile of another
    /// method it does nothing (in Azure either) and is reported, one line
    /// per key with every endpoint's value.
    Only(&'static str),
    /// Describes the Azure resource or its state at export, not how it
    /// routes: named together on one line per profile.
    Resource,
    /// Not carried over, reported on its own line: why, and whether the
    /// behaviour differs (a warning) or not (a note).
    Dropped(Level, &'static str),
}

/// What becomes of each key of one kind of object.
type KeyTable = &'static [(&'static str, Fate)];

/// An ARM comment: the operator's text about the resource.
const COMMENTS: Fate = Fate::Dropped(
    Level::Note,
    "not carried over: an ARM comment (this line keeps it in the file's header)",
);
/// An ARM deployment condition.
const CONDITION: Fate = Fate::Dropped(
    Level::Warning,
    "not carried over: an ARM deployment condition; the profile is imported as if it were deployed: leave it out if it is not",
);

const PROFILE_KEYS: KeyTable = &[
    ("trafficRoutingMethod", Fate::Mapped),
    ("profileStatus", Fate::Mapped),
    ("dnsConfig", Fate::Mapped),
    ("monitorConfig", Fate::Mapped),
    ("trafficViewEnrollmentStatus", Fate::Mapped),
    ("maxReturn", Fate::Mapped),
    ("allowedEndpointRecordTypes", Fate::Mapped),
    ("endpoints", Fate::Mapped),
    // The resource name: what nested endpoints of other profiles name.
    ("name", Fate::Mapped),
    // Template plumbing, followed by `arm`.
    ("resources", Fate::Mapped),
    ("dependsOn", Fate::Mapped),
    ("id", Fate::Resource),
    ("type", Fate::Resource),
    ("location", Fate::Resource),
    ("resourceGroup", Fate::Resource),
    ("etag", Fate::Resource),
    ("apiVersion", Fate::Resource),
    ("systemData", Fate::Resource),
    (
        "tags",
        Fate::Dropped(
            Level::Note,
            "not carried over: Switchyard profiles have no tags (this line keeps them in the file's header)",
        ),
    ),
    ("comments", COMMENTS),
    ("condition", CONDITION),
];

const DNS_KEYS: KeyTable = &[
    ("relativeName", Fate::Mapped),
    ("ttl", Fate::Mapped),
    // Named in the next steps and in CNAMEs to unimported children.
    ("fqdn", Fate::Mapped),
];

const MONITOR_KEYS: KeyTable = &[
    ("protocol", Fate::Mapped),
    ("port", Fate::Mapped),
    ("path", Fate::Mapped),
    ("intervalInSeconds", Fate::Mapped),
    ("timeoutInSeconds", Fate::Mapped),
    ("toleratedNumberOfFailures", Fate::Mapped),
    ("expectedStatusCodeRanges", Fate::Mapped),
    ("customHeaders", Fate::Mapped),
    ("profileMonitorStatus", Fate::Resource),
];

const ENDPOINT_KEYS: KeyTable = &[
    ("name", Fate::Mapped),
    ("type", Fate::Mapped),
    ("target", Fate::Mapped),
    ("targetResourceId", Fate::Mapped),
    ("endpointStatus", Fate::Mapped),
    ("alwaysServe", Fate::Mapped),
    ("customHeaders", Fate::Mapped),
    ("minChildEndpoints", Fate::Mapped),
    ("minChildEndpointsIPv4", Fate::Mapped),
    ("minChildEndpointsIPv6", Fate::Mapped),
    ("dependsOn", Fate::Mapped),
    ("priority", Fate::Only("priority")),
    ("weight", Fate::Only("weighted")),
    ("endpointLocation", Fate::Only("performance")),
    ("geoMapping", Fate::Only("geographic")),
    ("subnets", Fate::Only("subnet")),
    ("id", Fate::Resource),
    ("resourceGroup", Fate::Resource),
    ("apiVersion", Fate::Resource),
    ("endpointMonitorStatus", Fate::Resource),
    ("comments", COMMENTS),
    ("condition", CONDITION),
];

/// Endpoint keys whose template expressions are not reported: they name
/// the resource, and `arm` evaluates what it needs of them.
const ENDPOINT_UNEVALUATED: &[&str] = &[
    "id",
    "name",
    "type",
    "resourceGroup",
    "apiVersion",
    "dependsOn",
    "comments",
    "condition",
    "endpointMonitorStatus",
    "targetResourceId",
];

/// JSON paths that differ only in one index, written as one:
/// `endpoints[0].weight`, `endpoints[2].weight` -> `endpoints[0,2].weight`;
/// others are listed.
fn indexes_together(paths: &[&str]) -> String {
    let split = |p: &str| -> Option<(String, String, String)> {
        let open = p.find('[')?;
        let close = open + p[open..].find(']')?;
        let index = &p[open + 1..close];
        index.bytes().all(|b| b.is_ascii_digit()).then(|| {
            (
                p[..open].to_string(),
                index.to_string(),
                p[close + 1..].to_string(),
            )
        })
    };
    let parts: Option<Vec<_>> = paths.iter().map(|p| split(p)).collect();
    match parts {
        Some(parts)
            if parts.len() > 1
                && parts
                    .iter()
                    .all(|(a, _, c)| *a == parts[0].0 && *c == parts[0].2) =>
        {
            let indexes: Vec<&str> = parts.iter().map(|(_, i, _)| i.as_str()).collect();
            format!("{}[{}]{}", parts[0].0, indexes.join(","), parts[0].2)
        }
        _ => paths.join(", "),
    }
}

/// The fate of `key` in `table`; `None`: unknown to the importer.
fn fate(table: &[(&str, Fate)], key: &str) -> Option<Fate> {
    table.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// No value: null, or an empty string, array or object.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

struct Cx<'a> {
    file: &'a str,
    /// Paths whose value was a template expression (already reported).
    expressions: Vec<String>,
    tpl: &'a Template,
    notices: Vec<Notice>,
    errors: Vec<String>,
}

impl Cx<'_> {
    fn warn(&mut self, at: &str, message: impl Into<String>) {
        self.notices.push(Notice {
            level: Level::Warning,
            at: format!("{}: {at}", self.file),
            message: message.into(),
        });
    }

    fn note(&mut self, at: &str, message: impl Into<String>) {
        self.notices.push(Notice {
            level: Level::Note,
            at: format!("{}: {at}", self.file),
            message: message.into(),
        });
    }

    fn error(&mut self, at: &str, message: impl std::fmt::Display) {
        self.errors.push(format!("{}: {at}: {message}", self.file));
    }

    /// Replaces template expressions in `flat` (but in `keep`) by null,
    /// reporting each, then reads it as `T`; a type error names its path.
    fn read<T: DeserializeOwned>(&mut self, flat: &Flat, keep: &[&str]) -> Option<T> {
        let mut obj = serde_json::Map::new();
        for (k, v) in &flat.fields {
            let mut v = v.clone();
            if !keep.contains(&k.as_str()) {
                self.strip_expressions(&flat.path(k), &mut v);
            }
            obj.insert(k.clone(), v);
        }
        match serde_path_to_error::deserialize::<_, T>(Value::Object(obj)) {
            Ok(t) => Some(t),
            Err(e) => {
                let path = e.path().to_string();
                let at = if path == "." {
                    if flat.at.is_empty() {
                        "(document)".to_string()
                    } else {
                        flat.at.clone()
                    }
                } else {
                    flat.path(&path)
                };
                self.error(&at, e.inner());
                None
            }
        }
    }

    fn strip_expressions(&mut self, at: &str, v: &mut Value) {
        match v {
            Value::String(s) if arm::is_expression(s) => {
                let hint = match arm::eval(s, self.tpl) {
                    Some(d) => format!(" (its default would be `{d}`)"),
                    None => String::new(),
                };
                let msg = format!(
                    "ARM template expression `{s}` not carried over{hint}: write the deployed value instead (`az network traffic-manager profile show` prints it) and import again"
                );
                self.warn(at, msg);
                self.expressions.push(at.to_string());
                *v = Value::Null;
            }
            Value::Array(items) => {
                let mut i = 0;
                items.retain_mut(|item| {
                    let expr = item.as_str().is_some_and(arm::is_expression);
                    let at = format!("{at}[{i}]");
                    i += 1;
                    if expr {
                        let mut item = item.clone();
                        self.strip_expressions(&at, &mut item);
                        false
                    } else {
                        self.strip_expressions(&at, item);
                        true
                    }
                });
            }
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    self.strip_expressions(&arm::join(at, k), v);
                }
            }
            _ => {}
        }
    }

    fn unknown(
        &mut self,
        flat: &Flat,
        prefix: &str,
        other: &BTreeMap<String, Value>,
        known: &[(&str, Fate)],
    ) {
        for (k, v) in other {
            if v.is_null() || fate(known, k).is_some() {
                continue;
            }
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.warn(
                &flat.path(&key),
                format!(
                    "setting `{k}` = {} is unknown to this importer and not carried over: check whether it matters and configure its equivalent by hand",
                    short(v)
                ),
            );
        }
    }

    fn profile(&mut self, f: &FoundProfile, zone: &str) -> Option<Draft> {
        let p = &f.profile;
        let az: AzProfile = self.read(p, &["name", "id", "endpoints", "resources", "dependsOn"])?;
        self.unknown(p, "", &az.other, PROFILE_KEYS);
        let method_at = p.path("trafficRoutingMethod");
        let routing = match az
            .traffic_routing_method
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(m) => match m.as_str() {
                "priority" => "priority",
                "weighted" => "weighted",
                "performance" => "performance",
                "geographic" => "geographic",
                "subnet" => "subnet",
                "multivalue" => "multivalue",
                _ => {
                    self.error(&method_at, format!("unknown routing method `{m}` (expected Priority, Weighted, Performance, Geographic, Subnet or MultiValue)"));
                    return None;
                }
            },
            None => {
                self.error(
                    &method_at,
                    "missing: every Traffic Manager profile has a routing method",
                );
                return None;
            }
        };
        let rel_at = p.path("dnsConfig.relativeName");
        let Some(dns) = az.dns_config else {
            self.error(
                &p.path("dnsConfig"),
                "missing: `dnsConfig.relativeName` names the profile",
            );
            return None;
        };
        self.unknown(p, "dnsConfig", &dns.other, DNS_KEYS);
        let Some(relative) = dns
            .relative_name
            .map(|r| r.trim().trim_end_matches('.').to_ascii_lowercase())
        else {
            self.error(
                &rel_at,
                "missing: it names the profile (<relativeName>.<zone>)",
            );
            return None;
        };
        let name = format!("{relative}.{zone}.");
        if relative.is_empty() || relative.contains(['/', '\\']) || relative.starts_with('.') {
            self.error(&rel_at, format!("`{relative}` cannot name a profile file"));
            return None;
        }
        if let Err(e) = crate::proto::name::DomainName::parse(&name, None) {
            self.error(&rel_at, format!("`{name}` is not a domain name: {e}"));
            return None;
        }
        let fqdn = dns
            .fqdn
            .map(|f| f.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_else(|| format!("{relative}.trafficmanager.net"));
        let ttl = match dns.ttl {
            Some(t) if (0..=2_147_483_647).contains(&t) => Some(t),
            Some(t) => {
                self.error(
                    &p.path("dnsConfig.ttl"),
                    format!("{t} is not a TTL (0..2147483647)"),
                );
                return None;
            }
            None => {
                let at = p.path("dnsConfig.ttl");
                if !self.expressions.contains(&at) {
                    self.note(
                        &at,
                        "missing: Switchyard's default TTL of 60 seconds applies",
                    );
                }
                None
            }
        };
        let enabled = match az.profile_status.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("disabled") => {
                self.note(&p.path("profileStatus"), "Disabled: written as `enabled = false` (the name answers NXDOMAIN, as in Azure)");
                false
            }
            _ => true,
        };
        if az
            .traffic_view_enrollment_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("enabled"))
        {
            self.warn(&p.path("trafficViewEnrollmentStatus"), "Traffic View is not carried over: Switchyard has no per-location traffic report; use /metrics (switchyard_answers_total per profile and endpoint) and RUST_LOG=debug, which logs every query with its client");
        }
        if let Some(types) = &az.allowed_endpoint_record_types
            && !types.is_empty()
            && !types.iter().any(|t| t.eq_ignore_ascii_case("any"))
        {
            self.note(&p.path("allowedEndpointRecordTypes"), format!("{types:?} not carried over: Switchyard does not restrict the kind of target an endpoint may have; review new endpoints yourself"));
        }
        let max_answers = match (routing, az.max_return) {
            ("multivalue", Some(n)) if (1..=10).contains(&n) => Some(n),
            ("multivalue", Some(n)) => {
                self.warn(&p.path("maxReturn"), format!("{n} is outside 1..10: Switchyard's default of 8 addresses per answer applies; set `max_answers`"));
                None
            }
            ("multivalue", None) => {
                self.note(
                    &p.path("maxReturn"),
                    "missing: Switchyard's default of 8 addresses per answer applies",
                );
                None
            }
            (_, Some(n)) if n != 0 => {
                self.warn(
                    &p.path("maxReturn"),
                    format!(
                        "{n} not carried over: only MultiValue profiles answer several addresses"
                    ),
                );
                None
            }
            _ => None,
        };
        if routing == "performance" {
            self.note(&method_at, "Performance: Azure ranks endpoints by measured network latency, Switchyard by great-circle distance from the client's GeoIP location to each endpoint's `location`");
        }
        let monitor = self.monitor(p, az.monitor_config);
        let mut draft = Draft {
            file: self.file.to_string(),
            at_relative: rel_at,
            at_endpoints: p.path("endpoints"),
            resource_name: f.resource_name.clone(),
            relative,
            fqdn,
            name,
            routing,
            ttl,
            enabled,
            max_answers,
            monitor,
            endpoints: Vec::new(),
        };
        for e in &f.endpoints {
            if let Some(ep) = self.endpoint(e, &draft) {
                draft.endpoints.push(ep);
            }
        }
        self.ranks_and_names(&mut draft);
        self.not_carried_over(f, routing);
        Some(draft)
    }

    /// Reports every key of the profile (and its monitor and endpoints)
    /// that is not carried over and was not reported where it was read:
    /// dropped ones one line each, keys of another routing method one line
    /// per key, and the keys that describe the Azure resource together.
    fn not_carried_over(&mut self, f: &FoundProfile, routing: &str) {
        let mut resource: Vec<String> = Vec::new();
        let monitor = f
            .profile
            .fields
            .get("monitorConfig")
            .map(|m| Flat::new(String::new(), m));
        let mut objects: Vec<(&Flat, &str, KeyTable)> = vec![(&f.profile, "", PROFILE_KEYS)];
        if let Some(m) = &monitor {
            objects.push((m, "monitorConfig.", MONITOR_KEYS));
        }
        for (flat, prefix, table) in objects {
            for (k, v) in &flat.fields {
                if is_empty(v) {
                    continue;
                }
                match fate(table, k) {
                    Some(Fate::Resource) => resource.push(format!("{prefix}{k}")),
                    Some(Fate::Dropped(level, why)) => {
                        let at = f.profile.path(&format!("{prefix}{k}"));
                        self.say(level, &at, format!("{} {why}", short(v)));
                    }
                    _ => {}
                }
            }
        }
        let mut unused: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut endpoint_resource: Vec<String> = Vec::new();
        for e in &f.endpoints {
            let name = e.fields.get("name").and_then(Value::as_str).unwrap_or("?");
            for (k, v) in &e.fields {
                if is_empty(v) || self.expressions.contains(&e.path(k)) {
                    continue;
                }
                match fate(ENDPOINT_KEYS, k) {
                    Some(Fate::Only(method)) if method != routing => {
                        unused
                            .entry(k.clone())
                            .or_default()
                            .push((e.path(k), format!("{} ({name})", short(v))));
                    }
                    Some(Fate::Resource) if !endpoint_resource.contains(k) => {
                        endpoint_resource.push(k.clone());
                    }
                    Some(Fate::Dropped(level, why)) => {
                        self.say(level, &e.path(k), format!("{} ({name}) {why}", short(v)));
                    }
                    _ => {}
                }
            }
        }
        for seen in unused.values() {
            let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
            let at = indexes_together(&paths);
            let values: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
            self.note(
                &at,
                format!(
                    "{} not carried over: {routing} routing does not use it (nor does Azure's)",
                    values.join(", ")
                ),
            );
        }
        resource.sort_by_key(|k| (k.contains('.'), k.clone()));
        endpoint_resource.sort();
        resource.extend(endpoint_resource.iter().map(|k| format!("endpoints[].{k}")));
        if !resource.is_empty() {
            // In a template, which profile.
            let at = if f.profile.at.is_empty() {
                resource.join(", ")
            } else {
                format!("{}: {}", f.profile.at, resource.join(", "))
            };
            self.note(
                &at,
                "not carried over: they describe the Azure resource and its state at export (Switchyard probes for itself), not how it routes",
            );
        }
    }

    fn say(&mut self, level: Level, at: &str, message: String) {
        match level {
            Level::Warning => self.warn(at, message),
            Level::Note => self.note(at, message),
        }
    }

    fn monitor(&mut self, p: &Flat, m: Option<AzMonitor>) -> Monitor {
        let Some(m) = m else {
            self.note(&p.path("monitorConfig"), "missing: Azure's defaults written (HTTP on port 80, path /, every 30s, timeout 10s, 3 tolerated failures)");
            return Monitor {
                protocol: "http",
                port: Some(80),
                path: Some("/".into()),
                interval: 30,
                timeout: 10,
                tolerated: 3,
                ..Monitor::default()
            };
        };
        self.unknown(p, "monitorConfig", &m.other, MONITOR_KEYS);
        let at = |k: &str| p.path(&format!("monitorConfig.{k}"));
        let protocol = match m
            .protocol
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("https") => "https",
            Some("tcp") => "tcp",
            Some("http") | None => "http",
            Some(other) => {
                self.error(
                    &at("protocol"),
                    format!("unknown protocol `{other}` (expected HTTP, HTTPS or TCP)"),
                );
                "http"
            }
        };
        let port = match m.port {
            Some(n) if (1..=65535).contains(&n) => Some(n),
            Some(n) => {
                self.error(&at("port"), format!("{n} is not a port"));
                None
            }
            None if protocol == "tcp" => {
                self.error(&at("port"), "missing: a TCP monitor needs a port");
                None
            }
            None => None,
        };
        let path = if protocol == "tcp" {
            None
        } else {
            match m.path {
                Some(path) if path.contains("{key}") => {
                    self.error(&at("path"), format!("`{path}` contains `{{key}}`, which Switchyard replaces with the monitor's health key; rename the health check path"));
                    None
                }
                Some(path)
                    if path.starts_with('/')
                        && !path.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    Some(path)
                }
                Some(path) => {
                    self.error(&at("path"), format!("`{path}` is not a request path (it must start with `/`, without spaces)"));
                    None
                }
                None => Some("/".into()),
            }
        };
        let interval = match m.interval_in_seconds {
            Some(n) if n >= 1 => n,
            Some(n) => {
                self.error(&at("intervalInSeconds"), format!("{n} is not an interval"));
                30
            }
            None => 30,
        };
        let timeout = match m.timeout_in_seconds {
            Some(n) if n >= 1 && n < interval => n,
            Some(n) => {
                let t = (interval - 1).clamp(1, 10);
                self.warn(&at("timeoutInSeconds"), format!("{n}s is not below the {interval}s interval, as Switchyard requires: written as {t}s"));
                t
            }
            None => (interval - 1).clamp(1, 10),
        };
        let tolerated = match m.tolerated_number_of_failures {
            Some(n) if (0..=9).contains(&n) => n,
            Some(n) => {
                let t = n.clamp(0, 9);
                self.warn(
                    &at("toleratedNumberOfFailures"),
                    format!("{n} is outside Switchyard's 0..9: written as {t}"),
                );
                t
            }
            None => 3,
        };
        let mut expected = Vec::new();
        let ranges = m.expected_status_code_ranges.unwrap_or_default();
        if protocol == "tcp" && !ranges.is_empty() {
            self.warn(
                &at("expectedStatusCodeRanges"),
                "not used by TCP probes (nor by Azure's); not carried over",
            );
        } else {
            for (i, r) in ranges.iter().enumerate() {
                let rat = at(&format!("expectedStatusCodeRanges[{i}]"));
                let (Some(lo), Some(hi)) = (r.min.or(r.max), r.max.or(r.min)) else {
                    self.warn(&rat, "a range without min or max; not carried over");
                    continue;
                };
                let (a, b) = (lo.clamp(100, 599), hi.clamp(100, 599));
                if a > b || (a, b) != (lo, hi) {
                    if lo > 599 || hi < 100 || lo > hi {
                        self.warn(&rat, format!("{lo}-{hi} is outside the HTTP status codes Switchyard accepts (100-599); not carried over"));
                        continue;
                    }
                    self.warn(&rat, format!("{lo}-{hi} narrowed to {a}-{b}, the HTTP status codes Switchyard accepts"));
                }
                if expected.len() == 8 {
                    self.warn(
                        &rat,
                        "more than 8 ranges: not carried over (Switchyard takes at most 8)",
                    );
                    continue;
                }
                expected.push(if a == b {
                    a.to_string()
                } else {
                    format!("\"{a}-{b}\"")
                });
            }
        }
        if protocol == "https" {
            self.note(&at("protocol"), "HTTPS: Azure does not verify the certificates of its probes, so `tls_verify = false` is written; Switchyard verifies by default: remove it once the endpoints' certificates name their Host");
        }
        let headers = self.headers(p, "monitorConfig.customHeaders", m.custom_headers, protocol);
        Monitor {
            protocol,
            port,
            path,
            interval,
            timeout,
            tolerated,
            expected,
            headers,
        }
    }

    fn headers(
        &mut self,
        flat: &Flat,
        key: &str,
        list: Option<Vec<AzHeader>>,
        protocol: &str,
    ) -> Vec<(String, String)> {
        let list = list.unwrap_or_default();
        let mut out: Vec<(String, String)> = Vec::new();
        if list.is_empty() {
            return out;
        }
        if protocol == "tcp" {
            self.warn(
                &flat.path(key),
                "custom headers are not sent by TCP probes (nor by Azure's); not carried over",
            );
            return out;
        }
        for (i, h) in list.into_iter().enumerate() {
            let at = flat.path(&format!("{key}[{i}]"));
            let (Some(name), Some(value)) = (h.name, h.value) else {
                self.warn(&at, "a header without name or value; not carried over");
                continue;
            };
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
            if !token || value.chars().any(|c| c.is_control() && c != '\t') {
                self.warn(
                    &at,
                    format!("`{name}` is not a valid HTTP header; not carried over"),
                );
            } else if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                self.warn(&at, format!("`{name}` is given twice; the first is kept"));
            } else if out.len() == 8 {
                self.warn(
                    &at,
                    "more than 8 headers: not carried over (Switchyard sends at most 8)",
                );
            } else {
                out.push((name, value));
            }
        }
        out
    }

    fn endpoint(&mut self, e: &Flat, d: &Draft) -> Option<Ep> {
        let az: AzEndpoint = self.read(e, ENDPOINT_UNEVALUATED)?;
        self.unknown(e, "", &az.other, ENDPOINT_KEYS);
        let raw_name = e
            .fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut ep = Ep {
            at: e.at.clone(),
            name: raw_name.clone(),
            enabled: true,
            ..Ep::default()
        };
        let kind = az
            .kind
            .as_deref()
            .map(|k| k.rsplit('/').next().unwrap_or(k).to_ascii_lowercase());
        let resource_id = e
            .fields
            .get("targetResourceId")
            .and_then(Value::as_str)
            .map(|r| {
                if arm::is_expression(r) {
                    arm::eval(r, self.tpl).unwrap_or_else(|| r.to_string())
                } else {
                    r.to_string()
                }
            });
        let nested = match kind.as_deref() {
            Some("nestedendpoints") => true,
            Some("externalendpoints" | "azureendpoints") => false,
            None => resource_id
                .as_deref()
                .is_some_and(|r| r.to_ascii_lowercase().contains("/trafficmanagerprofiles/")),
            Some(other) => {
                self.warn(
                    &e.path("type"),
                    format!("unknown endpoint type `{other}`; read as an external endpoint"),
                );
                false
            }
        };
        if az
            .endpoint_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("disabled"))
        {
            ep.enabled = false;
        }
        let always_serve = az
            .always_serve
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("enabled"));
        if nested {
            let fqdn = az
                .target
                .as_deref()
                .filter(|t| !t.is_empty() && !arm::is_expression(t))
                .map(|t| t.trim_end_matches('.').to_ascii_lowercase());
            let resource = resource_id
                .as_deref()
                .filter(|r| !arm::is_expression(r))
                .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
                .map(str::to_string);
            ep.nested = Some(NestedRef { resource, fqdn });
            ep.min_child = match az.min_child_endpoints {
                Some(n) if (1..=1000).contains(&n) => Some(n),
                Some(n) => {
                    let m = n.clamp(1, 1000);
                    self.warn(
                        &e.path("minChildEndpoints"),
                        format!("{n} is outside Switchyard's 1..1000: written as {m}"),
                    );
                    Some(m)
                }
                None => None,
            };
            for (key, v) in [
                ("minChildEndpointsIPv4", az.min_child_v4),
                ("minChildEndpointsIPv6", az.min_child_v6),
            ] {
                if let Some(n) = v.filter(|n| *n > 0) {
                    self.warn(&e.path(key), format!("{n} not carried over: Switchyard counts the child's endpoints of both address families together (`min_child_endpoints`); raise it if the child must keep {n} of one family"));
                }
            }
            if always_serve {
                self.warn(&e.path("alwaysServe"), "not carried over: a nested endpoint's status always comes from its child profile in Switchyard; to serve it whatever its health, set `always_serve = true` on the child's endpoints");
            }
            if az.custom_headers.as_ref().is_some_and(|h| !h.is_empty()) {
                self.note(&e.path("customHeaders"), "not used: nested endpoints are not probed; the child profile's monitor decides");
            }
        } else {
            for (key, v) in [
                ("minChildEndpoints", az.min_child_endpoints),
                ("minChildEndpointsIPv4", az.min_child_v4),
                ("minChildEndpointsIPv6", az.min_child_v6),
            ] {
                if v.is_some_and(|n| n > 1) {
                    self.note(
                        &e.path(key),
                        "ignored: only nested endpoints have child endpoints",
                    );
                }
            }
            ep.always_serve = always_serve;
            match az
                .target
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                Some(t) => match target(t) {
                    Ok(t) => {
                        if kind.as_deref() == Some("azureendpoints") {
                            self.note(&e.path("target"), format!("`{t}` is the Azure resource's address at export; Switchyard does not follow later changes to the resource{}", resource_id.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()));
                        }
                        ep.target = Some(t);
                    }
                    Err(msg) => {
                        self.warn(&e.path("target"), format!("{msg}; the endpoint is written commented out: fix `target` in the file"));
                        ep.skip = Some(format!("target `{t}`: {msg}"));
                        ep.target = Some(t.to_string());
                    }
                },
                None => {
                    let why = match &resource_id {
                        Some(r) => format!(
                            "only the Azure resource id `{r}`, which Switchyard cannot resolve to an address"
                        ),
                        None => "no `target`".to_string(),
                    };
                    self.warn(&e.path("target"), format!("endpoint `{raw_name}` has {why}; it is written commented out: add its address or host name as `target` (for a public IP: `az network public-ip show --ids ID --query \"[ipAddress, dnsSettings.fqdn]\"`; for an App Service: its default host name) and uncomment it"));
                    ep.skip = Some(format!("no address: {why}"));
                }
            }
            if d.routing == "multivalue"
                && ep.skip.is_none()
                && ep
                    .target
                    .as_deref()
                    .is_some_and(|t| t.parse::<IpAddr>().is_err())
            {
                self.warn(&e.path("target"), "MultiValue profiles answer addresses only; the endpoint is written commented out");
                ep.skip = Some("a host name in a multivalue profile".into());
            }
            let mut headers =
                self.headers(e, "customHeaders", az.custom_headers, d.monitor.protocol);
            // Switchyard sends at most 8 headers in all (monitor and probe).
            let mut names: Vec<String> = d
                .monitor
                .headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .collect();
            headers.retain(|(n, _)| {
                let n = n.to_ascii_lowercase();
                if names.contains(&n) {
                    return true;
                }
                names.push(n);
                names.len() <= 8
            });
            if names.len() > 8 {
                self.warn(&e.path("customHeaders"), "with the profile's headers, more than 8: the last ones are not carried over (Switchyard sends at most 8 in all)");
            }
            if !headers.is_empty() && (always_serve || !ep.enabled) {
                self.note(&e.path("customHeaders"), "kept as a comment: the endpoint is not probed while it is disabled or always served");
            }
            ep.headers = headers;
        }
        match d.routing {
            "priority" => ep.priority = az.priority,
            "weighted" => {
                ep.weight = match az.weight {
                    Some(w) if (1..=1000).contains(&w) => Some(w),
                    Some(w) => {
                        let c = w.clamp(1, 1000);
                        self.warn(
                            &e.path("weight"),
                            format!("{w} is outside 1..1000: written as {c}"),
                        );
                        Some(c)
                    }
                    None => None,
                }
            }
            "performance" => self.location(e, &mut ep, az.endpoint_location.as_deref()),
            "geographic" => self.regions(e, &mut ep, az.geo_mapping.unwrap_or_default(), d),
            "subnet" => self.subnets(e, &mut ep, az.subnets.unwrap_or_default()),
            _ => {}
        }
        Some(ep)
    }

    fn location(&mut self, e: &Flat, ep: &mut Ep, loc: Option<&str>) {
        let at = e.path("endpointLocation");
        let Some(loc) = loc.map(str::trim).filter(|l| !l.is_empty()) else {
            self.warn(&at, "missing: performance routing needs each endpoint's place (Azure derives it from an Azure resource); the endpoint is written commented out: add `location` (a region name such as \"westeurope\", or { lat, lon })");
            ep.skip.get_or_insert("no location".into());
            return;
        };
        let key: String = loc
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if crate::geo::regions::lookup(&key).is_some() {
            let comment = if key == loc {
                String::new()
            } else {
                format!("Azure: \"{loc}\"")
            };
            ep.location = Some((q(&key), comment));
        } else if let Some((_, lat, lon)) = EXTRA_AZURE_REGIONS.iter().find(|(n, _, _)| *n == key) {
            ep.location = Some((
                format!("{{ lat = {lat}, lon = {lon} }}"),
                format!("Azure: \"{loc}\""),
            ));
        } else {
            let hint = crate::geo::regions::suggest(&key);
            self.warn(&at, format!("`{loc}` is not a region Switchyard knows{}; the endpoint is written commented out: give `location = {{ lat, lon }}` of the region", if hint.is_empty() { String::new() } else { format!(" (near: {})", hint.join(", ")) }));
            ep.skip.get_or_insert(format!("unknown location `{loc}`"));
        }
    }

    fn regions(&mut self, e: &Flat, ep: &mut Ep, codes: Vec<String>, d: &Draft) {
        for (i, code) in codes.iter().enumerate() {
            let at = e.path(&format!("geoMapping[{i}]"));
            let upper = code.trim().to_ascii_uppercase();
            match methods::region_code(&upper) {
                Ok(_) => {
                    let taken = d.endpoints.iter().find(|o| o.regions.contains(&upper));
                    if let Some(o) = taken {
                        self.warn(&at, format!("`{upper}` is already mapped to endpoint `{}`; not carried over (a code maps to one endpoint)", o.name));
                    } else if !ep.regions.contains(&upper) {
                        ep.regions.push(upper);
                    }
                }
                Err(msg) => self.warn(&at, format!("{msg}; not carried over: clients of that region get another match (or NODATA); map them by hand")),
            }
        }
        if ep.regions.is_empty() {
            self.warn(&e.path("geoMapping"), "no region Switchyard knows: the endpoint is written commented out (geographic routing needs `regions`)");
            ep.skip.get_or_insert("no regions".into());
        }
    }

    fn subnets(&mut self, e: &Flat, ep: &mut Ep, list: Vec<AzSubnet>) {
        let had = !list.is_empty();
        let mut bad = false;
        for (i, s) in list.into_iter().enumerate() {
            let at = e.path(&format!("subnets[{i}]"));
            let Some(first) = s.first.map(|f| f.trim().to_string()) else {
                self.warn(&at, "no `first` address; not carried over");
                bad = true;
                continue;
            };
            let text = match (s.last.filter(|l| !l.trim().is_empty()), s.scope) {
                (Some(last), _) => format!("{first}-{}", last.trim()),
                (None, Some(scope)) => format!("{first}/{scope}"),
                (None, None) => first.clone(),
            };
            match methods::subnet(&text) {
                Ok(_) => ep.subnets.push(text),
                Err(msg) => {
                    self.warn(&at, format!("{msg}; not carried over"));
                    bad = true;
                }
            }
        }
        if had && ep.subnets.is_empty() && bad {
            // Without ranges it would become the fallback: another meaning.
            self.warn(&e.path("subnets"), "no range could be read: the endpoint is written commented out rather than as the fallback endpoint");
            ep.skip.get_or_insert("no readable subnet".into());
        }
    }

    /// Endpoint names Switchyard accepts (unique), and priorities: all or
    /// none, unique.
    fn ranks_and_names(&mut self, d: &mut Draft) {
        let mut seen: Vec<String> = Vec::new();
        for (i, ep) in d.endpoints.iter_mut().enumerate() {
            let mut name: String = ep
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .take(64)
                .collect();
            if name.is_empty() {
                name = format!("endpoint-{}", i + 1);
            }
            let base = name.clone();
            let mut n = 2;
            while seen.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                let suffix = format!("-{n}");
                name = format!("{}{suffix}", &base[..base.len().min(64 - suffix.len())]);
                n += 1;
            }
            if name != ep.name {
                let at = arm::join(&ep.at, "name");
                self.note(&at, format!("endpoint `{}` is named `{name}` (letters, digits, `-`, `_`, `.`; unique; at most 64)", ep.name));
            }
            seen.push(name.clone());
            ep.name = name;
        }
        if d.routing != "priority" {
            return;
        }
        let active: Vec<Option<i64>> = d
            .endpoints
            .iter()
            .filter(|e| e.skip.is_none())
            .map(|e| e.priority)
            .collect();
        let mut values: Vec<i64> = active.iter().flatten().copied().collect();
        values.sort_unstable();
        values.dedup();
        let complete = active.iter().all(Option::is_some)
            && values.len() == active.len()
            && values.iter().all(|p| (1..=1000).contains(p));
        if !complete {
            // Keep Azure's order: by priority, then as listed.
            d.endpoints.sort_by_key(|e| e.priority.unwrap_or(i64::MAX));
            for e in &mut d.endpoints {
                e.priority = None;
            }
            self.note(&d.at_endpoints, "priorities missing, repeated or outside 1..1000: the endpoints are written in priority order without `priority` (list order is the priority)");
        }
    }
}

/// Azure regions `src/geo/regions.rs` does not list, with their place.
const EXTRA_AZURE_REGIONS: &[(&str, f64, f64)] = &[
    ("australiacentral2", -35.31, 149.12),
    ("brazilsoutheast", -22.90, -43.17),
    ("chinaeast", 31.23, 121.47),
    ("chinaeast2", 31.23, 121.47),
    ("chinaeast3", 31.23, 121.47),
    ("chinanorth", 39.90, 116.40),
    ("chinanorth2", 39.90, 116.40),
    ("chinanorth3", 38.04, 114.51),
    ("jioindiacentral", 21.15, 79.09),
    ("jioindiawest", 22.47, 70.06),
    ("usgovarizona", 33.45, -112.07),
    ("usgovtexas", 29.42, -98.49),
    ("usgovvirginia", 37.37, -79.82),
];

/// Checks an endpoint target: an address, or a host name.
fn target(t: &str) -> Result<String, String> {
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let host = t.trim_end_matches('.').to_ascii_lowercase();
    let looks_numeric = host
        .split('.')
        .next_back()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
    let ok = !host.is_empty()
        && !looks_numeric
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(host)
    } else {
        Err(format!("`{t}` is neither an IP address nor a host name"))
    }
}

/// Connects nested endpoints to the imported child profiles; a child that
/// was not imported is answered as a CNAME to its Azure name.
fn resolve_nested(drafts: &mut [(Draft, Vec<Notice>)]) {
    let index: Vec<(Option<String>, String, String, String)> = drafts
        .iter()
        .map(|(d, _)| {
            (
                d.resource_name.clone(),
                d.relative.clone(),
                d.fqdn.clone(),
                d.name.clone(),
            )
        })
        .collect();
    for (d, notices) in drafts.iter_mut() {
        let file = d.file.clone();
        let routing = d.routing;
        for ep in &mut d.endpoints {
            let Some(r) = &ep.nested else { continue };
            let found = index.iter().find(|(res, rel, fqdn, _)| {
                r.resource
                    .as_deref()
                    .is_some_and(|x| res.as_deref().is_some_and(|y| y.eq_ignore_ascii_case(x)))
                    || r.fqdn.as_deref().is_some_and(|f| {
                        f == fqdn || f.strip_suffix(".trafficmanager.net") == Some(rel.as_str())
                    })
            });
            let at = format!("{file}: {}", arm::join(&ep.at, "targetResourceId"));
            match (found, &r.fqdn) {
                (Some((_, _, _, child)), _) if *child == d.name => {
                    notices.push(Notice { level: Level::Warning, at, message: "a nested endpoint whose child is this profile itself: written commented out".into() });
                    ep.skip.get_or_insert("nested in itself".into());
                }
                (Some((_, _, _, child)), _) => ep.child = Some(child.clone()),
                (None, _) if routing == "multivalue" => {
                    ep.skip
                        .get_or_insert("nested endpoint in a multivalue profile".into());
                }
                (None, Some(fqdn)) => {
                    notices.push(Notice { level: Level::Warning, at, message: format!("child profile {} was not imported: answered as a CNAME to `{fqdn}` (Azure keeps routing inside it) and always served, since Switchyard cannot see the child's health; import the child too (pass its JSON as well) to make it a nested profile", r.resource.as_deref().unwrap_or(fqdn)) });
                    ep.target = Some(fqdn.clone());
                    ep.always_serve = true;
                    // A CNAME has no child endpoints to count.
                    ep.min_child = None;
                }
                (None, None) => {
                    notices.push(Notice { level: Level::Warning, at, message: "the child profile is neither imported nor named by a `target`: written commented out; import the child profile too".into() });
                    ep.skip.get_or_insert("child profile unknown".into());
                }
            }
        }
    }
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key (quoted).
fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", q(k), q(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn render(d: &Draft, notices: &[Notice]) -> String {
    let mut o = String::new();
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
    let m = &d.monitor;
    let _ = writeln!(o, "\n[monitor]  # monitorConfig");
    let _ = writeln!(o, "protocol = {}", q(m.protocol));
    if let Some(p) = m.port {
        let _ = writeln!(o, "port = {p}");
    }
    if let Some(p) = &m.path {
        let _ = writeln!(o, "path = {}", q(p));
    }
    let _ = writeln!(o, "interval = \"{}s\"", m.interval);
    let _ = writeln!(o, "timeout = \"{}s\"", m.timeout);
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
    for e in &d.endpoints {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value) -> Result<Import, Vec<String>> {
        import(
            &[Input {
                file: "p.json".into(),
                doc,
            }],
            "tm.example.test",
        )
    }

    fn messages(i: &Import) -> String {
        i.notices.iter().map(|n| format!("{n}\n")).collect()
    }

    fn cli_profile(method: &str, endpoints: Value) -> Value {
        json!({
            "dnsConfig": {"fqdn": "app.trafficmanager.net", "relativeName": "app", "ttl": 30},
            "endpoints": endpoints,
            "id": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app",
            "location": "global",
            "maxReturn": null,
            "monitorConfig": {
                "customHeaders": [{"name": "Host", "value": "app.example.com"}],
                "expectedStatusCodeRanges": [{"min": 200, "max": 299}, {"min": 301, "max": 301}],
                "intervalInSeconds": 10, "path": "/healthz", "port": 443, "profileMonitorStatus": "Online",
                "protocol": "HTTPS", "timeoutInSeconds": 5, "toleratedNumberOfFailures": 2
            },
            "name": "app",
            "profileStatus": "Enabled",
            "resourceGroup": "rg",
            "tags": {},
            "trafficRoutingMethod": method,
            "trafficViewEnrollmentStatus": "Disabled",
            "type": "Microsoft.Network/trafficManagerProfiles"
        })
    }

    fn ext(name: &str, target: &str) -> Value {
        json!({"name": name, "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
               "target": target, "endpointStatus": "Enabled", "endpointMonitorStatus": "Online"})
    }

    #[test]
    fn priority_profile_maps_every_setting() {
        let mut a = ext("primary", "203.0.113.10");
        a["priority"] = json!(1);
        a["customHeaders"] = json!([{"name": "X-Probe", "value": "1"}]);
        let mut b = ext("secondary", "www.example.net");
        b["priority"] = json!(2);
        b["endpointStatus"] = json!("Disabled");
        let out = run(cli_profile("Priority", json!([a, b]))).unwrap();
        let f = &out.files[0];
        assert_eq!(f.file_name, "app.toml");
        assert_eq!(f.profile, "app.tm.example.test.");
        for line in [
            "name = \"app.tm.example.test.\"",
            "routing = \"priority\"",
            "ttl = 30",
            "protocol = \"https\"",
            "port = 443",
            "path = \"/healthz\"",
            "interval = \"10s\"",
            "timeout = \"5s\"",
            "tolerated_failures = 2",
            "expected_status = [\"200-299\", 301]",
            "headers = { \"Host\" = \"app.example.com\" }",
            "tls_verify = false",
            "target = \"203.0.113.10\"\npriority = 1\nprobe = { headers = { \"X-Probe\" = \"1\" } }",
            "target = \"www.example.net\"\npriority = 2\nenabled = false",
        ] {
            assert!(f.text.contains(line), "no `{line}` in\n{}", f.text);
        }
        // The HTTPS difference, and the keys that describe the resource.
        assert_eq!(
            messages(&out),
            "note: p.json: monitorConfig.protocol: HTTPS: Azure does not verify the certificates of its probes, so `tls_verify = false` is written; Switchyard verifies by default: remove it once the endpoints' certificates name their Host\n\
             note: p.json: id, location, resourceGroup, type, monitorConfig.profileMonitorStatus, endpoints[].endpointMonitorStatus: not carried over: they describe the Azure resource and its state at export (Switchyard probes for itself), not how it routes\n"
        );
        // The text is TOML.
        toml::from_str::<toml::Table>(&f.text).unwrap();
    }

    #[test]
    fn arm_resource_shape_and_unknown_settings() {
        let doc = json!({
            "name": "app", "type": "Microsoft.Network/trafficManagerProfiles",
            "properties": {
                "trafficRoutingMethod": "Weighted", "trafficViewEnrollmentStatus": "Enabled",
                "dnsConfig": {"relativeName": "App", "ttl": 60},
                "monitorConfig": {"protocol": "TCP", "port": 8443, "intervalInSeconds": 30, "timeoutInSeconds": 10, "toleratedNumberOfFailures": 3},
                "futureSetting": true,
                "endpoints": [
                    {"name": "blue green", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                     "properties": {"target": "192.0.2.1", "weight": 3, "alwaysServe": "Enabled"}},
                    {"name": "az", "type": "Microsoft.Network/trafficManagerProfiles/azureEndpoints",
                     "properties": {"targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip1", "weight": 1}}
                ]
            }
        });
        let out = run(doc).unwrap();
        let text = &out.files[0].text;
        assert!(
            text.contains(
                "name = \"blue-green\"\ntarget = \"192.0.2.1\"\nweight = 3\nalways_serve = true"
            ),
            "{text}"
        );
        assert!(text.contains("# Not imported (no address"), "{text}");
        assert!(
            text.contains("port = 8443") && !text.contains("path ="),
            "{text}"
        );
        let m = messages(&out);
        assert!(m.contains("warning: p.json: properties.trafficViewEnrollmentStatus: Traffic View is not carried over"), "{m}");
        assert!(m.contains("warning: p.json: properties.futureSetting: setting `futureSetting` = true is unknown"), "{m}");
        assert!(m.contains("warning: p.json: properties.endpoints[1].properties.target: endpoint `az` has only the Azure resource id `/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip1`"), "{m}");
        assert!(m.contains("note: p.json: properties.endpoints[0].name: endpoint `blue green` is named `blue-green`"), "{m}");
    }

    #[test]
    fn malformed_input_names_the_json_path() {
        let mut doc = cli_profile("Priority", json!([ext("a", "192.0.2.1")]));
        doc["monitorConfig"]["port"] = json!("eighty");
        let err = run(doc).unwrap_err();
        assert!(
            err[0].starts_with("p.json: monitorConfig.port: invalid type: string \"eighty\""),
            "{err:?}"
        );
        let mut doc = cli_profile("Priority", json!([ext("a", "192.0.2.1")]));
        doc["endpoints"][0]["priority"] = json!(true);
        let err = run(doc).unwrap_err();
        assert!(
            err[0].starts_with("p.json: endpoints[0].priority: invalid type: boolean"),
            "{err:?}"
        );
        let err = run(json!([1])).unwrap_err();
        assert!(err[0].contains("[0]"), "{err:?}");
        let mut doc = cli_profile("RoundRobin", json!([ext("a", "192.0.2.1")]));
        doc["dnsConfig"]["ttl"] = json!(5);
        let err = run(doc).unwrap_err();
        assert!(
            err[0].contains("trafficRoutingMethod: unknown routing method `roundrobin`"),
            "{err:?}"
        );
    }

    #[test]
    fn geographic_codes_and_performance_regions() {
        let mut a = ext("eu", "192.0.2.1");
        a["geoMapping"] = json!(["GEO-EU", "de", "US-CA", "CA-BC", "XX", "WORLD"]);
        let mut b = ext("dup", "192.0.2.2");
        b["geoMapping"] = json!(["DE"]);
        let out = run(cli_profile("Geographic", json!([a, b]))).unwrap();
        let text = &out.files[0].text;
        assert!(
            text.contains("regions = [\"GEO-EU\", \"DE\", \"US-CA\", \"CA-BC\", \"WORLD\"]"),
            "{text}"
        );
        assert!(text.contains("# Not imported (no regions)"), "{text}");
        let m = messages(&out);
        assert!(
            m.contains("geoMapping[4]: unknown country code `XX`"),
            "{m}"
        );
        assert!(
            m.contains("endpoints[1].geoMapping[0]: `DE` is already mapped to endpoint `eu`"),
            "{m}"
        );

        let mut a = ext("eu", "192.0.2.1");
        a["endpointLocation"] = json!("West Europe");
        let mut b = ext("us", "192.0.2.2");
        b["endpointLocation"] = json!("East US 2");
        let mut c = ext("rio", "192.0.2.3");
        c["endpointLocation"] = json!("Brazil Southeast");
        let mut d = ext("moon", "192.0.2.4");
        d["endpointLocation"] = json!("Moon Base");
        let out = run(cli_profile("Performance", json!([a, b, c, d]))).unwrap();
        let text = &out.files[0].text;
        assert!(
            text.contains("location = \"westeurope\"  # Azure: \"West Europe\""),
            "{text}"
        );
        assert!(text.contains("location = \"eastus2\""), "{text}");
        assert!(
            text.contains("location = { lat = -22.9, lon = -43.17 }"),
            "{text}"
        );
        assert!(
            text.contains("# Not imported (unknown location `Moon Base`)"),
            "{text}"
        );
    }

    #[test]
    fn subnets_multivalue_and_priorities() {
        let mut a = ext("office", "10.0.0.1");
        a["subnets"] = json!([{"first": "10.0.0.0", "scope": 8}, {"first": "192.0.2.10", "last": "192.0.2.20"}, {"first": "198.51.100.7"}]);
        let mut b = ext("broken", "10.0.0.2");
        b["subnets"] = json!([{"first": "10.1.0.1", "scope": 16}]);
        let c = ext("fallback", "192.0.2.99");
        let out = run(cli_profile("Subnet", json!([a, b, c]))).unwrap();
        let text = &out.files[0].text;
        assert!(
            text.contains(
                "subnets = [\"10.0.0.0/8\", \"192.0.2.10-192.0.2.20\", \"198.51.100.7\"]"
            ),
            "{text}"
        );
        assert!(
            text.contains("# Not imported (no readable subnet)"),
            "{text}"
        );
        assert!(
            messages(&out).contains("has host bits set"),
            "{}",
            messages(&out)
        );

        let mut doc = cli_profile(
            "MultiValue",
            json!([
                ext("a", "192.0.2.1"),
                ext("b", "2001:db8::1"),
                ext("c", "host.example.net")
            ]),
        );
        doc["maxReturn"] = json!(2);
        let out = run(doc).unwrap();
        let text = &out.files[0].text;
        assert!(text.contains("max_answers = 2"), "{text}");
        assert!(
            text.contains("# Not imported (a host name in a multivalue profile)"),
            "{text}"
        );

        // Missing priorities: list order, sorted by the ones given.
        let mut a = ext("a", "192.0.2.1");
        a["priority"] = json!(2);
        let mut b = ext("b", "192.0.2.2");
        b["priority"] = json!(1);
        let c = ext("c", "192.0.2.3");
        let out = run(cli_profile("Priority", json!([a, b, c]))).unwrap();
        let text = &out.files[0].text;
        let pos = |n: &str| text.find(&format!("name = \"{n}\"")).unwrap();
        assert!(pos("b") < pos("a") && pos("a") < pos("c"), "{text}");
        assert!(!text.contains("priority ="), "{text}");
    }

    #[test]
    fn nested_endpoints_become_nested_profiles() {
        let mut parent = cli_profile(
            "Priority",
            json!([
                {"name": "eu", "type": "Microsoft.Network/trafficManagerProfiles/nestedEndpoints",
                 "target": "app-eu.trafficmanager.net", "priority": 1, "minChildEndpoints": 2, "minChildEndpointsIPv6": 1,
                 "targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app-eu"},
                {"name": "us", "type": "Microsoft.Network/trafficManagerProfiles/nestedEndpoints",
                 "target": "app-us.trafficmanager.net", "priority": 2, "minChildEndpoints": 1,
                 "targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app-us"}
            ]),
        );
        parent["name"] = json!("app");
        let mut child = cli_profile("Weighted", json!([ext("a", "192.0.2.1")]));
        child["name"] = json!("app-eu");
        child["dnsConfig"]["relativeName"] = json!("app-eu");
        child["dnsConfig"]["fqdn"] = json!("app-eu.trafficmanager.net");
        let out = import(
            &[
                Input {
                    file: "parent.json".into(),
                    doc: parent,
                },
                Input {
                    file: "child.json".into(),
                    doc: child,
                },
            ],
            "tm.example.test.",
        )
        .unwrap();
        assert_eq!(out.files.len(), 2);
        let text = &out.files[0].text;
        assert!(text.contains("name = \"eu\"\nprofile = \"app-eu.tm.example.test.\"  # nested endpoint\npriority = 1\nmin_child_endpoints = 2"), "{text}");
        assert!(text.contains("name = \"us\"\ntarget = \"app-us.trafficmanager.net\"\npriority = 2\nalways_serve = true"), "{text}");
        let m = messages(&out);
        assert!(
            m.contains("parent.json: endpoints[0].minChildEndpointsIPv6: 1 not carried over"),
            "{m}"
        );
        assert!(
            m.contains(
                "parent.json: endpoints[1].targetResourceId: child profile app-us was not imported"
            ),
            "{m}"
        );
    }

    #[test]
    fn template_expressions_are_reported() {
        let doc = json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "parameters": {"ttl": {"type": "Int", "defaultValue": 30}},
            "resources": [{
                "type": "Microsoft.Network/trafficManagerProfiles", "apiVersion": "2022-04-01", "name": "app", "location": "global",
                "properties": {
                    "trafficRoutingMethod": "Priority",
                    "dnsConfig": {"relativeName": "app", "ttl": "[parameters('ttl')]"},
                    "monitorConfig": {"protocol": "HTTP", "port": 80, "path": "/", "intervalInSeconds": 30},
                    "endpoints": [
                        {"name": "a", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                         "properties": {"target": "[concat('a', '.example.net')]", "priority": 1}},
                        {"name": "b", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                         "properties": {"target": "192.0.2.2", "priority": 2}}
                    ]
                }
            }]
        });
        let out = run(doc).unwrap();
        let m = messages(&out);
        assert!(m.contains("warning: p.json: resources[0].properties.dnsConfig.ttl: ARM template expression `[parameters('ttl')]` not carried over (its default would be `30`)"), "{m}");
        assert!(
            m.contains(
                "resources[0].properties.endpoints[0].properties.target: ARM template expression"
            ),
            "{m}"
        );
        assert!(
            out.files[0].text.contains("# Not imported (no address"),
            "{}",
            out.files[0].text
        );
        assert!(
            !out.files[0].text.contains("\nttl ="),
            "{}",
            out.files[0].text
        );
    }

    #[test]
    fn a_profile_without_usable_endpoints_is_an_error() {
        let err = run(cli_profile("Priority", json!([]))).unwrap_err();
        assert!(
            err[0].contains("endpoints: profile `app` has no endpoint that can be written"),
            "{err:?}"
        );
        let err = import(
            &[Input {
                file: "p.json".into(),
                doc: cli_profile("Priority", json!([ext("a", "192.0.2.1")])),
            }],
            "bad zone",
        )
        .unwrap_err();
        assert!(err[0].starts_with("--zone"), "{err:?}");
    }

    /// Every key with a value in every fixture (`tests/fixtures/azure/`) is
    /// carried over, or named by a notice: the importer drops nothing
    /// quietly (issue 20: `tags` and a priority profile's
    /// `endpointLocation` were).
    #[test]
    fn every_key_is_carried_over_or_reported() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 7);
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let input = Input {
                file: file.clone(),
                doc: doc.clone(),
            };
            let out = import(&[input], "tm.example.test").unwrap();
            // The keys the notices name: the last step of each path.
            let reported: std::collections::BTreeSet<&str> = out
                .notices
                .iter()
                .flat_map(|n| n.at.rsplit(": ").next().unwrap_or("").split(", "))
                .map(|p| p.rsplit(['.', ']']).next().unwrap_or(p))
                .collect();
            let (found, _) = arm::profiles(&doc, &file, &mut Vec::new()).unwrap();
            for f in found {
                let routing = f.profile.fields["trafficRoutingMethod"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase();
                let mut objects = vec![(f.profile.clone(), PROFILE_KEYS)];
                for (key, table) in [("dnsConfig", DNS_KEYS), ("monitorConfig", MONITOR_KEYS)] {
                    if let Some(v) = f.profile.fields.get(key) {
                        objects.push((Flat::new(String::new(), v), table));
                    }
                }
                objects.extend(f.endpoints.iter().map(|e| (e.clone(), ENDPOINT_KEYS)));
                for (flat, table) in objects {
                    for (k, v) in &flat.fields {
                        let carried = match fate(table, k) {
                            Some(Fate::Mapped) => true,
                            Some(Fate::Only(m)) => m == routing,
                            _ => false,
                        };
                        assert!(
                            carried || is_empty(v) || reported.contains(k.as_str()),
                            "{file}: `{k}` = {v} is neither carried over nor reported:\n{}",
                            messages(&out)
                        );
                    }
                }
            }
        }
    }
}
