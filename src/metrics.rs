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
