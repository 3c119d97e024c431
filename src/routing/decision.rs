//! What routing decided, as it decided it: the stage a profile's answer
//! was drawn from (answerable, held, failing open, the fixed endpoint) and
//! the pool of endpoints the method chose among. Routing reports it through
//! [`Trace`] (nothing at all on the answer path, with [`NoTrace`]); explain,
//! the answer diff and the last-endpoint guard read a recorded
//! [`Decision`] and never work it out again.

use std::fmt::Write as _;

use super::{Outcome, Picks};
use crate::health::Status;
use crate::latency::{Band, Estimate, From, Policy};
use crate::snapshot::{Endpoint, OnAllDown, Profile, ProfileId, Routing, Snapshot, Target};

/// Which endpoints a profile's method drew from, in the order routing tries
/// them (docs/semantics.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The answerable endpoints (Online, CheckingEndpoint, Unmonitored).
    Answerable,
    /// None answerable: the endpoints `failback = "manual"` holds out,
    /// healthy, before failing open.
    Held,
    /// None answerable or held, `on_all_down = "serve-all"`: every
    /// eligible endpoint, as if the Degraded were Online.
    FailOpen,
    /// None answerable or held, `on_all_down = "<endpoint>"`: that endpoint.
    Fixed,
    /// None answerable or held: `on_all_down` answered without endpoints
    /// (`nodata`, `nxdomain`, `servfail`, or a fixed endpoint taken out).
    AllDown,
    /// Nothing eligible at all (every endpoint disabled or stopped, none of
    /// the family asked, no region or range matching, a disabled profile).
    Nothing,
}

impl Stage {
    /// The statuses this stage draws from. One definition for routing,
    /// which picks with it, and for everything that shows its pool.
    #[inline]
    pub fn usable(self) -> fn(Status) -> bool {
        match self {
            Stage::Answerable => Status::is_answerable,
            Stage::Held => |s| s == Status::Held,
            Stage::FailOpen | Stage::Fixed => Status::is_eligible,
            Stage::AllDown | Stage::Nothing => |_| false,
        }
    }

    /// True when `on_all_down` decided (nothing answerable or held).
    pub fn on_all_down(self) -> bool {
        matches!(self, Stage::FailOpen | Stage::Fixed | Stage::AllDown)
    }
}

/// What routing tells about its decision on the way. Every method has a
/// default that does nothing: the answer path routes with [`NoTrace`],
/// which compiles to nothing (the pool iterator is never run); `explain`,
/// the answer diff and the guard route with a [`Decision`].
pub trait Trace {
    /// Routing enters `profile` (the named one, then each nested child).
    #[inline]
    fn enter(&mut self, _profile: ProfileId) {}
    /// Geographic and subnet routing matched these endpoints for the
    /// client, most specific first.
    #[inline]
    fn candidates(&mut self, _candidates: &[u32]) {}
    /// The stage the answer was drawn from, and its pool: the endpoints the
    /// method chose among (indexes within the profile).
    #[inline]
    fn drew(&mut self, _stage: Stage, _pool: impl Iterator<Item = u32>) {}
    /// The profile's outcome and the endpoints picked.
    #[inline]
    fn outcome(&mut self, _outcome: Outcome, _picks: &Picks) {}
    /// These endpoints were shed for this client (their load sheds its
    /// network's traffic to the others).
    #[inline]
    fn shed(&mut self, _endpoints: &[u32]) {}
    /// Performance routing looked for latencies `from` there: the usable
    /// endpoints' estimates (those with any), and whether they decided.
    #[inline]
    fn latency(
        &mut self,
        _from: From,
        _decided: bool,
        _policy: &Policy,
        _estimates: impl Iterator<Item = (u32, Estimate)>,
    ) {
    }
}

/// One look performance routing took at the latency table.
#[derive(Clone, Debug)]
pub struct LatencyLook {
    /// Where it looked.
    pub from: From,
    /// Whether latency decided (enough samples for two usable endpoints).
    pub decided: bool,
    /// `min_samples` then.
    pub min_samples: u32,
    /// `band` then.
    pub band: Band,
    /// The usable endpoints' estimates (those with any), in profile order.
    pub estimates: Vec<(u32, Estimate)>,
}

impl LatencyLook {
    /// The look in words, as explain, the API and the page show it:
    /// `latency: eu-west 23 ms (412 samples, newest 3 min ago) < us-east
    /// 87 ms (398); chosen eu-west`, or why distance decides instead
    /// (`picked`: the endpoint answered, `now`: Unix seconds, `eps`: the
    /// profile's endpoints).
    pub fn text(&self, eps: &[Endpoint], picked: Option<u32>, now: u32) -> String {
        let name = |i: u32| eps.get(i as usize).map_or("?", |e| &*e.name);
        let enough = |samples: f64| crate::latency::reaches(samples, self.min_samples);
        let mut ranked: Vec<&(u32, Estimate)> = self.estimates.iter().collect();
        ranked.sort_by(|a, b| a.1.rtt_ms.total_cmp(&b.1.rtt_ms));
        let ago = |t: u32| {
            let secs = now.saturating_sub(t);
            match secs {
                0..=119 => format!("{secs} s ago"),
                120..=7199 => format!("{} min ago", secs / 60),
                _ => format!("{} h ago", secs / 3600),
            }
        };
        if self.decided {
            let list: Vec<String> = ranked
                .iter()
                .filter(|(_, e)| enough(e.samples))
                .enumerate()
                .map(|(n, (i, e))| {
                    let src = if e.from_file { ", latency file" } else { "" };
                    if n == 0 {
                        format!(
                            "{} {:.0} ms ({:.0} samples, newest {}{src})",
                            name(*i),
                            e.rtt_ms,
                            e.samples,
                            ago(e.newest)
                        )
                    } else {
                        format!("{} {:.0} ms ({:.0}{src})", name(*i), e.rtt_ms, e.samples)
                    }
                })
                .collect();
            let chosen = picked.map_or("?", name);
            return format!(
                "latency from {}: {}; within {} of the best count as equal; chosen {chosen}",
                self.from,
                list.join(" < "),
                self.band
            );
        }
        let short: Vec<String> = ranked
            .iter()
            .map(|(i, e)| {
                let mark = if enough(e.samples) { "" } else { " (too few)" };
                format!("{} {:.0} samples{mark}", name(*i), e.samples)
            })
            .collect();
        if short.is_empty() {
            format!("distance: no latency samples from {}", self.from)
        } else {
            format!(
                "distance: latency from {} has {}; {} needed for at least two usable endpoints",
                self.from,
                short.join(", "),
                self.min_samples
            )
        }
    }
}

/// Records nothing.
pub struct NoTrace;

impl Trace for NoTrace {}

/// What routing decided for one query: a step per profile, the named one
/// first and then each nested child it chose.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// The profiles routing went through, in order.
    pub steps: Vec<ProfileDecision>,
}

/// What routing decided in one profile.
#[derive(Clone, Debug)]
pub struct ProfileDecision {
    /// The profile.
    pub profile: ProfileId,
    /// Geographic and subnet routing: the endpoints that matched the
    /// client, most specific first (for subnet: the range's, then the
    /// fallback).
    pub candidates: Vec<u32>,
    /// The stage the answer was drawn from.
    pub stage: Stage,
    /// The endpoints the method chose among, in profile order (for
    /// geographic and subnet: in match order).
    pub pool: Vec<u32>,
    /// The outcome.
    pub outcome: Outcome,
    /// The endpoints picked, in answer order.
    pub picks: Vec<u32>,
    /// The endpoints shed for this client.
    pub shed: Vec<u32>,
    /// Performance routing's looks at the latency table, in order.
    pub latency: Vec<LatencyLook>,
}

impl Trace for Decision {
    fn enter(&mut self, profile: ProfileId) {
        self.steps.push(ProfileDecision {
            profile,
            candidates: Vec::new(),
            stage: Stage::Nothing,
            pool: Vec::new(),
            outcome: Outcome::NoData,
            picks: Vec::new(),
            shed: Vec::new(),
            latency: Vec::new(),
        });
    }
    fn latency(
        &mut self,
        from: From,
        decided: bool,
        policy: &Policy,
        estimates: impl Iterator<Item = (u32, Estimate)>,
    ) {
        if let Some(s) = self.steps.last_mut() {
            // Sources are looked at in a fixed order: one seen again is a
            // new pick (another stage, or shedding): its looks replace these.
            if s.latency.iter().any(|l| l.from == from) {
                s.latency.clear();
            }
            s.latency.push(LatencyLook {
                from,
                decided,
                min_samples: policy.min_samples,
                band: policy.band,
                estimates: estimates.collect(),
            });
        }
    }
    fn shed(&mut self, endpoints: &[u32]) {
        if let Some(s) = self.steps.last_mut() {
            s.shed = endpoints.to_vec();
        }
    }
    fn candidates(&mut self, candidates: &[u32]) {
        if let Some(s) = self.steps.last_mut() {
            s.candidates = candidates.to_vec();
        }
    }
    fn drew(&mut self, stage: Stage, pool: impl Iterator<Item = u32>) {
        if let Some(s) = self.steps.last_mut() {
            s.stage = stage;
            s.pool = pool.collect();
        }
    }
    fn outcome(&mut self, outcome: Outcome, picks: &Picks) {
        if let Some(s) = self.steps.last_mut() {
            s.outcome = outcome;
            s.picks = picks.as_slice().to_vec();
        }
    }
}

impl OnAllDown {
    /// The value as written in a profile: `serve-all`, `nodata`,
    /// `nxdomain`, `servfail` or the endpoint's name (`eps`: the profile's
    /// endpoints).
    pub fn text(self, eps: &[Endpoint]) -> String {
        match self {
            OnAllDown::ServeAll => "serve-all".into(),
            OnAllDown::NoData => "nodata".into(),
            OnAllDown::NxDomain => "nxdomain".into(),
            OnAllDown::ServFail => "servfail".into(),
            OnAllDown::Endpoint(i) => eps
                .get(i as usize)
                .map_or("?".into(), |e| e.name.to_string()),
        }
    }
}

impl Profile {
    /// The rule of docs/semantics.md §2 that drew from `stage`, in words
    /// (`eps`: the profile's endpoints). Explain, the answer diff and the
    /// last-endpoint guard all say it so.
    pub fn stage_text(&self, stage: Stage, eps: &[Endpoint]) -> String {
        let rule = self.on_all_down.text(eps);
        match stage {
            Stage::Answerable => "an answerable endpoint answers".into(),
            Stage::Held => "the endpoints failback = \"manual\" holds out answer: it holds them out only while another endpoint is answerable".into(),
            Stage::FailOpen => format!("on_all_down = {rule} applies: route as if the Degraded were Online"),
            Stage::Fixed => format!("on_all_down = {rule} applies: that endpoint answers"),
            Stage::AllDown => match self.on_all_down {
                OnAllDown::Endpoint(_) => format!(
                    "on_all_down = {rule} applies, but {rule} is taken out (an operator's \"never answer this\" wins)"
                ),
                _ => format!("on_all_down = {rule} applies"),
            },
            Stage::Nothing if !self.enabled => "the profile is disabled (enabled = false)".into(),
            Stage::Nothing => "no endpoint can be answered: each is disabled or stopped, or none matches".into(),
        }
    }
}

impl Decision {
    /// What the decision answers, in words: the endpoint chosen (through
    /// nested profiles, `outer > inner (address)`); for weighted and
    /// multivalue, which choose at random per query, the pool they choose
    /// from; or NODATA, NXDOMAIN, SERVFAIL.
    pub fn answer_text(&self, table: &Snapshot) -> String {
        let mut path = String::new();
        let Some(last) = self.steps.last() else {
            return "NODATA".into();
        };
        for step in &self.steps {
            let Some(p) = table.profiles.get(step.profile as usize) else {
                break;
            };
            let eps = table.endpoints_of(p);
            if step.outcome != Outcome::Endpoints {
                break;
            }
            let names = |ids: &[u32]| -> String {
                ids.iter()
                    .filter_map(|&i| eps.get(i as usize))
                    .map(|e| table.endpoint_text(e))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match p.routing {
                Routing::Weighted { .. } => {
                    return format!("{path}one of {}", names(&step.pool));
                }
                Routing::Multivalue { max_answers } => {
                    return format!("{path}up to {max_answers} of {}", names(&step.pool));
                }
                _ => {}
            }
            match step.picks.first().and_then(|&i| eps.get(i as usize)) {
                Some(e) if matches!(e.target, Target::Nested(_)) => {
                    let _ = write!(path, "{} > ", e.name);
                }
                _ => return format!("{path}{}", names(&step.picks)),
            }
        }
        let what = match last.outcome {
            Outcome::NoData | Outcome::Endpoints => "NODATA",
            Outcome::NxDomain => "NXDOMAIN",
            Outcome::ServFail => "SERVFAIL",
        };
        format!("{path}{what}")
    }
}

impl Snapshot {
    /// What an endpoint answers, in words: its address or host name, or
    /// `profile <name>` for a nested profile.
    pub fn target_text(&self, e: &Endpoint) -> String {
        match e.target {
            Target::Nested(child) => format!(
                "profile {}",
                self.profiles
                    .get(child as usize)
                    .map_or("?", |p| p.name.as_str().trim_end_matches('.'))
            ),
            ref target => target.to_string(),
        }
    }

    /// An endpoint in words: `name (target)`.
    pub fn endpoint_text(&self, e: &Endpoint) -> String {
        format!("{} ({})", e.name, self.target_text(e))
    }
}
