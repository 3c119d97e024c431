//! The endpoint state machine: thresholds in, transitions out. Pure, so it
//! is tested without a network or a clock.

use super::Status;

/// How many results it takes to change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Thresholds {
    /// Consecutive failures tolerated; the next one means Degraded.
    pub tolerated_failures: u32,
    /// Consecutive successes needed to leave Degraded.
    pub required_successes: u32,
}

/// The observed state of one probe target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    status: Status,
    failures: u32,
    successes: u32,
}

/// A status change caused by one probe result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    /// A target with no result yet: `CheckingEndpoint`.
    pub fn new() -> Machine {
        Machine {
            status: Status::CheckingEndpoint,
            failures: 0,
            successes: 0,
        }
    }

    /// Resumes from a status carried over a reload.
    pub fn resume(status: Status) -> Machine {
        Machine {
            status,
            ..Machine::new()
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Consecutive failed probes so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Feeds one probe result; returns the transition it caused, if any.
    ///
    /// - `CheckingEndpoint` stays until the first decision: a success makes
    ///   it `Online`, `tolerated_failures + 1` consecutive failures make it
    ///   `Degraded`.
    /// - `Online` becomes `Degraded` on the `tolerated_failures + 1`-th
    ///   consecutive failure.
    /// - `Degraded` becomes `Online` after `required_successes` consecutive
    ///   successes (anti-flap).
    pub fn record(&mut self, success: bool, t: Thresholds) -> Option<Transition> {
        let from = self.status;
        if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            let to = match from {
                Status::Degraded if self.successes < t.required_successes.max(1) => from,
                _ => Status::Online,
            };
            self.status = to;
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures > t.tolerated_failures {
                self.status = Status::Degraded;
            }
        }
        (self.status != from).then_some(Transition {
            from,
            to: self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tolerated: u32, required: u32) -> Thresholds {
        Thresholds {
            tolerated_failures: tolerated,
            required_successes: required,
        }
    }

    fn run(m: &mut Machine, th: Thresholds, results: &str) -> Vec<Status> {
        results
            .chars()
            .map(|c| {
                m.record(c == '+', th);
                m.status()
            })
            .collect()
    }

    use Status::{CheckingEndpoint as C, Degraded as D, Online as O};

    #[test]
    fn first_success_is_online() {
        let mut m = Machine::new();
        assert_eq!(m.record(true, t(3, 2)), Some(Transition { from: C, to: O }));
    }

    #[test]
    fn degraded_on_the_n_plus_first_failure() {
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(2, 1), "+---"), [O, O, O, D]);
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(0, 1), "+-"), [O, D]);
    }

    #[test]
    fn checking_until_decided() {
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(2, 1), "--"), [C, C]);
        assert_eq!(m.consecutive_failures(), 2);
        assert_eq!(run(&mut m, t(2, 1), "-"), [D]);
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(2, 1), "-+"), [C, O]);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(1, 1), "+-+-+-"), [O; 6]);
    }

    #[test]
    fn required_successes_prevent_flapping() {
        let mut m = Machine::new();
        assert_eq!(run(&mut m, t(0, 3), "-++-+++"), [D, D, D, D, D, D, O]);
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut m = Machine::new();
        let th = t(0, 1);
        assert!(m.record(false, th).is_some());
        assert!(m.record(false, th).is_none());
        assert_eq!(m.record(true, th), Some(Transition { from: D, to: O }));
        assert!(m.record(true, th).is_none());
    }

    #[test]
    fn resume_keeps_status_but_not_counts() {
        let mut m = Machine::resume(D);
        assert_eq!(m.status(), D);
        assert_eq!(run(&mut m, t(0, 2), "++"), [D, O]);
    }
}
