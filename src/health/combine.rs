//! Several monitors of one endpoint combined into its status (issue 22):
//! `health = "all" | "any" | { at_least = N }` over the monitors' statuses,
//! each monitor optionally inverted. Pure: the control plane calls it when
//! an input changes and writes the result into the endpoint's derived
//! cell, so the answer path still reads one atomic.

use std::sync::Arc;

use super::{HealthCell, Status};

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

impl std::fmt::Display for Rule {
    /// As configured: `all`, `any`, `at_least = 2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::All => f.write_str("all"),
            Rule::Any => f.write_str("any"),
            Rule::AtLeast(n) => write!(f, "at_least = {n}"),
        }
    }
}

/// An endpoint's named monitors and how they combine. The endpoint's
/// health cell holds the combined status (written by the control plane
/// whenever an input changes); this says where it comes from.
#[derive(Debug)]
pub struct Monitors {
    /// `health`.
    pub rule: Rule,
    /// The monitors, in configuration order.
    pub inputs: Box<[Input]>,
    /// Equal for the same rule over the same probes (names, inversions,
    /// cells) within one process: a reload that keeps it keeps the
    /// endpoint's cell, its status and history.
    pub identity: u64,
}

/// One monitor of an endpoint.
#[derive(Debug)]
pub struct Input {
    /// Its `name` in `[[monitors]]`.
    pub name: Arc<str>,
    /// `invert = true`: up while its check fails.
    pub invert: bool,
    /// Its probe's cell (shared by every identical probe): the status the
    /// probes (or in a cluster the quorum) decided.
    pub cell: Arc<HealthCell>,
    /// What it checks, secret-free: `tcp 10.1.2.3:5432`,
    /// `https api.example.com:443`, `push`.
    pub what: String,
    /// `protocol = "push"`: set from outside, not probed.
    pub push: Option<super::push::PushSettings>,
}

impl Input {
    /// Its verdict now.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.cell.get(), self.invert)
    }

    /// "db (tcp 10.1.2.3:5432: connect refused)", "api ok".
    pub fn describe(&self) -> String {
        let verdict = self.verdict();
        if verdict == Verdict::Up && !self.invert {
            return format!("{} ok", self.name);
        }
        let d = self.cell.details();
        let seen = match (&d.cluster, &d.last_probe) {
            _ if self.push.is_some() => d.note.clone().unwrap_or_else(|| "no push yet".into()),
            (Some(view), _) => view.describe(),
            (None, None) => "not probed yet".to_string(),
            (None, Some(o)) => match &o.failure {
                Some(f) => f.reason.clone(),
                None => "probe succeeded".to_string(),
            },
        };
        match (verdict, self.invert) {
            (Verdict::Up, _) => format!("{} ok ({}: {seen}, inverted)", self.name, self.what),
            (Verdict::Down, true) => format!("{} ({}: {seen}, inverted)", self.name, self.what),
            _ => format!("{} ({}: {seen})", self.name, self.what),
        }
    }
}

impl Monitors {
    /// The combined status of the inputs now.
    pub fn status(&self) -> Status {
        let verdicts: Vec<Verdict> = self.inputs.iter().map(Input::verdict).collect();
        combine(self.rule, &verdicts)
    }

    /// Why, in one line, failing monitors first: "db (tcp 10.1.2.3:5432:
    /// connect refused); api ok". With a rule other than `all`, the rule
    /// follows: "...; any must be up".
    pub fn describe(&self) -> String {
        let mut parts: Vec<(u8, String)> = self
            .inputs
            .iter()
            .map(|i| {
                let rank = match i.verdict() {
                    Verdict::Down => 0,
                    Verdict::Unknown => 1,
                    Verdict::Up => 2,
                };
                (rank, i.describe())
            })
            .collect();
        parts.sort_by_key(|(rank, _)| *rank);
        let mut s = parts
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join("; ");
        match self.rule {
            Rule::All => {}
            Rule::Any => s.push_str(" (health = any: one must be up)"),
            Rule::AtLeast(n) => s.push_str(&format!(" (health: at least {n} must be up)")),
        }
        s
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

    fn input(name: &str, status: Status, invert: bool) -> Input {
        let cell = HealthCell::new();
        cell.set(status);
        Input {
            name: name.into(),
            invert,
            cell: Arc::new(cell),
            what: format!("tcp 10.1.2.3:{}", name.len()),
            push: None,
        }
    }

    #[test]
    fn describe_names_the_failing_monitor_first() {
        let m = Monitors {
            rule: Rule::All,
            inputs: vec![
                input("api", Status::Online, false),
                input("db", Status::Degraded, false),
            ]
            .into(),
            identity: 0,
        };
        assert_eq!(m.status(), Status::Degraded);
        assert_eq!(m.describe(), "db (tcp 10.1.2.3:2: not probed yet); api ok");
        let m = Monitors {
            rule: Rule::Any,
            inputs: vec![
                input("api", Status::Online, false),
                input("maint", Status::Online, true),
            ]
            .into(),
            identity: 0,
        };
        assert_eq!(m.status(), Status::Online);
        assert_eq!(
            m.describe(),
            "maint (tcp 10.1.2.3:5: not probed yet, inverted); api ok (health = any: one must be up)"
        );
    }

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
        assert_eq!(
            combine(Rule::Any, &[Down, Unknown]),
            Status::CheckingEndpoint
        );
    }

    #[test]
    fn at_least_counts_the_monitors_up() {
        let three = Rule::AtLeast(2);
        assert_eq!(combine(three, &[Up, Up, Down]), Status::Online);
        assert_eq!(combine(three, &[Up, Down, Down]), Status::Degraded);
        assert_eq!(
            combine(three, &[Up, Unknown, Down]),
            Status::CheckingEndpoint
        );
    }

    #[test]
    fn invert_swaps_up_and_down_but_not_unknown() {
        assert_eq!(Verdict::of(Status::Online, true), Down);
        assert_eq!(Verdict::of(Status::Degraded, true), Up);
        assert_eq!(Verdict::of(Status::CheckingEndpoint, true), Unknown);
        assert_eq!(Verdict::of(Status::Online, false), Up);
    }
}
