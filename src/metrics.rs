//! Counters the answer path bumps: plain relaxed atomics, indexed by
//! small integers fixed at compile time, so counting costs one add.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::dns::Transport;
use crate::dns::wire::rcode;

/// Response codes tracked individually; everything else is "OTHER".
pub const RCODES: [u16; 7] = [
    rcode::NOERROR,
    rcode::FORMERR,
    rcode::SERVFAIL,
    rcode::NXDOMAIN,
    rcode::NOTIMP,
    rcode::REFUSED,
    rcode::BADVERS,
];

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `[transport][rcode index]`; the last slot counts other codes.
    queries: [[AtomicU64; RCODES.len() + 1]; 2],
    /// The UDP receive loops' own query counters ([`Metrics::worker`]),
    /// added to `queries` when read.
    workers: Mutex<Vec<Arc<WorkerQueries>>>,
    /// Configuration reloads: `[ok, rejected]`.
    reloads: [AtomicU64; 2],
    /// State file problems (unusable at start, not saved).
    pub state_file_problems: AtomicU64,
    /// Probes not made for local reasons: shared with the prober.
    pub prober_faults: std::sync::Arc<crate::health::ProberFaults>,
    /// Re-syncs with the cluster after this node stalled.
    pub cluster_resyncs: AtomicU64,
    /// Real user measurements (`[rum]`): bumped by the beacon handler.
    pub rum: RumCounters,
}

/// What became of a beacon (`switchyard_rum_beacons_total{result}`): a
/// closed set, so the label is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beacon {
    /// Its measurements were recorded.
    Stored,
    /// No `[[rum.keys]]` has its key.
    UnknownKey,
    /// Its token was not made by this cluster, for this key and network.
    BadToken,
    /// Its token is past `rum.token_lifetime`.
    Expired,
    /// Its token was used before.
    Replayed,
    /// Its body is over `rum.max_body`.
    TooLarge,
    /// Its body is not the beacon's JSON.
    Malformed,
    /// A time that is no round trip (zero, negative, over 60 s, not a
    /// number).
    BadTiming,
    /// An endpoint its key does not measure.
    UnknownEndpoint,
    /// Its network sent more than `rum.beacons_per_second`.
    RateLimited,
    /// Refused for want of room (the table of used tokens is full, or the
    /// latency table refused a sample).
    Refused,
}

impl Beacon {
    /// Every result, in label order.
    pub const ALL: [Beacon; 11] = [
        Beacon::Stored,
        Beacon::UnknownKey,
        Beacon::BadToken,
        Beacon::Expired,
        Beacon::Replayed,
        Beacon::TooLarge,
        Beacon::Malformed,
        Beacon::BadTiming,
        Beacon::UnknownEndpoint,
        Beacon::RateLimited,
        Beacon::Refused,
    ];

    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Beacon::Stored => "stored",
            Beacon::UnknownKey => "unknown_key",
            Beacon::BadToken => "bad_token",
            Beacon::Expired => "expired",
            Beacon::Replayed => "replayed",
            Beacon::TooLarge => "too_large",
            Beacon::Malformed => "malformed",
            Beacon::BadTiming => "bad_timing",
            Beacon::UnknownEndpoint => "unknown_endpoint",
            Beacon::RateLimited => "rate_limited",
            Beacon::Refused => "refused",
        }
    }
}

/// Counters of real user measurements.
#[derive(Debug, Default)]
pub struct RumCounters {
    beacons: [AtomicU64; Beacon::ALL.len()],
    /// Tokens issued (`GET /rum/config`).
    pub tokens: AtomicU64,
    /// Measurements recorded (one per endpoint of a stored beacon).
    pub samples: AtomicU64,
    /// Beacons tied to the resolver that looked their token up.
    pub joined: AtomicU64,
    /// Beacons whose token lookup was never seen (no resolver asked this
    /// cluster within the token's lifetime, or the record was lost).
    pub unjoined: AtomicU64,
}

impl RumCounters {
    /// Counts a beacon's result.
    pub fn beacon(&self, result: Beacon) {
        self.beacons[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Beacons counted with `result`.
    pub fn beacons(&self, result: Beacon) -> u64 {
        self.beacons[result as usize].load(Ordering::Relaxed)
    }
}

/// The index of `code` among the query counters (the last counts codes
/// outside [`RCODES`]).
#[inline]
fn rcode_index(code: u16) -> usize {
    RCODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(RCODES.len())
}

/// One UDP receive loop's answered queries by rcode: written by that loop
/// alone, so counting is a load and a store (no locked instruction, no
/// cache line shared with another writer: the block is one cache line of
/// its own), and read by [`Metrics::queries`], which adds every loop's
/// block to the shared counters. Exact: each counter has one writer.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerQueries {
    counts: [AtomicU64; RCODES.len() + 1],
}

impl WorkerQueries {
    /// Counts one answered query (only ever from the loop that owns it).
    #[inline]
    pub fn query(&self, code: u16) {
        let c = &self.counts[rcode_index(code)];
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

impl Metrics {
    /// The counter for `transport` and `code` (the last slot counts codes
    /// outside [`RCODES`]).
    #[inline]
    fn slot(&self, transport: Transport, code: u16) -> &AtomicU64 {
        let t = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        &self.queries[t][rcode_index(code)]
    }

    /// Counts one answered query.
    #[inline]
    pub fn query(&self, transport: Transport, code: u16) {
        self.slot(transport, code).fetch_add(1, Ordering::Relaxed);
    }

    /// A UDP receive loop's own counters, for it alone to count its
    /// queries in ([`WorkerQueries::query`]); they stay part of every
    /// total for the life of the process.
    pub fn worker(&self) -> Arc<WorkerQueries> {
        let w = Arc::new(WorkerQueries::default());
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(w.clone());
        w
    }

    /// Queries answered over `transport` with `code`.
    pub fn queries(&self, transport: Transport, code: u16) -> u64 {
        let shared = self.slot(transport, code).load(Ordering::Relaxed);
        if transport == Transport::Tcp {
            return shared;
        }
        let i = rcode_index(code);
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .fold(shared, |n, w| n + w.counts[i].load(Ordering::Relaxed))
    }

    /// Counts a reload.
    pub fn reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads applied (`true`) or rejected (`false`).
    pub fn reloads(&self, ok: bool) -> u64 {
        self.reloads[usize::from(!ok)].load(Ordering::Relaxed)
    }

    /// All queries answered.
    pub fn total_queries(&self) -> u64 {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.queries
            .iter()
            .flatten()
            .chain(workers.iter().flat_map(|w| w.counts.iter()))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_counts_add_up_exactly_with_the_shared_ones() {
        let m = Metrics::default();
        m.query(Transport::Udp, rcode::NOERROR);
        m.query(Transport::Tcp, rcode::NOERROR);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let w = m.worker();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        w.query(if i % 10 == 0 {
                            rcode::NXDOMAIN
                        } else {
                            rcode::NOERROR
                        });
                    }
                    w.query(4242);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.queries(Transport::Udp, rcode::NOERROR), 1 + 4 * 9_000);
        assert_eq!(m.queries(Transport::Udp, rcode::NXDOMAIN), 4 * 1_000);
        assert_eq!(m.queries(Transport::Udp, 4242), 4);
        // Another code outside the list shares the "other" counter.
        assert_eq!(m.queries(Transport::Udp, 4243), 4);
        assert_eq!(m.queries(Transport::Tcp, rcode::NOERROR), 1);
        assert_eq!(m.queries(Transport::Tcp, rcode::NXDOMAIN), 0);
        assert_eq!(m.total_queries(), 2 + 4 * 10_001);
    }

    #[test]
    fn a_workers_block_is_one_cache_line_of_its_own() {
        assert_eq!(std::mem::align_of::<WorkerQueries>(), 64);
        assert_eq!(std::mem::size_of::<WorkerQueries>(), 64);
    }
}

/// Gossip traffic counters (`[cluster]`): written by the gossip socket,
/// read by `/metrics`.
#[derive(Debug, Default)]
pub struct GossipStats {
    /// Bytes sent (UDP payload).
    pub bytes_sent: AtomicU64,
    /// Bytes received and accepted.
    pub bytes_received: AtomicU64,
    /// Packets dropped, by reason ([`GOSSIP_REJECTS`], in order).
    pub rejected: [AtomicU64; 4],
}

/// Why gossip packets are dropped: not ours or cut short, failed
/// authentication (another key, or tampered with), from another address
/// than the sealed sender's, sealed too long ago.
pub const GOSSIP_REJECTS: [&str; 4] = ["malformed", "authentication", "address", "stale"];
