//! `GET /api/v1/status`: every profile and endpoint as the server sees them.

use std::time::SystemTime;

use serde::Serialize;

use crate::snapshot::{Health, Snapshot, Target};

/// The whole document.
#[derive(Serialize)]
pub struct StatusDoc {
    /// When this document was made.
    pub generated_at: String,
    /// When the configuration in use was loaded.
    pub config_loaded_at: Option<String>,
    /// Problems an operator should know about (a state file moved aside,
    /// overrides not saved), oldest first.
    pub problems: Vec<ProblemDoc>,
    /// Profiles in load order.
    pub profiles: Vec<ProfileDoc>,
    /// The latest runtime overrides made here or received, newest first.
    pub history: Vec<HistoryDoc>,
    /// The cluster as this node sees it; absent when running alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterDoc>,
    /// The prober's own health: impaired (every status frozen) or not.
    pub prober: super::stability::ProberDoc,
    /// Which path answers UDP queries.
    pub dns: super::udp_path::UdpPathDoc,
}

/// `[cluster]`: the nodes gossip knows of.
#[derive(Serialize)]
pub struct ClusterDoc {
    /// This node's name.
    pub node: String,
    /// The default quorum rule.
    pub quorum: String,
    /// The configuration digest most live nodes run.
    pub majority_digest: String,
    /// Every node, this one included.
    pub nodes: Vec<NodeDoc>,
}

/// One node of the cluster.
#[derive(Serialize)]
pub struct NodeDoc {
    /// Its name.
    pub name: String,
    /// Its gossip address.
    pub address: String,
    /// `alive`, `suspect` (live but silent for five rounds) or `dead`
    /// (suspected by the failure detector and silent for
    /// `cluster.dead_after`).
    pub state: &'static str,
    /// Dead, but its last observations count for this many more seconds
    /// (`cluster.vote_hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vote_held_s: Option<f64>,
    /// Another live process gossips under this name, at this address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twin: Option<String>,
    /// Seconds since its heartbeat last advanced.
    pub last_heard_s: f64,
    /// This node.
    pub this_node: bool,
    /// Its configuration digest.
    pub digest: String,
    /// Its configuration differs from the one most live nodes run.
    pub drifted: bool,
    /// Its software version.
    pub version: String,
    /// Its prober is impaired (it is the one failing), so its observations
    /// are not counted: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impaired: Option<String>,
}

impl ClusterDoc {
    /// From what the cluster task last saw.
    pub fn from_summary(s: &crate::state::ClusterSummary) -> ClusterDoc {
        ClusterDoc {
            node: s.node.clone(),
            quorum: s.quorum.to_string(),
            majority_digest: s.majority_digest.clone(),
            nodes: s
                .nodes
                .iter()
                .map(|n| NodeDoc {
                    name: n.name.clone(),
                    address: n.address.to_string(),
                    state: match (n.alive, n.suspect) {
                        (false, _) => "dead",
                        (true, true) => "suspect",
                        (true, false) => "alive",
                    },
                    vote_held_s: n
                        .vote_held_for
                        .map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
                    twin: n.twin.map(|a| a.to_string()),
                    last_heard_s: (n.last_heard.as_secs_f64() * 10.0).round() / 10.0,
                    this_node: n.this_node,
                    digest: n.digest.clone(),
                    drifted: n.drifted,
                    version: n.version.clone(),
                    impaired: n.impaired.clone(),
                })
                .collect(),
        }
    }
}

/// How the cluster decided an endpoint's status.
#[derive(Serialize)]
pub struct QuorumDoc {
    /// The rule.
    pub quorum: String,
    /// Live nodes whose identical probe has decided.
    pub deciders: usize,
    /// Of those, how many see it Degraded.
    pub degraded: usize,
    /// Degraded observations needed.
    pub needed: usize,
    /// The verdict in words (as the log and notifications say it).
    pub summary: String,
    /// Every node's observation.
    pub observations: Vec<ObservationDoc>,
}

/// One node's observation of an endpoint.
#[derive(Serialize)]
pub struct ObservationDoc {
    /// The node.
    pub node: String,
    /// Its decided status.
    pub status: &'static str,
    /// Since when.
    pub since: Option<String>,
    /// Its last probe, in one line.
    pub summary: String,
    /// Counted by the quorum rule.
    pub counted: bool,
    /// Why not, if not (or why a node not heard still counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl QuorumDoc {
    fn from_view(v: &crate::health::ClusterView) -> QuorumDoc {
        QuorumDoc {
            quorum: v.quorum.to_string(),
            deciders: v.verdict.deciders,
            degraded: v.verdict.degraded,
            needed: v.verdict.needed,
            summary: v.verdict.text(v.quorum),
            observations: v
                .observations
                .iter()
                .map(|o| ObservationDoc {
                    node: o.node.clone(),
                    status: o.status.as_str(),
                    since: (o.since > std::time::UNIX_EPOCH).then(|| ts(o.since)),
                    summary: o.summary.clone(),
                    counted: o.counted,
                    note: o.note.clone(),
                })
                .collect(),
        }
    }
}

/// A server-level problem.
#[derive(Serialize)]
pub struct ProblemDoc {
    /// When it happened.
    pub at: String,
    /// What happened.
    pub message: String,
}

/// One profile.
#[derive(Serialize)]
pub struct ProfileDoc {
    /// Its name.
    pub name: String,
    /// Routing method.
    pub routing: &'static str,
    /// Profile status.
    pub status: &'static str,
    /// Answer TTL.
    pub ttl: u32,
    /// What it answers now: `healthy`, `unmonitored`, `unverified`,
    /// `failing open` or `not answering` (see [`crate::snapshot::Profile::serving`]).
    pub serving: &'static str,
    /// Monitored profiles: the worst case, in seconds, from an endpoint
    /// failing to the last cached answer naming it expiring (detection +
    /// TTL).
    pub worst_failover_s: Option<f64>,
    /// The file it came from.
    pub file: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointDoc>,
}

/// One endpoint.
#[derive(Serialize)]
pub struct EndpointDoc {
    /// Its name.
    pub name: String,
    /// What it answers.
    pub target: String,
    /// Current status.
    pub status: &'static str,
    /// When the current status began.
    pub since: Option<String>,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Disabled with `switchyard endpoint disable` (or drained).
    pub disabled_at_runtime: bool,
    /// The runtime override on it, in force or the last one (an enable, or
    /// a disable that ran out).
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<OverrideDoc>,
    /// `failback = "manual"`: it recovered and is held out until resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldDoc>,
    /// When it was last in an answer from this node.
    pub last_served: Option<String>,
    /// When that answer leaves resolver caches (answer time plus TTL).
    pub served_until: Option<String>,
    /// Times it was in an answer.
    pub answers: u64,
    /// The last probe.
    pub last_probe: Option<ProbeDoc>,
    /// HTTPS: the certificate the endpoint last presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateDoc>,
    /// Recent status changes, oldest first.
    pub transitions: Vec<TransitionDoc>,
    /// In a cluster: every node's observation and the quorum's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<QuorumDoc>,
    /// Why it has its status, in words (as `explain` says it).
    pub why: String,
    /// While it sheds new traffic: "shed 30 % (load 0.91 > 0.85)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shed: Option<String>,
    /// The load its probes last reported (1.0: at capacity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// Named monitors (`[[monitors]]`): how they combine and each one's
    /// status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitors: Option<MonitorsDoc>,
}

/// An endpoint's named monitors.
#[derive(Serialize)]
pub struct MonitorsDoc {
    /// `health`: `all`, `any` or `at_least = N`.
    pub health: String,
    /// Each monitor, in configuration order.
    pub monitors: Vec<MonitorDoc>,
}

/// One named monitor of an endpoint.
#[derive(Serialize)]
pub struct MonitorDoc {
    /// Its name.
    pub name: String,
    /// What it checks: `tcp 10.1.2.3:5432`.
    pub checks: String,
    /// `invert = true`.
    pub invert: bool,
    /// Its probe's status (before `invert`).
    pub status: &'static str,
    /// What it counts as in the combination: `up`, `down` or `unknown`.
    pub verdict: &'static str,
    /// When its status began.
    pub since: String,
    /// Consecutive failed probes.
    pub consecutive_failures: u32,
    /// Its last probe.
    pub last_probe: Option<ProbeDoc>,
    /// In a cluster: every node's observation and the quorum's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<QuorumDoc>,
    /// A push monitor: what its pushes say now ("pushed Degraded until
    /// ...: reason", "push expired at ...", "no push yet").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
}

impl ProbeDoc {
    fn of(o: &crate::health::probe::Outcome) -> ProbeDoc {
        ProbeDoc {
            at: ts(o.at),
            latency_ms: (o.latency.as_secs_f64() * 1e4).round() / 10.0,
            http_status: o.http_status,
            error: o.failure.as_ref().map(|f| f.reason.clone()),
        }
    }
}

impl MonitorsDoc {
    fn of(m: &crate::health::combine::Monitors) -> MonitorsDoc {
        use crate::health::combine::Verdict;
        MonitorsDoc {
            health: m.rule.to_string(),
            monitors: m
                .inputs
                .iter()
                .map(|i| {
                    let d = i.cell.details();
                    MonitorDoc {
                        name: i.name.to_string(),
                        checks: i.what.clone(),
                        invert: i.invert,
                        status: i.cell.get().as_str(),
                        verdict: match i.verdict() {
                            Verdict::Up => "up",
                            Verdict::Down => "down",
                            Verdict::Unknown => "unknown",
                        },
                        since: ts(d.since),
                        consecutive_failures: d.consecutive_failures,
                        last_probe: d.last_probe.as_ref().map(ProbeDoc::of),
                        cluster: d.cluster.as_ref().map(QuorumDoc::from_view),
                        pushed: i.push.and(d.note.clone()),
                    }
                })
                .collect(),
        }
    }
}

/// A runtime override as shown.
#[derive(Serialize)]
pub struct OverrideDoc {
    /// `disable`, `drain`, `shed`, `enable` or `resume`.
    pub action: &'static str,
    /// Acts on the endpoint now: keeps it out of answers (a disable, a
    /// drain), ramps it out (a drain `--over`) or sheds (a shed).
    pub in_force: bool,
    /// A shed by hand: the percentage of client networks moved away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shed_percent: Option<u16>,
    /// A drain that ramps (`--over`): where the ramp stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampDoc>,
    /// When it was made.
    pub at: String,
    /// Who: the admin token's name, `admin API`, or a rule.
    pub by: Option<String>,
    /// Why (`--reason`).
    pub reason: Option<String>,
    /// The node it was made on.
    pub node: String,
    /// When it ends by itself (`--for`).
    pub until: Option<String>,
    /// Seconds left until then (0 once over).
    pub remaining_s: Option<u64>,
    /// A drain: when the last cached answer naming it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainDoc>,
}

/// Where a drain's ramp stands (`drain --over`): the share of new traffic
/// it sheds rises in steps until its end, when the endpoint is out of
/// answers.
#[derive(Serialize)]
pub struct RampDoc {
    /// How long it lasts, in seconds.
    pub over_s: f64,
    /// Its steps (one per 30 s, at least 10, at most 100).
    pub steps: u32,
    /// The step it is at, from 1; absent once over.
    pub step: Option<u32>,
    /// The share of new traffic (client networks) shed now, in percent;
    /// 100 once over.
    pub shed_percent: f64,
    /// When it ends: out of answers from then on.
    pub out_at: String,
    /// Seconds left until then (0 once over).
    pub remaining_s: u64,
    /// True once over.
    pub done: bool,
}

/// Where a drain stands.
#[derive(Serialize)]
pub struct DrainDoc {
    /// When the last answer naming it leaves resolver caches: its last
    /// answer from this node plus that answer's TTL (the drain time if it
    /// was not answered since the state file began tracking it). While a
    /// ramp runs: its end plus the endpoint's TTL at the earliest.
    pub drained_at: String,
    /// `drained_at` as Unix seconds.
    pub drained_at_unix: u64,
    /// True once `drained_at` is past.
    pub drained: bool,
    /// Seconds left until then.
    pub remaining_s: u64,
    /// When it was last in an answer from this node, if since the server
    /// (or its state file) knew.
    pub last_served: Option<String>,
}

/// A hold (`failback = "manual"`).
#[derive(Serialize)]
pub struct HeldDoc {
    /// When the endpoint recovered (and the hold began).
    pub since: String,
    /// When the hold ends by itself (`failback_after`); absent: until
    /// resumed.
    pub until: Option<String>,
    /// Seconds left until then.
    pub remaining_s: Option<u64>,
}

/// One override in the history.
#[derive(Serialize)]
pub struct HistoryDoc {
    /// When.
    pub at: String,
    /// The profile.
    pub profile: String,
    /// The endpoint.
    pub endpoint: String,
    /// `disable`, `drain`, `shed`, `enable` or `resume`.
    pub action: &'static str,
    /// A shed: its percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shed_percent: Option<u16>,
    /// A drain that ramps: over how long, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_s: Option<f64>,
    /// Who.
    pub by: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Where it was made.
    pub node: String,
    /// When it ends by itself.
    pub until: Option<String>,
}

/// What the page and the API show of an endpoint's override `record` at
/// `now_ms`.
pub fn override_view(
    ep: &crate::snapshot::Endpoint,
    record: Option<&crate::overrides::Override>,
    now_ms: u64,
) -> Option<OverrideDoc> {
    let r = record?;
    let ms = |v: u64| ts(crate::clock::from_unix_millis(v));
    let ramp = r.ramp_end().map(|end| {
        let over = end - r.at;
        let step = crate::snapshot::shed::ramp_step(r.at, over, now_ms);
        RampDoc {
            over_s: over as f64 / 1000.0,
            steps: crate::snapshot::shed::ramp_steps(over),
            step: step.map(|(k, _)| k),
            shed_percent: step.map_or(100.0, |(k, n)| f64::from(k * 1000 / n) / 10.0),
            out_at: ms(end),
            remaining_s: end.saturating_sub(now_ms).div_ceil(1000),
            done: step.is_none(),
        }
    });
    let drain = (r.drain && r.disabled).then(|| {
        let (last, until) = ep.runtime.served();
        // Never answered since it was tracked: drained when drained (at
        // the end of its ramp); while it ramps, answers go on until then.
        let out = r.ramp_end().unwrap_or(r.at).div_ceil(1000);
        let at = match r.ramp_end() {
            Some(end) if now_ms < end => until.max(out + u64::from(ep.rr.ttl()) + 1),
            _ => until.max(out),
        };
        let now = now_ms / 1000;
        DrainDoc {
            drained_at: ms(at * 1000),
            drained_at_unix: at,
            drained: now >= at,
            remaining_s: at.saturating_sub(now),
            last_served: (last > 0).then(|| ms(last * 1000)),
        }
    });
    Some(OverrideDoc {
        action: r.kind().as_str(),
        in_force: r.in_force(now_ms),
        shed_percent: r.shed,
        ramp,
        at: ms(r.at),
        by: r.by.clone(),
        reason: r.reason.clone(),
        node: r.node.clone(),
        until: r.until.map(ms),
        remaining_s: r.until.map(|u| u.saturating_sub(now_ms).div_ceil(1000)),
        drain,
    })
}

/// A probe result.
#[derive(Serialize)]
pub struct ProbeDoc {
    /// When it was sent.
    pub at: String,
    /// How long it took.
    pub latency_ms: f64,
    /// HTTP status, if any.
    pub http_status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The certificate an HTTPS endpoint last presented.
#[derive(Serialize)]
pub struct CertificateDoc {
    /// Its `notAfter`.
    pub not_after: String,
    /// `not_after` as Unix seconds.
    pub not_after_unix: i64,
    /// Whole days left; once expired, minus the whole days since.
    pub days_left: i64,
    /// The monitor's `cert_warning`, in seconds.
    pub warning_s: u64,
    /// Less than `cert_warning` is left.
    pub expiring: bool,
    /// While `expiring`: what `status` and the page say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// When a probe last saw it.
    pub seen_at: String,
}

impl CertificateDoc {
    /// What the API shows of `c` at `now`.
    pub fn new(c: &crate::health::cert::Certificate, now: SystemTime) -> CertificateDoc {
        CertificateDoc {
            not_after: ts(c.not_after),
            not_after_unix: c.not_after_unix(),
            days_left: c.remaining_secs(now) / 86_400,
            warning_s: c.warn_within.as_secs(),
            expiring: c.expiring(now),
            warning: c.warning(now),
            seen_at: ts(c.seen),
        }
    }
}

/// A status change.
#[derive(Serialize)]
pub struct TransitionDoc {
    /// When.
    pub at: String,
    /// Before.
    pub from: &'static str,
    /// After.
    pub to: &'static str,
    /// Why.
    pub reason: String,
}

use crate::clock::rfc3339_millis as ts;

/// Builds the document from a snapshot and the server's problems.
pub fn build(
    table: &Snapshot,
    problems: &[(SystemTime, String)],
    cluster: Option<&crate::state::ClusterSummary>,
    overrides: &crate::overrides::Overrides,
    history: &[(crate::snapshot::EndpointKey, crate::overrides::Override)],
    prober: super::stability::ProberDoc,
    dns: super::udp_path::UdpPathDoc,
) -> StatusDoc {
    let loaded = table.loaded_at.map(ts);
    let now_ms = crate::clock::now_millis();
    let ms = |v: u64| ts(crate::clock::from_unix_millis(v));
    let profiles = table
        .profiles
        .iter()
        .map(|p| ProfileDoc {
            name: p.name.to_string(),
            routing: p.routing.name(),
            status: table.profile_status(p),
            ttl: p.ttl,
            serving: p.serving(table),
            worst_failover_s: p.worst_failover().map(|d| d.as_secs_f64()),
            file: p.source.display().to_string(),
            endpoints: table
                .endpoints_of(p)
                .iter()
                .map(|e| {
                    let status = table.shown_status(p, e);
                    let target = match e.target {
                        Target::Nested(c) => table
                            .profiles
                            .get(c as usize)
                            .map_or("?".into(), |c| format!("profile {}", c.name)),
                        ref t => t.to_string(),
                    };
                    let mut quorum = None;
                    let mut certificate = None;
                    let effective = table.effective(p, e);
                    let since = effective.since.map(ts);
                    let (failures, last, transitions) = match &e.health {
                        Health::Monitored(cell) => {
                            let d = cell.details();
                            quorum = d.cluster.as_ref().map(QuorumDoc::from_view);
                            certificate = e
                                .certificate()
                                .map(|c| CertificateDoc::new(&c, SystemTime::now()));
                            (
                                d.consecutive_failures,
                                d.last_probe.as_ref().map(ProbeDoc::of),
                                d.transitions
                                    .iter()
                                    .map(|(at, from, to, reason)| TransitionDoc {
                                        at: ts(*at),
                                        from: from.as_str(),
                                        to: to.as_str(),
                                        reason: reason.clone(),
                                    })
                                    .collect(),
                            )
                        }
                        _ => (0, None, Vec::new()),
                    };
                    let key = crate::snapshot::EndpointKey::new(p.name.as_str(), &e.name);
                    let (served, served_until) = e.runtime.served();
                    EndpointDoc {
                        name: e.name.to_string(),
                        target,
                        status: status.as_str(),
                        since,
                        consecutive_failures: failures,
                        disabled_at_runtime: e.runtime.is_disabled(),
                        override_: override_view(e, overrides.get(&key), now_ms),
                        held: e.hold_now().map(|(since, until)| HeldDoc {
                            since: ms(since),
                            until: (until > 0).then(|| ms(until)),
                            remaining_s: (until > 0)
                                .then(|| until.saturating_sub(now_ms).div_ceil(1000)),
                        }),
                        last_served: (served > 0).then(|| ms(served * 1000)),
                        served_until: (served_until > 0).then(|| ms(served_until * 1000)),
                        answers: e.runtime.answers.load(std::sync::atomic::Ordering::Relaxed),
                        last_probe: last,
                        certificate,
                        transitions,
                        cluster: quorum,
                        why: effective.to_string(),
                        shed: e.runtime.shed_text(),
                        load: e.load().map(|l| f64::from(l) / 1000.0),
                        monitors: e.monitors.as_deref().map(MonitorsDoc::of),
                    }
                })
                .collect(),
        })
        .collect::<Vec<ProfileDoc>>();
    // What needs attention first: profiles not served by a healthy
    // endpoint, then monitored ones, then the rest; by name within each.
    let mut profiles = profiles;
    profiles.sort_by_key(|p| {
        let rank = match p.serving {
            "failing open" | "not answering" => 0,
            _ if p.worst_failover_s.is_some() => 1,
            _ => 2,
        };
        (rank, p.name.clone())
    });
    StatusDoc {
        dns,
        generated_at: ts(SystemTime::now()),
        config_loaded_at: loaded,
        problems: problems
            .iter()
            .map(|(at, message)| ProblemDoc {
                at: ts(*at),
                message: message.clone(),
            })
            .collect(),
        profiles,
        history: history
            .iter()
            .rev()
            .map(|(k, r)| HistoryDoc {
                at: ms(r.at),
                profile: k.profile().to_string(),
                endpoint: k.endpoint().to_string(),
                action: r.kind().as_str(),
                shed_percent: r.shed,
                over_s: r.over_ms.map(|o| o as f64 / 1000.0),
                by: r.by.clone(),
                reason: r.reason.clone(),
                node: r.node.clone(),
                until: r.until.map(ms),
            })
            .collect(),
        cluster: cluster.map(ClusterDoc::from_summary),
        prober,
    }
}
