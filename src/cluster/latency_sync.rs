//! The latency table across the cluster: every node gossips the records it
//! ingested itself (beacons, the API) in a ring of [`RING`] keys
//! (`l:<slot>`, a batch of at most [`BATCH`] records each, numbered), and
//! takes in the records of every other node it has not seen yet (by node,
//! generation and number), so a sample ingested anywhere reaches every
//! table. A record is published in the round after its ingest (which wakes
//! the cluster task at once) and pushed to every live node then; a node
//! takes it in when gossip brings it (which wakes its task): about one
//! gossip interval, two at most, plus the network. A node that joins late
//! gets the ring's records (the newest `RING x BATCH`); older ones come
//! from its own saved table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::ChitchatId;

use super::keys::LATENCY;
use super::node::Cluster;
use crate::latency::{Gossiped, Record, network_of_key};
use crate::netblock::Network;
use crate::state::Shared;

/// Gossip keys of latency records a node keeps.
pub(super) const RING: u64 = 64;
/// Records in one key.
pub(super) const BATCH: usize = 64;

/// What the latency sync remembers between rounds.
#[derive(Default)]
pub(super) struct LatencySync {
    /// The last record number this node published.
    published: u64,
    /// Batches published (the next slot is `batches % RING`).
    batches: u64,
    /// Per peer (name, generation): the highest record number taken in.
    seen: HashMap<(String, u64), u64>,
}

/// `FIRST;ITEM;ITEM;...`, each a sample `NETKEY EP RTT_MS SAMPLES AT`
/// (hex, hex, decimal, decimal, Unix seconds) or a resolver's beacon `r
/// RESOLVERKEY CLIENTKEY AT`.
pub(super) fn encode(first: u64, items: &[Gossiped]) -> String {
    let mut out = first.to_string();
    for g in items {
        match g {
            Gossiped::Sample(r) => out.push_str(&format!(
                ";{:x} {:x} {:.3} {} {}",
                r.net.key(),
                r.ep,
                r.rtt_ms,
                r.samples,
                r.at
            )),
            Gossiped::Resolver {
                resolver,
                client,
                at,
            } => out.push_str(&format!(";r {:x} {:x} {at}", resolver.key(), client.key())),
        }
    }
    out
}

/// The records of a batch with their numbers; `None` if malformed (a
/// peer's bad value is skipped whole, never half taken).
pub(super) fn decode(v: &str) -> Option<Vec<(u64, Gossiped)>> {
    let mut parts = v.split(';');
    let first: u64 = parts.next()?.parse().ok()?;
    let mut out = Vec::new();
    for (n, p) in parts.enumerate() {
        if out.len() >= BATCH {
            return None;
        }
        let mut f = p.split(' ');
        let head = f.next()?;
        if head == "r" {
            let resolver = network_of_key(u64::from_str_radix(f.next()?, 16).ok()?);
            let client = network_of_key(u64::from_str_radix(f.next()?, 16).ok()?);
            let at: u32 = f.next()?.parse().ok()?;
            if f.next().is_some() {
                return None;
            }
            out.push((
                first + n as u64,
                Gossiped::Resolver {
                    resolver,
                    client,
                    at,
                },
            ));
            continue;
        }
        let key = u64::from_str_radix(head, 16).ok()?;
        let ep = u32::from_str_radix(f.next()?, 16).ok()?;
        let rtt_ms: f64 = f.next()?.parse().ok()?;
        let samples: u32 = f.next()?.parse().ok()?;
        let at: u32 = f.next()?.parse().ok()?;
        if !(rtt_ms.is_finite() && rtt_ms > 0.0 && rtt_ms <= 60_000.0) || samples == 0 {
            return None;
        }
        if f.next().is_some() {
            return None;
        }
        out.push((
            first + n as u64,
            Gossiped::Sample(Record {
                net: network_of_key(key),
                ep,
                rtt_ms,
                samples: samples.min(1_000_000),
                at,
            }),
        ));
    }
    Some(out)
}

impl Cluster {
    /// Publishes this node's new records and takes in the peers'.
    pub(super) async fn sync_latency(&self, shared: &Arc<Shared>, sync: &mut LatencySync) {
        let latency = &shared.serving.latency;
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        // Peers' records not seen yet.
        let mut incoming: Vec<Record> = Vec::new();
        let mut beacons: Vec<(Network, Network, u32)> = Vec::new();
        let mut live_ids: Vec<ChitchatId> = Vec::new();
        for (id, state) in guard.node_states() {
            if id.node_id.as_ref() == self.node {
                continue;
            }
            live_ids.push(id.clone());
            let seen_key = (id.node_id.to_string(), id.generation_id);
            let seen = sync.seen.get(&seen_key).copied().unwrap_or(0);
            let mut batches: Vec<Vec<(u64, Gossiped)>> = state
                .iter_prefix(LATENCY)
                .filter_map(|(_, v)| decode(v.value.as_str()))
                .filter(|b| b.last().is_some_and(|(n, _)| *n > seen))
                .collect();
            batches.sort_by_key(|b| b.first().map(|(n, _)| *n));
            let mut top = seen;
            for (n, g) in batches.into_iter().flatten() {
                if n > seen {
                    match g {
                        Gossiped::Sample(r) => incoming.push(r),
                        Gossiped::Resolver {
                            resolver,
                            client,
                            at,
                        } => beacons.push((resolver, client, at)),
                    }
                    top = top.max(n);
                }
            }
            sync.seen.insert(seen_key, top);
        }
        // Forget peers' generations chitchat no longer knows.
        sync.seen.retain(|(name, generation), _| {
            live_ids
                .iter()
                .any(|id| id.node_id.as_ref() == name.as_str() && id.generation_id == *generation)
        });
        // This node's own, once per batch.
        let (mine, _) = latency.outbox_since(sync.published, BATCH * RING as usize);
        let mut changed = false;
        for chunk in mine.chunks(BATCH) {
            let first = chunk[0].0;
            let records: Vec<Gossiped> = chunk.iter().map(|(_, g)| *g).collect();
            let slot = sync.batches % RING;
            guard
                .self_node_state()
                .set(format!("{LATENCY}{slot}"), encode(first, &records));
            sync.batches += 1;
            sync.published = chunk[chunk.len() - 1].0;
            changed = true;
        }
        if changed {
            let live: Vec<SocketAddr> = guard
                .live_nodes()
                .filter(|id| id.node_id.as_ref() != self.node)
                .map(|id| id.gossip_advertise_addr)
                .collect();
            for addr in live {
                let _ = self.handle.gossip(addr);
            }
        }
        drop(guard);
        if !incoming.is_empty() || !beacons.is_empty() {
            let latency = latency.clone();
            let _ = tokio::task::spawn_blocking(move || {
                latency.ingest(&incoming, false);
                for (resolver, client, at) in beacons {
                    latency.map_resolver(resolver, client, at, false);
                }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_gossip_values() {
        let r = Record {
            net: "192.0.2.0/24".parse().unwrap(),
            ep: 0xdead_beef,
            rtt_ms: 23.5,
            samples: 3,
            at: 1_800_000_000,
        };
        let r6 = Record {
            net: "2001:db8:aa00::/56".parse().unwrap(),
            ..r
        };
        let beacon = Gossiped::Resolver {
            resolver: "203.0.113.0/24".parse().unwrap(),
            client: "2001:db8:aa00::/56".parse().unwrap(),
            at: 1_800_000_001,
        };
        let items = [Gossiped::Sample(r), beacon, Gossiped::Sample(r6)];
        let v = encode(7, &items);
        assert_eq!(
            decode(&v),
            Some(vec![(7, items[0]), (8, items[1]), (9, items[2])])
        );
        assert_eq!(decode("7;r 1 2"), None);
        assert_eq!(decode("7;zz 1 2 3 4"), None);
        assert_eq!(decode("7;1 1 -2 3 4"), None);
        assert_eq!(decode("x"), None);
    }
}
