//! Raw configuration -> validated [`Config`] with a compiled [`Snapshot`].
//!
//! Every check reports into one [`Report`] (the diagnostics sink, with the
//! texts errors point into) and carries on, so one run of `switchyard
//! check` lists every problem; the snapshot is only returned when there
//! were none.
//!
//! The stages, in the order a load runs them, one file each: the [`server`]
//! file's sections (with [`cluster`] and [`notify`]), [`zones`] and static
//! records ([`dnssec`] keys), [`profiles`] with their [`monitor`] (or
//! named [`monitors`]) and [`endpoints`], and the [`links`] between
//! profiles and names once everything is read ([`delegations`] among
//! them).
//!
//! A stage that reads part of the configuration is a function of its
//! inputs (the report, the raw value, what it depends on: the profile
//! being compiled is an argument, [`endpoints::ProfileCx`]) returning its
//! typed part, or `None` when it found a problem, which it reported; it
//! reads every key even so, and a part stands only if all of its parts
//! did. Ranges and defaults of bounded keys come from the declarative key
//! table ([`crate::config::keys`]). What is built is appended by the
//! [`Loader`] in order (ids are indexes into the snapshot): it holds the
//! report, what the stages read ([`Run`]: the previous configuration's
//! state, what the server file settled), and the snapshot and the
//! cross-references (names, probes, nested endpoints, NS hosts) that are
//! linked at the end.

mod cluster;
mod delegations;
mod dnssec;
mod endpoints;
mod links;
mod method_data;
mod monitor;
mod monitor_dns;
mod monitor_grpc;
mod monitors;
mod notify;
mod profiles;
mod report;
mod rum;
mod server;
mod stability;
mod xdp;
mod zones;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::diag::{self, ConfigErrors};
use super::methods;
use super::raw::{
    RawDnssec, RawEndpoint, RawKeyRef, RawLocation, RawMonitor, RawProfile, RawRecord, RawServer,
    RawZone, StatusSpec,
};
use super::secret::{Secret, SecretSource};
use super::{
    AdminSettings, Carry, Config, DnsSettings, MonitorSettings, ProbeKey, ProbeSpec, Protocol,
    Settings,
};
use crate::health::HealthCell;
use crate::health::tls::TlsKey;
use crate::proto::name::DomainName;
use crate::proto::rr::{self, Link, WireRr, rtype};
use crate::snapshot::{
    Endpoint, EndpointRuntime, Health, Node, NodeId, OnAllDown, Profile, ProfileId, Routing, RrSet,
    Snapshot, SubnetRange, Target, Zone, ZoneId,
};
pub use endpoints::check_target;
use method_data::MethodKeys;
use report::{Report, base_dir};

/// Largest TTL allowed (RFC 2181 §8).
const MAX_TTL: i64 = 2_147_483_647;
/// A profile's routing method, as the schema names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Priority,
    Weighted,
    Performance,
    Geographic,
    Subnet,
    Multivalue,
}

impl Method {
    /// Every method, in the order messages list them.
    const ALL: [Method; 6] = [
        Method::Priority,
        Method::Weighted,
        Method::Performance,
        Method::Geographic,
        Method::Subnet,
        Method::Multivalue,
    ];

    /// The name in `routing = "..."`.
    fn name(self) -> &'static str {
        match self {
            Method::Priority => "priority",
            Method::Weighted => "weighted",
            Method::Performance => "performance",
            Method::Geographic => "geographic",
            Method::Subnet => "subnet",
            Method::Multivalue => "multivalue",
        }
    }

    fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Needs the client's location.
    fn needs_geoip(self) -> bool {
        matches!(self, Method::Performance | Method::Geographic)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where something was written: for errors that point back at it.
#[derive(Clone, Debug, Default)]
struct At {
    src: usize,
    span: std::ops::Range<usize>,
    field: String,
}

/// A value with where it was written.
struct Located<T> {
    value: T,
    at: At,
}

/// A nested endpoint whose child profile is resolved once all are read.
struct NestedRef {
    /// The endpoint's id in the table.
    endpoint: u32,
    /// The child profile's name.
    child: DomainName,
    at: At,
}

/// A name server host of a zone, checked for glue at the end.
struct NsHost {
    zone: ZoneId,
    host: DomainName,
    at: At,
}

/// A static RRset and where each of its records was written.
struct StaticSet {
    set: RrSet,
    ats: Vec<At>,
}

/// Where the records of one node's RRsets were written: `sets[i][j]` is
/// record `j` of the node's RRset `i`.
struct NodeSources {
    node: NodeId,
    sets: Vec<Vec<At>>,
}

/// A zone as its records and profiles need it.
struct ZoneHead {
    id: ZoneId,
    origin: DomainName,
    /// The zone's default TTL.
    ttl: u32,
}

/// Where a profile's name puts it.
struct ProfileOwner {
    name: DomainName,
    zone: ZoneId,
    /// Named after its zone's apex: it answers A and AAAA there.
    apex: bool,
}

/// An endpoint's `weight` and `priority`, checked.
struct Rank {
    weight: u32,
    priority: u16,
}

/// What one load reads besides the files: the previous configuration's
/// state, the clock, and what the server file's sections settle for the
/// stages after them. Set before zones and profiles are read; they only
/// read it.
struct Run<'c> {
    /// What the previous configuration leaves to this one.
    carry: &'c Carry,
    now: SystemTime,
    /// Read the staged profiles too ([`crate::config::load_staged`]).
    staged: bool,
    /// The GeoIP database, opened with `[geoip]`.
    geo: Option<Arc<crate::geo::GeoDb>>,
    /// Whether `[geoip] database` was given (even if it failed to open).
    geo_configured: bool,
    /// `[prober]`, for every monitor.
    prober_settings: crate::config::ProberSettings,
    /// The signing budget's settings.
    signing: crate::dnssec::budget::Config,
    /// `dns.signature_cache`.
    signature_cache_size: usize,
    /// Each zone's last content digest and serial: the running zones' on a
    /// reload, the serials file's at start.
    serial_history: crate::config::serials::History,
}

/// One load: where problems are reported ([`Report`]), what it reads
/// ([`Run`]), and what the stages build, appended in order (ids are
/// indexes into the snapshot) and linked once everything is read.
struct Loader<'c> {
    /// Where every problem is reported.
    r: Report,
    /// What the stages read.
    run: Run<'c>,
    /// The snapshot under construction.
    table: Snapshot,
    /// Names defined so far (records and profiles), before nodes exist.
    pending: Vec<Pending>,
    pending_index: FxHashMap<Box<[u8]>, usize>,
    /// Nested endpoints to resolve once every profile is known.
    nested: Vec<NestedRef>,
    /// Host-name targets of endpoints, checked against our zones at the end.
    host_targets: Vec<Located<DomainName>>,
    /// Zone NS entries, for the glue check.
    ns_hosts: Vec<NsHost>,
    /// The probes, one per distinct target and settings.
    probes: Vec<ProbeSpec>,
    probe_index: HashMap<ProbeKey, usize>,
    /// The signature cache of signed zones, once one is read.
    sig_cache: Option<Arc<crate::dnssec::cache::SigCache>>,
}

/// A name defined so far: its records and profile, before nodes exist.
struct Pending {
    name: DomainName,
    zone: ZoneId,
    /// Static RRsets, each record with where it was written.
    records: Vec<StaticSet>,
    /// The profile named after it (at an apex, next to the records).
    profile: Option<ProfileId>,
    /// Where the name was first defined.
    at: At,
}

pub(super) fn load(path: &Path, carry: &Carry, staged: bool) -> Result<Config, ConfigErrors> {
    let mut l = Loader {
        r: Report::default(),
        run: Run {
            carry,
            now: SystemTime::now(),
            staged,
            geo: None,
            geo_configured: false,
            prober_settings: Default::default(),
            signing: Default::default(),
            signature_cache_size: 0,
            serial_history: Default::default(),
        },
        table: Snapshot::default(),
        pending: Vec::new(),
        pending_index: FxHashMap::default(),
        nested: Vec::new(),
        host_targets: Vec::new(),
        ns_hosts: Vec::new(),
        probes: Vec::new(),
        probe_index: HashMap::new(),
        sig_cache: None,
    };
    let settings = l.load_all(path);
    match settings {
        Some(settings) if l.r.diag.ok() => Ok(Config {
            path: path.to_path_buf(),
            settings,
            table: l.table,
            probes: l.probes,
            geo: l.run.geo,
            warnings: l.r.diag.warnings,
        }),
        _ => Err(ConfigErrors(l.r.diag.errors)),
    }
}

/// The cookie secrets to serve with (see [`crate::proto::cookie::Secrets::next`]).
fn cookie_secrets(
    settings: &super::CookieSettings,
    running: Option<&crate::proto::cookie::Secrets>,
) -> Option<Arc<crate::proto::cookie::Secrets>> {
    use crate::dns::cookie::{self, Secrets};
    if !settings.enabled {
        return None;
    }
    Some(Arc::new(Secrets::next(
        settings.secret,
        settings.previous,
        running,
        cookie::now(),
    )))
}

impl Loader<'_> {
    /// The whole load: the server file's sections, then zones and their
    /// records, then every profile, then the links between them.
    pub(super) fn load_all(&mut self, path: &Path) -> Option<Settings> {
        let src = self.r.read(
            path,
            super::SERVER_FILE_LIMIT,
            "the fixed limit for the server configuration file",
        )?;
        let raw: RawServer = diag::parse(&self.r.sources[src], &mut self.r.diag)?;
        let base = base_dir(path);
        let sections = server::sections(&mut self.r, src, &raw, &base, self.run.carry);
        self.serve_with(&sections);
        if let Some(g) = &sections.geoip {
            self.run.geo = g.db.clone();
        }
        self.run.geo_configured = raw.geoip.as_ref().is_some_and(|g| g.database.is_some());
        self.run.serial_history = self.serial_history(sections.state_file.as_deref());
        let zones: Vec<_> = raw.zones.iter().map(|z| self.zone(src, z)).collect();
        // Records after every origin is known, so each lands in its own zone.
        for (z, built) in raw.zones.iter().zip(zones) {
            if let Some(head) = built {
                for (i, r) in z.get_ref().records.iter().enumerate() {
                    self.record(src, &head, i, r);
                }
            }
        }
        // The token names of `[rum]`, before profiles (which may not take
        // their names).
        let rum_wildcard = match (&raw.rum, &sections.rum) {
            (Some(raw_rum), Some(Some(rum))) => self
                .rum_wildcard(src, raw_rum, rum)
                .map(|w| (raw_rum, rum, w)),
            _ => None,
        };
        if raw.zones.is_empty() {
            self.r.diag.file_error(
                path,
                "no [[zones]] configured: Switchyard only answers for its zones",
            );
        }
        // A profiles directory named in `[profiles]` that is missing is
        // reported there: its profiles are not read.
        if let Some(p) = &sections.profiles
            && let Some(dir) = &p.dir
        {
            let staged = self.run.staged.then(|| crate::config::staged_dir(dir));
            self.profiles_dir(dir, staged.as_deref(), p.max_file_size);
        }
        self.finish();
        if let Some((raw_rum, rum, wildcard)) = rum_wildcard
            && self.r.diag.ok()
        {
            self.rum_links(src, raw_rum, rum, &wildcard);
        }
        sections.settings()
    }

    /// What the snapshot and the later stages take from the server
    /// sections; defaults stand in for a wrong section (reported), so the
    /// zones and profiles are still checked.
    fn serve_with(&mut self, s: &server::Sections) {
        let default = DnsSettings::default();
        let dns = s.dns.as_ref().unwrap_or(&default);
        self.run.prober_settings = s.prober.clone().unwrap_or_default();
        self.table.ecs = dns.ecs;
        self.table.nsid = dns.nsid.as_deref().map(|n| n.as_bytes().into());
        self.run.signature_cache_size = dns.signature_cache;
        self.run.signing = dns.signing;
        self.table.cookies = cookie_secrets(&dns.cookies, self.run.carry.cookies.as_deref());
        self.table.loaded_at = Some(self.run.now);
    }

    /// Each zone's last digest and serial: the running zones' on a reload,
    /// else the serials file beside the state file.
    fn serial_history(&mut self, state_file: Option<&Path>) -> crate::config::serials::History {
        match (&self.run.carry.serials, state_file) {
            (Some(running), _) => running.clone(),
            (None, Some(state)) => match crate::config::serials::read(state) {
                Ok(h) => h,
                Err(e) => {
                    self.r.diag.file_warning(
                        &crate::config::serials::path_for(state),
                        format!("cannot use the SOA serials kept here ({e}); zones start from the serials of their content"),
                    );
                    Default::default()
                }
            },
            (None, None) => Default::default(),
        }
    }
}

/// Helpers for the stages' unit tests: a configuration written to a
/// temporary directory and loaded.
#[cfg(test)]
pub(super) mod test_support {
    use super::*;

    /// One zone, `tm.example.test.`, with an NS host and its address.
    pub const ZONE: &str = "[[zones]]\norigin = \"tm.example.test.\"\nns = [\"ns1.tm.example.test.\"]\nrecords = [{ name = \"ns1\", type = \"A\", value = \"192.0.2.53\" }]\n";

    /// Loads `server` (prepended to a profiles directory and [`ZONE`]) with
    /// `profiles`.
    pub fn load_text(server: &str, profiles: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        let text = format!("{server}\n[profiles]\ndir = \"profiles\"\n{ZONE}");
        std::fs::write(dir.path().join("switchyard.toml"), text).unwrap();
        for (name, body) in profiles {
            std::fs::write(dir.path().join("profiles").join(name), body).unwrap();
        }
        load(
            &dir.path().join("switchyard.toml"),
            &Carry::default(),
            false,
        )
    }

    /// The messages of a failed load, as `field: message`.
    pub fn errors(r: Result<Config, ConfigErrors>) -> Vec<String> {
        match r {
            Ok(_) => panic!("loaded, expected errors"),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect()
            }
        }
    }

    /// A profile `p.tm.example.test.` with `body` after its name.
    pub fn profile(body: &str) -> String {
        format!("name = \"p.tm.example.test.\"\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn methods_parse_by_their_schema_names() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
        }
        assert_eq!(Method::parse("Priority"), None);
        assert_eq!(Method::parse("round-robin"), None);
        assert!(Method::Geographic.needs_geoip() && !Method::Subnet.needs_geoip());
    }
}
