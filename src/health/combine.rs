//! Several monitors of one endpoint combined into its status (issue 22):
//! `health = "all" | "any" | { at_least = N }` over the monitors' statuses,
//! each monitor optionally inverted. Pure: the control plane calls it when
//! an input changes and writes the result into the endpoint's derived
//! cell, so the answer path still reads one atomic.

use super::Status;

/// How the monitors' verdicts combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Every monitor must be up.
    All,
    /// One monitor up is enough.
    Any,
    /// At least this many monitors up.
    AtLeast(u32),
}

impl Rule {
    /// How many of `n` monitors must be up.
    pub fn needed(self, n: u32) -> u32 {
        match self {
            Rule::All => n,
            Rule::Any => 1.min(n),
            Rule::AtLeast(k) => k,
        }
    }
}

/// One monitor's verdict as the combination reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its check passes (after `invert`).
    Up,
    /// Its check fails (after `invert`).
    Down,
    /// Not decided yet (no probe result, or a local fault).
    Unknown,
}

impl Verdict {
    /// The verdict of a monitor whose status is `s`; `invert` swaps up and
    /// down (a check that must fail), never unknown.
    pub fn of(s: Status, invert: bool) -> Verdict {
        let v = match s {
            Status::Online => Verdict::Up,
            Status::Degraded => Verdict::Down,
            _ => Verdict::Unknown,
        };
        match (v, invert) {
            (Verdict::Up, true) => Verdict::Down,
            (Verdict::Down, true) => Verdict::Up,
            (v, _) => v,
        }
    }
}

/// The endpoint's status from its monitors' verdicts: Online once enough
/// are up, Degraded once enough can no longer be (too many down),
/// CheckingEndpoint while the unknown ones could still tip it.
pub fn combine(rule: Rule, verdicts: &[Verdict]) -> Status {
    let n = verdicts.len() as u32;
    let needed = rule.needed(n);
    let up = verdicts.iter().filter(|v| **v == Verdict::Up).count() as u32;
    let unknown = verdicts.iter().filter(|v| **v == Verdict::Unknown).count() as u32;
    if up >= needed {
        Status::Online
    } else if up + unknown < needed {
        Status::Degraded
    } else {
        Status::CheckingEndpoint
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::{Down, Unknown, Up};
    use super::*;

    #[test]
    fn all_needs_every_monitor_up() {
        assert_eq!(combine(Rule::All, &[Up, Up]), Status::Online);
        assert_eq!(combine(Rule::All, &[Up, Down]), Status::Degraded);
        assert_eq!(combine(Rule::All, &[Up, Unknown]), Status::CheckingEndpoint);
        assert_eq!(combine(Rule::All, &[Down, Unknown]), Status::Degraded);
    }

    #[test]
    fn any_needs_one_monitor_up() {
        assert_eq!(combine(Rule::Any, &[Down, Up]), Status::Online);
        assert_eq!(combine(Rule::Any, &[Down, Down]), Status::Degraded);
        assert_eq!(combine(Rule::Any, &[Down, Unknown]), Status::CheckingEndpoint);
    }

    #[test]
    fn at_least_counts_the_monitors_up() {
        let three = Rule::AtLeast(2);
        assert_eq!(combine(three, &[Up, Up, Down]), Status::Online);
        assert_eq!(combine(three, &[Up, Down, Down]), Status::Degraded);
        assert_eq!(combine(three, &[Up, Unknown, Down]), Status::CheckingEndpoint);
    }

    #[test]
    fn invert_swaps_up_and_down_but_not_unknown() {
        assert_eq!(Verdict::of(Status::Online, true), Down);
        assert_eq!(Verdict::of(Status::Degraded, true), Up);
        assert_eq!(Verdict::of(Status::CheckingEndpoint, true), Unknown);
        assert_eq!(Verdict::of(Status::Online, false), Up);
    }
}
