//! The compiled routing table: one immutable snapshot of every zone, name,
//! profile and endpoint, with records pre-encoded.
//!
//! Built by [`crate::config`], swapped in whole, read by the DNS workers one
//! snapshot per query. Everything is addressed by dense ids fixed at load
//! time, so the answer path follows indexes, never strings.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::health::{HealthCell, Status};
use crate::proto::name::{DomainName, is_suffix};
use crate::proto::rr::{TypeBitmap, WireRr};

/// Index into [`RoutingTable::zones`].
pub type ZoneId = u32;
/// Index into [`RoutingTable::nodes`].
pub type NodeId = u32;
/// Index into [`RoutingTable::profiles`].
pub type ProfileId = u32;
/// Index into [`RoutingTable::endpoints`].
pub type EndpointId = u32;

/// Everything the DNS path needs, compiled from the configuration.
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// Zones we are authoritative for.
    pub zones: Vec<Zone>,
    /// Every name that exists: apexes, static records, profiles and the
    /// empty non-terminals between them and their apex.
    pub nodes: Vec<Node>,
    /// Lowercase wire name -> node.
    names: FxHashMap<Box<[u8]>, NodeId>,
    /// Routing profiles, in load order.
    pub profiles: Vec<Profile>,
    /// Endpoints of all profiles; each profile owns a contiguous range.
    pub endpoints: Vec<Endpoint>,
    /// Honour EDNS Client Subnet (`dns.ecs`).
    pub ecs: bool,
    /// This server's identifier for NSID (`dns.nsid`, RFC 5001).
    pub nsid: Option<Box<[u8]>>,
    /// DNS cookie secrets (`[dns.cookies]`); `None` when cookies are off.
    pub cookies: Option<Arc<crate::proto::cookie::Secrets>>,
    /// The budget of new signatures (signed zones, unless
    /// `dns.signatures_per_second` and `dns.signatures_per_client` are 0):
    /// the answer path asks it on every signature cache miss.
    pub sign_budget: Option<Arc<crate::dnssec::budget::SignBudget>>,
    /// When this table was compiled.
    pub loaded_at: Option<std::time::SystemTime>,
}

/// What a query name resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name exists (a delegation point included: the answer decides
    /// between a referral and the DS record).
    Found(NodeId),
    /// The name does not exist, and a wildcard (RFC 4592) answers it: the
    /// `*` node of its closest encloser.
    Wildcard(NodeId),
    /// The name is below a delegation (the cut given): a referral.
    Delegated(NodeId),
    /// The name is inside one of our zones but does not exist.
    NxDomain(ZoneId),
    /// The name is outside every zone: refuse.
    Outside,
}

impl RoutingTable {
    /// Adds a node and indexes its name; returns its id.
    pub(crate) fn add_node(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.names.insert(node.name.wire().into(), id);
        self.nodes.push(node);
        id
    }

    /// The node with this exact (lowercase wire) name.
    #[inline]
    pub fn node_id(&self, wire: &[u8]) -> Option<NodeId> {
        self.names.get(wire).copied()
    }

    /// Resolves a lowercase wire name: an exact match, else its closest
    /// encloser (the longest ancestor that exists) decides between a
    /// referral, a wildcard and NXDOMAIN (RFC 4592 §3.3.1).
    pub fn lookup(&self, wire: &[u8]) -> Lookup {
        if let Some(id) = self.node_id(wire) {
            return match self.nodes[id as usize].cut {
                Some(cut) if cut != id => Lookup::Delegated(cut),
                _ => Lookup::Found(id),
            };
        }
        // Every ancestor up to the apex exists as a node (empty non-terminals
        // included), so the first existing ancestor is the closest encloser.
        let mut pos = 0usize;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                break;
            }
            pos += 1 + len as usize;
            if let Some(suffix) = wire.get(pos..)
                && let Some(id) = self.node_id(suffix)
            {
                let encloser = &self.nodes[id as usize];
                return match (encloser.cut, encloser.wildcard) {
                    (Some(cut), _) => Lookup::Delegated(cut),
                    (None, Some(star)) => Lookup::Wildcard(star),
                    (None, None) => Lookup::NxDomain(encloser.zone),
                };
            }
        }
        Lookup::Outside
    }

    /// True when any zone is signed.
    #[inline]
    pub fn signed(&self) -> bool {
        self.zones.iter().any(|z| z.signer.is_some())
    }

    /// The signer of the signed zone that holds the lowercase wire name
    /// `wire` (the longest origin that is its suffix), if any.
    pub fn signer_for(&self, wire: &[u8]) -> Option<&crate::dnssec::ZoneSigner> {
        self.zones
            .iter()
            .filter(|z| is_suffix(wire, z.origin.wire()))
            .max_by_key(|z| z.origin.wire().len())?
            .signer
            .as_deref()
    }

    /// The signer of the zone above the one that holds `wire` (the parent
    /// side of a zone cut), if that zone is signed.
    pub fn signer_above(&self, wire: &[u8]) -> Option<&crate::dnssec::ZoneSigner> {
        self.zones
            .iter()
            .filter(|z| z.origin.wire() != wire && is_suffix(wire, z.origin.wire()))
            .max_by_key(|z| z.origin.wire().len())?
            .signer
            .as_deref()
    }

    /// The zone whose origin is the longest suffix of `name`, if any.
    pub fn zone_of(&self, name: &DomainName) -> Option<ZoneId> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| is_suffix(name.wire(), z.origin.wire()))
            .max_by_key(|(_, z)| z.origin.wire().len())
            .map(|(i, _)| i as ZoneId)
    }

    /// The endpoints of a profile.
    #[inline]
    pub fn endpoints_of(&self, profile: &Profile) -> &[Endpoint] {
        &self.endpoints[profile.endpoints.start as usize..profile.endpoints.end as usize]
    }

    /// Finds a profile by name (case-insensitive, trailing dot optional).
    pub fn profile_by_name(&self, name: &str) -> Option<&Profile> {
        let name = DomainName::parse(name, None).ok()?;
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The endpoint `key` names (runtime overrides, the state file), if
    /// this configuration has it.
    pub fn endpoint_by_key(&self, key: &super::EndpointKey) -> Option<&Endpoint> {
        let p = self.profile_by_name(key.profile())?;
        self.endpoints_of(p)
            .iter()
            .find(|e| &*e.name == key.endpoint())
    }
}

/// A zone we serve.
#[derive(Debug)]
pub struct Zone {
    /// The zone apex.
    pub origin: DomainName,
    /// The apex node (holds SOA and NS).
    pub apex: NodeId,
    /// The SOA as sent in negative answers: TTL = min(SOA TTL, minimum) (RFC 2308).
    pub negative_soa: WireRr,
    /// The SOA serial in use: `soa.serial`, else one that follows the
    /// content (`config::serials`).
    pub serial: u32,
    /// The serial is `soa.serial` as configured.
    pub serial_configured: bool,
    /// The zone's content digest (`config::serials::zone_digest`): what
    /// its serial follows.
    pub digest: u64,
    /// Its key and signature cache, when the zone is signed (`dnssec`).
    pub signer: Option<Arc<crate::dnssec::ZoneSigner>>,
    /// The zone of ours this one is inside, if any: it answers DS queries
    /// at this zone's apex.
    pub parent: Option<ZoneId>,
    /// The DS records the parent answers for this zone: made from this
    /// zone's keys when both are ours and this one is signed.
    pub parent_ds: Vec<WireRr>,
}

/// A name that exists.
#[derive(Debug)]
pub struct Node {
    /// The owner name.
    pub name: DomainName,
    /// The zone the name belongs to.
    pub zone: ZoneId,
    /// Static RRsets: the apex holds SOA and NS (and DNSKEY, CDS, CDNSKEY
    /// when signed), a delegation its NS and DS.
    pub records: Vec<RrSet>,
    /// The routing profile answering here: every type below the apex, A
    /// and AAAA at it (next to the apex records).
    pub profile: Option<ProfileId>,
    /// This name's `*` child: it answers names below this one that do not
    /// exist (RFC 4592).
    pub wildcard: Option<NodeId>,
    /// The delegation this name is at or below: queries get a referral.
    pub cut: Option<NodeId>,
    /// The types a query can find here (the profile's answer types
    /// included), for the NSEC of a signed denial.
    pub types: TypeBitmap,
    /// Names exist below this one: it can never be answered NXDOMAIN.
    pub has_children: bool,
}

impl Node {
    /// A name with no records and no profile: an empty non-terminal
    /// (RFC 8020), which exists and holds nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.profile.is_none()
    }

    /// The profile that answers `qtype` here: the node's profile for every
    /// type when it is the only data, else (at an apex) for A and AAAA.
    #[inline]
    pub fn profile_for(&self, qtype: u16) -> Option<ProfileId> {
        match self.profile {
            Some(p) if self.records.is_empty() || matches!(qtype, 1 | 28) => Some(p),
            _ => None,
        }
    }

    /// The static RRset of `rtype`, if any.
    pub fn set(&self, rtype: u16) -> Option<&RrSet> {
        self.records.iter().find(|s| s.rtype == rtype)
    }
}

/// The records of one name and type.
#[derive(Debug)]
pub struct RrSet {
    /// Record type code.
    pub rtype: u16,
    /// The records, in configuration order.
    pub rrs: Vec<WireRr>,
}

/// A routing profile.
#[derive(Debug)]
pub struct Profile {
    /// The name it answers.
    pub name: DomainName,
    /// Its node.
    pub node: NodeId,
    /// The file it came from.
    pub source: PathBuf,
    /// Routing method with its precomputed data.
    pub routing: Routing,
    /// Answer TTL.
    pub ttl: u32,
    /// Answer TTL while the profile is not settled (`ttl_degraded`).
    pub ttl_degraded: Option<u32>,
    /// `sticky = "client-subnet"` (weighted, multivalue): a consistent
    /// hash of the client's network chooses, not a random draw.
    pub sticky: bool,
    /// `enabled = false` answers NXDOMAIN.
    pub enabled: bool,
    /// What to answer when every eligible endpoint is Degraded.
    pub on_all_down: OnAllDown,
    /// Its endpoints in [`RoutingTable::endpoints`].
    pub endpoints: Range<EndpointId>,
    /// Monitored profiles: the longest a failure can take to be detected,
    /// `interval × (tolerated_failures + 1) + timeout`.
    pub detection: Option<std::time::Duration>,
}

/// Why an answer has the TTL it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlReason {
    /// No `ttl_degraded`: always `ttl`.
    Fixed,
    /// Every endpoint Online (or unmonitored), none changed within `ttl`.
    Settled,
    /// This endpoint (index in the profile) is not Online.
    NotOnline(u32),
    /// This endpoint's status changed less than `ttl` seconds ago.
    Changed(u32),
}

impl Profile {
    /// The TTL answers get at `now` (Unix seconds), and why: `ttl_degraded`
    /// while an endpoint is not Online or changed status within the last
    /// `ttl` seconds (so caches that took a failover answer, or the one
    /// before it, ask again sooner), else `ttl`. The answer path and
    /// `explain` both call this. Reads one status per endpoint: only
    /// profiles that set `ttl_degraded` pay for it.
    #[inline]
    pub fn answer_ttl(&self, table: &RoutingTable, now: u32) -> (u32, TtlReason) {
        let Some(short) = self.ttl_degraded else {
            return (self.ttl, TtlReason::Fixed);
        };
        let recent = |secs: u32| secs != 0 && now.saturating_sub(secs) < self.ttl;
        for (i, e) in table.endpoints_of(self).iter().enumerate() {
            let i = i as u32;
            if !matches!(table.status(e), Status::Online | Status::Unmonitored) {
                return (short, TtlReason::NotOnline(i));
            }
            let probed = match &e.health {
                Health::Monitored(cell) => cell.changed_secs(),
                _ => 0,
            };
            if recent(probed) || recent(e.runtime.changed_secs()) {
                return (short, TtlReason::Changed(i));
            }
        }
        (self.ttl, TtlReason::Settled)
    }

    /// The worst case from an endpoint failing to the last client leaving
    /// it: detection, then the TTL of answers cached just before.
    pub fn worst_failover(&self) -> Option<std::time::Duration> {
        self.detection
            .map(|d| d + std::time::Duration::from_secs(u64::from(self.ttl)))
    }

    /// Every value [`Profile::serving`] takes.
    pub const SERVING: [&'static str; 5] = [
        "healthy",
        "unmonitored",
        "unverified",
        "failing open",
        "not answering",
    ];

    /// What the profile answers now, for an operator at a glance:
    /// `healthy` (an Online endpoint is answerable), `unmonitored` (only
    /// endpoints that are never probed), `unverified` (only endpoints not
    /// yet checked), `failing open` (none
    /// answerable: `on_all_down` applies), `not answering` (disabled, or
    /// nothing eligible). Client-aware methods may differ per client.
    pub fn serving(&self, table: &RoutingTable) -> &'static str {
        if !self.enabled {
            return "not answering";
        }
        let (mut healthy, mut unmonitored, mut checking, mut eligible) =
            (false, false, false, false);
        for e in table.endpoints_of(self) {
            let s = table.status(e);
            // A held endpoint is healthy, and answered when nothing else
            // can be.
            healthy |= matches!(s, Status::Online | Status::Held);
            unmonitored |= s == Status::Unmonitored;
            checking |= s == Status::CheckingEndpoint;
            eligible |= s.is_eligible();
        }
        if healthy {
            "healthy"
        } else if unmonitored {
            "unmonitored"
        } else if checking {
            "unverified"
        } else if eligible {
            "failing open"
        } else {
            "not answering"
        }
    }
}

/// One column of weighted routing's alias table (built by
/// [`super::weighted::alias_table`]): the endpoint itself with probability
/// `threshold / 2^32`, else `alias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The endpoint's own share of the column, out of 2^32.
    pub(super) threshold: u32,
    /// The endpoint that takes the rest.
    pub(super) alias: u32,
}

/// A routing method with what it precomputes.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// Lowest priority number wins. `order` lists the profile's endpoint
    /// indexes by ascending priority.
    Priority {
        /// Endpoint indexes sorted by priority.
        order: Box<[u32]>,
    },
    /// Random in proportion to weight, per query.
    Weighted {
        /// The alias table of the endpoints' weights (see [`super::weighted`]).
        alias: Box<[Column]>,
    },
    /// Up to `max_answers` random answerable endpoints.
    Multivalue {
        /// 1..=10.
        max_answers: u8,
    },
    /// Nearest to the client by great-circle distance.
    Performance {
        /// Each endpoint's location, by endpoint index.
        points: Box<[crate::geo::Point]>,
    },
    /// By the client's region: subdivision, country, group, WORLD.
    Geographic {
        /// Region code -> endpoint index.
        regions: FxHashMap<RegionCode, u32>,
    },
    /// By the client's address.
    Subnet {
        /// Non-overlapping ranges, sorted by start, IPv4 and IPv6 apart.
        ranges: Box<[SubnetRange]>,
        /// The endpoint with an empty list.
        fallback: Option<u32>,
    },
}

/// A region code packed into an integer: `WORLD`, `GEO-EU`, `IE`, `US-CA`
/// (ASCII, upper case, at most 8 bytes), so a lookup is one hash probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(pub u64);

impl RegionCode {
    /// Packs a code (case-insensitive); `None` if longer than 8 bytes.
    pub fn new(code: &str) -> Option<RegionCode> {
        let b = code.as_bytes();
        if b.is_empty() || b.len() > 8 {
            return None;
        }
        let mut v = 0u64;
        for &c in b {
            v = (v << 8) | c.to_ascii_uppercase() as u64;
        }
        Some(RegionCode(v))
    }

    /// The code as text (`GEO-EU`, `US-CA`).
    pub fn text(self) -> String {
        let bytes = self.0.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// A country code.
    pub fn country(cc: [u8; 2]) -> RegionCode {
        RegionCode(((cc[0].to_ascii_uppercase() as u64) << 8) | cc[1].to_ascii_uppercase() as u64)
    }
}

/// An address as (is IPv6, value), the key subnet ranges compare.
pub fn ip_key(ip: std::net::IpAddr) -> (bool, u128) {
    match ip {
        std::net::IpAddr::V4(v4) => (false, u32::from(v4) as u128),
        std::net::IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

/// One subnet-routing range: `[lo, hi]` of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubnetRange {
    /// IPv6 (else IPv4, stored in the low 32 bits).
    pub v6: bool,
    /// First address.
    pub lo: u128,
    /// Last address.
    pub hi: u128,
    /// Endpoint index.
    pub endpoint: u32,
}

impl Routing {
    /// The method name as written in profiles.
    pub fn name(&self) -> &'static str {
        match self {
            Routing::Priority { .. } => "priority",
            Routing::Weighted { .. } => "weighted",
            Routing::Multivalue { .. } => "multivalue",
            Routing::Performance { .. } => "performance",
            Routing::Geographic { .. } => "geographic",
            Routing::Subnet { .. } => "subnet",
        }
    }
}

/// `on_all_down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAllDown {
    /// Route as if every Degraded endpoint were Online (fail-open).
    ServeAll,
    /// Answer NOERROR with no data.
    NoData,
    /// Answer NXDOMAIN.
    NxDomain,
    /// Answer SERVFAIL.
    ServFail,
    /// Answer this endpoint (index within the profile).
    Endpoint(u32),
}

/// An endpoint of a profile.
#[derive(Debug)]
pub struct Endpoint {
    /// Its name within the profile.
    pub name: Box<str>,
    /// The profile it belongs to.
    pub profile: ProfileId,
    /// What is answered.
    pub target: Target,
    /// Priority routing: lower wins.
    pub priority: u16,
    /// Weighted routing: relative share.
    pub weight: u32,
    /// Where its status comes from.
    pub health: Health,
    /// State that outlives a reload: answer counter, runtime override.
    pub runtime: Arc<EndpointRuntime>,
    /// `failback = "manual"` (monitored endpoints): how long a recovery
    /// from Degraded is held, in seconds (0: until resumed).
    pub hold: Option<u32>,
    /// The answer record (A, AAAA or CNAME), with the profile TTL.
    pub rr: WireRr,
}

impl Endpoint {
    /// The endpoint's own status: configuration, runtime override and
    /// probe results. A nested endpoint's status also depends on its child
    /// profile: ask [`RoutingTable::status`].
    #[inline]
    pub fn status(&self) -> Status {
        if self.runtime.is_disabled() {
            return Status::Disabled;
        }
        match &self.health {
            Health::Disabled => Status::Disabled,
            Health::Unmonitored => Status::Unmonitored,
            Health::Monitored(cell) => match self.hold {
                None => cell.get(),
                Some(hold) => {
                    let (s, recovered) = cell.get_with_recovery();
                    if s == Status::Online && self.held_since(recovered, hold).is_some() {
                        Status::Held
                    } else {
                        s
                    }
                }
            },
            Health::Nested { .. } => Status::CheckingEndpoint,
        }
    }

    /// With `failback = "manual"`: the hold in force on a recovery at
    /// `recovered` (ms since the epoch), as (since, until): it began then,
    /// was not released by an `enable`/`resume` made after, and (with
    /// `failback_after`) has not run out. Until is 0 when it lasts until
    /// resumed.
    #[inline]
    fn held_since(&self, recovered: u64, hold: u32) -> Option<(u64, u64)> {
        if recovered == 0
            || self.runtime.released_ms() >= recovered
            || self.runtime.hold_from.load(Relaxed) > recovered
        {
            return None;
        }
        if hold == 0 {
            return Some((recovered, 0));
        }
        let until = recovered.div_ceil(1000) + u64::from(hold);
        (u64::from(crate::clock::unix_secs_now()) < until).then_some((recovered, until * 1000))
    }

    /// The hold on this endpoint now, if held: (since, until) in ms since
    /// the epoch, until 0 when it lasts until resumed.
    pub fn hold_now(&self) -> Option<(u64, u64)> {
        let (Some(hold), Health::Monitored(cell)) = (self.hold, &self.health) else {
            return None;
        };
        let (s, recovered) = cell.get_with_recovery();
        if s != Status::Online || self.runtime.is_disabled() {
            return None;
        }
        self.held_since(recovered, hold)
    }
}

/// What a runtime override record asks of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideState {
    /// No record.
    None,
    /// Out of answers (disable or drain), until then if timed (ms since
    /// the epoch).
    Off {
        /// `--for`: when it ends.
        until_ms: Option<u64>,
        /// A drain.
        drain: bool,
        /// When it was made (ms since the epoch).
        at_ms: u64,
    },
    /// Enabled (or resumed) at this time (ms since the epoch).
    On {
        /// When.
        at_ms: u64,
    },
}

/// Per-endpoint state kept across reloads (matched by profile and endpoint
/// name): written by the answer path (counter, last answer) and the admin
/// API (override), read by metrics and routing.
#[derive(Debug)]
pub struct EndpointRuntime {
    /// Times this endpoint was in an answer.
    pub answers: AtomicU64,
    /// Out of answers by a runtime override until this time (Unix
    /// seconds): 0 when not, [`u64::MAX`] until enabled again.
    off_until: AtomicU64,
    /// The override is a drain.
    draining: std::sync::atomic::AtomicBool,
    /// The latest `enable`/`resume` (ms since the epoch): a hold
    /// (`failback = "manual"`) that began before it is released.
    released_ms: AtomicU64,
    /// When a reload gave it `failback = "manual"` (ms since the epoch; 0:
    /// since it appeared): recoveries before then are not held.
    hold_from: AtomicU64,
    /// When this endpoint was last in an answer (Unix seconds; 0: never
    /// since it appeared or the state file was written).
    last_served: AtomicU64,
    /// When the last answer carrying it leaves resolver caches: the
    /// latest answer time plus its TTL (Unix seconds).
    served_until: AtomicU64,
    /// When the endpoint appeared or its override last changed (ms since
    /// the epoch): "since" for endpoints without probe history.
    changed_ms: AtomicU64,
    /// When the endpoint appeared (ms since the epoch).
    born_ms: u64,
}

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::clock::now_millis as now_ms;

impl Default for EndpointRuntime {
    fn default() -> Self {
        let now = now_ms();
        EndpointRuntime {
            answers: Default::default(),
            off_until: Default::default(),
            draining: Default::default(),
            released_ms: Default::default(),
            hold_from: Default::default(),
            last_served: Default::default(),
            served_until: Default::default(),
            changed_ms: AtomicU64::new(now),
            born_ms: now,
        }
    }
}

impl EndpointRuntime {
    /// True while a runtime override keeps it out of answers (a timed one
    /// ends by itself: only those read the clock).
    #[inline]
    pub fn is_disabled(&self) -> bool {
        match self.off_until.load(Relaxed) {
            0 => false,
            u64::MAX => true,
            until => u64::from(crate::clock::unix_secs_now()) < until,
        }
    }

    /// Records a change of its status made at runtime that the override
    /// state does not show (a resume releasing a hold), for `ttl_degraded`.
    pub fn touch(&self) {
        self.changed_ms.store(now_ms(), Relaxed);
    }

    /// The override in force, as (out until, draining): to tell a change
    /// from a repeat.
    pub fn override_now(&self) -> (u64, bool) {
        (self.off_until.load(Relaxed), self.draining.load(Relaxed))
    }

    /// True while a drain keeps it out of answers.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed) && self.is_disabled()
    }

    /// Makes the runtime state follow the winning override record
    /// (`crate::overrides::state` of it).
    pub fn apply(&self, state: OverrideState) {
        let (until, drain, at) = match state {
            OverrideState::Off {
                until_ms,
                drain,
                at_ms,
            } => (
                until_ms.map_or(u64::MAX, |ms| ms.div_ceil(1000).clamp(1, u64::MAX - 1)),
                drain,
                Some(at_ms),
            ),
            OverrideState::None | OverrideState::On { .. } => (0, false, None),
        };
        if let OverrideState::On { at_ms } = state {
            self.released_ms.fetch_max(at_ms, Relaxed);
        }
        self.draining.store(drain, Relaxed);
        if self.off_until.swap(until, Relaxed) != until {
            // When the override was made (also after a restart), never
            // later than now (a clock ahead elsewhere).
            let now = now_ms();
            self.changed_ms
                .store(at.map_or(now, |a| a.min(now)), Relaxed);
        }
    }

    /// When its runtime override last changed or ran out (Unix seconds),
    /// 0 if it has not since the endpoint appeared.
    #[inline]
    pub fn changed_secs(&self) -> u32 {
        let ms = self.changed_ms.load(Relaxed);
        let changed = if ms == self.born_ms {
            0
        } else {
            (ms / 1000) as u32
        };
        match self.off_until.load(Relaxed) {
            0 | u64::MAX => changed,
            until => {
                let until = until.min(u64::from(u32::MAX)) as u32;
                if until <= crate::clock::unix_secs_now() {
                    changed.max(until)
                } else {
                    changed
                }
            }
        }
    }

    /// When the endpoint appeared or its runtime override last changed.
    pub fn changed_at(&self) -> std::time::SystemTime {
        crate::clock::from_unix_millis(self.changed_ms.load(Relaxed))
    }

    /// Holds (`failback = "manual"`) only recoveries from `ms` on: a
    /// reload turned manual failback on then.
    pub fn hold_from(&self, ms: u64) {
        self.hold_from.store(ms, Relaxed);
    }

    /// The latest `enable` or `resume` (ms since the epoch; 0: none).
    #[inline]
    pub fn released_ms(&self) -> u64 {
        self.released_ms.load(Relaxed)
    }

    /// Counts one answer carrying it, sent at `now` (Unix seconds) with
    /// `ttl`: the answer path's only writes, and the second only once a
    /// second.
    #[inline]
    pub fn answered(&self, now: u32, ttl: u32) {
        self.answers.fetch_add(1, Relaxed);
        let now = u64::from(now);
        if self.last_served.load(Relaxed) != now {
            self.last_served.store(now, Relaxed);
        }
        // `now` is the whole second the answer went out in: it may leave a
        // cache up to a second after `now + ttl`.
        let until = now + u64::from(ttl) + 1;
        if self.served_until.load(Relaxed) < until {
            self.served_until.fetch_max(until, Relaxed);
        }
    }

    /// When it was last in an answer and when that answer leaves resolver
    /// caches (Unix seconds; 0: not since it appeared).
    pub fn served(&self) -> (u64, u64) {
        (
            self.last_served.load(Relaxed),
            self.served_until.load(Relaxed),
        )
    }

    /// Restores what the state file kept of its last answer.
    pub fn restore_served(&self, last: u64, until: u64) {
        self.last_served.fetch_max(last, Relaxed);
        self.served_until.fetch_max(until, Relaxed);
    }
}

/// Deepest nesting of profiles.
pub const MAX_NESTING: usize = 10;

impl RoutingTable {
    /// An endpoint's status, rolling nested endpoints up from their child
    /// profile: `Online` if at least `min_child_endpoints` child endpoints
    /// are Online (or Unmonitored); else `CheckingEndpoint` if Online and
    /// Checking together reach it; else `Degraded`. A disabled or inactive
    /// child makes the nested endpoint `Stopped`.
    pub fn status(&self, ep: &Endpoint) -> Status {
        self.status_at(ep, 0)
    }

    /// The status shown for an endpoint of `p` (status page, API,
    /// metrics): [`Status::Inactive`] when the profile is disabled, else
    /// [`RoutingTable::status`].
    pub fn shown_status(&self, p: &Profile, ep: &Endpoint) -> Status {
        if p.enabled {
            self.status(ep)
        } else {
            Status::Inactive
        }
    }

    fn status_at(&self, ep: &Endpoint, depth: usize) -> Status {
        let own = ep.status();
        let Health::Nested { child, min } = &ep.health else {
            return own;
        };
        if own == Status::Disabled {
            return own;
        }
        let Some(p) = self.profiles.get(*child as usize) else {
            return Status::Stopped;
        };
        if !p.enabled || depth >= MAX_NESTING {
            return Status::Stopped;
        }
        let (mut online, mut checking, mut eligible) = (0u32, 0u32, 0u32);
        for c in self.endpoints_of(p) {
            let s = self.status_at(c, depth + 1);
            match s {
                Status::Online | Status::Unmonitored => online += 1,
                Status::CheckingEndpoint => checking += 1,
                _ => {}
            }
            eligible += u32::from(s.is_eligible());
        }
        if eligible == 0 {
            Status::Stopped
        } else if online >= *min {
            Status::Online
        } else if online + checking >= *min {
            Status::CheckingEndpoint
        } else {
            Status::Degraded
        }
    }

    /// A profile's status: `Disabled` when `enabled = false`; `Inactive` when
    /// no endpoint can be answered; `Degraded` if any endpoint is Degraded;
    /// `Online` if any is Online and none Degraded; else `CheckingEndpoints`.
    pub fn profile_status(&self, p: &Profile) -> &'static str {
        if !p.enabled {
            return "Disabled";
        }
        let statuses = self.endpoints_of(p).iter().map(|e| self.status(e));
        let (mut any_eligible, mut degraded, mut online) = (false, false, false);
        for s in statuses {
            any_eligible |= s.is_eligible();
            degraded |= s == Status::Degraded;
            // A held endpoint is healthy (Online, held out by manual
            // failback), as `serving` counts it.
            online |= matches!(s, Status::Online | Status::Unmonitored | Status::Held);
        }
        if !any_eligible {
            "Inactive"
        } else if degraded {
            "Degraded"
        } else if online {
            "Online"
        } else {
            "CheckingEndpoints"
        }
    }
}

/// What is answered for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An A record.
    V4(Ipv4Addr),
    /// An AAAA record.
    V6(Ipv6Addr),
    /// A CNAME.
    Host(DomainName),
    /// The answer of another profile (a nested endpoint).
    Nested(ProfileId),
}

impl Target {
    /// True when the target is an address usable for `family`.
    #[inline]
    pub fn matches(&self, family: Family) -> bool {
        matches!(
            (self, family),
            (Target::V4(_), Family::V4 | Family::Any)
                | (Target::V6(_), Family::V6 | Family::Any)
                | (Target::Host(_), Family::Any)
        )
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::V4(ip) => ip.fmt(f),
            Target::V6(ip) => ip.fmt(f),
            Target::Host(name) => name.fmt(f),
            Target::Nested(p) => write!(f, "profile #{p}"),
        }
    }
}

/// The address family a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A queries.
    V4,
    /// AAAA queries.
    V6,
    /// ANY and everything else.
    Any,
}

impl Family {
    /// The family a query type asks for (A, AAAA, anything else).
    #[inline]
    pub fn of_qtype(qtype: u16) -> Family {
        match qtype {
            1 => Family::V4,
            28 => Family::V6,
            _ => Family::Any,
        }
    }

    /// [`Family::of_qtype`] for a type's name (`A`, `aaaa`).
    pub fn of_type_name(name: &str) -> Family {
        match name.to_ascii_uppercase().as_str() {
            "A" => Family::V4,
            "AAAA" => Family::V6,
            _ => Family::Any,
        }
    }
}

/// Where an endpoint's status comes from.
#[derive(Debug, Clone)]
pub enum Health {
    /// `enabled = false`.
    Disabled,
    /// `always_serve = true`, or the profile has no `[monitor]`.
    Unmonitored,
    /// Probed; the prober writes the cell.
    Monitored(Arc<HealthCell>),
    /// Rolled up from a child profile.
    Nested {
        /// The child profile.
        child: ProfileId,
        /// `min_child_endpoints`.
        min: u32,
    },
}
