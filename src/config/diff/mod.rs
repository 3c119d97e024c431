//! The answer diff: what a candidate configuration would answer
//! differently from the running one, name by name, at the running health.
//!
//! [`diff`] is a pure function of two compiled tables (and their probes).
//! Every answer it compares comes from the real routing decision
//! ([`crate::routing::choose`], the function the answer path calls), asked for the
//! clients each profile tells apart: per region of a geographic mapping,
//! per address range of a subnet profile, per country (at its
//! representative point) for performance routing, and a client routing
//! knows nothing about ("clients no key matches": no region, range or location of the profile). Weighted and multivalue choose
//! at random per query, so for them the answer is the set of endpoints
//! that can be chosen, and the weights and shares are compared apart.
//!
//! The statuses are the tables' own: the running table reads the live
//! health; a dry-run reload compiles the candidate with a copy of it (see
//! [`super::Carry::detached`]), so an endpoint that keeps its probe
//! has its status of now, and one whose probe changed starts
//! `CheckingEndpoint`, as a real reload would make it.
//!
//! `model.rs` holds what the diff is made of, `names.rs` compares name by
//! name, `profile.rs` what changes in a profile both sides have,
//! `clients.rs` whom answers are asked for and `answers.rs` what routing
//! answers them, `render.rs` the text.

mod answers;
mod clients;
mod model;
mod names;
mod profile;
mod render;
#[cfg(test)]
mod tests;

pub use model::{AnswerDiff, Change, Detail, EVERYTHING_ELSE, NameDiff, Side};
use names::{profiles, records, zones};

/// Compares what `old` and `new` answer: every profile, static record set
/// and zone of either.
pub fn diff(old: Side<'_>, new: Side<'_>) -> AnswerDiff {
    let mut out = AnswerDiff::default();
    let mut compared = 0usize;
    zones(old.table, new.table, &mut out.names, &mut compared);
    profiles(old, new, &mut out.names, &mut compared);
    records(old.table, new.table, &mut out.names, &mut compared);
    out.names
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(&b.kind)));
    out.unchanged = compared - out.names.len();
    out
}
