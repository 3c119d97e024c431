//! A budget for new signatures: online signing makes a signature the first
//! time an RRset is answered (about 30 µs of CPU for ECDSA P-256, 100 times
//! a cached answer), so a flood of new names (random labels with DO) could
//! keep every core signing. Cached signatures never touch the budget: hot
//! answers go on at full speed whatever is being signed.
//!
//! - **The whole server** makes at most `dns.signatures_per_second` new
//!   signatures a second: a token bucket (GCRA: one atomic, the
//!   theoretical arrival time) holding one second's worth. Clients whose
//!   address is not proven (UDP without a valid DNS cookie: anyone can
//!   send those, from any address) may draw from it only while it is at
//!   least half full; clients whose address is proven (TCP, or a valid
//!   cookie) until it is empty. A flood of spoofable queries therefore
//!   never takes the signatures real resolvers need: refused over UDP,
//!   they retry over TCP, where they come first.
//! - **Each proven client** (an IPv4 address, an IPv6 /64) makes at most
//!   `dns.signatures_per_client` new signatures a second (a count-min
//!   sketch of fixed size, as rate limiting's), so one client cannot take
//!   the budget either, however it connects.
//!
//! The answer path asks [`SignBudget::allow`] only on a signature cache
//! miss, and answers what it may not sign as truncated over UDP (TC: the
//! client retries over TCP) and SERVFAIL over TCP.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::sketch::{Sketch, mix};

/// The budget's settings (`dns.signatures_per_second`,
/// `dns.signatures_per_client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// New signatures a second, the whole server (0: no budget).
    pub per_second: u32,
    /// New signatures a second per proven client (0: no limit).
    pub per_client: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            per_second: DEFAULT_PER_SECOND,
            per_client: DEFAULT_PER_CLIENT,
        }
    }
}

/// One core signs about 30,000 new RRsets a second (ECDSA P-256 29.5 µs,
/// Ed25519 31 µs, `cargo bench --bench answer`): 2,000 is 6% of one core.
/// With it, a flood of random names with DO at 50,000 q/s cost a client of
/// cached names no more than a flood of cached names at the same rate
/// (`benches/signing.sh`); with 10,000 (a third of a core) the client's
/// latency tripled on the 2-core development VM, the one answering thread
/// being busy signing. Real traffic needs far less: a hot answer is signed
/// once per half of the signature validity, and new RRsets come from new
/// names (and from the rare new combination of a multivalue answer).
pub const DEFAULT_PER_SECOND: u32 = 2_000;

/// A resolver asks for a new RRset of one zone 200 times a second only
/// when its clients ask for that many new names; one that does is taking
/// a tenth of the whole budget on its own.
pub const DEFAULT_PER_CLIENT: u32 = 200;

/// Counters of the per-client sketch (8 bytes each: 64 KiB).
const CLIENT_TABLE: usize = 8192;

/// Whom a signature is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Over UDP without a valid cookie: the address may be forged.
    Unproven,
    /// Over TCP or with a valid cookie: this address.
    Proven(IpAddr),
}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Refusal {
    /// The server's budget: for an unproven client, less than half of it
    /// was left; for a proven one, none.
    Budget = 0,
    /// The proven client is over its own rate.
    Client = 1,
}

/// The budget, shared by every answering thread; lock-free.
#[derive(Debug)]
pub struct SignBudget {
    config: Config,
    /// GCRA: when the bucket would be full again, in ns since `start`.
    tat: AtomicU64,
    /// ns per signature (1 s / `per_second`).
    interval: u64,
    start: Instant,
    clients: Sketch,
    seed: u64,
    /// Signatures refused, by [`Refusal`].
    refused: [AtomicU64; 2],
}

/// The bucket holds one second of signatures.
const BURST_NS: u64 = 1_000_000_000;

impl SignBudget {
    /// A full budget.
    pub fn new(config: Config) -> SignBudget {
        SignBudget {
            interval: BURST_NS / u64::from(config.per_second.max(1)),
            config,
            tat: AtomicU64::new(0),
            start: Instant::now(),
            clients: Sketch::new(CLIENT_TABLE),
            seed: fastrand::u64(..),
            refused: Default::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Signatures refused so far for `why`.
    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    /// May `client` have a new signature now? Counts it when it may.
    pub fn allow(&self, client: Who) -> Result<(), Refusal> {
        self.allow_at(client, self.start.elapsed().as_nanos() as u64)
    }

    /// [`SignBudget::allow`] at `now` ns after the budget was made.
    fn allow_at(&self, client: Who, now: u64) -> Result<(), Refusal> {
        let refuse = |why: Refusal| {
            self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        let room = match client {
            Who::Unproven => BURST_NS / 2,
            Who::Proven(ip) => {
                if self.config.per_client > 0 {
                    let second = (now / BURST_NS) as u32;
                    if self.clients.count(self.client_key(ip), second) > self.config.per_client {
                        return refuse(Refusal::Client);
                    }
                }
                BURST_NS
            }
        };
        if self.config.per_second == 0 {
            return Ok(());
        }
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            // Taking one: the bucket then lacks `next - now` ns of tokens.
            let next = tat.max(now) + self.interval;
            if next - now > room {
                return refuse(Refusal::Budget);
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    /// The sketch key of a proven client: its IPv4 address, or its IPv6
    /// /64 (what one host usually holds).
    fn client_key(&self, ip: IpAddr) -> u64 {
        let bits = match ip.to_canonical() {
            IpAddr::V4(v4) => u64::from(u32::from(v4)) | 4 << 60,
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64 ^ 6 << 60,
        };
        mix(self.seed ^ mix(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unproven_clients_leave_half_the_bucket_to_proven_ones() {
        let b = SignBudget::new(Config {
            per_second: 1000,
            per_client: 0,
        });
        // At one instant: unproven clients get half a second's worth.
        let unproven = (0..2000)
            .filter(|_| b.allow_at(Who::Unproven, 0).is_ok())
            .count();
        assert_eq!(unproven, 500);
        // Proven ones the rest, and then nobody.
        let proven = (0..2000)
            .filter(|_| b.allow_at(Who::Proven(ip("192.0.2.1")), 0).is_ok())
            .count();
        assert_eq!(proven, 500);
        assert_eq!(b.refused(Refusal::Budget), 1500 + 1500);
        // The bucket refills at the rate: 1 ms later, one more.
        assert!(b.allow_at(Who::Proven(ip("192.0.2.1")), 1_000_000).is_ok());
        assert!(b.allow_at(Who::Proven(ip("192.0.2.1")), 1_000_000).is_err());
        // Under a steady unproven flood, proven clients still get theirs.
        let b = SignBudget::new(Config {
            per_second: 1000,
            per_client: 0,
        });
        let (mut flood, mut real) = (0, 0);
        for ms in 0..10_000u64 {
            let now = ms * 1_000_000;
            for _ in 0..10 {
                flood += usize::from(b.allow_at(Who::Unproven, now).is_ok());
            }
            if ms % 10 == 0 {
                real += usize::from(b.allow_at(Who::Proven(ip("192.0.2.1")), now).is_ok());
            }
        }
        assert_eq!(real, 1000, "every one of 100 a second for 10 s");
        assert!(
            (8_900..=10_500).contains(&(flood + real)),
            "at most the rate (and the first half bucket): {flood} + {real}"
        );
    }

    #[test]
    fn each_proven_client_has_its_own_rate() {
        let b = SignBudget::new(Config {
            per_second: 0,
            per_client: 5,
        });
        let sent = |who: &str, second: u64| {
            (0..20)
                .filter(|_| b.allow_at(Who::Proven(ip(who)), second * BURST_NS).is_ok())
                .count()
        };
        assert_eq!(sent("192.0.2.1", 3), 5);
        assert_eq!(sent("192.0.2.2", 3), 5, "another address");
        assert_eq!(sent("2001:db8::1", 3), 5);
        assert_eq!(sent("2001:db8::2", 3), 0, "the same /64");
        assert_eq!(sent("192.0.2.1", 4), 5, "the next second");
        assert_eq!(b.refused(Refusal::Client), 15 + 15 + 15 + 20 + 15);
        // Unproven clients are not counted per client.
        assert!((0..100).all(|_| b.allow_at(Who::Unproven, 0).is_ok()));
    }
}
