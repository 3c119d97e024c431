//! The served snapshot: one immutable value holding every zone, name,
//! record, profile and endpoint of the running configuration, with records
//! pre-encoded, the zones' signers and the cookie secrets.
//!
//! Files -> compile -> snapshot: [`crate::config`] builds it, a reload
//! swaps it in whole, and the DNS workers read one snapshot per query.
//! Everything is addressed by dense ids fixed at load time, so the answer
//! path follows indexes, never strings. What is decided over it (an
//! endpoint's effective status, which endpoints answer) lives in
//! [`crate::routing`].

mod endpoint;
mod key;
mod profile;
pub mod shed;

pub use endpoint::*;
pub use key::{EndpointKey, normalise_profile};
pub use profile::*;

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::proto::name::{DomainName, is_suffix};
use crate::proto::rr::{TypeBitmap, WireRr};

/// Index into [`Snapshot::zones`].
pub type ZoneId = u32;
/// Index into [`Snapshot::nodes`].
pub type NodeId = u32;
/// Index into [`Snapshot::profiles`].
pub type ProfileId = u32;
/// Index into [`Snapshot::endpoints`].
pub type EndpointId = u32;

/// Everything the DNS path needs, compiled from the configuration.
#[derive(Debug, Default)]
pub struct Snapshot {
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
    /// The wildcard `*.<rum.zone>` that answers real-user-measurement
    /// token names (`[rum]`): its lookups are recorded
    /// ([`crate::sightings`]).
    pub rum_wildcard: Option<NodeId>,
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

impl Snapshot {
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
    /// referral, a wildcard and NXDOMAIN (RFC 4592 §3.3.1). Always
    /// inlined into the answer path, so its hash probes are too: out of
    /// line (as the code-generation units fell once this file moved), they
    /// were calls: 2,066 instead of 2,025 instructions per NXDOMAIN answer
    /// (`benches/instructions.py`).
    #[inline(always)]
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
    pub fn endpoint_by_key(&self, key: &EndpointKey) -> Option<&Endpoint> {
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
