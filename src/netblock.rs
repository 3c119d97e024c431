//! Client networks at the precision Switchyard keeps about clients: an
//! IPv4 /24 or an IPv6 /56, never finer (a leaf: the latency table, real
//! user measurements and the Traffic View key on it).
//!
//! A /24 and a /56 are what RFC 7871 §11.1 recommends resolvers send as
//! ECS source prefixes, so one network is the unit an ECS answer can be
//! scoped to, and no record names a single host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Prefix length of an IPv4 client network.
pub const V4_BITS: u8 = 24;
/// Prefix length of an IPv6 client network.
pub const V6_BITS: u8 = 56;

/// A client network: an IPv4 /24 or an IPv6 /56. Plain data (8 bytes),
/// `Copy`, hashable; built without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The top 24 bits of an IPv4 address.
    V4(u32),
    /// The top 56 bits of an IPv6 address.
    V6(u64),
}

impl Network {
    /// The network holding `addr` (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(addr: IpAddr) -> Network {
        match addr.to_canonical() {
            IpAddr::V4(v4) => Network::V4(u32::from(v4) >> (32 - V4_BITS)),
            IpAddr::V6(v6) => Network::V6((u128::from(v6) >> (128 - V6_BITS)) as u64),
        }
    }

    /// The network of an ECS address given to `bits` bits, when that
    /// names one network: `None` when the source prefix is shorter than
    /// /24 (/56), since the address then covers many networks.
    pub fn of_prefix(addr: IpAddr, bits: u8) -> Option<Network> {
        let addr = addr.to_canonical();
        let need = match addr {
            IpAddr::V4(_) => V4_BITS,
            // An IPv4-mapped ECS address counts its bits in IPv6 terms.
            IpAddr::V6(_) => V6_BITS,
        };
        (bits >= need).then(|| Network::of(addr))
    }

    /// The prefix length: 24 or 56.
    pub fn prefix(self) -> u8 {
        match self {
            Network::V4(_) => V4_BITS,
            Network::V6(_) => V6_BITS,
        }
    }

    /// The network's first address.
    pub fn addr(self) -> IpAddr {
        match self {
            Network::V4(n) => IpAddr::V4(Ipv4Addr::from(n << (32 - V4_BITS))),
            Network::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n) << (128 - V6_BITS))),
        }
    }

    /// Whether `addr` is in this network.
    pub fn contains(self, addr: IpAddr) -> bool {
        Network::of(addr) == self
    }

    /// A 64-bit key, distinct for every network (IPv6 networks never
    /// collide with IPv4 ones): for hashing into fixed tables.
    pub fn key(self) -> u64 {
        match self {
            Network::V4(n) => u64::from(n) | 1 << 63,
            // 56 bits: the top byte is free.
            Network::V6(n) => n,
        }
    }
}

impl fmt::Display for Network {
    /// `192.0.2.0/24`, `2001:db8:aa00::/56`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix())
    }
}

/// Why a string is not a client network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not an address or `address/prefix`.
    #[error("{0:?} is not an IP network (expected e.g. 192.0.2.0/24 or 2001:db8::/56)")]
    Syntax(String),
    /// A prefix other than /24 (IPv4) or /56 (IPv6).
    #[error("{0:?}: client networks are IPv4 /24 or IPv6 /56 (no finer, no coarser)")]
    Prefix(String),
    /// Host bits set below the prefix.
    #[error("{0:?} has bits set below its prefix (did you mean {1}?)")]
    HostBits(String, Network),
}

impl FromStr for Network {
    type Err = ParseError;

    /// Parses `192.0.2.0/24` or `2001:db8:aa00::/56`: exactly those
    /// prefixes, with no host bits set.
    fn from_str(s: &str) -> Result<Network, ParseError> {
        let syntax = || ParseError::Syntax(s.to_string());
        let (addr, bits) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        let bits: u8 = bits.parse().map_err(|_| syntax())?;
        let want = if addr.is_ipv4() { V4_BITS } else { V6_BITS };
        if bits != want {
            return Err(ParseError::Prefix(s.to_string()));
        }
        let net = Network::of(addr);
        if net.addr() != addr {
            return Err(ParseError::HostBits(s.to_string(), net));
        }
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_are_24_and_56() {
        let v4 = Network::of(ip("192.0.2.77"));
        assert_eq!(v4.to_string(), "192.0.2.0/24");
        assert!(v4.contains(ip("192.0.2.1")));
        assert!(!v4.contains(ip("192.0.3.1")));
        let v6 = Network::of(ip("2001:db8:aa:bbcc::1"));
        assert_eq!(v6.to_string(), "2001:db8:aa:bb00::/56");
        assert!(v6.contains(ip("2001:db8:aa:bbff::9")));
        assert!(!v6.contains(ip("2001:db8:aa:cc00::9")));
        assert_eq!(Network::of(ip("::ffff:192.0.2.9")), v4);
        assert_ne!(Network::V4(5).key(), Network::V6(5).key());
    }

    #[test]
    fn ecs_names_a_network_only_when_precise_enough() {
        assert_eq!(
            Network::of_prefix(ip("198.51.100.0"), 24),
            Some(Network::of(ip("198.51.100.9")))
        );
        assert_eq!(
            Network::of_prefix(ip("198.51.100.0"), 32).unwrap().prefix(),
            24
        );
        assert_eq!(Network::of_prefix(ip("198.51.0.0"), 16), None);
        assert_eq!(Network::of_prefix(ip("2001:db8::"), 48), None);
        assert!(Network::of_prefix(ip("2001:db8::"), 56).is_some());
    }

    #[test]
    fn parses_exactly_what_it_prints() {
        for s in ["192.0.2.0/24", "2001:db8:aa00::/56", "0.0.0.0/24"] {
            assert_eq!(s.parse::<Network>().unwrap().to_string(), s);
        }
        assert!(matches!(
            "192.0.2.0/25".parse::<Network>(),
            Err(ParseError::Prefix(_))
        ));
        assert!(matches!(
            "192.0.2.0/16".parse::<Network>(),
            Err(ParseError::Prefix(_))
        ));
        assert!(matches!(
            "192.0.2.9/24".parse::<Network>(),
            Err(ParseError::HostBits(..))
        ));
        assert!(matches!(
            "192.0.2.0".parse::<Network>(),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            "banana/24".parse::<Network>(),
            Err(ParseError::Syntax(_))
        ));
    }
}
