//! How the observations of several name servers combine into one status
//! (the cluster's quorum rule). Pure: the cluster task feeds it what gossip
//! brought, the prober's own decision included, and publishes the result.

use std::fmt;

use super::Status;

/// How many of the live nodes that have decided must see an endpoint
/// Degraded for it to be Degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Quorum {
    /// One node is enough (the most sensitive).
    Any,
    /// More than half (2 of 2, 2 of 3, 3 of 5).
    #[default]
    Majority,
    /// Every live node that has decided.
    All,
    /// This many (at most every node that has decided, so a node cut off
    /// from all others decides from its own view once the others' held
    /// votes have run out).
    Count(u32),
}

impl Quorum {
    /// Parses `"any"`, `"majority"` or `"all"`.
    pub fn parse(text: &str) -> Option<Quorum> {
        match text {
            "any" => Some(Quorum::Any),
            "majority" => Some(Quorum::Majority),
            "all" => Some(Quorum::All),
            _ => None,
        }
    }

    /// Degraded observations needed among `deciders` (at least 1).
    pub fn needed(self, deciders: usize) -> usize {
        let n = deciders.max(1);
        match self {
            Quorum::Any => 1,
            Quorum::Majority => n / 2 + 1,
            Quorum::All => n,
            Quorum::Count(k) => (k as usize).clamp(1, n),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::Any => f.write_str("any"),
            Quorum::Majority => f.write_str("majority"),
            Quorum::All => f.write_str("all"),
            Quorum::Count(k) => write!(f, "{k}"),
        }
    }
}

/// What the quorum rule decided for one probe target, and from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The status to serve with.
    pub status: Status,
    /// Live nodes (this one included) whose identical probe has decided.
    pub deciders: usize,
    /// Of those, how many see it Degraded.
    pub degraded: usize,
    /// Degraded observations needed.
    pub needed: usize,
}

impl Verdict {
    /// The verdict in words, the one wording the log, notifications,
    /// explain, the API and the page use: "2 of 3 deciding nodes see it
    /// Degraded (quorum majority needs 2)".
    pub fn text(&self, quorum: Quorum) -> String {
        format!(
            "{} of {} deciding node{} see{} it Degraded (quorum {quorum} needs {})",
            self.degraded,
            self.deciders,
            if self.deciders == 1 { "" } else { "s" },
            if self.deciders == 1 { "s" } else { "" },
            self.needed
        )
    }
}

/// Combines decided statuses (`Online` or `Degraded`; anything else is
/// "not decided yet" and not counted). With no decider the target is still
/// being checked.
pub fn combine(quorum: Quorum, statuses: impl IntoIterator<Item = Status>) -> Verdict {
    let (mut deciders, mut degraded) = (0, 0);
    for s in statuses {
        match s {
            Status::Online => deciders += 1,
            Status::Degraded => {
                deciders += 1;
                degraded += 1;
            }
            _ => {}
        }
    }
    let needed = quorum.needed(deciders);
    let status = if deciders == 0 {
        Status::CheckingEndpoint
    } else if degraded >= needed {
        Status::Degraded
    } else {
        Status::Online
    };
    Verdict {
        status,
        deciders,
        degraded,
        needed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{CheckingEndpoint as C, Degraded as D, Online as O};

    #[test]
    fn needed_per_rule() {
        assert_eq!(Quorum::Majority.needed(1), 1);
        assert_eq!(Quorum::Majority.needed(2), 2);
        assert_eq!(Quorum::Majority.needed(3), 2);
        assert_eq!(Quorum::Majority.needed(5), 3);
        assert_eq!(Quorum::Any.needed(5), 1);
        assert_eq!(Quorum::All.needed(3), 3);
        assert_eq!(Quorum::Count(2).needed(3), 2);
        // Cut off from the others: its own view decides.
        assert_eq!(Quorum::Count(2).needed(1), 1);
        assert_eq!(Quorum::All.needed(0), 1);
    }

    #[test]
    fn the_issue_cases() {
        // One of three sees it down: majority keeps it, any takes it out.
        assert_eq!(combine(Quorum::Majority, [D, O, O]).status, O);
        assert_eq!(combine(Quorum::Any, [D, O, O]).status, D);
        // Two of three: majority takes it out, all does not.
        assert_eq!(combine(Quorum::Majority, [D, D, O]).status, D);
        assert_eq!(combine(Quorum::All, [D, D, O]).status, O);
        // Undecided nodes do not count either way.
        let v = combine(Quorum::Majority, [D, C, C]);
        assert_eq!((v.status, v.deciders, v.degraded, v.needed), (D, 1, 1, 1));
        assert_eq!(combine(Quorum::Majority, [C, C]).status, C);
        assert_eq!(combine(Quorum::Majority, []).status, C);
    }
}
