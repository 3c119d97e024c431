//! Runtime overrides (`switchyard endpoint disable` / `enable`) as
//! versioned records, so that the nodes of a cluster agree on them.
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

use crate::routing::EndpointKey;

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
    /// Who or why, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
        }
    }

    /// Its version: the later wins; ties go to the greater node name.
    pub fn version(&self) -> (u64, &str) {
        (self.at, &self.node)
    }

    fn saw(&self, other: &Override) -> bool {
        (self.seen_at, self.seen_node.as_str()) >= other.version()
    }
}

/// Every override known, by endpoint.
pub type Overrides = BTreeMap<EndpointKey, Override>;

/// What merging a record did.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged {
    /// Nothing new.
    Unchanged,
    /// The record is the new winner.
    Applied,
    /// The record is the new winner over a change made concurrently
    /// (without knowledge of it), which is reported: `lost`.
    AppliedOver {
        /// The losing record.
        lost: Override,
    },
    /// The record lost to a concurrent change already known.
    Lost,
}

/// Merges `incoming` for `key` into `all`.
pub fn merge(all: &mut Overrides, key: &EndpointKey, incoming: Override) -> Merged {
    match all.get(key) {
        Some(current) if current.version() >= incoming.version() => {
            if current.version() == incoming.version()
                || current.disabled == incoming.disabled
                || current.saw(&incoming)
            {
                Merged::Unchanged
            } else {
                Merged::Lost
            }
        }
        Some(current) => {
            let conflict = current.disabled != incoming.disabled && !incoming.saw(current);
            let old = all.insert(key.clone(), incoming);
            match old {
                Some(lost) if conflict => Merged::AppliedOver { lost },
                _ => Merged::Applied,
            }
        }
        None => {
            all.insert(key.clone(), incoming);
            Merged::Applied
        }
    }
}

/// The endpoints disabled by `all`.
pub fn disabled(all: &Overrides) -> std::collections::BTreeSet<EndpointKey> {
    all.iter()
        .filter(|(_, o)| o.disabled)
        .map(|(k, _)| k.clone())
        .collect()
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
        assert_eq!(merge(&mut all, &key(), b.clone()), Merged::Applied);
        assert_eq!(merge(&mut all, &key(), a.clone()), Merged::Unchanged);
    }

    #[test]
    fn concurrent_changes_report_the_loser() {
        let base = Override::new(true, 100, "ns1", None);
        // ns2 enables and ns3 disables, neither knowing of the other.
        let enable = Override::new(false, 200, "ns2", Some(&base));
        let mut disable = Override::new(true, 201, "ns3", Some(&base));
        disable.reason = Some("drain".into());
        let mut all = Overrides::new();
        merge(&mut all, &key(), base.clone());
        merge(&mut all, &key(), enable.clone());
        assert_eq!(
            merge(&mut all, &key(), disable.clone()),
            Merged::AppliedOver {
                lost: enable.clone()
            }
        );
        // The other order: the loser arrives second.
        let mut all = Overrides::new();
        merge(&mut all, &key(), disable.clone());
        assert_eq!(merge(&mut all, &key(), enable), Merged::Lost);
        assert_eq!(all[&key()], disable);
    }

    #[test]
    fn a_clock_behind_still_makes_a_newer_version() {
        let a = Override::new(true, 1_000, "ns1", None);
        let b = Override::new(false, 10, "ns2", Some(&a));
        assert!(b.version() > a.version());
        assert_eq!(disabled(&Overrides::from([(key(), a)])).len(), 1);
    }
}
