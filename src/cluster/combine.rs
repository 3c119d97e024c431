//! Combining: each probe's observations, this node's and every counted
//! peer's, turned by the probe's quorum ([`crate::health::quorum`]) into
//! the status its health cell serves, with a notification when that
//! changes.

use std::time::{Duration, Instant, SystemTime};

use chitchat::{ChitchatId, NodeState};

use super::keys::decode_observation;
use super::membership::Membership;
use super::node::Cluster;
use super::own::{own_vote, summary};
use crate::health::quorum;
use crate::health::spec::ProbeSpec;
use crate::health::{ClusterView, Observation, Status};
use crate::state::Shared;

/// How often every observation is combined again even when none changed
/// (which refreshes the probe summaries the API shows).
const FULL_EVERY: Duration = Duration::from_secs(10);

/// One node's input to a probe's combination: its status, since when (Unix
/// milliseconds), and whether it counts (it observes the probe as this
/// node does).
pub(super) type Input = (Status, u64, bool);

/// What combining remembers between rounds.
#[derive(Default)]
pub(super) struct Combined {
    /// Each probe's last combined inputs: (status, since, counted) of this
    /// node, then of each counted peer in `live` order.
    pub(super) inputs: Vec<Vec<Input>>,
    /// The counted peers at the last full combination (and whether each
    /// one's vote is held).
    live: Vec<(ChitchatId, bool)>,
    last_full: Option<std::time::Instant>,
}

/// What a round heard of the peers it counts.
pub(super) struct Heard<'a> {
    /// The counted peers, each with when its held vote ends (`None`: it is
    /// alive).
    pub(super) live: &'a [(ChitchatId, Option<Instant>)],
    /// Their gossip states, in `live` order.
    pub(super) states: Vec<Option<&'a NodeState>>,
    /// Who is listed (when each peer was last heard).
    pub(super) members: &'a Membership,
    /// When the round followed the membership.
    pub(super) now: Instant,
    /// Why each counted peer does not vote, in `live` order: its prober is
    /// impaired (`None`: it votes).
    pub(super) impaired: Vec<Option<String>>,
    /// Why this node does not vote: its prober is impaired.
    pub(super) me_impaired: Option<String>,
}

impl Combined {
    /// A new configuration: nothing of it combined yet.
    pub(super) fn reset(&mut self, probes: usize) {
        self.inputs = vec![Vec::new(); probes];
    }

    /// Whether this round combines every probe: the counted peers changed,
    /// or FULL_EVERY passed since the last full combination (which this
    /// one then becomes).
    fn full_this_round(&mut self, live: &[(ChitchatId, Option<Instant>)]) -> bool {
        let live_key: Vec<(ChitchatId, bool)> = live
            .iter()
            .map(|(id, h)| (id.clone(), h.is_some()))
            .collect();
        let full =
            live_key != self.live || self.last_full.is_none_or(|t| t.elapsed() >= FULL_EVERY);
        if full {
            self.live.clone_from(&live_key);
            self.last_full = Some(std::time::Instant::now());
        }
        full
    }
}

/// One probe's inputs into `scratch`: this node's vote, then each counted
/// peer's observation under `key` (not counted when it has none, or when
/// the node's prober is impaired).
fn inputs(scratch: &mut Vec<Input>, spec: &ProbeSpec, key: &str, heard: &Heard<'_>) {
    scratch.clear();
    scratch.push((
        own_vote(&spec.cell),
        crate::clock::unix_millis(spec.cell.own_since()),
        heard.me_impaired.is_none(),
    ));
    for (state, impaired) in heard.states.iter().zip(&heard.impaired) {
        scratch.push(
            match state.and_then(|s| s.get(key)).and_then(decode_observation) {
                Some((s, since, _)) => (s, crate::clock::unix_millis(since), impaired.is_none()),
                None => (Status::CheckingEndpoint, 0, false),
            },
        );
    }
}

impl Cluster {
    /// Combines each probe whose inputs changed (every probe when
    /// [`Combined::full_this_round`]) and publishes the verdicts into the
    /// health cells.
    pub(super) fn combine(
        &self,
        shared: &Shared,
        probes: &[ProbeSpec],
        keys: &[String],
        combined: &mut Combined,
        heard: &Heard<'_>,
    ) {
        let full = combined.full_this_round(heard.live);
        let mut scratch: Vec<Input> = Vec::with_capacity(heard.live.len() + 1);
        for (i, spec) in probes.iter().enumerate() {
            let key = &keys[i];
            inputs(&mut scratch, spec, key, heard);
            if !full && combined.inputs[i] == scratch {
                continue;
            }
            combined.inputs[i].clone_from(&scratch);
            let observations = self.observations(spec, key, &scratch, heard);
            self.decide(shared, spec, observations, heard.live);
        }
    }

    /// Every node's observation of one probe as the API shows it: this
    /// node's, then each counted peer's (with why it is held, or why it
    /// does not count).
    fn observations(
        &self,
        spec: &ProbeSpec,
        key: &str,
        scratch: &[Input],
        heard: &Heard<'_>,
    ) -> Vec<Observation> {
        let now = heard.now;
        let mut observations = vec![Observation {
            node: self.node.clone(),
            status: scratch[0].0,
            since: crate::clock::from_unix_millis(scratch[0].1),
            summary: summary(&spec.cell),
            counted: scratch[0].2,
            note: heard.me_impaired.clone(),
            impaired: heard.me_impaired.is_some(),
        }];
        for (((id, held), state), impaired) in
            heard.live.iter().zip(&heard.states).zip(&heard.impaired)
        {
            let held_note = held.map(|until| {
                format!(
                    "not heard for {}s: its last observation counts for {}s more (cluster.vote_hold)",
                    heard
                        .members
                        .listed()
                        .iter()
                        .find(|l| &l.id == id)
                        .map_or(0, |l| now.saturating_duration_since(l.heard_at).as_secs()),
                    until.saturating_duration_since(now).as_secs() + 1
                )
            });
            let observed = state.and_then(|s| s.get(key)).and_then(decode_observation);
            let stopped = impaired.is_some() && observed.is_some();
            let (status, since, summary, counted, note) = match observed {
                Some((s, since, sum)) if stopped => {
                    (s, since, sum.to_string(), false, impaired.clone())
                }
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
                impaired: stopped,
            });
        }
        observations
    }

    /// Combines the counted observations by the probe's quorum, stores the
    /// verdict in its health cell, and notifies when the status changed.
    fn decide(
        &self,
        shared: &Shared,
        spec: &ProbeSpec,
        observations: Vec<Observation>,
        live: &[(ChitchatId, Option<Instant>)],
    ) {
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
        } else if verdict.deciders == 0 && observations.iter().any(|o| o.impaired) {
            // Every node that would decide is impaired (this one, alone
            // or with the rest): nobody knows better, so what is served
            // stays as it was (static stability).
            verdict.status = spec.cell.get();
        }
        let before = spec.cell.publish_cluster(ClusterView {
            quorum: q,
            verdict: verdict.clone(),
            observations,
        });
        if before != verdict.status && !spec.monitor_of.is_empty() {
            shared.combine_wake.notify_one();
            for (p, e, m) in &spec.monitor_labels {
                tracing::info!(profile = %p, endpoint = %e, monitor = %m, old = %before, new = %verdict.status, "monitor changed by the cluster's quorum: one input of the endpoint's health");
            }
        }
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
}
