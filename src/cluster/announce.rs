//! How membership changes reach the operator: the log, notifications,
//! and the problems the API reports (two processes under one name).

use std::time::Duration;

use tracing::{info, warn};

use super::membership::Change;
use crate::state::Shared;

/// The one place membership changes are logged and notified.
pub(super) fn announce(shared: &Shared, me: &str, change: Change) {
    use crate::notify::Event;
    match change {
        Change::Joined(name, addr) => {
            info!(node = %name, address = %addr, "cluster node joined");
            shared
                .notify
                .emit(Event::node_joined(&name, format!("at {addr}")));
        }
        Change::AliveAgain(name, addr) => {
            info!(node = %name, address = %addr, "cluster node alive again");
            shared
                .notify
                .emit(Event::node_joined(&name, format!("alive again at {addr}")));
        }
        Change::Dead(name, addr, held) if held > Duration::ZERO => {
            warn!(node = %name, address = %addr, vote_held_s = held.as_secs(), "cluster node dead (its last observations count for vote_hold, then no longer)");
            shared.notify.emit(Event::node_left(
                &name,
                format!(
                    "at {addr}; its last observations count for {}s (cluster.vote_hold)",
                    held.as_secs()
                ),
            ));
        }
        Change::Dead(name, addr, _) => {
            warn!(node = %name, address = %addr, "cluster node dead (no longer counted in quorums)");
            shared
                .notify
                .emit(Event::node_left(&name, format!("at {addr}")));
        }
        Change::Left(name, addr) => {
            info!(node = %name, address = %addr, "cluster node left (shut down cleanly; no longer counted)");
            shared
                .notify
                .emit(Event::node_left(&name, format!("left cleanly, at {addr}")));
        }
        Change::HoldEnded(name) => {
            info!(node = %name, "cluster node still dead: its last observations no longer count (quorums count the nodes heard)");
        }
        Change::Forgotten(name) => {
            info!(node = %name, "cluster node forgotten (switchyard cluster forget on another node)");
        }
        Change::Expired(name) => {
            info!(node = %name, "dead cluster node no longer listed (cluster.forget_dead_after)");
        }
        Change::Twin { name, at } => {
            let list: Vec<String> = at
                .iter()
                .map(|(a, g)| format!("{a} (generation {g})"))
                .collect();
            let problem = if name == me {
                format!(
                    "another node, at {}, is also named {name}: give each node its own `cluster.node` (they ignore each other's observations and overrides)",
                    at.iter()
                        .map(|(a, _)| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!(
                    "two live processes gossip as node {name}: {}; the newest speaks for the name, the other is ignored until it stops (give each node its own `cluster.node`)",
                    list.join(" and ")
                )
            };
            tracing::error!("{problem}");
            shared.report_problem(problem);
        }
        Change::Drift {
            name,
            drifted: true,
            digest,
            majority,
        } => {
            let who = if name == me {
                "this node"
            } else {
                "cluster node"
            };
            warn!(node = %name, digest = %digest, majority = %majority, "{who} runs a different configuration than most nodes (keep profiles and zones the same on every node)");
            shared.notify.emit(Event::node_drift(
                &name,
                true,
                format!("its configuration digest is {digest}, most nodes run {majority}"),
            ));
        }
        Change::Drift { name, .. } => {
            info!(node = %name, "cluster node runs the same configuration as most nodes again");
            shared.notify.emit(Event::node_drift(&name, false, ""));
        }
    }
}
