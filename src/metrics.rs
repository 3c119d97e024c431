//! Counters the answer path bumps: plain relaxed atomics, indexed by
//! small integers fixed at compile time, so counting costs one add.

use std::sync::atomic::{AtomicU64, Ordering};

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

impl Metrics {
    /// The counter for `transport` and `code` (the last slot counts codes
    /// outside [`RCODES`]).
    #[inline]
    fn slot(&self, transport: Transport, code: u16) -> &AtomicU64 {
        let t = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        let i = RCODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(RCODES.len());
        &self.queries[t][i]
    }

    /// Counts one answered query.
    #[inline]
    pub fn query(&self, transport: Transport, code: u16) {
        self.slot(transport, code).fetch_add(1, Ordering::Relaxed);
    }

    /// Queries answered over `transport` with `code`.
    pub fn queries(&self, transport: Transport, code: u16) -> u64 {
        self.slot(transport, code).load(Ordering::Relaxed)
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
        self.queries
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
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
