//! Response rate limiting over UDP, as BIND and Knot define it: responses
//! per second per client network, so Switchyard cannot be used to flood a
//! spoofed victim with answers, and cannot ping-pong with a service that
//! answers anything.
//!
//! Responses are counted per second in buckets keyed by the client's
//! network (a /24 or /56 by default) and the kind of response: positive
//! answers also by query name and type (a resolver asking many names is not
//! limited for asking them), NXDOMAIN and errors per network alone. A
//! response within its bucket's rate is then counted in its network's
//! total (`total_per_second`, BIND's `all-per-second`), which caps what a
//! network gets whatever the names it rotates through. Past a rate a
//! response is dropped, except every `slip`-th one, which is sent
//! truncated (TC=1, no records) so a real client behind a victim's address
//! retries over TCP, which proves its address. Errors never slip: dropping
//! them is what stops a reflection loop within a few packets.
//!
//! Clients that present a valid DNS cookie and clients over TCP are never
//! limited; exempt networks only for answers (the caller decides).
//!
//! The counts live in a count-min sketch ([`crate::sketch`]): two rows of counters, each
//! bucket counted in one counter per row (chosen by a seeded hash), its
//! count read as the smallest of them. Memory is fixed (`table_size`
//! counters of 8 bytes) whatever the number of clients, and nothing is ever
//! evicted: a flood from random spoofed addresses can only make counts
//! *higher* than they are (a collision adds, it never subtracts), so it can
//! never free a limited client from its limit; the worst it can do is limit
//! someone early, and a limited real client still gets truncated replies
//! (and TCP, and cookies) to fall back on.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sketch::{Sketch, mix};
use std::time::Instant;

/// What kind of response is being limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// NOERROR with records: counted per name and type.
    Response = 0,
    /// NXDOMAIN: counted per network.
    NxDomain = 1,
    /// FORMERR, SERVFAIL, NOTIMP, REFUSED, BADVERS and the rest: counted
    /// per network.
    Error = 2,
    /// NOERROR without records: counted per name, whatever the type (a
    /// type per query would otherwise get a bucket per query).
    NoData = 3,
}

impl Class {
    /// Every class, in counter order.
    pub const ALL: [Class; 4] = [
        Class::Response,
        Class::NxDomain,
        Class::Error,
        Class::NoData,
    ];

    /// The class of a response: its code and how many answer records.
    pub fn of(rcode: u16, answers: u16) -> Class {
        match rcode {
            0 if answers > 0 => Class::Response,
            0 => Class::NoData,
            3 => Class::NxDomain,
            _ => Class::Error,
        }
    }

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Response => "responses",
            Class::NxDomain => "nxdomains",
            Class::Error => "errors",
            Class::NoData => "nodata",
        }
    }
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Over the rate: drop it.
    Drop,
    /// Over the rate: send a truncated reply instead (TC=1, or BADCOOKIE
    /// to a client that sent a cookie).
    Slip,
}

/// The limits, from `[dns.rate_limit]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Positive responses per second per network, name and type.
    pub responses_per_second: u32,
    /// NXDOMAIN responses per second per network.
    pub nxdomains_per_second: u32,
    /// Error responses per second per network.
    pub errors_per_second: u32,
    /// Responses per second per network, of every kind together (0: no
    /// total).
    pub total_per_second: u32,
    /// Every `slip`-th limited response is sent truncated (0: never).
    pub slip: u32,
    /// IPv4 network prefix of a client.
    pub ipv4_prefix: u8,
    /// IPv6 network prefix of a client.
    pub ipv6_prefix: u8,
    /// Networks never limited.
    pub exempt: Vec<ipnet::IpNet>,
    /// Counters (8 bytes each).
    pub table_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            responses_per_second: 100,
            nxdomains_per_second: 20,
            errors_per_second: 10,
            total_per_second: DEFAULT_TOTAL_PER_SECOND,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                    std::net::Ipv4Addr::new(127, 0, 0, 0),
                    8,
                )),
                ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                    std::net::Ipv6Addr::LOCALHOST,
                    128,
                )),
            ],
            table_size: 65_536,
        }
    }
}

/// The default per-network total is this many times `responses_per_second`.
pub const TOTAL_PER_RATE: u32 = 10;

/// The default per-network total: ten times the per-name rate. A /24 of
/// resolvers (a resolver farm behind one network, a public resolver's
/// site) asks an authoritative server for each name at most once per TTL
/// per resolver; 1,000 answers a second is, for instance, 300 names with a
/// 30 s TTL refreshed by 100 resolvers at once. Reflection through one
/// network is capped at 1,000 answers a second whatever the zone's size.
pub const DEFAULT_TOTAL_PER_SECOND: u32 = 100 * TOTAL_PER_RATE;

/// The limiter: shared by every UDP worker, lock-free.
#[derive(Debug)]
pub struct RateLimiter {
    config: Config,
    /// The counts.
    sketch: Sketch,
    start: Instant,
    seed: u64,
    /// Limited responses by class: `[class][0: dropped, 1: slipped]`;
    /// the last row: responses within their class's rate but over the
    /// network's total.
    limited: [[AtomicU64; 2]; 5],
}

impl RateLimiter {
    /// A limiter with a fixed table of `config.table_size` entries.
    pub fn new(config: Config) -> RateLimiter {
        RateLimiter {
            sketch: Sketch::new(config.table_size),
            config,
            start: Instant::now(),
            seed: fastrand::u64(..),
            limited: Default::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Memory held by the table, in bytes (fixed at creation).
    pub fn table_bytes(&self) -> usize {
        self.sketch.bytes()
    }

    /// Seconds since the limiter started: read once per batch of queries.
    #[inline]
    pub fn now(&self) -> u32 {
        self.start.elapsed().as_secs() as u32
    }

    /// True when `client` is never limited.
    #[inline]
    pub fn exempt(&self, client: IpAddr) -> bool {
        let ip = client.to_canonical();
        self.config.exempt.iter().any(|n| n.contains(&ip))
    }

    /// Limited responses so far: (dropped, slipped) for `class`.
    pub fn limited(&self, class: Class) -> (u64, u64) {
        let c = &self.limited[class as usize];
        (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed))
    }

    /// Responses within their class's rate but over their network's total
    /// so far: (dropped, slipped).
    pub fn limited_by_total(&self) -> (u64, u64) {
        let c = &self.limited[TOTAL_ROW];
        (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed))
    }

    /// Counts one response of `class` to `client` (`name_hash`: the query
    /// name's, for the buckets of answers and NODATA; `rtype`: the type the
    /// answer's first record has, for answers) at second `now`; `slips` is
    /// the caller's running count of limited responses.
    pub fn check(
        &self,
        client: IpAddr,
        class: Class,
        name_hash: u64,
        rtype: u16,
        now: u32,
        slips: &mut u32,
    ) -> Verdict {
        let rate = match class {
            Class::Response | Class::NoData => self.config.responses_per_second,
            Class::NxDomain => self.config.nxdomains_per_second,
            Class::Error => self.config.errors_per_second,
        };
        let count = self
            .sketch
            .count(self.key(client, class as u8, name_hash, rtype), now);
        let row = if count > rate {
            class as usize
        } else if self.config.total_per_second == 0
            || self.sketch.count(self.key(client, TOTAL, 0, 0), now) <= self.config.total_per_second
        {
            return Verdict::Send;
        } else {
            TOTAL_ROW
        };
        *slips = slips.wrapping_add(1);
        let slip = class != Class::Error
            && self.config.slip > 0
            && (*slips).is_multiple_of(self.config.slip);
        self.limited[row][usize::from(slip)].fetch_add(1, Ordering::Relaxed);
        if slip { Verdict::Slip } else { Verdict::Drop }
    }

    /// The bucket key of `class` (or [`TOTAL`]) for `client`'s network.
    fn key(&self, client: IpAddr, class: u8, name_hash: u64, rtype: u16) -> u64 {
        let (net, family) = match client.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = self.config.ipv4_prefix.min(32);
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                (u128::from(u32::from(v4) & mask), 4u64)
            }
            IpAddr::V6(v6) => {
                let bits = self.config.ipv6_prefix.min(128);
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                (u128::from(v6) & mask, 6u64)
            }
        };
        let name = match class {
            c if c == Class::Response as u8 => name_hash ^ mix(u64::from(rtype)),
            c if c == Class::NoData as u8 => name_hash,
            _ => 0,
        };
        let high = mix((net >> 64) as u64 ^ u64::from(class) << 56 ^ family << 48);
        mix(self.seed ^ mix(net as u64 ^ high) ^ name)
    }
}

/// The bucket tag of a network's total (after the classes' tags).
const TOTAL: u8 = 4;
/// The row of [`RateLimiter::limited`] counting responses over the total.
const TOTAL_ROW: usize = 4;

/// The hash of a query name (lowercase wire form), for the buckets of
/// answers and NODATA.
#[inline]
pub fn name_hash(lower_name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(lower_name);
    h.finish()
}

/// Source ports of services that answer anything: a reply there could
/// start a loop with (or be reflected by) echo, discard, systat, daytime,
/// quote of the day, chargen, time, TFTP, portmap, NTP, NetBIOS, SNMP,
/// CLDAP, RIP, MS-SQL monitor, SSDP, Apple Remote Desktop, WS-Discovery,
/// mDNS, CoAP, Ubiquiti discovery and memcached. Queries from these ports
/// are dropped unanswered.
pub const REFUSED_SOURCE_PORTS: [u16; 25] = [
    0, 7, 9, 11, 13, 17, 19, 37, 69, 111, 123, 137, 138, 161, 162, 389, 520, 1434, 1900, 3283,
    3702, 5353, 5683, 10001, 11211,
];

/// True for a source port in [`REFUSED_SOURCE_PORTS`].
#[inline]
pub fn refused_source_port(port: u16) -> bool {
    matches!(
        port,
        0 | 7
            | 9
            | 11
            | 13
            | 17
            | 19
            | 37
            | 69
            | 111
            | 123
            | 137
            | 138
            | 161
            | 162
            | 389
            | 520
            | 1434
            | 1900
            | 3283
            | 3702
            | 5353
            | 5683
            | 10001
            | 11211
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(Config {
            responses_per_second: rate,
            nxdomains_per_second: rate,
            errors_per_second: rate,
            slip,
            exempt: vec![],
            table_size: 1024,
            ..Config::default()
        })
    }

    #[test]
    fn the_port_list_and_the_predicate_agree() {
        for p in 0..=u16::MAX {
            assert_eq!(
                refused_source_port(p),
                REFUSED_SOURCE_PORTS.contains(&p),
                "{p}"
            );
        }
    }

    #[test]
    fn responses_past_the_rate_are_dropped_or_slipped() {
        let l = limiter(5, 2);
        let mut slips = 0;
        let v: Vec<Verdict> = (0..9)
            .map(|_| l.check(ip("192.0.2.1"), Class::Response, 7, 1, 100, &mut slips))
            .collect();
        use Verdict::*;
        assert_eq!(v, [Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip]);
        // The same /24 shares the bucket; another name does not.
        assert_eq!(
            l.check(ip("192.0.2.200"), Class::Response, 7, 1, 100, &mut slips),
            Drop
        );
        assert_eq!(
            l.check(ip("192.0.2.200"), Class::Response, 8, 1, 100, &mut slips),
            Send
        );
        // Another network, or the next second, starts afresh.
        assert_eq!(
            l.check(ip("192.0.3.1"), Class::Response, 7, 1, 100, &mut slips),
            Send
        );
        assert_eq!(
            l.check(ip("192.0.2.1"), Class::Response, 7, 1, 101, &mut slips),
            Send
        );
        assert_eq!(l.limited(Class::Response), (3, 2));
    }

    #[test]
    fn nodata_is_counted_per_name_whatever_the_type() {
        let l = limiter(3, 0);
        let mut slips = 0;
        let sent = (0..20u16)
            .filter(|&t| {
                l.check(ip("192.0.2.1"), Class::NoData, 7, 1000 + t, 5, &mut slips) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 3);
        // Answers are per type.
        let sent = (0..20u16)
            .filter(|&t| {
                l.check(ip("192.0.2.1"), Class::Response, 7, 1000 + t, 5, &mut slips)
                    == Verdict::Send
            })
            .count();
        assert_eq!(sent, 20);
        assert_eq!(Class::of(0, 0), Class::NoData);
        assert_eq!(Class::of(0, 1), Class::Response);
    }

    #[test]
    fn errors_never_slip_and_ignore_the_name() {
        let l = limiter(2, 1);
        let mut slips = 0;
        let v: Vec<Verdict> = (0..5u64)
            .map(|i| l.check(ip("2001:db8::1"), Class::Error, i, 1, 9, &mut slips))
            .collect();
        use Verdict::*;
        assert_eq!(v, [Send, Send, Drop, Drop, Drop]);
        // Same /56.
        assert_eq!(
            l.check(ip("2001:db8:0:ff::9"), Class::Error, 0, 1, 9, &mut slips),
            Drop
        );
        assert_eq!(
            l.check(ip("2001:db8:1::9"), Class::Error, 0, 1, 9, &mut slips),
            Send
        );
    }

    #[test]
    fn a_flood_from_random_addresses_never_frees_a_limited_client() {
        let l = limiter(50, 0);
        let mut slips = 0;
        let mut rng = fastrand::Rng::with_seed(1);
        let victim = ip("198.51.100.7");
        let mut victim_sent = 0;
        for second in 0..5u32 {
            for i in 0..200_000 {
                let spoofed = IpAddr::from(rng.u32(..).to_be_bytes());
                l.check(spoofed, Class::Response, 1, 1, second, &mut slips);
                if i % 1000 == 0
                    && l.check(victim, Class::Response, 1, 1, second, &mut slips) == Verdict::Send
                {
                    victim_sent += 1;
                }
            }
        }
        // 200 victim responses a second asked for, 50 allowed: never more
        // (collisions can only make it fewer).
        assert!(victim_sent <= 5 * 50, "{victim_sent}");
        assert!(
            victim_sent >= 5 * 20,
            "{victim_sent}: the flood limited the victim far too early"
        );
        assert_eq!(l.table_bytes(), 1024 * 8);
    }

    #[test]
    fn a_network_rotating_names_is_held_to_its_total() {
        let l = RateLimiter::new(Config {
            responses_per_second: 100,
            total_per_second: 200,
            slip: 2,
            exempt: vec![],
            table_size: 4096,
            ..Config::default()
        });
        let mut slips = 0;
        // 16 names, 100 each: every one within its own rate.
        let sent = |second: u32, slips: &mut u32| {
            (0..1600u64)
                .filter(|i| {
                    l.check(ip("192.0.2.1"), Class::Response, i % 16, 1, second, slips)
                        == Verdict::Send
                })
                .count()
        };
        assert_eq!(sent(7, &mut slips), 200);
        let (dropped, slipped) = l.limited_by_total();
        assert_eq!((dropped, slipped), (700, 700));
        assert_eq!(l.limited(Class::Response), (0, 0), "no name over its rate");
        // Another network has its own total; the next second starts afresh.
        assert_eq!(
            l.check(ip("192.0.3.1"), Class::Response, 1, 1, 7, &mut slips),
            Verdict::Send
        );
        assert_eq!(sent(8, &mut slips), 200);
        // A response over its own rate is not counted in the total.
        let l = RateLimiter::new(Config {
            responses_per_second: 1,
            total_per_second: 3,
            exempt: vec![],
            table_size: 4096,
            ..Config::default()
        });
        for _ in 0..10 {
            l.check(ip("192.0.2.1"), Class::Response, 1, 1, 1, &mut slips);
        }
        let others = (2..5u64)
            .filter(|&n| {
                l.check(ip("192.0.2.1"), Class::Response, n, 1, 1, &mut slips) == Verdict::Send
            })
            .count();
        assert_eq!(others, 2, "1 of name 1, then 2 others: the total of 3");
        // 0: no total.
        let l = RateLimiter::new(Config {
            total_per_second: 0,
            exempt: vec![],
            ..Config::default()
        });
        assert_eq!(sent_with(&l, 5000), 5000);
    }

    /// Responses sent to one network asking `n` names in one second.
    fn sent_with(l: &RateLimiter, n: u64) -> usize {
        let mut slips = 0;
        (0..n)
            .filter(|&i| {
                l.check(ip("192.0.2.1"), Class::Response, i, 1, 3, &mut slips) == Verdict::Send
            })
            .count()
    }

    #[test]
    fn exempt_networks() {
        let l = RateLimiter::new(Config::default());
        assert!(
            l.exempt(ip("127.0.0.9")) && l.exempt(ip("::1")) && l.exempt(ip("::ffff:127.0.0.1"))
        );
        assert!(!l.exempt(ip("192.0.2.1")));
    }
}
