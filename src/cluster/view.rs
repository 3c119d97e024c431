//! What the API and the status page show of the cluster: every node as
//! this one sees it, and how many probe targets each node observes in
//! each status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::ChitchatId;

use super::combine::Input;
use super::membership::{Membership, Standing};
use super::node::Cluster;
use crate::state::{ClusterNode, ClusterSummary};

/// What the summary says of this node that the membership does not know.
pub(super) struct Me {
    /// Its gossip address.
    pub(super) address: SocketAddr,
    /// Its heartbeat counter.
    pub(super) heartbeat: u64,
    /// Its configuration digest.
    pub(super) digest: String,
    /// Why each node (this one included) does not vote, by name: its
    /// prober is impaired.
    pub(super) impaired: std::collections::HashMap<String, String>,
}

impl Cluster {
    /// The cluster as the API and the page show it, from the membership
    /// and the inputs last combined (`live`: the peers counted this round,
    /// in the order of the inputs).
    pub(super) fn summary(
        &self,
        members: &Membership,
        inputs: &[Vec<Input>],
        live: &[(ChitchatId, Option<Instant>)],
        me: Me,
        now: Instant,
    ) -> ClusterSummary {
        let nodes = self.nodes(members, me, now);
        let counts = self.observed(inputs, live);
        ClusterSummary {
            node: self.node.clone(),
            quorum: self.default_quorum,
            majority_digest: members.majority_digest().to_string(),
            nodes,
            observations: counts.into_iter().map(|((n, s), c)| (n, s, c)).collect(),
        }
    }

    /// Every node listed, this one included, by name.
    fn nodes(&self, members: &Membership, me: Me, now: Instant) -> Vec<ClusterNode> {
        let mut nodes: Vec<ClusterNode> = members
            .listed()
            .iter()
            .map(|l| ClusterNode {
                name: l.id.node_id.to_string(),
                address: l.id.gossip_advertise_addr,
                alive: l.standing == Standing::Alive,
                suspect: l.standing == Standing::Alive
                    && now.saturating_duration_since(l.heard_at) > self.gossip_interval * 5,
                vote_held_for: match l.standing {
                    Standing::Held { until, .. } => Some(until.saturating_duration_since(now)),
                    _ => None,
                },
                last_heard: now.saturating_duration_since(l.heard_at),
                this_node: false,
                digest: l.digest.clone(),
                drifted: l.drifted,
                version: l.version.clone(),
                heartbeat: l.heartbeat,
                twin: l.twin,
                impaired: me.impaired.get(&*l.id.node_id).cloned(),
            })
            .collect();
        nodes.push(ClusterNode {
            name: self.node.clone(),
            address: me.address,
            alive: true,
            suspect: false,
            vote_held_for: None,
            last_heard: Duration::ZERO,
            this_node: true,
            drifted: members.me_drifted(),
            digest: me.digest,
            version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat: me.heartbeat,
            twin: members.my_twin(),
            impaired: me.impaired.get(&self.node).cloned(),
        });
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// Probe targets by each node's observed status, from the inputs
    /// last combined (this node first, then `live`... as they were).
    fn observed(
        &self,
        inputs: &[Vec<Input>],
        live: &[(ChitchatId, Option<Instant>)],
    ) -> BTreeMap<(String, &'static str), u64> {
        let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for inputs in inputs {
            for (i, (status, _, counted)) in inputs.iter().enumerate() {
                if !counted {
                    continue;
                }
                let node = if i == 0 {
                    self.node.clone()
                } else {
                    match live.get(i - 1) {
                        Some((id, _)) => id.node_id.to_string(),
                        None => continue,
                    }
                };
                *counts.entry((node, status.as_str())).or_default() += 1;
            }
        }
        counts
    }
}
