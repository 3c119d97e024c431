//! This node's side of a round: its vote and one-line summary for each
//! probe, the gossip key each goes under, and what it last published.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chitchat::NodeState;

use super::keys::{DIGEST, OBSERVATION, OBSERVATIONS, encode_observation};
use crate::health::spec::ProbeSpec;
use crate::health::{HealthCell, Status};
use crate::state::Shared;

/// How often an unchanged observation's probe summary is republished.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);

/// What this node publishes of its own observations, kept between rounds.
#[derive(Default)]
pub(super) struct Own {
    /// The probes the caches below belong to.
    probes: Option<Arc<Vec<ProbeSpec>>>,
    /// Each probe's observation key (`h:<fingerprint>`).
    pub(super) keys: Vec<String>,
    /// What this node last published, by key.
    published: HashMap<String, Published>,
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
pub(super) fn own_vote(cell: &HealthCell) -> Status {
    if cell.is_restored() {
        Status::CheckingEndpoint
    } else {
        cell.own()
    }
}

/// The last probe in one line, for other nodes' status pages.
pub(super) fn summary(cell: &HealthCell) -> String {
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

impl Own {
    /// The keys and caches belong to `probes` (the configuration has not
    /// changed since they were made).
    pub(super) fn follows(&self, probes: &Arc<Vec<ProbeSpec>>) -> bool {
        self.probes.as_ref().is_some_and(|p| Arc::ptr_eq(p, probes))
    }

    /// A new configuration: keys `probes` and withdraws what this node
    /// published for probes it no longer has.
    pub(super) fn follow(&mut self, probes: &Arc<Vec<ProbeSpec>>, me: &mut NodeState) {
        // A new configuration: fingerprints once per probe, not per
        // round. Two cells whose probes differ only in what the
        // fingerprint leaves out (a monitor port an endpoint overrides)
        // get distinct keys, numbered in configuration order, which is
        // the same on every node with the same configuration.
        let mut seen: HashMap<String, usize> = HashMap::new();
        self.keys = probes
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
        self.probes = Some(probes.clone());
        // Observations of probes this configuration no longer has are
        // withdrawn, or other nodes would count a frozen vote.
        let keep: std::collections::HashSet<&String> = self.keys.iter().collect();
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for k in gone {
            me.delete(&k);
            self.published.remove(&k);
        }
    }

    /// Sets this node's observation of each probe in its gossip state where
    /// it changed (or its summary is due); returns whether a status (or
    /// since when it holds) changed, which is then gossiped at once.
    pub(super) fn publish(&mut self, probes: &[ProbeSpec], me: &mut NodeState) -> bool {
        let mut changed = false;
        for (spec, key) in probes.iter().zip(&self.keys) {
            let own = own_vote(&spec.cell);
            let since = spec.cell.own_since();
            // The summary changes with every probe: between status
            // changes it is refreshed every SUMMARY_EVERY, or there
            // would be gossip per probe.
            let due = match self.published.get(key) {
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
                self.published.insert(
                    key.clone(),
                    Published {
                        status: own,
                        since,
                        at: std::time::Instant::now(),
                    },
                );
            }
        }
        changed
    }

    /// Sets how many observations this node publishes (warm start waits
    /// for as many) and its configuration digest, where they changed;
    /// returns the digest.
    pub(super) fn publish_digest(&self, shared: &Shared, me: &mut NodeState) -> String {
        let count = self.keys.len().to_string();
        if me.get(OBSERVATIONS) != Some(count.as_str()) {
            me.set(OBSERVATIONS, &count);
        }
        let my_digest = shared.config_digest.load().to_string();
        if me.get(DIGEST) != Some(my_digest.as_str()) {
            me.set(DIGEST, &my_digest);
        }
        my_digest
    }
}
