//! What the diff is made of: the two sides compared, and what changes in
//! their answers, name by name (what `--diff` prints and `--json` writes).

use serde::Serialize;

use crate::config::ProbeSpec;
use crate::snapshot::Snapshot;

/// One side of the comparison: a compiled table and its probes.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The routing table.
    pub table: &'a Snapshot,
    /// The probes compiled with it (which probe decides which endpoint).
    pub probes: &'a [ProbeSpec],
}

/// What changes in the answers, name by name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnswerDiff {
    /// The names that change, sorted by name.
    pub names: Vec<NameDiff>,
    /// Names compared that do not change.
    pub unchanged: usize,
}

/// How one name changes.
#[derive(Clone, Debug, Serialize)]
pub struct NameDiff {
    /// The name, without the trailing dot.
    pub name: String,
    /// The routing method of a profile (the candidate's when both have
    /// one), `records` for static records, `zone` for a zone.
    pub kind: String,
    /// Added, removed or changed.
    pub change: Change,
    /// Added: what it will answer; removed: what it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Changed: what changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// Whether a name appears, disappears or changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only the candidate has it.
    Added,
    /// Only the running configuration has it.
    Removed,
    /// Both have it; it differs.
    Changed,
}

/// One change of a name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detail {
    /// What changes: `clients` (the answer for these clients), `answer`
    /// (the answer, whoever asks), `weight`, `order`, `endpoint`, `probe`,
    /// `routing`, `ttl`, `ttl_degraded`, `on_all_down`, `enabled`,
    /// `sticky`, a record type (`A`, `MX`), `dnssec`.
    pub aspect: String,
    /// Whom or what it is about: region codes, subnets, countries,
    /// `clients no key matches`, an endpoint's name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Before (`None`: absent).
    pub old: Option<String>,
    /// After (`None`: absent).
    pub new: Option<String>,
    /// Weights: the endpoint's share of answers before and after, in
    /// percent, among the endpoints answerable now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<(u32, u32)>,
    /// A remark (`probe changed: health will be re-checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Detail {
    pub(super) fn new(aspect: &str, old: Option<String>, new: Option<String>) -> Detail {
        Detail {
            aspect: aspect.to_string(),
            keys: Vec::new(),
            old,
            new,
            share: None,
            note: None,
        }
    }

    pub(super) fn keyed(mut self, keys: Vec<String>) -> Detail {
        self.keys = keys;
        self
    }

    pub(super) fn noted(mut self, note: impl Into<String>) -> Detail {
        self.note = Some(note.into());
        self
    }
}

/// The label of the client no region, range or location matches.
pub const EVERYTHING_ELSE: &str = "clients no key matches";

impl AnswerDiff {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
