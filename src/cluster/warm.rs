//! Warm start: a starting node waits until gossip has brought its live
//! peers' observations, and they have been combined, before it answers.

use std::collections::BTreeMap;
use std::time::Duration;

use chitchat::ChitchatId;
use tracing::{info, warn};

use super::keys::{OBSERVATION, OBSERVATIONS};
use super::node::Cluster;
use super::transport::Reject;
use crate::state::Shared;

/// The live peers (not `me`), one per name: the newest generation of a
/// node that restarted, so it is never counted twice.
fn newest_generations<'a>(live: impl Iterator<Item = &'a ChitchatId>, me: &str) -> Vec<ChitchatId> {
    let mut by_name: BTreeMap<&str, &ChitchatId> = BTreeMap::new();
    for id in live.filter(|id| id.node_id.as_ref() != me) {
        let slot = by_name.entry(id.node_id.as_ref()).or_insert(id);
        if id.generation_id > slot.generation_id {
            *slot = id;
        }
    }
    by_name.into_values().cloned().collect()
}

impl Cluster {
    /// Waits (at most `limit`) until gossip has brought the state of at
    /// least one live peer and it has been combined, so a starting node
    /// never answers with an endpoint its peers know is down. Returns
    /// whether a peer was heard.
    pub async fn warm_start(&self, shared: &Shared, limit: Duration) -> bool {
        let start = tokio::time::Instant::now();
        let heard = loop {
            // Every live peer's state received whole: as many observations
            // as it says it publishes (gossip deltas are capped at a
            // datagram, so a large state takes several rounds).
            let (peers, whole) = {
                let chitchat = self.handle.chitchat();
                let guard = chitchat.lock().await;
                let live = newest_generations(guard.live_nodes(), &self.node);
                let whole = live.iter().all(|id| {
                    guard.node_state(id).is_some_and(|s| {
                        s.get(OBSERVATIONS)
                            .and_then(|n| n.parse::<usize>().ok())
                            .is_some_and(|n| s.iter_prefix(OBSERVATION).count() >= n)
                    })
                });
                (live.len(), whole)
            };
            if peers > 0 && (whole || start.elapsed() >= limit) {
                if !whole {
                    warn!(
                        "warm start: a peer's state is still arriving; answering with what has come (the rest follows within a few gossip rounds)"
                    );
                }
                // Two more rounds, so what the peers said (observations
                // and overrides) is combined and applied.
                let seen = self.rounds.load(std::sync::atomic::Ordering::Acquire);
                while self.rounds.load(std::sync::atomic::Ordering::Acquire) < seen + 2
                    && start.elapsed() < limit + Duration::from_secs(1)
                {
                    shared.cluster_wake.notify_one();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                break true;
            }
            if start.elapsed() >= limit {
                break false;
            }
            shared.cluster_wake.notify_one();
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let waited = start.elapsed();
        if heard {
            info!(
                waited_ms = waited.as_millis() as u64,
                "warm start: took the peers' observations before answering"
            );
        } else {
            let auth = self.stats.rejected[Reject::Auth as usize]
                .load(std::sync::atomic::Ordering::Relaxed);
            let why = if auth > 0 {
                format!(
                    "; {auth} packets failed authentication: check that every node has the same cluster.key"
                )
            } else {
                "; check cluster.seeds, that UDP on the gossip port is open between the nodes, and that every node has the same cluster.key (the others drop packets sealed with another, unanswered)"
                    .to_string()
            };
            warn!(
                waited_ms = waited.as_millis() as u64,
                "warm start: no peer heard; answering with this node's own view (statuses saved before a restart, else CheckingEndpoint){why}"
            );
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_node_counts_once() {
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let ids = [
            ChitchatId::new("ns2", 5, a),
            ChitchatId::new("ns3", 1, a),
            ChitchatId::new("ns3", 9, a),
            ChitchatId::new("ns1", 3, a),
        ];
        let live = newest_generations(ids.iter(), "ns1");
        let got: Vec<(String, u64)> = live
            .iter()
            .map(|id| (id.node_id.to_string(), id.generation_id))
            .collect();
        assert_eq!(got, [("ns2".to_string(), 5), ("ns3".to_string(), 9)]);
    }
}
