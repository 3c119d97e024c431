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
/// Phi above which the failure detector calls a node dead (chitchat's and
/// Cassandra's default). With heartbeats every `gossip_interval` a silent
/// node crosses it after about 18 intervals (4.6 s at the default 250 ms).
const PHI_THRESHOLD: f64 = 8.0;

/// How often an unchanged observation's probe summary is republished.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);

/// How often every observation is combined again even when none changed
/// (which refreshes the probe summaries the API shows).
const FULL_EVERY: Duration = Duration::from_secs(10);

/// What the combining task keeps between rounds.
#[derive(Default)]
struct RoundState {
    /// The probes the caches below belong to.
    probes: Option<Arc<Vec<ProbeSpec>>>,
    /// Each probe's observation key (`h:<fingerprint>`).
    keys: Vec<String>,
    /// What this node last published, by key.
    published: HashMap<String, Published>,
    /// Each probe's last combined inputs: (status, since, counted) of this
    /// node, then of each live peer in `live` order.
    inputs: Vec<Vec<(Status, u64, bool)>>,
    /// The live peers at the last full combination.
    live: Vec<ChitchatId>,
    last_full: Option<std::time::Instant>,
    /// A node with this node's name was reported.
    twin_reported: bool,
    /// Each node last seen: alive, configuration digest, ever alive (for
    /// log lines on a change).
    seen: HashMap<String, (bool, String, bool)>,
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

/// What the override sync remembers between rounds.
#[derive(Default)]
struct OverrideSync {
    /// The table last reconciled with the overrides (its address).
    table: usize,
    /// What this node publishes, by key.
    published: HashMap<String, crate::overrides::Override>,
    /// Lost records already reported, by endpoint and version.
    reported: std::collections::HashSet<(crate::routing::EndpointKey, (u64, String))>,
}

impl OverrideSync {
    fn report(
        &self,
        shared: &Shared,
        key: &crate::routing::EndpointKey,
        lost: &crate::overrides::Override,
        winner: &crate::overrides::Override,
    ) {
        let what = |o: &crate::overrides::Override| o.kind().as_str();
        let problem = format!(
            "override conflict on {key}: {} by {} at {} lost to {} by {} at {} (made without knowing of each other; the later wins)",
            what(lost),
            lost.node,
            crate::clock::rfc3339_millis(crate::clock::from_unix_millis(lost.at)),
            what(winner),
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
    /// Each node's last heartbeat seen, and when it last changed.
    heard: std::sync::Mutex<HashMap<String, (u64, std::time::Instant)>>,
    gossip_interval: Duration,
    /// Gossip traffic counters.
    pub stats: Arc<transport::Stats>,
}

/// A digest of the compiled configuration: zones and records, profiles,
/// endpoints and probes, not file names, comments or layout. Nodes with
/// equal digests answer alike.
pub fn config_digest(table: &crate::routing::RoutingTable, probes: &[ProbeSpec]) -> String {
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
        let config = ChitchatConfig {
            chitchat_id: id,
            cluster_id: "switchyard".into(),
            gossip_interval: settings.gossip_interval,
            listen_addr: settings.listen,
            seed_nodes: settings.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: PHI_THRESHOLD,
                sampling_window_size: 1000,
                max_interval: Duration::from_secs(10),
                initial_interval: settings.gossip_interval,
                dead_node_grace_period: Duration::from_secs(3600),
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
        let cluster = Arc::new(Cluster {
            handle,
            node: settings.node.clone(),
            default_quorum: settings.quorum,
            state_file,
            rounds: Default::default(),
            heard: Default::default(),
            gossip_interval: settings.gossip_interval,
            stats,
        });
        info!(node = %settings.node, listen = %settings.listen, seeds = ?settings.seeds, "cluster gossip started");
        // Gossip that brings an observation wakes the combiner.
        let wake = shared.cluster_wake.clone();
        let listener = {
            let chitchat = cluster.handle.chitchat();
            let guard = chitchat.lock().await;
            let wake2 = wake.clone();
            (
                guard.subscribe_event(OBSERVATION, move |_| wake.notify_one()),
                guard.subscribe_event(OVERRIDE, move |_| wake2.notify_one()),
            )
        };
        let c = cluster.clone();
        let interval = settings.gossip_interval;
        tokio::spawn(async move {
            let _listener = listener;
            let mut state = RoundState::default();
            let mut sync = OverrideSync::default();
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                    _ = shared.cluster_wake.notified() => {}
                }
                c.round(&shared, &mut state).await;
                c.sync_overrides(&shared, &mut sync).await;
                c.rounds.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            let _ = c.handle.initiate_shutdown();
        });
        Ok(cluster)
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
        let live = newest_generations(guard.live_nodes(), &self.node);
        if changed {
            for id in &live {
                let _ = self.handle.gossip(id.gossip_advertise_addr);
            }
        }
        // 2. Combine, where an input changed (or every FULL_EVERY, which
        // refreshes the probe summaries shown).
        let full = live != st.live || st.last_full.is_none_or(|t| t.elapsed() >= FULL_EVERY);
        if full {
            st.live.clone_from(&live);
            st.last_full = Some(std::time::Instant::now());
        }
        let states: Vec<Option<&chitchat::NodeState>> =
            live.iter().map(|id| guard.node_state(id)).collect();
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
            for (id, state) in live.iter().zip(&states) {
                let (status, since, summary, counted, note) =
                    match state.and_then(|s| s.get(key)).and_then(decode_observation) {
                        Some((s, since, sum)) => (s, since, sum.to_string(), true, None),
                        None => (
                            Status::CheckingEndpoint,
                            SystemTime::UNIX_EPOCH,
                            String::new(),
                            false,
                            Some("probes this endpoint differently (or not at all)"),
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
                let labels: Vec<String> = spec
                    .labels
                    .iter()
                    .map(|(p, e)| format!("{p}/{e}"))
                    .collect();
                let msg = format!(
                    "{} of {} deciding nodes see it Degraded, quorum {q} needs {}",
                    verdict.degraded, verdict.deciders, verdict.needed
                );
                for (p, e) in &spec.labels {
                    shared.notify.emit(crate::notify::Event::endpoint(
                        p,
                        e,
                        before,
                        verdict.status,
                        &msg,
                    ));
                }
                if verdict.status == Status::Degraded {
                    warn!(endpoints = ?labels, old = %before, new = %verdict.status, reason = %msg, "endpoint status changed (cluster)");
                } else {
                    info!(endpoints = ?labels, old = %before, new = %verdict.status, reason = %msg, "endpoint status changed (cluster)");
                }
            }
        }
        drop(states);
        // 3. What the API and the page show.
        let my_digest = shared.config_digest.load().to_string();
        if guard.self_node_state().get(DIGEST) != Some(my_digest.as_str()) {
            guard.self_node_state().set(DIGEST, &my_digest);
        }
        let live_set: std::collections::HashSet<&ChitchatId> = guard.live_nodes().collect();
        let mut nodes = BTreeMap::new();
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        // A restarted node is a new generation of the same name: show the
        // newest (the old one lingers in gossip until it is collected).
        let mut newest: BTreeMap<&str, (&ChitchatId, &chitchat::NodeState)> = BTreeMap::new();
        for (id, state) in guard.node_states() {
            let slot = newest.entry(id.node_id.as_ref()).or_insert((id, state));
            if id.generation_id > slot.0.generation_id {
                *slot = (id, state);
            }
        }
        heard.retain(|name, _| newest.contains_key(name.as_str()));
        // Another live node with this node's name (two hosts with the same
        // host name, no `node` set): each would ignore the other.
        let me = guard.self_chitchat_id().clone();
        if let Some(twin) = guard.live_nodes().find(|id| {
            id.node_id == me.node_id && id.gossip_advertise_addr != me.gossip_advertise_addr
        }) && !st.twin_reported
        {
            st.twin_reported = true;
            let problem = format!(
                "another node, at {}, is also named {}: give each node its own `cluster.node` (they ignore each other's observations and overrides)",
                twin.gossip_advertise_addr, self.node
            );
            tracing::error!("{problem}");
            shared.report_problem(problem);
        }
        for (id, state) in newest.into_values() {
            let alive_now = id.node_id.as_ref() == self.node || live_set.contains(id);
            let digest_now = state.get(DIGEST).unwrap_or_default();
            let seen = st.seen.get(id.node_id.as_ref()).cloned();
            if id.node_id.as_ref() != self.node {
                let addr = id.gossip_advertise_addr;
                match &seen {
                    None | Some((false, _, false)) if alive_now => {
                        info!(node = %id.node_id, address = %addr, "cluster node joined");
                        shared.notify.emit(crate::notify::Event::node_joined(
                            &id.node_id,
                            format!("at {addr}"),
                        ));
                    }
                    Some((false, _, true)) if alive_now => {
                        info!(node = %id.node_id, address = %addr, "cluster node alive again");
                        shared.notify.emit(crate::notify::Event::node_joined(
                            &id.node_id,
                            format!("alive again at {addr}"),
                        ));
                    }
                    Some((true, _, _)) if !alive_now => {
                        warn!(node = %id.node_id, address = %addr, "cluster node dead (no longer counted in quorums)");
                        shared.notify.emit(crate::notify::Event::node_left(
                            &id.node_id,
                            format!("at {addr}"),
                        ));
                    }
                    _ => {}
                }
                let was_drifted = seen
                    .as_ref()
                    .is_some_and(|(_, d, _)| !d.is_empty() && d != &my_digest);
                let drifted_now = !digest_now.is_empty() && digest_now != my_digest;
                if drifted_now && !was_drifted {
                    warn!(node = %id.node_id, digest = digest_now, this_node = %my_digest, "cluster node runs a different configuration (keep profiles and zones the same on every node)");
                    shared.notify.emit(crate::notify::Event::node_drift(
                        &id.node_id,
                        true,
                        format!(
                            "its configuration digest is {digest_now}, this node's {my_digest}"
                        ),
                    ));
                } else if !drifted_now && was_drifted && !digest_now.is_empty() {
                    info!(node = %id.node_id, "cluster node runs the same configuration again");
                    shared
                        .notify
                        .emit(crate::notify::Event::node_drift(&id.node_id, false, ""));
                }
            }
            let ever = alive_now || seen.as_ref().is_some_and(|s| s.2);
            st.seen.insert(
                id.node_id.to_string(),
                (alive_now, digest_now.to_string(), ever),
            );
            let digest = state.get(DIGEST).unwrap_or_default().to_string();
            let me = id.node_id.as_ref() == self.node;
            let beat: u64 = state.heartbeat().into();
            let entry = heard
                .entry(id.node_id.to_string())
                .or_insert((beat, std::time::Instant::now()));
            if entry.0 != beat || me {
                // (A new generation restarts its heartbeat: any change is
                // news.)
                *entry = (beat, std::time::Instant::now());
            }
            let silent = entry.1.elapsed();
            nodes.insert(
                id.node_id.to_string(),
                ClusterNode {
                    name: id.node_id.to_string(),
                    address: id.gossip_advertise_addr,
                    alive: me || live_set.contains(id),
                    // Live by the failure detector, but silent for more
                    // than five rounds: on its way to dead, or back.
                    suspect: !me && live_set.contains(id) && silent > self.gossip_interval * 5,
                    last_heard: silent,
                    this_node: me,
                    drifted: digest != my_digest,
                    digest,
                    version: state.get(VERSION).unwrap_or_default().to_string(),
                    heartbeat: state.heartbeat().into(),
                },
            );
        }
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
                        Some(id) => id.node_id.to_string(),
                        None => continue,
                    }
                };
                *counts.entry((node, status.as_str())).or_default() += 1;
            }
        }
        shared.cluster.store(Some(Arc::new(ClusterSummary {
            node: self.node.clone(),
            quorum: self.default_quorum,
            nodes: nodes.into_values().collect(),
            observations: counts.into_iter().map(|((n, s), c)| (n, s, c)).collect(),
        })));
    }

    /// Takes the overrides other nodes made (the latest version of each
    /// endpoint's wins), applies and saves them, and publishes every
    /// override this node knows, so all nodes converge on the same set.
    async fn sync_overrides(&self, shared: &Arc<Shared>, sync: &mut OverrideSync) {
        let chitchat = self.handle.chitchat();
        let mut guard = chitchat.lock().await;
        let mut incoming: Vec<(crate::routing::EndpointKey, crate::overrides::Override)> =
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
                incoming.push((crate::routing::EndpointKey::new(profile, endpoint), record));
            }
        }
        let mut applied = Vec::new();
        let table = shared.table.load();
        let table_changed = sync.table != Arc::as_ptr(&table) as usize;
        sync.table = Arc::as_ptr(&table) as usize;
        let snapshot = {
            let mut all = shared.overrides.lock().unwrap_or_else(|p| p.into_inner());
            for (key, record) in incoming {
                use crate::overrides::Merged;
                let version = (record.at, record.node.clone());
                match crate::overrides::merge(&mut all, &key, record.clone()) {
                    Merged::Unchanged => {}
                    Merged::Applied => applied.push((key, record)),
                    Merged::AppliedOver { lost } => {
                        sync.report(shared, &key, &lost, &record);
                        applied.push((key, record));
                    }
                    Merged::Lost => {
                        if let Some(winner) = all.get(&key).cloned()
                            && sync.reported.insert((key.clone(), version))
                        {
                            sync.report(shared, &key, &record, &winner);
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
                    let key = crate::routing::EndpointKey::new(profile, &ep.name);
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
