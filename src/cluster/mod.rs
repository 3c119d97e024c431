//! Several Switchyard name servers that agree: gossip (chitchat, sealed
//! with the cluster key by [`transport`]) carries each node's own
//! observations and its configuration digest; the quorum rule
//! ([`crate::health::quorum`]) turns the live nodes' observations into the
//! status every node serves.
//!
//! Nothing here is on the DNS path. One task wakes when this node's prober
//! decides something, when gossip brings a change, and once per gossip
//! round; it publishes this node's observations, combines everyone's, and
//! stores the outcome in the health cells the answer path already reads.
//!
//! Observations are keyed by a fingerprint of what is probed (address,
//! port, path, headers, key, expected status...): nodes whose probes of an
//! endpoint differ publish under different keys, so they are shown but
//! never counted together.

mod announce;
mod combine;
mod digest;
mod keys;
mod latency_sync;
pub mod membership;
mod node;
mod override_sync;
mod own;
mod push_sync;
mod resync;
mod round;
mod rum_sync;
pub mod transport;
mod view;
mod warm;

pub use digest::config_digest;
pub use node::Cluster;
pub use resync::{resync_limit, stall_threshold};

use std::sync::Arc;
use std::time::Duration;

use chitchat::transport::Transport;
use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ListenerHandle};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::ClusterSettings;
use crate::state::Shared;
use keys::{DIGEST, FORGET, LATENCY, OBSERVATION, OVERRIDE, PUSH, SYNC, VERSION};
use membership::Timing;
use node::ForgetRequest;
use override_sync::OverrideSync;
use round::RoundState;

/// How long chitchat keeps a dead node generation's state: long enough to
/// hold its vote (`vote_hold`) and outlast `dead_after`, short enough that
/// the old generations of a restarted node stop being gossiped soon
/// (chitchat stops sending a dead node half-way through this).
fn gossip_grace(t: &Timing) -> Duration {
    Duration::from_secs(20)
        .max(t.dead_after * 4)
        .max(t.vote_hold * 2)
}

/// Chitchat's configuration: this node's id, where it listens, its seeds,
/// and the failure detector.
fn gossip_config(settings: &ClusterSettings, id: ChitchatId, timing: &Timing) -> ChitchatConfig {
    ChitchatConfig {
        chitchat_id: id,
        cluster_id: "switchyard".into(),
        gossip_interval: settings.gossip_interval,
        listen_addr: settings.listen,
        seed_nodes: settings.seeds.clone(),
        failure_detector_config: FailureDetectorConfig {
            phi_threshold: settings.phi_threshold,
            sampling_window_size: 1000,
            max_interval: Duration::from_secs(10),
            initial_interval: settings.gossip_interval,
            dead_node_grace_period: gossip_grace(timing),
        },
        marked_for_deletion_grace_period: Duration::from_secs(3600),
        catchup_callback: None,
        extra_liveness_predicate: None,
    }
}

/// What the combining task owns.
struct Task {
    /// What it keeps between rounds.
    state: RoundState,
    /// `forget` requests ([`Cluster::forget`]).
    forget: tokio::sync::mpsc::Receiver<ForgetRequest>,
    shutdown: CancellationToken,
    /// The gossip subscriptions that wake it, kept as long as it runs.
    _listeners: (
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
    ),
}

impl Cluster {
    /// Joins the cluster: binds the gossip socket and starts gossiping and
    /// combining until `shutdown`; the configuration digest it announces is
    /// read from `shared` (kept current by reloads).
    pub async fn start(
        settings: &ClusterSettings,
        state_file: Option<std::path::PathBuf>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Cluster>> {
        let stats = Arc::new(transport::Stats::default());
        let transport = transport::SealedUdp::new(
            settings.key.expose().trim().as_bytes(),
            settings.advertise,
            stats.clone(),
        );
        let generation = crate::clock::now_millis();
        let id = ChitchatId::new(settings.node.clone(), generation, settings.advertise);
        let timing = Timing {
            gossip_interval: settings.gossip_interval,
            dead_after: settings.dead_after,
            vote_hold: settings.vote_hold,
            forget_after: settings.forget_dead_after,
        };
        let config = gossip_config(settings, id.clone(), &timing);
        let initial = vec![
            (DIGEST.to_string(), shared.config_digest.load().to_string()),
            (VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ];
        let handle =
            chitchat::spawn_chitchat(config, initial, &transport as &dyn Transport).await?;
        let (forget_tx, forget_rx) = tokio::sync::mpsc::channel(4);
        let cluster = Arc::new(Cluster {
            handle,
            node: settings.node.clone(),
            default_quorum: settings.quorum,
            state_file,
            rounds: Default::default(),
            gossip_interval: settings.gossip_interval,
            forget: forget_tx,
            stats,
        });
        info!(node = %settings.node, listen = %settings.listen, seeds = ?settings.seeds, "cluster gossip started");
        // Gossip that brings an observation wakes the combiner.
        let listeners = cluster.wake_on_gossip(&shared).await;
        let interval = settings.gossip_interval;
        let stall = stall_threshold(interval);
        shared.serving.gate.arm(
            stall,
            resync_limit(interval) + Duration::from_millis(500),
            shared.cluster_wake.clone(),
        );
        let task = Task {
            state: RoundState::new(id, timing),
            forget: forget_rx,
            shutdown,
            _listeners: listeners,
        };
        tokio::spawn(cluster.clone().run(shared, task));
        Ok(cluster)
    }

    /// Gossip that brings an observation (or an override, or a re-sync
    /// mark) wakes the combiner, for as long as the handles returned live.
    async fn wake_on_gossip(
        &self,
        shared: &Shared,
    ) -> (
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
        ListenerHandle,
    ) {
        let wake = shared.cluster_wake.clone();
        let chitchat = self.handle.chitchat();
        let guard = chitchat.lock().await;
        let wake2 = wake.clone();
        let wake3 = wake.clone();
        let wake4 = wake.clone();
        let wake5 = wake.clone();
        (
            guard.subscribe_event(OBSERVATION, move |_| wake.notify_one()),
            guard.subscribe_event(OVERRIDE, move |_| wake2.notify_one()),
            guard.subscribe_event(SYNC, move |_| wake3.notify_one()),
            guard.subscribe_event(PUSH, move |_| wake4.notify_one()),
            guard.subscribe_event(LATENCY, move |_| wake5.notify_one()),
        )
    }

    /// The combining task: a round at each gossip tick, when woken (this
    /// node's prober decided, gossip brought a change) and after each
    /// `forget` request, preceded by a re-sync when this node stalled;
    /// until `shutdown`.
    async fn run(self: Arc<Cluster>, shared: Arc<Shared>, mut task: Task) {
        let interval = self.gossip_interval;
        let stall = stall_threshold(interval);
        let mut sync = OverrideSync::default();
        let mut pushes = push_sync::PushSync::default();
        let mut rum = rum_sync::RumSync::default();
        let mut latency = latency_sync::LatencySync::default();
        // A sample ingested here wakes this task, to be published at once.
        shared
            .serving
            .latency
            .set_waker(shared.cluster_wake.clone());
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = task.shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                _ = shared.cluster_wake.notified() => {}
                Some(request) = task.forget.recv() => {
                    self.forget_now(&mut task.state, request).await;
                }
            }
            // This node's own stall: its timers fired late by several
            // rounds (it was stopped, or starved of CPU), or a receive
            // loop saw one. Nobody else's silence, and answers wait
            // until the peers are heard again.
            // (The gap is the wait since the last round ended: a long
            // round, say of a huge configuration, is no stall.)
            let gap = last.elapsed();
            if gap > stall || shared.serving.gate.pending() {
                let late = gap.saturating_sub(interval);
                if gap > stall {
                    task.state.members.stalled(late);
                }
                self.resync(&shared, &mut task.state, late).await;
            }
            self.round(&shared, &mut task.state).await;
            self.sync_overrides(&shared, &mut sync).await;
            self.sync_pushes(&shared, &mut pushes).await;
            self.sync_rum(&shared, &mut rum).await;
            self.sync_latency(&shared, &mut latency).await;
            self.rounds
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            last = std::time::Instant::now();
        }
    }

    /// Forgets a node on request (`switchyard cluster forget`), and
    /// gossips that it did, so the other nodes forget it too.
    async fn forget_now(&self, state: &mut RoundState, request: ForgetRequest) {
        let (name, reply) = request;
        let r = state.members.forget(&name, std::time::Instant::now());
        if let Ok(generation) = r {
            info!(node = %name, "cluster node forgotten (switchyard cluster forget); the other nodes forget it too");
            let chitchat = self.handle.chitchat();
            chitchat
                .lock()
                .await
                .self_node_state()
                .set(format!("{FORGET}{name}"), generation);
        }
        let _ = reply.send(r.map(|_| ()));
    }
}
