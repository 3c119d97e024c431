//! What the status document says of the prober's own health (static
//! stability): whether it is impaired and every status frozen, why, since
//! when, and its canaries.

use serde::Serialize;

use crate::clock::rfc3339_millis as ts;
use crate::health::freeze::View;
use crate::health::impaired::Episode;

/// `prober` in `/api/v1/status`.
#[derive(Serialize)]
pub struct ProberDoc {
    /// This node's prober is the one failing: every status is frozen as
    /// it was, and (in a cluster) this node does not vote.
    pub impaired: bool,
    /// While impaired, in one line: "statuses frozen since
    /// 2026-12-07T12:03:04Z: prober impaired, 47 of 50 probe targets
    /// failed together".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The episode in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeDoc>,
    /// The last episode that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_episode: Option<EpisodeDoc>,
    /// Episodes since the server started.
    pub episodes: u64,
    /// `[prober] impaired_share` (`null`: share detection off).
    pub impaired_share: Option<f64>,
    /// `[prober] impaired_min_targets`.
    pub impaired_min_targets: usize,
    /// Probe targets followed.
    pub targets: usize,
    /// `[prober] canaries`, each with its last probe.
    pub canaries: Vec<CanaryDoc>,
}

/// One episode of impairment.
#[derive(Serialize)]
pub struct EpisodeDoc {
    /// When statuses froze.
    pub since: String,
    /// When they thawed (an episode over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Probe targets that failed together.
    pub failed: usize,
    /// Of how many that were healthy before.
    pub population: usize,
    /// Of those, how many fail now.
    pub failing: usize,
    /// All canaries were down: how many (0: not the canaries).
    pub canaries_down: usize,
}

impl EpisodeDoc {
    fn of(e: &Episode, until: Option<std::time::SystemTime>) -> EpisodeDoc {
        EpisodeDoc {
            since: ts(e.since),
            until: until.map(ts),
            reason: e.describe(),
            failed: e.failed,
            population: e.population,
            failing: e.failing,
            canaries_down: e.canaries_down,
        }
    }
}

/// One canary.
#[derive(Serialize)]
pub struct CanaryDoc {
    /// As configured: `tcp://192.0.2.53:53`.
    pub target: String,
    /// `up`, `down` (its last probe failed) or `unknown` (not probed yet).
    pub state: &'static str,
    /// Its last probe in a few words.
    pub last: String,
}

impl ProberDoc {
    /// From what the prober last published, and its episode count.
    pub fn of(v: &View, episodes: u64) -> ProberDoc {
        ProberDoc {
            impaired: v.episode.is_some(),
            notice: v.episode.as_ref().map(Episode::notice),
            episode: v.episode.as_ref().map(|e| EpisodeDoc::of(e, None)),
            last_episode: v.last.as_ref().map(|(e, at)| EpisodeDoc::of(e, Some(*at))),
            episodes,
            impaired_share: v.settings.share,
            impaired_min_targets: v.settings.min_targets,
            targets: v.targets,
            canaries: v
                .canaries
                .iter()
                .map(|c| CanaryDoc {
                    target: c.target.clone(),
                    state: match c.up {
                        Some(true) => "up",
                        Some(false) => "down",
                        None => "unknown",
                    },
                    last: c.last.clone(),
                })
                .collect(),
        }
    }
}
