//! Token lookups across the cluster (real user measurements): the resolver
//! that looks a token's name up may ask one node while the browser's
//! beacon reaches another. Each round a node publishes the lookups its own
//! answer path recorded since the last round into a ring of [`RING`] keys
//! (`r:0` .. `r:127`, each `TOKEN RESOLVER_NET ECS_NET|- AT_MS`, the oldest
//! overwritten), gossips at once when it did, and takes every other node's
//! ring into its own table of sightings, where a waiting beacon finds it
//! (within a gossip round or two, plus the beacon handler's 200 ms check).
//! Memory is fixed: the ring's keys, and the sightings table's 4,096 slots.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::keys::RUM;
use super::node::Cluster;
use crate::netblock::Network;
use crate::sightings::{Sighting, Token, network_of_key};
use crate::state::Shared;

/// Keys in a node's ring of recent lookups.
pub(super) const RING: usize = 128;
/// Lookups older than this are not taken from gossip (the longest
/// `rum.token_lifetime`).
const KEEP_MS: u64 = 3_600_000;

/// What this node published, so each lookup goes out once.
#[derive(Default)]
pub(super) struct RumSync {
    /// The next key of the ring to write.
    next: usize,
    /// Lookups at or before this (Unix ms) were looked at already.
    since_ms: u64,
    /// The tokens published lately (the last 2 × [`RING`]).
    recent: VecDeque<Token>,
}

/// `TOKEN RESOLVER_NET ECS_NET|- AT_MS`.
fn encode(t: &Token, s: &Sighting) -> String {
    format!(
        "{} {:x} {} {}",
        data_encoding::HEXLOWER.encode(t),
        s.resolver.key(),
        s.ecs
            .map_or_else(|| "-".to_string(), |e| format!("{:x}", e.key())),
        s.at_ms
    )
}

fn decode(v: &str) -> Option<(Token, Sighting)> {
    let mut f = v.split(' ');
    let token = crate::sightings::token_of_label(f.next()?.as_bytes())?;
    let net = |x: &str| u64::from_str_radix(x, 16).ok().map(network_of_key);
    let resolver: Network = net(f.next()?)?;
    let ecs = match f.next()? {
        "-" => None,
        x => Some(net(x)?),
    };
    let at_ms = f.next()?.parse().ok()?;
    Some((
        token,
        Sighting {
            resolver,
            ecs,
            at_ms,
            remote: true,
        },
    ))
}

impl Cluster {
    /// Publishes this node's new token lookups and takes the others'.
    pub(super) async fn sync_rum(&self, shared: &Shared, sync: &mut RumSync) {
        let sightings = &shared.serving.sightings;
        // Lookups recorded in the same millisecond as the last scan may
        // come after it: look a little back, and skip what went out.
        let mut fresh = sightings.local_since(sync.since_ms.saturating_sub(50));
        fresh.retain(|(t, _)| !sync.recent.contains(t));
        fresh.sort_by_key(|(_, s)| s.at_ms);
        if let Some((_, s)) = fresh.last() {
            sync.since_ms = sync.since_ms.max(s.at_ms);
        }
        let start = fresh.len().saturating_sub(RING);
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        let now = crate::clock::now_millis();
        for (key, state) in guard.node_states() {
            if key.node_id.as_ref() == self.node {
                continue;
            }
            for (_, v) in state.iter_prefix(RUM) {
                if let Some((t, s)) = decode(v.value.as_str())
                    && now.saturating_sub(s.at_ms) < KEEP_MS
                {
                    sightings.learn(&t, &s);
                }
            }
        }
        if start == fresh.len() {
            return;
        }
        let me = guard.self_node_state();
        for (t, s) in &fresh[start..] {
            me.set(format!("{RUM}{}", sync.next), encode(t, s));
            sync.next = (sync.next + 1) % RING;
            sync.recent.push_back(*t);
            if sync.recent.len() > 2 * RING {
                sync.recent.pop_front();
            }
        }
        let live: Vec<SocketAddr> = guard
            .live_nodes()
            .filter(|id| id.node_id.as_ref() != self.node)
            .map(|id| id.gossip_advertise_addr)
            .collect();
        drop(guard);
        for addr in live {
            let _ = self.handle.gossip(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_round_trip_through_gossip_values() {
        let t = [7u8; 24];
        for ecs in [None, Some("2001:db8:aa00::/56".parse().unwrap())] {
            let s = Sighting {
                resolver: "192.0.2.0/24".parse().unwrap(),
                ecs,
                at_ms: 1_796_168_154_123,
                remote: true,
            };
            assert_eq!(decode(&encode(&t, &s)), Some((t, s)));
        }
        assert_eq!(decode("zz 1 - 2"), None);
    }
}
