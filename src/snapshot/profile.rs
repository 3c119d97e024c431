//! Profiles as compiled: the routing method with what it precomputes,
//! `on_all_down`, TTLs.

use std::ops::Range;
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::{EndpointId, NodeId};
use crate::proto::name::DomainName;

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
    /// Its endpoints in [`super::Snapshot::endpoints`].
    pub endpoints: Range<EndpointId>,
    /// Monitored profiles: the longest a failure can take to be detected,
    /// `interval × (tolerated_failures + 1) + timeout`.
    pub detection: Option<std::time::Duration>,
    /// `shed_above` and `shed_percent`: the load (thousandths) above which
    /// an endpoint sheds, and the thousandths of new traffic it sheds.
    pub shed: Option<(u32, u32)>,
}

/// One column of weighted routing's alias table (built by
/// [`crate::routing::weighted::alias_table`]): the endpoint itself with probability
/// `threshold / 2^32`, else `alias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The endpoint's own share of the column, out of 2^32.
    pub(crate) threshold: u32,
    /// The endpoint that takes the rest.
    pub(crate) alias: u32,
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
        /// The alias table of the endpoints' weights (see [`crate::routing::weighted`]).
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
