//! The importer's vocabulary: what becomes of every key of a profile, its
//! `dnsConfig` and `monitorConfig`, and its endpoints ([`Fate`]).

use serde_json::Value;

use crate::import::Level;

/// What becomes of a key of the input. With the tables below, the
/// importer's whole vocabulary: every key of a profile, its `dnsConfig`
/// and `monitorConfig`, and its endpoints is carried over or reported, one
/// line each; a key in none of them is reported as unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Fate {
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
pub(super) type KeyTable = &'static [(&'static str, Fate)];

/// An ARM comment: the operator's text about the resource.
pub(super) const COMMENTS: Fate = Fate::Dropped(
    Level::Note,
    "not carried over: an ARM comment (this line keeps it in the file's header)",
);
/// An ARM deployment condition.
pub(super) const CONDITION: Fate = Fate::Dropped(
    Level::Warning,
    "not carried over: an ARM deployment condition; the profile is imported as if it were deployed: leave it out if it is not",
);

pub(super) const PROFILE_KEYS: KeyTable = &[
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

pub(super) const DNS_KEYS: KeyTable = &[
    ("relativeName", Fate::Mapped),
    ("ttl", Fate::Mapped),
    // Named in the next steps and in CNAMEs to unimported children.
    ("fqdn", Fate::Mapped),
];

pub(super) const MONITOR_KEYS: KeyTable = &[
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

pub(super) const ENDPOINT_KEYS: KeyTable = &[
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
pub(super) const ENDPOINT_UNEVALUATED: &[&str] = &[
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

/// The fate of `key` in `table`; `None`: unknown to the importer.
pub(super) fn fate(table: &[(&str, Fate)], key: &str) -> Option<Fate> {
    table.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// No value: null, or an empty string, array or object.
pub(super) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
