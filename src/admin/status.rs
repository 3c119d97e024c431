//! `GET /api/v1/status`: every profile and endpoint as the server sees them.

use std::time::SystemTime;

use serde::Serialize;

use crate::routing::{Health, RoutingTable, Target};

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
    /// The cluster as this node sees it; absent when running alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterDoc>,
}

/// `[cluster]`: the nodes gossip knows of.
#[derive(Serialize)]
pub struct ClusterDoc {
    /// This node's name.
    pub node: String,
    /// The default quorum rule.
    pub quorum: String,
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
    /// `alive`, `suspect` (live but silent for five rounds) or `dead` (by
    /// the failure detector).
    pub state: &'static str,
    /// Seconds since its heartbeat last advanced.
    pub last_heard_s: f64,
    /// This node.
    pub this_node: bool,
    /// Its configuration digest.
    pub digest: String,
    /// Its configuration differs from this node's.
    pub drifted: bool,
    /// Its software version.
    pub version: String,
}

impl ClusterDoc {
    /// From what the cluster task last saw.
    pub fn from_summary(s: &crate::state::ClusterSummary) -> ClusterDoc {
        ClusterDoc {
            node: s.node.clone(),
            quorum: s.quorum.to_string(),
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
                    last_heard_s: (n.last_heard.as_secs_f64() * 10.0).round() / 10.0,
                    this_node: n.this_node,
                    digest: n.digest.clone(),
                    drifted: n.drifted,
                    version: n.version.clone(),
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
    /// Why not, if not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl QuorumDoc {
    fn from_view(v: &crate::health::ClusterView) -> QuorumDoc {
        QuorumDoc {
            quorum: v.quorum.to_string(),
            deciders: v.verdict.deciders,
            degraded: v.verdict.degraded,
            needed: v.verdict.needed,
            observations: v
                .observations
                .iter()
                .map(|o| ObservationDoc {
                    node: o.node.clone(),
                    status: o.status.as_str(),
                    since: (o.since > std::time::UNIX_EPOCH).then(|| ts(o.since)),
                    summary: o.summary.clone(),
                    counted: o.counted,
                    note: o.note,
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
    /// `failing open` or `not answering` (see [`crate::routing::Profile::serving`]).
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
    /// Disabled with `switchyard endpoint disable`.
    pub disabled_at_runtime: bool,
    /// Times it was in an answer.
    pub answers: u64,
    /// The last probe.
    pub last_probe: Option<ProbeDoc>,
    /// Recent status changes, oldest first.
    pub transitions: Vec<TransitionDoc>,
    /// In a cluster: every node's observation and the quorum's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<QuorumDoc>,
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
    table: &RoutingTable,
    problems: &[(SystemTime, String)],
    cluster: Option<&crate::state::ClusterSummary>,
) -> StatusDoc {
    let loaded = table.loaded_at.map(ts);
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
                    let (since, failures, last, transitions) = match &e.health {
                        Health::Monitored(cell) => {
                            let d = cell.details();
                            quorum = d.cluster.as_ref().map(QuorumDoc::from_view);
                            // A runtime override more recent than the last
                            // health change is when the current status began.
                            let since = if e.runtime.is_disabled() {
                                d.since.max(e.runtime.changed_at())
                            } else {
                                d.since
                            };
                            (
                                Some(ts(since)),
                                d.consecutive_failures,
                                d.last_probe.as_ref().map(|o| ProbeDoc {
                                    at: ts(o.at),
                                    latency_ms: (o.latency.as_secs_f64() * 1e4).round() / 10.0,
                                    http_status: o.http_status,
                                    error: o.failure.as_ref().map(|f| f.reason.clone()),
                                }),
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
                        _ => (Some(ts(e.runtime.changed_at())), 0, None, Vec::new()),
                    };
                    EndpointDoc {
                        name: e.name.to_string(),
                        target,
                        status: status.as_str(),
                        since,
                        consecutive_failures: failures,
                        disabled_at_runtime: e.runtime.is_disabled(),
                        answers: e.runtime.answers.load(std::sync::atomic::Ordering::Relaxed),
                        last_probe: last,
                        transitions,
                        cluster: quorum,
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
        cluster: cluster.map(ClusterDoc::from_summary),
    }
}
