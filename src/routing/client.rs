//! Who is asking, as routing may care (a leaf: the method files read it).

use std::net::IpAddr;

use crate::geo::{self, GeoDb, Location};
use crate::latency::{From, Latency};
use crate::netblock::Network;

/// Who is asking, as far as routing may care: the ECS address (when given
/// and honoured) or the resolver's address. Client-aware methods read it
/// through this type, which records the ECS scope their decision justifies;
/// methods that never look leave the scope at 0.
///
/// Decisions use the address as precisely as it was given: an ECS address
/// to its source prefix (RFC 7871 lets the resolver choose it), the
/// resolver's own address in full. The scope is the prefix of the network
/// that decided (a GeoIP network, the aligned block of a subnet range), even
/// when that is longer than the source prefix: it tells the resolver the
/// answer holds for no wider a network (RFC 7871 §7.2.1).
pub struct Client<'a> {
    /// The address and its known prefix length.
    addr: Option<(IpAddr, u8)>,
    geo: Option<&'a GeoDb>,
    cache: &'a mut geo::Cache,
    /// A location given outright (the answer diff), not looked up.
    fixed: Option<Location>,
    /// The ECS scope prefix the decision justifies (0: not client-dependent).
    pub scope: u8,
    /// The latency table performance routing reads, and the resolver's
    /// address (the transport peer), when the answer path gives them.
    latency: Option<(&'a Latency, IpAddr)>,
    /// The client's network from ECS, when its source prefix names one
    /// (/24, /56 or longer).
    ecs_net: Option<Network>,
    /// Whether the resolver said who the client is (an ECS address with a
    /// source prefix above 0).
    ecs: bool,
}

impl<'a> Client<'a> {
    /// A client from an ECS option: `addr` known to `bits` bits. `None`
    /// means the client asked not to be used (source prefix 0).
    pub fn from_ecs(
        addr: Option<IpAddr>,
        bits: u8,
        geo: Option<&'a GeoDb>,
        cache: &'a mut geo::Cache,
    ) -> Client<'a> {
        Client {
            addr: addr.map(|a| geo::truncate(a.to_canonical(), bits)),
            geo,
            cache,
            fixed: None,
            scope: 0,
            latency: None,
            ecs_net: addr.and_then(|a| Network::of_prefix(a, bits)),
            ecs: addr.is_some() && bits > 0,
        }
    }

    /// A client known only by the resolver's address.
    pub fn from_resolver(
        addr: IpAddr,
        geo: Option<&'a GeoDb>,
        cache: &'a mut geo::Cache,
    ) -> Client<'a> {
        let addr = addr.to_canonical();
        let full = if addr.is_ipv4() { 32 } else { 128 };
        Client {
            addr: Some((addr, full)),
            geo,
            cache,
            fixed: None,
            scope: 0,
            latency: None,
            ecs_net: None,
            ecs: false,
        }
    }

    /// No client information at all.
    pub fn unknown(cache: &'a mut geo::Cache) -> Client<'a> {
        Client::from_ecs(None, 0, None, cache)
    }

    /// A client at `location` with no address: what a client there gets,
    /// without a GeoIP database (the answer diff asks this per region).
    pub fn at(location: Location, cache: &'a mut geo::Cache) -> Client<'a> {
        Client {
            fixed: Some(location),
            ..Client::unknown(cache)
        }
    }

    /// Lets performance routing read `latency`, for a query that came
    /// from `resolver`.
    pub fn with_latency(mut self, latency: &'a Latency, resolver: IpAddr) -> Client<'a> {
        self.latency = Some((latency, resolver.to_canonical()));
        self
    }

    /// The latency table, and where performance routing looks in it, in
    /// order. With ECS naming a network (a source prefix of /24, /56 or
    /// longer): that network's own rows, then the client networks seen
    /// behind it (a beacon whose token name a resolver asked with this ECS
    /// network, sent from another network: a client behind a proxy or NAT).
    /// Never the resolver's own network's mapping: a resolver that sends
    /// ECS (a public one above all) serves clients anywhere, so a client
    /// without samples of its own goes by distance; with an ECS prefix too
    /// coarse to name a network, too. Without ECS, the client networks seen
    /// behind the resolver, then the resolver's own network.
    pub fn latency_sources(&self) -> Option<(&'a Latency, [Option<From>; 3])> {
        let (latency, resolver) = self.latency?;
        if self.ecs {
            let net = self.ecs_net;
            return Some((
                latency,
                [net.map(From::Client), net.map(From::Behind), None],
            ));
        }
        let r = Network::of(resolver);
        Some((
            latency,
            [None, Some(From::Behind(r)), Some(From::Resolver(r))],
        ))
    }

    /// The address for subnet matching and its prefix length.
    pub fn address(&self) -> Option<(IpAddr, u8)> {
        self.addr
    }

    /// Where the client is, from the GeoIP database; records the scope.
    pub fn location(&mut self) -> Option<Location> {
        if self.fixed.is_some() {
            return self.fixed;
        }
        let (addr, bits) = self.addr?;
        let db = self.geo?;
        let found = self.cache.lookup(db, addr, bits);
        self.scope = self.scope.max(found.prefix);
        found.location
    }

    /// Records the scope of an address-range decision: the prefix of the
    /// largest aligned block around the address that the decision covers.
    pub fn decided_by(&mut self, prefix: u8) {
        self.scope = self.scope.max(prefix);
    }
}
