//! This node's handle on the running cluster: the gossip, the settings
//! every round reads, and what the API asks of it (its name, forgetting a
//! dead node, leaving).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chitchat::ChitchatHandle;

use super::keys::LEFT;
use super::transport;
use crate::health::quorum::Quorum;

/// A `forget` request: the node's name, and where its outcome goes.
pub(super) type ForgetRequest = (String, tokio::sync::oneshot::Sender<Result<(), String>>);

/// A running cluster membership.
pub struct Cluster {
    pub(super) handle: ChitchatHandle,
    pub(super) node: String,
    pub(super) default_quorum: Quorum,
    pub(super) state_file: Option<std::path::PathBuf>,
    /// Rounds completed (observations combined, overrides synced).
    pub(super) rounds: std::sync::atomic::AtomicU64,
    pub(super) gossip_interval: Duration,
    /// `forget` requests for the combining task (it owns the membership).
    pub(super) forget: tokio::sync::mpsc::Sender<ForgetRequest>,
    /// Gossip traffic counters.
    pub stats: Arc<transport::Stats>,
}

impl Cluster {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Leaves the cluster cleanly: tells the others (who then drop this
    /// node's vote at once rather than hold it) and stops gossip.
    pub async fn leave(&self) {
        {
            let chitchat = self.handle.chitchat();
            let mut guard = chitchat.lock().await;
            guard.self_node_state().set(LEFT, "1");
            let peers: Vec<SocketAddr> = guard
                .live_nodes()
                .filter(|id| id.node_id.as_ref() != self.node)
                .map(|id| id.gossip_advertise_addr)
                .collect();
            for a in peers {
                let _ = self.handle.gossip(a);
            }
        }
        // A gossip exchange is three datagrams: give it a few round trips.
        tokio::time::sleep((self.gossip_interval * 2).min(Duration::from_millis(300))).await;
        let _ = self.handle.initiate_shutdown();
    }

    /// Stops listing a dead node (`switchyard cluster forget`).
    pub async fn forget(&self, name: &str) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.forget
            .send((name.to_string(), tx))
            .await
            .map_err(|_| "the cluster task has stopped".to_string())?;
        rx.await
            .map_err(|_| "the cluster task has stopped".to_string())?
    }
}
