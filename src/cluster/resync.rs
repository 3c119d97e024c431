//! This node's own stalls: how long a gap between rounds is one, and the
//! re-sync after it, so its first verdicts and answers after a stall are
//! the cluster's, not what it knew before.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::ChitchatId;
use tracing::warn;

use super::keys::{ACK, SYNC};
use super::node::Cluster;
use super::round::RoundState;
use crate::state::Shared;

/// A gap between rounds longer than this is this node's own stall: at
/// least 4 gossip rounds, and never under 500 ms (a busy machine delays a
/// timer by tens of milliseconds, not by half a second).
pub fn stall_threshold(gossip_interval: Duration) -> Duration {
    (gossip_interval * 4).max(Duration::from_millis(500))
}

/// Longest a re-sync after a stall waits to hear every peer again.
pub fn resync_limit(gossip_interval: Duration) -> Duration {
    (gossip_interval * 2).max(Duration::from_millis(500))
}

impl Cluster {
    /// After this node stalled: gossips with every peer at once and waits
    /// (at most [`resync_limit`]) until each one it counted has been heard
    /// again, so its first verdicts and answers after the stall are the
    /// cluster's, not what it knew before. Answers wait meanwhile (see
    /// [`crate::stall`]).
    pub(super) async fn resync(&self, shared: &Shared, st: &mut RoundState, late: Duration) {
        let start = std::time::Instant::now();
        shared
            .serving
            .gate
            .stalled(crate::stall::mono_ms(start), crate::stall::mono_ms(start));
        // Every peer alive before the stall must answer a fresh sync mark:
        // its answer comes with its state as of after the stall.
        let expected: Vec<ChitchatId> = st
            .members
            .counted()
            .filter(|(_, held)| held.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        st.resyncs += 1;
        let ack = format!("{ACK}{}", self.node);
        let mark = {
            let chitchat = self.handle.chitchat();
            let mut guard = chitchat.lock().await;
            let mark = format!("{}.{}", guard.self_chitchat_id().generation_id, st.resyncs);
            guard.self_node_state().set(SYNC, &mark);
            let mut addrs = st.members.addresses();
            addrs.extend(guard.seed_nodes());
            addrs.sort();
            addrs.dedup();
            for a in addrs {
                let _ = self.handle.gossip(a);
            }
            mark
        };
        let limit = resync_limit(self.gossip_interval);
        let mut asked = std::time::Instant::now();
        let heard_all = loop {
            let missing: Vec<SocketAddr> = {
                let chitchat = self.handle.chitchat();
                let guard = chitchat.lock().await;
                expected
                    .iter()
                    .filter(|id| {
                        guard
                            .node_state(id)
                            .is_none_or(|s| s.get(&ack) != Some(mark.as_str()))
                    })
                    .map(|id| id.gossip_advertise_addr)
                    .collect()
            };
            if missing.is_empty() {
                break true;
            }
            if start.elapsed() >= limit {
                break false;
            }
            // Ask again now and then: the answer comes back with the
            // peer's next exchange.
            if asked.elapsed() >= Duration::from_millis(10) {
                for a in missing {
                    let _ = self.handle.gossip(a);
                }
                asked = std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let took = start.elapsed();
        shared
            .serving
            .metrics
            .cluster_resyncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if heard_all {
            warn!(
                stalled_ms = late.as_millis() as u64,
                resync_ms = took.as_millis() as u64,
                peers = expected.len(),
                "this node stalled (its timers fired late): re-synced with its peers before answering again"
            );
        } else {
            warn!(
                stalled_ms = late.as_millis() as u64,
                resync_ms = took.as_millis() as u64,
                "this node stalled (its timers fired late) and did not hear every peer again within {}ms: answering with what it has",
                limit.as_millis()
            );
        }
        // Combine what the peers said before answers go out again.
        self.round(shared, st).await;
        shared
            .serving
            .gate
            .complete(crate::stall::mono_ms(std::time::Instant::now()));
    }
}
