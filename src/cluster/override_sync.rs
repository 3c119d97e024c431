//! Runtime overrides across the cluster: each round takes the overrides
//! other nodes made (the latest version of each endpoint's wins), applies
//! and saves them, and publishes every override this node knows, so all
//! nodes converge on the same set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::Chitchat;
use tracing::{info, warn};

use super::keys::OVERRIDE;
use super::node::Cluster;
use crate::overrides::{Override, Overrides};
use crate::snapshot::{EndpointKey, Snapshot};
use crate::state::Shared;

/// What the override sync remembers between rounds.
#[derive(Default)]
pub(super) struct OverrideSync {
    /// The table last reconciled with the overrides (its address).
    table: usize,
    /// What this node publishes, by key.
    published: HashMap<String, crate::overrides::Override>,
    /// Conflicts already reported: endpoint, loser's version, winner's.
    reported: std::collections::HashSet<ConflictId>,
    /// `reported` holds the conflicts known at start.
    seeded: bool,
}

/// One conflict: the endpoint, the loser's version, the winner's.
type ConflictId = (crate::snapshot::EndpointKey, (u64, String), (u64, String));

fn conflict_id(
    key: &crate::snapshot::EndpointKey,
    lost: &crate::overrides::Overruled,
    winner: &crate::overrides::Override,
) -> ConflictId {
    (
        key.clone(),
        (lost.at, lost.node.clone()),
        (winner.at, winner.node.clone()),
    )
}

impl OverrideSync {
    fn report(
        &self,
        shared: &Shared,
        key: &crate::snapshot::EndpointKey,
        lost: &crate::overrides::Overruled,
        winner: &crate::overrides::Override,
    ) {
        let problem = format!(
            "override conflict on {key}: {} by {} at {} lost to {} by {} at {} (made without knowing of each other; the later wins)",
            lost.action,
            lost.node,
            crate::clock::rfc3339_millis(crate::clock::from_unix_millis(lost.at)),
            winner.kind().as_str(),
            winner.node,
            crate::clock::rfc3339_millis(crate::clock::from_unix_millis(winner.at)),
        );
        warn!("{problem}");
        shared.report_problem(problem);
    }
}

impl Cluster {
    /// Takes the overrides other nodes made (the latest version of each
    /// endpoint's wins), applies and saves them, and publishes every
    /// override this node knows, so all nodes converge on the same set.
    pub(super) async fn sync_overrides(&self, shared: &Arc<Shared>, sync: &mut OverrideSync) {
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        let incoming = self.incoming_overrides(&guard);
        let table = shared.serving.table.load();
        let table_changed = sync.table != Arc::as_ptr(&table) as usize;
        sync.table = Arc::as_ptr(&table) as usize;
        let (snapshot, applied) = sync.merge(shared, &table, table_changed, incoming);
        let save = !applied.is_empty();
        self.publish_overrides(sync, &snapshot, &mut guard);
        // Saved off the runtime's threads, with gossip free to go on.
        drop(guard);
        if save && let Some(path) = self.state_file.clone() {
            save_state(shared, path).await;
        }
    }

    /// The overrides the other nodes gossip, as they gossip them (records
    /// that do not parse are skipped).
    fn incoming_overrides(&self, guard: &Chitchat) -> Vec<(EndpointKey, Override)> {
        let mut incoming: Vec<(EndpointKey, Override)> = Vec::new();
        for (id, state) in guard.node_states() {
            if id.node_id.as_ref() == self.node {
                continue;
            }
            for (k, v) in state.iter_prefix(OVERRIDE) {
                let v = v.value.as_str();
                let Some(rest) = k.strip_prefix(OVERRIDE) else {
                    continue;
                };
                let Some((profile, endpoint)) = rest.split_once('/') else {
                    continue;
                };
                let Ok(record) = serde_json::from_str::<Override>(v) else {
                    continue;
                };
                incoming.push((EndpointKey::new(profile, endpoint), record));
            }
        }
        incoming
    }

    /// Publishes what changed since last time, gossiping it at once to
    /// every live node.
    fn publish_overrides(
        &self,
        sync: &mut OverrideSync,
        snapshot: &Overrides,
        guard: &mut Chitchat,
    ) {
        let mut changed = false;
        let me = guard.self_node_state();
        for (key, record) in snapshot {
            let k = format!("{OVERRIDE}{}/{}", key.profile(), key.endpoint());
            if sync.published.get(&k) != Some(record) {
                if let Ok(v) = serde_json::to_string(record) {
                    me.set(k.clone(), v);
                }
                sync.published.insert(k, record.clone());
                changed = true;
            }
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
    }
}

impl OverrideSync {
    /// Under the overrides lock: merges the incoming records into this
    /// node's set, records and announces those that won, and sets the
    /// endpoints' runtime state from the winners. Returns the whole set
    /// as it now is, and the records applied.
    fn merge(
        &mut self,
        shared: &Shared,
        table: &Snapshot,
        table_changed: bool,
        incoming: Vec<(EndpointKey, Override)>,
    ) -> (Overrides, Vec<(EndpointKey, Override)>) {
        let mut all = shared.overrides.lock().unwrap_or_else(|p| p.into_inner());
        if !self.seeded {
            // Conflicts known before a restart (carried by the saved
            // winners) were reported then.
            self.seeded = true;
            for (key, winner) in all.iter() {
                for lost in &winner.overruled {
                    self.reported.insert(conflict_id(key, lost, winner));
                }
            }
        }
        let applied = self.take(shared, &mut all, incoming);
        for (key, record) in &applied {
            applied_from_peer(shared, table, key, record);
        }
        // Runtime state follows the winning records, set under the
        // overrides lock (so an API change and a gossiped one cannot
        // interleave), for every endpoint when the table was swapped
        // (a reload compiled it from a snapshot that may predate what
        // gossip applied since).
        if table_changed || !applied.is_empty() {
            for ep in &table.endpoints {
                let profile = table.profiles[ep.profile as usize].name.as_str();
                let key = EndpointKey::new(profile, &ep.name);
                ep.runtime.apply(crate::overrides::state(all.get(&key)));
            }
        }
        (all.clone(), applied)
    }

    /// Merges each incoming record into `all` (the latest version of an
    /// endpoint's wins), reporting each conflict once; returns the records
    /// that won, as they now stand.
    fn take(
        &mut self,
        shared: &Shared,
        all: &mut Overrides,
        incoming: Vec<(EndpointKey, Override)>,
    ) -> Vec<(EndpointKey, Override)> {
        let mut applied = Vec::new();
        for (key, record) in incoming {
            use crate::overrides::Merged;
            let conflicts = match crate::overrides::merge(all, &key, record) {
                Merged::Unchanged => continue,
                Merged::Applied { conflicts } => {
                    if let Some(winner) = all.get(&key) {
                        applied.push((key.clone(), winner.clone()));
                    }
                    conflicts
                }
                Merged::Learned { conflicts } => conflicts,
            };
            // Each conflict once on this node, however it learned of
            // it: holding the loser when the winner came, holding the
            // winner when the loser came, or from the winner's list.
            if let Some(winner) = all.get(&key).cloned() {
                for lost in conflicts {
                    if self.reported.insert(conflict_id(&key, &lost, &winner)) {
                        self.report(shared, &key, &lost, &winner);
                    }
                }
            }
        }
        applied
    }
}

/// An override from another node won here: into the history, the log and
/// the notifications (or a warning when this configuration has no such
/// endpoint: the record is kept all the same).
fn applied_from_peer(shared: &Shared, table: &Snapshot, key: &EndpointKey, record: &Override) {
    shared.record_history(key, record);
    match table.endpoint_by_key(key) {
        Some(_) => {
            info!(profile = key.profile(), endpoint = key.endpoint(), disabled = record.disabled, by = %record.node, "runtime override from another node applied");
            shared.notify.emit(crate::notify::Event::override_applied(
                key.profile(),
                key.endpoint(),
                record,
            ));
        }
        None => {
            warn!(profile = key.profile(), endpoint = key.endpoint(), by = %record.node, "runtime override from another node for an endpoint this configuration does not have (kept)")
        }
    }
}

/// Saves the runtime overrides to the state file, off the runtime's
/// threads; a failure is logged and reported as a state problem.
async fn save_state(shared: &Arc<Shared>, path: std::path::PathBuf) {
    let owned = shared.clone();
    let result = tokio::task::spawn_blocking(move || crate::state_file::save(&path, &owned))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    if let Err(error) = result {
        let problem =
            format!("state file: cannot save the runtime overrides from other nodes: {error}");
        tracing::error!("{problem}");
        shared.report_state_problem(problem);
    }
}
