//! Pushed health across the cluster: a push received by any node counts on
//! every node. Each round takes the pushes other nodes gossip (per
//! monitor and source, the newest wins) into this node's store, and
//! publishes every push this node knows, so all nodes converge; a push
//! forgotten (pruned a day after it expired) is deleted from gossip.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::Chitchat;

use super::keys::PUSH;
use super::node::Cluster;
use crate::health::Status;
use crate::health::push::{InputKey, Push};
use crate::state::Shared;

/// How long an expired push is still kept (and gossiped): `on_stale =
/// "last"` reads the latest one whatever its age.
const KEEP_EXPIRED_MS: u64 = 86_400_000;

/// What this node publishes, by key.
#[derive(Default)]
pub(super) struct PushSync {
    published: HashMap<String, String>,
}

/// `p:<profile>/<endpoint>/<monitor>/<source>`.
fn key_of(id: &InputKey, source: &str) -> String {
    format!("{PUSH}{}/{}/{}/{source}", id.0, id.1, id.2)
}

/// `STATUS AT_MS EXPIRES_MS NODE REASON`.
fn encode(p: &Push) -> String {
    format!(
        "{} {} {} {} {}",
        p.status.as_str(),
        p.at_ms,
        p.expires_ms,
        p.node,
        p.reason
    )
}

fn decode(k: &str, v: &str) -> Option<(InputKey, String, Push)> {
    let rest = k.strip_prefix(PUSH)?;
    let mut parts = rest.splitn(4, '/');
    let id = (
        parts.next()?.to_string(),
        parts.next()?.to_string(),
        parts.next()?.to_string(),
    );
    let source = parts.next()?.to_string();
    let mut f = v.splitn(5, ' ');
    let status = match f.next()? {
        "Online" => Status::Online,
        "Degraded" => Status::Degraded,
        _ => return None,
    };
    let push = Push {
        status,
        at_ms: f.next()?.parse().ok()?,
        expires_ms: f.next()?.parse().ok()?,
        node: f.next()?.to_string(),
        reason: f.next().unwrap_or("").to_string(),
    };
    Some((id, source, push))
}

impl Cluster {
    /// Takes the pushes other nodes gossip, and publishes every push this
    /// node knows.
    pub(super) async fn sync_pushes(&self, shared: &Arc<Shared>, sync: &mut PushSync) {
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        let incoming = self.incoming_pushes(&guard);
        let now = crate::clock::now_millis();
        let mine: HashMap<String, String> = {
            let mut store = shared.pushes.lock().unwrap_or_else(|p| p.into_inner());
            let mut changed = false;
            for (id, source, push) in incoming {
                changed |= store.put(id, &source, push);
            }
            if changed {
                shared.combine_wake.notify_one();
            }
            store.prune(now, KEEP_EXPIRED_MS);
            store
                .all()
                .map(|(id, source, p)| (key_of(id, source), encode(p)))
                .collect()
        };
        publish(self, sync, mine, &mut guard);
    }

    fn incoming_pushes(&self, guard: &Chitchat) -> Vec<(InputKey, String, Push)> {
        let mut incoming = Vec::new();
        for (id, state) in guard.node_states() {
            if id.node_id.as_ref() == self.node {
                continue;
            }
            for (k, v) in state.iter_prefix(PUSH) {
                if let Some(p) = decode(k, v.value.as_str()) {
                    incoming.push(p);
                }
            }
        }
        incoming
    }
}

/// Sets what changed, deletes what this node no longer knows, and gossips
/// at once to every live node when anything did.
fn publish(
    cluster: &Cluster,
    sync: &mut PushSync,
    mine: HashMap<String, String>,
    guard: &mut Chitchat,
) {
    let me = guard.self_node_state();
    let mut changed = false;
    for (k, v) in &mine {
        if sync.published.get(k) != Some(v) {
            me.set(k.clone(), v.clone());
            changed = true;
        }
    }
    for k in sync.published.keys() {
        if !mine.contains_key(k) {
            me.delete(k);
            changed = true;
        }
    }
    sync.published = mine;
    if changed {
        let live: Vec<SocketAddr> = guard
            .live_nodes()
            .filter(|id| id.node_id.as_ref() != cluster.node)
            .map(|id| id.gossip_advertise_addr)
            .collect();
        for addr in live {
            let _ = cluster.handle.gossip(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_round_trip_through_gossip_values() {
        let id: InputKey = ("shop.tm.example.".into(), "east".into(), "alerts".into());
        let p = Push {
            status: Status::Degraded,
            reason: "alert HighErrorRate firing: 5xx / above 5%".into(),
            at_ms: 1,
            expires_ms: 2,
            node: "ns1".into(),
        };
        let k = key_of(&id, "alert:abc/def");
        assert_eq!(
            decode(&k, &encode(&p)),
            Some((id, "alert:abc/def".into(), p))
        );
        assert_eq!(decode(&k, "Held 1 2 n r"), None);
    }
}
