//! Runtime overrides (`switchyard endpoint disable`, `drain`, `shed`,
//! `enable`, `resume`) as versioned records, so that the nodes of a
//! cluster agree on them.
//!
//! Every change is a record, an enable included, stamped with its version:
//! the wall-clock time it was made and the node that made it. The latest
//! version wins everywhere (last writer wins), and since records are never
//! deleted, every node ends with the same winners whatever order gossip
//! delivers them in. A record also says which version its author had seen
//! when making it, so two changes made without knowing of each other (a
//! real conflict) are told apart from a later change that overrode an
//! earlier one knowingly: the loser of a conflict is reported.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::snapshot::EndpointKey;

/// One override of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Disabled (`true`) or enabled again (`false`).
    pub disabled: bool,
    /// When it was made (ms since the Unix epoch); 0 for records from a
    /// state file written before overrides had versions.
    pub at: u64,
    /// The node that made it.
    #[serde(default)]
    pub node: String,
    /// The version its author had seen for this endpoint (`at`, `node`).
    #[serde(default)]
    pub seen_at: u64,
    /// See `seen_at`.
    #[serde(default)]
    pub seen_node: String,
    /// Why, as the operator gave it (`--reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who or what made it: the admin token's name when tokens are named,
    /// `admin API` otherwise, or the automatic rule (`failback = manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A disable that ends by itself at this time (ms since the Unix
    /// epoch): `--for 30m`. Every node expires it at the same moment, with
    /// no further record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// A drain: disabled, and the time its last answer leaves resolver
    /// caches is tracked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain: bool,
    /// A drain that ramps (`drain --over`): for this long (ms) from `at`
    /// the endpoint sheds a rising share of new traffic
    /// ([`crate::snapshot::shed`]), and is out of answers from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_ms: Option<u64>,
    /// A shed by hand (`shed --percent`), not disabled: this percentage
    /// (1 to 100) of client networks moved to the other endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed: Option<u16>,
    /// An enable made as `resume` (it also releases a hold), for the
    /// history; it does what any enable does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// The changes made concurrently (without knowledge of this one) that
    /// this one won over, as the nodes that saw both found: carried with
    /// the winner, so every node learns of each conflict, and reports it
    /// once, even one that never saw the loser. Not part of the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overruled: Vec<Overruled>,
}

/// A change that lost to a concurrent one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Overruled {
    /// Its version: when it was made...
    pub at: u64,
    /// ...and by which node.
    pub node: String,
    /// `disable`, `drain`, `shed`, `enable` or `resume`.
    pub action: String,
}

/// Most losers a record carries (older ones are dropped: each has been
/// reported by then).
const OVERRULED_KEPT: usize = 8;

impl Overruled {
    fn of(o: &Override) -> Overruled {
        Overruled {
            at: o.at,
            node: o.node.clone(),
            action: o.kind().as_str().to_string(),
        }
    }
}

/// What an override does, in words for the API and the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Taken out of answers.
    Disable,
    /// Taken out of answers, its caches tracked (at the end of its ramp,
    /// with `--over`).
    Drain,
    /// A share of new traffic moved away (`shed --percent`).
    Shed,
    /// Put back (`enable`).
    Enable,
    /// Put back, releasing a hold (`resume`): an enable.
    Resume,
}

impl Kind {
    /// `disable`, `drain`, `shed`, `enable`, `resume`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Disable => "disable",
            Kind::Drain => "drain",
            Kind::Shed => "shed",
            Kind::Enable => "enable",
            Kind::Resume => "resume",
        }
    }
}

impl Override {
    /// A new change by `node` at `at`, made knowing of `current`.
    pub fn new(disabled: bool, at: u64, node: &str, current: Option<&Override>) -> Override {
        // Never older than what it replaces, even with a clock behind.
        let at = current.map_or(at, |c| at.max(c.at + 1));
        Override {
            disabled,
            at,
            node: node.to_string(),
            seen_at: current.map_or(0, |c| c.at),
            seen_node: current.map_or_else(String::new, |c| c.node.clone()),
            reason: None,
            by: None,
            until: None,
            drain: false,
            over_ms: None,
            shed: None,
            resume: false,
            overruled: Vec::new(),
        }
    }

    /// Disable, drain, shed or enable.
    pub fn kind(&self) -> Kind {
        match (self.disabled, self.drain) {
            (false, _) if self.shed.is_some() => Kind::Shed,
            (false, _) if self.resume => Kind::Resume,
            (false, _) => Kind::Enable,
            (true, false) => Kind::Disable,
            (true, true) => Kind::Drain,
        }
    }

    /// True while it acts on the endpoint at `now_ms`: a disable, drain
    /// (ramping or not) or shed not yet expired.
    pub fn in_force(&self, now_ms: u64) -> bool {
        (self.disabled || self.shed.is_some()) && self.until.is_none_or(|u| now_ms < u)
    }

    /// True while it keeps the endpoint out of answers at `now_ms`: a
    /// disable or drain in force, a drain's ramp over.
    pub fn keeps_out(&self, now_ms: u64) -> bool {
        self.disabled && self.in_force(now_ms) && self.ramp_end().is_none_or(|e| now_ms >= e)
    }

    /// A drain's ramp (`--over`): when it ends (ms since the epoch), and
    /// the endpoint is out of answers.
    pub fn ramp_end(&self) -> Option<u64> {
        self.over_ms
            .filter(|_| self.disabled)
            .map(|o| self.at.saturating_add(o))
    }

    /// Its version: the later wins; ties go to the greater node name.
    pub fn version(&self) -> (u64, &str) {
        (self.at, &self.node)
    }

    /// True when both ask the same of the endpoint: both enable, or both
    /// disable, drain (over the same time) or shed (the same share) alike,
    /// for the same time.
    fn same_effect(&self, other: &Override) -> bool {
        let acts = |o: &Override| o.disabled || o.shed.is_some();
        self.disabled == other.disabled
            && self.shed == other.shed
            && (!acts(self)
                || (self.drain == other.drain
                    && self.over_ms == other.over_ms
                    && self.until == other.until))
    }

    fn saw(&self, other: &Override) -> bool {
        (self.seen_at, self.seen_node.as_str()) >= other.version()
    }

    /// Adds `lost` to the changes this one won over; false if known.
    fn overrule(&mut self, lost: Overruled) -> bool {
        if self.overruled.contains(&lost) {
            return false;
        }
        self.overruled.push(lost);
        self.overruled.sort();
        if self.overruled.len() > OVERRULED_KEPT {
            self.overruled.remove(0);
        }
        true
    }
}

/// Every override known, by endpoint.
pub type Overrides = BTreeMap<EndpointKey, Override>;

/// What merging a record did.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged {
    /// Nothing new.
    Unchanged,
    /// The record is the new winner. `conflicts` lists every concurrent
    /// change it won over that is known (the one it replaced here, or ones
    /// other nodes found); the caller reports those it has not yet.
    Applied {
        /// Known losers.
        conflicts: Vec<Overruled>,
    },
    /// The winner stays, and now knows of more losers: the incoming record
    /// itself, made concurrently (it lost), or ones the incoming copy of
    /// the winner carries.
    Learned {
        /// Newly known losers.
        conflicts: Vec<Overruled>,
    },
}

/// Merges `incoming` for `key` into `all`. The winner records every
/// concurrent change it won over ([`Override::overruled`]).
pub fn merge(all: &mut Overrides, key: &EndpointKey, mut incoming: Override) -> Merged {
    match all.get_mut(key) {
        Some(current) if current.version() > incoming.version() => {
            if current.same_effect(&incoming) || current.saw(&incoming) {
                Merged::Unchanged
            } else {
                let lost = Overruled::of(&incoming);
                if current.overrule(lost.clone()) {
                    Merged::Learned {
                        conflicts: vec![lost],
                    }
                } else {
                    Merged::Unchanged
                }
            }
        }
        Some(current) if current.version() == incoming.version() => {
            // The same record, perhaps knowing of more losers.
            let conflicts: Vec<Overruled> = incoming
                .overruled
                .into_iter()
                .filter(|l| current.overrule(l.clone()))
                .collect();
            if conflicts.is_empty() {
                Merged::Unchanged
            } else {
                Merged::Learned { conflicts }
            }
        }
        Some(current) => {
            // The record it replaces lost to it if made concurrently.
            if !current.same_effect(&incoming) && !incoming.saw(current) {
                incoming.overrule(Overruled::of(current));
            }
            let conflicts = incoming.overruled.clone();
            *current = incoming;
            Merged::Applied { conflicts }
        }
        None => {
            let conflicts = incoming.overruled.clone();
            all.insert(key.clone(), incoming);
            Merged::Applied { conflicts }
        }
    }
}

/// What `record` (the winner for an endpoint, if any) asks of it.
pub fn state(record: Option<&Override>) -> crate::snapshot::OverrideState {
    use crate::snapshot::OverrideState;
    match record {
        None => OverrideState::None,
        Some(o) if o.disabled => OverrideState::Off {
            until_ms: o.until,
            drain: o.drain,
            at_ms: o.at,
            ramp: o.ramp_end().map(|end| (o.at, end)),
        },
        Some(Override {
            shed: Some(percent),
            until,
            ..
        }) => OverrideState::Shed {
            permille: u32::from(*percent).clamp(1, 100) * 10,
            until_ms: *until,
        },
        Some(o) => OverrideState::On { at_ms: o.at },
    }
}

/// The endpoints `all` keeps out of answers at `now_ms`.
pub fn disabled(all: &Overrides, now_ms: u64) -> std::collections::BTreeSet<EndpointKey> {
    all.iter()
        .filter(|(_, o)| o.keeps_out(now_ms))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Longest `--reason` kept (bytes); longer ones are cut at a character
/// boundary.
pub const MAX_REASON: usize = 200;

/// A reason as kept: control characters replaced, at most [`MAX_REASON`]
/// bytes, `None` when empty.
pub fn clean_reason(r: &str) -> Option<String> {
    let mut out = String::new();
    for c in r.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON {
            break;
        }
        out.push(c);
    }
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EndpointKey {
        EndpointKey::new("a.test", "primary")
    }

    #[test]
    fn the_latest_wins_in_any_order() {
        let a = Override::new(true, 100, "ns1", None);
        let b = Override::new(false, 200, "ns2", Some(&a));
        for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
            let mut all = Overrides::new();
            for r in order {
                merge(&mut all, &key(), r);
            }
            assert_eq!(all[&key()], b);
        }
        // b was made knowing of a: no conflict either way.
        let mut all = Overrides::new();
        merge(&mut all, &key(), a.clone());
        assert_eq!(
            merge(&mut all, &key(), b.clone()),
            Merged::Applied { conflicts: vec![] }
        );
        assert_eq!(merge(&mut all, &key(), a.clone()), Merged::Unchanged);
    }

    #[test]
    fn concurrent_changes_report_the_loser_in_any_order_and_carry_it() {
        let base = Override::new(true, 100, "ns1", None);
        // ns2 enables and ns3 disables, neither knowing of the other.
        let enable = Override::new(false, 200, "ns2", Some(&base));
        let mut disable = Override::new(true, 201, "ns3", Some(&base));
        disable.reason = Some("drain".into());
        let lost = Overruled {
            at: 200,
            node: "ns2".into(),
            action: "enable".into(),
        };
        // The loser first, then the winner.
        let mut all = Overrides::new();
        merge(&mut all, &key(), base.clone());
        merge(&mut all, &key(), enable.clone());
        assert_eq!(
            merge(&mut all, &key(), disable.clone()),
            Merged::Applied {
                conflicts: vec![lost.clone()]
            }
        );
        assert_eq!(all[&key()].overruled, std::slice::from_ref(&lost));
        let carried = all[&key()].clone();
        // The other order: the loser arrives second.
        let mut all = Overrides::new();
        merge(&mut all, &key(), disable.clone());
        assert_eq!(
            merge(&mut all, &key(), enable.clone()),
            Merged::Learned {
                conflicts: vec![lost.clone()]
            }
        );
        assert_eq!(all[&key()], carried);
        // Again: nothing new.
        assert_eq!(merge(&mut all, &key(), enable), Merged::Unchanged);
        // A node that never sees the loser learns of it from the winner.
        let mut all = Overrides::new();
        merge(&mut all, &key(), disable.clone());
        assert_eq!(
            merge(&mut all, &key(), carried.clone()),
            Merged::Learned {
                conflicts: vec![lost.clone()]
            }
        );
        assert_eq!(merge(&mut all, &key(), carried.clone()), Merged::Unchanged);
        let mut all = Overrides::new();
        assert_eq!(
            merge(&mut all, &key(), carried),
            Merged::Applied {
                conflicts: vec![lost]
            }
        );
    }

    #[test]
    fn a_clock_behind_still_makes_a_newer_version() {
        let a = Override::new(true, 1_000, "ns1", None);
        let b = Override::new(false, 10, "ns2", Some(&a));
        assert!(b.version() > a.version());
        assert_eq!(disabled(&Overrides::from([(key(), a)]), 0).len(), 1);
    }

    #[test]
    fn concurrent_changes_of_another_kind_or_length_are_conflicts_too() {
        let base = Override::new(false, 100, "ns1", None);
        // ns2 disables for good, ns3 disables for 10 minutes (or drains),
        // neither knowing of the other: one of them is lost, and said so.
        let forever = Override::new(true, 200, "ns2", Some(&base));
        let mut timed = Override::new(true, 201, "ns3", Some(&base));
        timed.until = Some(600_201);
        let mut drain = Override::new(true, 201, "ns3", Some(&base));
        drain.drain = true;
        let lost = Overruled::of(&forever);
        for other in [timed, drain] {
            let mut all = Overrides::new();
            merge(&mut all, &key(), forever.clone());
            assert_eq!(
                merge(&mut all, &key(), other.clone()),
                Merged::Applied {
                    conflicts: vec![lost.clone()]
                }
            );
            let mut all = Overrides::new();
            merge(&mut all, &key(), other.clone());
            assert_eq!(
                merge(&mut all, &key(), forever.clone()),
                Merged::Learned {
                    conflicts: vec![lost.clone()]
                }
            );
        }
        // The same change made twice is no conflict.
        let same = Override::new(true, 201, "ns3", Some(&base));
        let mut all = Overrides::new();
        merge(&mut all, &key(), forever.clone());
        assert_eq!(
            merge(&mut all, &key(), same),
            Merged::Applied { conflicts: vec![] }
        );
    }

    #[test]
    fn a_timed_disable_ends_by_itself() {
        let mut a = Override::new(true, 1_000, "ns1", None);
        a.until = Some(61_000);
        assert!(a.in_force(60_999));
        assert!(!a.in_force(61_000));
        let all = Overrides::from([(key(), a)]);
        assert_eq!(disabled(&all, 2_000).len(), 1);
        assert!(disabled(&all, 61_000).is_empty());
    }

    #[test]
    fn old_records_read_as_before_and_new_fields_round_trip() {
        let old: Override = serde_json::from_str(r#"{"disabled":true,"at":5}"#).unwrap();
        assert_eq!(old.kind(), Kind::Disable);
        assert!(old.in_force(u64::MAX));
        let mut d = Override::new(true, 9, "ns1", None);
        d.drain = true;
        d.until = Some(99);
        d.by = Some("alice".into());
        let back: Override = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.kind(), Kind::Drain);
    }

    #[test]
    fn a_shed_is_its_own_kind_acts_while_in_force_and_keeps_nothing_out() {
        let mut shed = Override::new(false, 1_000, "ns1", None);
        shed.shed = Some(30);
        shed.until = Some(61_000);
        assert_eq!(shed.kind(), Kind::Shed);
        assert!(shed.in_force(60_999) && !shed.in_force(61_000));
        assert!(!shed.keeps_out(2_000));
        assert_eq!(
            state(Some(&shed)),
            crate::snapshot::OverrideState::Shed {
                permille: 300,
                until_ms: Some(61_000)
            }
        );
        let back: Override = serde_json::from_str(&serde_json::to_string(&shed).unwrap()).unwrap();
        assert_eq!(back, shed);
        // Another share, or a disable, made concurrently: a conflict.
        let base = Override::new(false, 100, "ns1", None);
        let mut a = Override::new(false, 200, "ns2", Some(&base));
        a.shed = Some(30);
        let mut b = Override::new(false, 201, "ns3", Some(&base));
        b.shed = Some(50);
        let mut all = Overrides::new();
        merge(&mut all, &key(), a.clone());
        assert_eq!(
            merge(&mut all, &key(), b),
            Merged::Applied {
                conflicts: vec![Overruled {
                    at: 200,
                    node: "ns2".into(),
                    action: "shed".into()
                }]
            }
        );
        // An enable is not a shed.
        let enable = Override::new(false, 201, "ns3", Some(&base));
        assert!(!a.same_effect(&enable));
        assert_eq!(enable.kind(), Kind::Enable);
    }

    #[test]
    fn a_ramping_drain_keeps_the_endpoint_out_from_the_end_of_its_ramp() {
        let mut d = Override::new(true, 10_000, "ns1", None);
        d.drain = true;
        d.over_ms = Some(2_000);
        assert_eq!(d.kind(), Kind::Drain);
        assert_eq!(d.ramp_end(), Some(12_000));
        assert!(d.in_force(10_000) && !d.keeps_out(11_999));
        assert!(d.keeps_out(12_000));
        assert_eq!(
            disabled(&Overrides::from([(key(), d.clone())]), 11_000).len(),
            0
        );
        assert_eq!(
            disabled(&Overrides::from([(key(), d.clone())]), 12_000).len(),
            1
        );
        assert_eq!(
            state(Some(&d)),
            crate::snapshot::OverrideState::Off {
                until_ms: None,
                drain: true,
                at_ms: 10_000,
                ramp: Some((10_000, 12_000))
            }
        );
        // A drain at once and one that ramps differ.
        let mut now = d.clone();
        now.over_ms = None;
        assert!(!d.same_effect(&now));
        let back: Override = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn reasons_are_cleaned_and_bounded() {
        assert_eq!(clean_reason("  "), None);
        assert_eq!(clean_reason("a\nb\u{7}").as_deref(), Some("a b"));
        let long = "é".repeat(500);
        let r = clean_reason(&long).unwrap();
        assert!(r.len() <= MAX_REASON && r.chars().all(|c| c == 'é'));
    }
}
