//! Raw configuration -> validated [`Config`] with a compiled [`Snapshot`].
//!
//! Every check reports into [`Diagnostics`] and carries on, so one run of
//! `switchyard check` lists every problem; the table is only returned when
//! there were none.
//!
//! The stages, in the order a load runs them, one file each: [`server`]
//! settings, [`zones`] and static records, [`profiles`] (with the routing
//! methods' data), [`endpoints`], [`monitor`] tables, and the [`links`]
//! between profiles and names once everything is read. This file holds the
//! loader they share and its located-error helpers.
//!
//! Several stages return what they built as a named value ([`ZoneHead`],
//! [`ProfileOwner`], [`Rank`], [`Routing`], [`Settings`]...), but they are
//! still methods of one [`Loader`] whose fields they share: the source
//! texts (for `FILE:LINE:COL`), the one diagnostics sink (so a run reports
//! every problem, not the first), the table the stages append to in order
//! (ids are indexes into it), and also per-run settings (signing, GeoIP,
//! the prober), the names and probes seen so far, and cursor state (the
//! profile being compiled).

mod cluster;
mod delegations;
mod dnssec;
mod endpoints;
mod links;
mod monitor;
mod notify;
mod profiles;
mod report;
mod server;
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

/// Loader state: sources for diagnostics and the table under construction.
struct Loader<'c> {
    /// What the previous configuration leaves to this one.
    carry: &'c Carry,
    /// The signature cache of signed zones, once one is read.
    sig_cache: Option<Arc<crate::dnssec::cache::SigCache>>,
    /// `dns.signature_cache`.
    signature_cache_size: usize,
    /// The signing budget's settings.
    signing: crate::dnssec::budget::Config,
    /// Nested endpoints to resolve once every profile is known.
    nested: Vec<NestedRef>,
    /// Host-name targets of endpoints, checked against our zones at the end.
    host_targets: Vec<Located<DomainName>>,
    /// Where every problem is reported.
    r: Report,
    table: Snapshot,
    /// Names defined so far (records and profiles), before nodes exist.
    pending: Vec<Pending>,
    pending_index: FxHashMap<Box<[u8]>, usize>,
    /// Zone NS entries, for the glue check.
    ns_hosts: Vec<NsHost>,
    probes: Vec<ProbeSpec>,
    probe_index: HashMap<ProbeKey, usize>,
    /// The GeoIP database, opened while reading `[geoip]`.
    geo: Option<Arc<crate::geo::GeoDb>>,
    /// Whether `[geoip] database` was given (even if it failed to open).
    geo_configured: bool,
    /// `[prober]`, read with the server settings, for every monitor.
    prober_settings: crate::config::ProberSettings,
    /// Each zone's last content digest and serial: the running zones' on a
    /// reload, the serials file's at start.
    serial_history: crate::config::serials::History,
    now: SystemTime,
    /// Read the staged profiles too ([`crate::config::load_staged`]).
    staged: bool,
}

/// The per-method keys of one endpoint, checked.
#[derive(Default)]
struct MethodKeys {
    /// Where the endpoint was written (its name).
    at: At,
    /// Every key was right (or absent).
    ok: bool,
    /// An entry of `regions` was wrong (reported).
    regions_wrong: bool,
    point: Option<crate::geo::Point>,
    location_given: bool,
    regions_given: bool,
    regions: Vec<RegionKey>,
    subnets: Vec<SubnetKey>,
}

/// One entry of an endpoint's `regions`.
struct RegionKey {
    code: crate::snapshot::RegionCode,
    /// As written, in uppercase: for messages.
    text: String,
    at: At,
}

/// One entry of an endpoint's `subnets`: an address range.
struct SubnetKey {
    v6: bool,
    lo: u128,
    hi: u128,
    /// As written: for messages.
    text: String,
    at: At,
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
        carry,
        sig_cache: None,
        signature_cache_size: 0,
        signing: Default::default(),
        nested: Vec::new(),
        host_targets: Vec::new(),
        r: Report::default(),
        table: Snapshot::default(),
        pending: Vec::new(),
        pending_index: FxHashMap::default(),
        ns_hosts: Vec::new(),
        probes: Vec::new(),
        probe_index: HashMap::new(),
        geo: None,
        geo_configured: false,
        prober_settings: Default::default(),
        serial_history: Default::default(),
        now: SystemTime::now(),
        staged,
    };
    let settings = l.load_all(path);
    match settings {
        Some(settings) if l.r.diag.ok() => Ok(Config {
            path: path.to_path_buf(),
            settings,
            table: l.table,
            probes: l.probes,
            geo: l.geo,
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
        let sections = server::sections(&mut self.r, src, &raw, &base, self.carry);
        self.serve_with(&sections);
        if let Some(g) = &sections.geoip {
            self.geo = g.db.clone();
        }
        self.geo_configured = raw.geoip.as_ref().is_some_and(|g| g.database.is_some());
        self.serial_history = self.serial_history(sections.state_file.as_deref());
        let zones: Vec<_> = raw.zones.iter().map(|z| self.zone(src, z)).collect();
        // Records after every origin is known, so each lands in its own zone.
        for (z, built) in raw.zones.iter().zip(zones) {
            if let Some(head) = built {
                for (i, r) in z.get_ref().records.iter().enumerate() {
                    self.record(src, &head, i, r);
                }
            }
        }
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
            let staged = self.staged.then(|| crate::config::staged_dir(dir));
            self.profiles_dir(dir, staged.as_deref(), p.max_file_size);
        }
        self.finish();
        sections.settings()
    }

    /// What the snapshot and the later stages take from the server
    /// sections; defaults stand in for a wrong section (reported), so the
    /// zones and profiles are still checked.
    fn serve_with(&mut self, s: &server::Sections) {
        let default = DnsSettings::default();
        let dns = s.dns.as_ref().unwrap_or(&default);
        self.prober_settings = s.prober.unwrap_or_default();
        self.table.ecs = dns.ecs;
        self.table.nsid = dns.nsid.as_deref().map(|n| n.as_bytes().into());
        self.signature_cache_size = dns.signature_cache;
        self.signing = dns.signing;
        self.table.cookies = cookie_secrets(&dns.cookies, self.carry.cookies.as_deref());
        self.table.loaded_at = Some(self.now);
    }

    /// Each zone's last digest and serial: the running zones' on a reload,
    /// else the serials file beside the state file.
    fn serial_history(&mut self, state_file: Option<&Path>) -> crate::config::serials::History {
        match (&self.carry.serials, state_file) {
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
