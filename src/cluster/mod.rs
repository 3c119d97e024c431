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

pub mod membership;
pub mod transport;

use transport::Reject;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chitchat::transport::Transport;
use chitchat::{ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ClusterSettings;
use crate::health::quorum::{self, Quorum};
use crate::health::spec::ProbeSpec;
use crate::health::{ClusterView, HealthCell, Observation, Status};
use crate::state::{ClusterNode, ClusterSummary, Shared};
use membership::{Change, Membership, Seen, Standing, Timing};

/// Key prefix of observations: `h:<fingerprint>`.
const OBSERVATION: &str = "h:";
/// Key prefix of overrides: `o:<profile>/<endpoint>`.
const OVERRIDE: &str = "o:";
/// Key of how many observations a node publishes: a peer whose state
/// holds that many has been received whole (warm start waits for it).
const OBSERVATIONS: &str = "observations";
/// Key of the configuration digest.
const DIGEST: &str = "digest";
/// Key of the software version.
const VERSION: &str = "version";
/// Key a node sets when it shuts down cleanly: the others drop it (and its
/// vote) at once instead of holding it.
const LEFT: &str = "left";
/// Key a node sets when it re-syncs after a stall (`<generation>.<n>`);
/// every peer answers with [`ACK`]: once a peer's answer has arrived, its
/// whole state as of after the stall has (chitchat sends a node's keys in
/// version order).
const SYNC: &str = "sync";
/// Key prefix of re-sync answers: `ack:<node>` = the node's [`SYNC`] value.
const ACK: &str = "ack:";
/// Key prefix of forgotten nodes: `f:<name>` = the newest generation
/// forgotten (`switchyard cluster forget` on any node reaches them all).
const FORGET: &str = "f:";

/// How often an unchanged observation's probe summary is republished.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);

/// How often every observation is combined again even when none changed
/// (which refreshes the probe summaries the API shows).
const FULL_EVERY: Duration = Duration::from_secs(10);

/// What the combining task keeps between rounds.
struct RoundState {
    /// Who counts (see [`membership`]).
    members: Membership,
    /// The probes the caches below belong to.
    probes: Option<Arc<Vec<ProbeSpec>>>,
    /// Each probe's observation key (`h:<fingerprint>`).
    keys: Vec<String>,
    /// What this node last published, by key.
    published: HashMap<String, Published>,
    /// Each probe's last combined inputs: (status, since, counted) of this
    /// node, then of each counted peer in `live` order.
    inputs: Vec<Vec<(Status, u64, bool)>>,
    /// The counted peers at the last full combination (and whether each
    /// one's vote is held).
    live: Vec<(ChitchatId, bool)>,
    last_full: Option<std::time::Instant>,
    /// Re-syncs after stalls so far.
    resyncs: u64,
}

impl RoundState {
    fn new(me: ChitchatId, timing: Timing) -> RoundState {
        RoundState {
            members: Membership::new(me, timing),
            probes: None,
            keys: Vec::new(),
            published: HashMap::new(),
            inputs: Vec::new(),
            live: Vec::new(),
            last_full: None,
            resyncs: 0,
        }
    }
}

/// What this node last published for one probe.
struct Published {
    status: Status,
    since: SystemTime,
    at: std::time::Instant,
}

/// This node's vote: its own decision, but not a status restored from the
/// state file (a restarted node must not outvote the nodes that kept
/// probing with what it saw minutes ago).
fn own_vote(cell: &HealthCell) -> Status {
    if cell.is_restored() {
        Status::CheckingEndpoint
    } else {
        cell.own()
    }
}

/// What the override sync remembers between rounds.
#[derive(Default)]
struct OverrideSync {
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

/// A running cluster membership.
pub struct Cluster {
    handle: ChitchatHandle,
    node: String,
    default_quorum: Quorum,
    state_file: Option<std::path::PathBuf>,
    /// Rounds completed (observations combined, overrides synced).
    rounds: std::sync::atomic::AtomicU64,
    gossip_interval: Duration,
    /// `forget` requests for the combining task (it owns the membership).
    forget: tokio::sync::mpsc::Sender<(String, tokio::sync::oneshot::Sender<Result<(), String>>)>,
    /// Gossip traffic counters.
    pub stats: Arc<transport::Stats>,
}

/// A digest of the compiled configuration: zones and records, profiles,
/// endpoints and probes, not file names, comments or layout. Nodes with
/// equal digests answer alike.
pub fn config_digest(table: &crate::snapshot::Snapshot, probes: &[ProbeSpec]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // Each zone's content digest: its SOA without the serial (which follows
    // each node's history of the content, `config::serials`, so nodes that
    // saw different versions may differ in it alone) and everything else
    // it answers.
    for z in &table.zones {
        ctx.update(format!("zone {} {:016x}\n", z.origin.as_str(), z.digest).as_bytes());
    }
    for n in &table.nodes {
        ctx.update(format!("node {}\n", n.name.as_str()).as_bytes());
        for s in n
            .records
            .iter()
            .filter(|s| s.rtype != crate::proto::rr::rtype::SOA)
        {
            ctx.update(format!("{s:?}\n").as_bytes());
        }
        ctx.update(format!("{:?} {:?} {:?}\n", n.profile, n.wildcard, n.cut).as_bytes());
    }
    for p in &table.profiles {
        ctx.update(
            format!(
                "profile {} {:?} {} {} {:?} {:?}\n",
                p.name.as_str(),
                p.routing,
                p.ttl,
                p.enabled,
                p.on_all_down,
                p.endpoints
            )
            .as_bytes(),
        );
    }
    for e in &table.endpoints {
        ctx.update(
            format!(
                "endpoint {} {} {:?} {} {} {:?}\n",
                e.name, e.profile, e.target, e.priority, e.weight, e.rr
            )
            .as_bytes(),
        );
    }
    let mut probes: Vec<String> = probes
        .iter()
        .map(|s| {
            let m = &s.monitor;
            format!(
                "probe {} {:?} {:?} {} {} {:?}\n",
                s.fingerprint(),
                m.interval,
                m.timeout,
                m.tolerated_failures,
                m.required_successes,
                m.quorum
            )
        })
        .collect();
    probes.sort();
    for p in probes {
        ctx.update(p.as_bytes());
    }
    hex(&ctx.finish().as_ref()[..8])
}

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

/// How long chitchat keeps a dead node generation's state: long enough to
/// hold its vote (`vote_hold`) and outlast `dead_after`, short enough that
/// the old generations of a restarted node stop being gossiped soon
/// (chitchat stops sending a dead node half-way through this).
fn gossip_grace(t: &Timing) -> Duration {
    Duration::from_secs(20)
        .max(t.dead_after * 4)
        .max(t.vote_hold * 2)
}

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

/// The one place membership changes are logged and notified.
fn announce(shared: &Shared, me: &str, change: Change) {
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

use crate::health::spec::hex;

/// One node's observation as gossiped: `STATUS SINCE_MS SUMMARY`.
fn encode_observation(status: Status, since: SystemTime, summary: &str) -> String {
    format!(
        "{} {} {summary}",
        status.as_str(),
        crate::clock::unix_millis(since)
    )
}

fn decode_observation(v: &str) -> Option<(Status, SystemTime, &str)> {
    let mut parts = v.splitn(3, ' ');
    let name = parts.next()?;
    let status = Status::ALL.into_iter().find(|s| s.as_str() == name)?;
    let since = crate::clock::from_unix_millis(parts.next()?.parse().ok()?);
    Some((status, since, parts.next().unwrap_or("")))
}

/// The last probe in one line, for other nodes' status pages.
fn summary(cell: &HealthCell) -> String {
    let d = cell.details();
    let Some(o) = d.last_probe else {
        return "not probed yet".into();
    };
    let mut s = match (&o.failure, o.http_status) {
        (Some(f), _) => f.reason.clone(),
        (None, Some(code)) => format!("HTTP {code} in {} ms", o.latency.as_millis()),
        (None, None) => format!("connected in {} ms", o.latency.as_millis()),
    };
    s.truncate(160);
    s
}

impl Cluster {
    /// Joins the cluster: binds the gossip socket and starts gossiping and
    /// combining until `shutdown`. `digest` names this node's configuration.
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
        let config = ChitchatConfig {
            chitchat_id: id.clone(),
            cluster_id: "switchyard".into(),
            gossip_interval: settings.gossip_interval,
            listen_addr: settings.listen,
            seed_nodes: settings.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: settings.phi_threshold,
                sampling_window_size: 1000,
                max_interval: Duration::from_secs(10),
                initial_interval: settings.gossip_interval,
                dead_node_grace_period: gossip_grace(&timing),
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let initial = vec![
            (DIGEST.to_string(), shared.config_digest.load().to_string()),
            (VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ];
        let handle =
            chitchat::spawn_chitchat(config, initial, &transport as &dyn Transport).await?;
        let (forget_tx, mut forget_rx) = tokio::sync::mpsc::channel(4);
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
        let wake = shared.cluster_wake.clone();
        let listener = {
            let chitchat = cluster.handle.chitchat();
            let guard = chitchat.lock().await;
            let wake2 = wake.clone();
            let wake3 = wake.clone();
            (
                guard.subscribe_event(OBSERVATION, move |_| wake.notify_one()),
                guard.subscribe_event(OVERRIDE, move |_| wake2.notify_one()),
                guard.subscribe_event(SYNC, move |_| wake3.notify_one()),
            )
        };
        let interval = settings.gossip_interval;
        let stall = stall_threshold(interval);
        shared.gate.arm(
            stall,
            resync_limit(interval) + Duration::from_millis(500),
            shared.cluster_wake.clone(),
        );
        let c = cluster.clone();
        tokio::spawn(async move {
            let _listener = listener;
            let mut state = RoundState::new(id, timing);
            let mut sync = OverrideSync::default();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = std::time::Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                    _ = shared.cluster_wake.notified() => {}
                    Some((name, reply)) = forget_rx.recv() => {
                        let r = state.members.forget(&name, std::time::Instant::now());
                        if let Ok(generation) = r {
                            info!(node = %name, "cluster node forgotten (switchyard cluster forget); the other nodes forget it too");
                            let chitchat = c.handle.chitchat();
                            chitchat
                                .lock()
                                .await
                                .self_node_state()
                                .set(format!("{FORGET}{name}"), generation);
                        }
                        let _ = reply.send(r.map(|_| ()));
                    }
                }
                // This node's own stall: its timers fired late by several
                // rounds (it was stopped, or starved of CPU), or a receive
                // loop saw one. Nobody else's silence, and answers wait
                // until the peers are heard again.
                // (The gap is the wait since the last round ended: a long
                // round, say of a huge configuration, is no stall.)
                let gap = last.elapsed();
                if gap > stall || shared.gate.pending() {
                    let late = gap.saturating_sub(interval);
                    if gap > stall {
                        state.members.stalled(late);
                    }
                    c.resync(&shared, &mut state, late).await;
                }
                c.round(&shared, &mut state).await;
                c.sync_overrides(&shared, &mut sync).await;
                c.rounds.fetch_add(1, std::sync::atomic::Ordering::Release);
                last = std::time::Instant::now();
            }
        });
        Ok(cluster)
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

    /// After this node stalled: gossips with every peer at once and waits
    /// (at most [`resync_limit`]) until each one it counted has been heard
    /// again, so its first verdicts and answers after the stall are the
    /// cluster's, not what it knew before. Answers wait meanwhile (see
    /// [`crate::stall`]).
    async fn resync(&self, shared: &Shared, st: &mut RoundState, late: Duration) {
        let start = std::time::Instant::now();
        shared
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
            .gate
            .complete(crate::stall::mono_ms(std::time::Instant::now()));
    }

    /// Publishes this node's changed observations (gossiping them at once
    /// to every live node), then combines everyone's into the cells.
    async fn round(&self, shared: &Shared, st: &mut RoundState) {
        let probes = shared.probes.load_full();
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        if !st.probes.as_ref().is_some_and(|p| Arc::ptr_eq(p, &probes)) {
            // A new configuration: fingerprints once per probe, not per
            // round. Two cells whose probes differ only in what the
            // fingerprint leaves out (a monitor port an endpoint overrides)
            // get distinct keys, numbered in configuration order, which is
            // the same on every node with the same configuration.
            let mut seen: HashMap<String, usize> = HashMap::new();
            st.keys = probes
                .iter()
                .map(|s| {
                    let fp = s.fingerprint();
                    let n = seen.entry(fp.clone()).or_default();
                    *n += 1;
                    match *n {
                        1 => format!("{OBSERVATION}{fp}"),
                        n => format!("{OBSERVATION}{fp}.{n}"),
                    }
                })
                .collect();
            st.inputs = vec![Vec::new(); probes.len()];
            st.probes = Some(probes.clone());
            // Observations of probes this configuration no longer has are
            // withdrawn, or other nodes would count a frozen vote.
            let keep: std::collections::HashSet<&String> = st.keys.iter().collect();
            let gone: Vec<String> = st
                .published
                .keys()
                .filter(|k| !keep.contains(k))
                .cloned()
                .collect();
            let me = guard.self_node_state();
            for k in gone {
                me.delete(&k);
                st.published.remove(&k);
            }
        }
        // 1. This node's own observations.
        let mut changed = false;
        {
            let me = guard.self_node_state();
            for (spec, key) in probes.iter().zip(&st.keys) {
                let own = own_vote(&spec.cell);
                let since = spec.cell.own_since();
                // The summary changes with every probe: between status
                // changes it is refreshed every SUMMARY_EVERY, or there
                // would be gossip per probe.
                let due = match st.published.get(key) {
                    None => true,
                    Some(p) if p.status != own || p.since != since => {
                        changed = true;
                        true
                    }
                    Some(p) => p.at.elapsed() >= SUMMARY_EVERY,
                };
                if due {
                    me.set(
                        key.clone(),
                        encode_observation(own, since, &summary(&spec.cell)),
                    );
                    st.published.insert(
                        key.clone(),
                        Published {
                            status: own,
                            since,
                            at: std::time::Instant::now(),
                        },
                    );
                }
            }
        }
        let count = st.keys.len().to_string();
        if guard.self_node_state().get(OBSERVATIONS) != Some(count.as_str()) {
            guard.self_node_state().set(OBSERVATIONS, &count);
        }
        let my_digest = shared.config_digest.load().to_string();
        if guard.self_node_state().get(DIGEST) != Some(my_digest.as_str()) {
            guard.self_node_state().set(DIGEST, &my_digest);
        }
        // 2. Who counts.
        let now = std::time::Instant::now();
        let changes = {
            let phi_live: std::collections::HashSet<&ChitchatId> = guard.live_nodes().collect();
            let seen: Vec<Seen<'_>> = guard
                .node_states()
                .iter()
                .map(|(id, state)| Seen {
                    id,
                    heartbeat: state.heartbeat().into(),
                    phi_live: phi_live.contains(id),
                    left: state.get(LEFT).is_some(),
                    digest: state.get(DIGEST).unwrap_or_default(),
                    version: state.get(VERSION).unwrap_or_default(),
                })
                .collect();
            let mut changes = st.members.update(now, &my_digest, seen);
            // Nodes forgotten on another node (`switchyard cluster forget`).
            let forgets: Vec<(String, u64)> = st
                .members
                .counted()
                .filter(|(_, held)| held.is_none())
                .filter_map(|(id, _)| guard.node_state(id))
                .flat_map(|state| {
                    state.iter_prefix(FORGET).filter_map(|(k, v)| {
                        Some((k.strip_prefix(FORGET)?.to_string(), v.value.parse().ok()?))
                    })
                })
                .collect();
            for (name, generation) in forgets {
                if name != self.node && st.members.forget_gossiped(&name, generation, now) {
                    changes.push(Change::Forgotten(name));
                }
            }
            changes
        };
        let live: Vec<(ChitchatId, Option<std::time::Instant>)> = st
            .members
            .counted()
            .map(|(id, held)| (id.clone(), held))
            .collect();
        // Answer the re-sync marks of peers back from a stall, at once.
        let marks: Vec<(String, String, SocketAddr)> = live
            .iter()
            .filter_map(|(id, _)| {
                let mark = guard.node_state(id)?.get(SYNC)?;
                Some((
                    format!("{ACK}{}", id.node_id),
                    mark.to_string(),
                    id.gossip_advertise_addr,
                ))
            })
            .collect();
        for (key, mark, addr) in marks {
            if guard.self_node_state().get(&key) != Some(mark.as_str()) {
                guard.self_node_state().set(key, mark);
                let _ = self.handle.gossip(addr);
            }
        }
        if changed {
            for (id, held) in &live {
                if held.is_none() {
                    let _ = self.handle.gossip(id.gossip_advertise_addr);
                }
            }
        }
        // 3. Combine, where an input changed (or every FULL_EVERY, which
        // refreshes the probe summaries shown).
        let live_key: Vec<(ChitchatId, bool)> = live
            .iter()
            .map(|(id, h)| (id.clone(), h.is_some()))
            .collect();
        let full = live_key != st.live || st.last_full.is_none_or(|t| t.elapsed() >= FULL_EVERY);
        if full {
            st.live.clone_from(&live_key);
            st.last_full = Some(std::time::Instant::now());
        }
        let states: Vec<Option<&chitchat::NodeState>> =
            live.iter().map(|(id, _)| guard.node_state(id)).collect();
        let mut scratch: Vec<(Status, u64, bool)> = Vec::with_capacity(live.len() + 1);
        for (i, spec) in probes.iter().enumerate() {
            let key = &st.keys[i];
            scratch.clear();
            scratch.push((
                own_vote(&spec.cell),
                crate::clock::unix_millis(spec.cell.own_since()),
                true,
            ));
            for state in &states {
                scratch.push(
                    match state.and_then(|s| s.get(key)).and_then(decode_observation) {
                        Some((s, since, _)) => (s, crate::clock::unix_millis(since), true),
                        None => (Status::CheckingEndpoint, 0, false),
                    },
                );
            }
            if !full && st.inputs[i] == scratch {
                continue;
            }
            st.inputs[i].clone_from(&scratch);
            let mut observations = vec![Observation {
                node: self.node.clone(),
                status: scratch[0].0,
                since: crate::clock::from_unix_millis(scratch[0].1),
                summary: summary(&spec.cell),
                counted: true,
                note: None,
            }];
            for ((id, held), state) in live.iter().zip(&states) {
                let held_note = held.map(|until| {
                    format!(
                        "not heard for {}s: its last observation counts for {}s more (cluster.vote_hold)",
                        st.members
                            .listed()
                            .iter()
                            .find(|l| &l.id == id)
                            .map_or(0, |l| now.saturating_duration_since(l.heard_at).as_secs()),
                        until.saturating_duration_since(now).as_secs() + 1
                    )
                });
                let (status, since, summary, counted, note) =
                    match state.and_then(|s| s.get(key)).and_then(decode_observation) {
                        Some((s, since, sum)) => (s, since, sum.to_string(), true, held_note),
                        None => (
                            Status::CheckingEndpoint,
                            SystemTime::UNIX_EPOCH,
                            String::new(),
                            false,
                            Some("probes this endpoint differently (or not at all)".to_string()),
                        ),
                    };
                observations.push(Observation {
                    node: id.node_id.to_string(),
                    status,
                    since,
                    summary,
                    counted,
                    note,
                });
            }
            let q = spec.monitor.quorum.unwrap_or(self.default_quorum);
            let mut verdict = quorum::combine(
                q,
                observations.iter().filter(|o| o.counted).map(|o| o.status),
            );
            // No node has decided, and this one restarted with a saved
            // status: serve with that (as a lone node would) until someone
            // decides; it is never a vote.
            if verdict.deciders == 0 && spec.cell.is_restored() {
                verdict.status = spec.cell.own();
            }
            let before = spec.cell.publish_cluster(ClusterView {
                quorum: q,
                verdict: verdict.clone(),
                observations,
            });
            if before != verdict.status {
                let held = live.iter().filter(|(_, h)| h.is_some()).count();
                let mut msg = verdict.text(q);
                if held > 0 {
                    msg.push_str(&format!("; {held} not heard, last observation held"));
                }
                for (p, e) in &spec.labels {
                    shared.notify.status_changed(
                        crate::notify::ChangeSource::Quorum,
                        p,
                        e,
                        before,
                        verdict.status,
                        &msg,
                    );
                }
            }
        }
        drop(states);
        // 4. What the API and the page show.
        let me_id = guard.self_chitchat_id().clone();
        let my_beat: u64 = guard.node_state(&me_id).map_or(0, |s| s.heartbeat().into());
        drop(guard);
        for change in changes {
            announce(shared, &self.node, change);
        }
        let mut nodes: Vec<ClusterNode> = st
            .members
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
            })
            .collect();
        nodes.push(ClusterNode {
            name: self.node.clone(),
            address: me_id.gossip_advertise_addr,
            alive: true,
            suspect: false,
            vote_held_for: None,
            last_heard: Duration::ZERO,
            this_node: true,
            drifted: st.members.me_drifted(),
            digest: my_digest.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat: my_beat,
            twin: st.members.my_twin(),
        });
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        // Probe targets by each node's observed status, from the inputs
        // last combined (this node first, then `st.live`... as they were).
        let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for inputs in &st.inputs {
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
        shared.cluster.store(Some(Arc::new(ClusterSummary {
            node: self.node.clone(),
            quorum: self.default_quorum,
            majority_digest: st.members.majority_digest().to_string(),
            nodes,
            observations: counts.into_iter().map(|((n, s), c)| (n, s, c)).collect(),
        })));
    }

    /// Takes the overrides other nodes made (the latest version of each
    /// endpoint's wins), applies and saves them, and publishes every
    /// override this node knows, so all nodes converge on the same set.
    async fn sync_overrides(&self, shared: &Arc<Shared>, sync: &mut OverrideSync) {
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        let mut incoming: Vec<(crate::snapshot::EndpointKey, crate::overrides::Override)> =
            Vec::new();
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
                let Ok(record) = serde_json::from_str::<crate::overrides::Override>(v) else {
                    continue;
                };
                incoming.push((crate::snapshot::EndpointKey::new(profile, endpoint), record));
            }
        }
        let mut applied = Vec::new();
        let table = shared.table.load();
        let table_changed = sync.table != Arc::as_ptr(&table) as usize;
        sync.table = Arc::as_ptr(&table) as usize;
        let snapshot = {
            let mut all = shared.overrides.lock().unwrap_or_else(|p| p.into_inner());
            if !sync.seeded {
                // Conflicts known before a restart (carried by the saved
                // winners) were reported then.
                sync.seeded = true;
                for (key, winner) in all.iter() {
                    for lost in &winner.overruled {
                        sync.reported.insert(conflict_id(key, lost, winner));
                    }
                }
            }
            for (key, record) in incoming {
                use crate::overrides::Merged;
                let conflicts = match crate::overrides::merge(&mut all, &key, record) {
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
                        if sync.reported.insert(conflict_id(&key, &lost, &winner)) {
                            sync.report(shared, &key, &lost, &winner);
                        }
                    }
                }
            }
            for (key, record) in &applied {
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
            // Runtime state follows the winning records, set under the
            // overrides lock (so an API change and a gossiped one cannot
            // interleave), for every endpoint when the table was swapped
            // (a reload compiled it from a snapshot that may predate what
            // gossip applied since).
            if table_changed || !applied.is_empty() {
                for ep in &table.endpoints {
                    let profile = table.profiles[ep.profile as usize].name.as_str();
                    let key = crate::snapshot::EndpointKey::new(profile, &ep.name);
                    ep.runtime.apply(crate::overrides::state(all.get(&key)));
                }
            }
            all.clone()
        };
        let save = !applied.is_empty();
        // Publish what changed since last time.
        let mut changed = false;
        let me = guard.self_node_state();
        for (key, record) in &snapshot {
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
        // Saved off the runtime's threads, with gossip free to go on.
        drop(guard);
        if save && let Some(path) = self.state_file.clone() {
            let owned = shared.clone();
            let result =
                tokio::task::spawn_blocking(move || crate::state_file::save(&path, &owned))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(error) = result {
                let problem = format!(
                    "state file: cannot save the runtime overrides from other nodes: {error}"
                );
                tracing::error!("{problem}");
                shared.report_state_problem(problem);
            }
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

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

    #[test]
    fn observations_round_trip() {
        let t = crate::clock::from_unix_millis(1_796_168_154_123);
        let v = encode_observation(Status::Degraded, t, "connect refused");
        assert_eq!(v, "Degraded 1796168154123 connect refused");
        assert_eq!(
            decode_observation(&v),
            Some((Status::Degraded, t, "connect refused"))
        );
        assert_eq!(decode_observation("Bogus 1 x"), None);
        assert_eq!(decode_observation("Online x"), None);
    }
}
