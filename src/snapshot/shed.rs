//! Shedding: the share of new traffic an endpoint moves to the others, by
//! its load (`shed_above`), by hand (`endpoint shed --percent`) or by a
//! drain that ramps (`drain --over`); the largest of the three applies.
//!
//! A drain ramp is a pure function of the clock, so every node, and the
//! same node after a restart, computes the same step: it sheds a rising
//! share in steps (one per 30 s, at least 10 and at most 100), the first
//! at once, all of it in the last, and at its end the endpoint is out of
//! answers as any drain.

use std::sync::atomic::Ordering::Relaxed;

use super::EndpointRuntime;

/// A drain ramp's steps last this long unless that makes too few or too
/// many.
const STEP_MS: u64 = 30_000;
/// Fewest steps of a ramp, however short.
pub const MIN_STEPS: u32 = 10;
/// Most steps of a ramp (1 % each), however long.
pub const MAX_STEPS: u32 = 100;

/// How many steps a ramp lasting `over_ms` takes: one per 30 s, at least
/// [`MIN_STEPS`], at most [`MAX_STEPS`].
pub fn ramp_steps(over_ms: u64) -> u32 {
    (over_ms / STEP_MS).clamp(u64::from(MIN_STEPS), u64::from(MAX_STEPS)) as u32
}

/// Where a ramp from `from_ms` lasting `over_ms` stands at `now_ms`: the
/// step (from 1) and the number of steps; `None` once it is over (or it
/// has no length).
pub fn ramp_step(from_ms: u64, over_ms: u64, now_ms: u64) -> Option<(u32, u32)> {
    if over_ms == 0 {
        return None;
    }
    // A clock behind the one that made it: the first step.
    let elapsed = now_ms.saturating_sub(from_ms);
    if elapsed >= over_ms {
        return None;
    }
    let n = ramp_steps(over_ms);
    let i = (u128::from(elapsed) * u128::from(n) / u128::from(over_ms)) as u32;
    Some((i + 1, n))
}

/// Thousandths shed at `now_ms` by a ramp from `from_ms` lasting `over_ms`:
/// step k of n sheds k/n; 0 once it is over (out of answers then).
pub fn ramp_permille(from_ms: u64, over_ms: u64, now_ms: u64) -> u32 {
    ramp_step(from_ms, over_ms, now_ms).map_or(0, |(k, n)| k * 1000 / n)
}

/// A share in thousandths as a percentage: `30`, `33.3`.
fn pct(permille: u32) -> f64 {
    f64::from(permille) / 10.0
}

fn at(ms: u64) -> String {
    crate::clock::rfc3339_seconds(crate::clock::from_unix_millis(ms))
}

impl EndpointRuntime {
    /// Thousandths of new traffic shed away from it now: the largest of
    /// its load's share, a shed by hand and a drain ramp's step. One
    /// relaxed load, two with a shed by hand or a ramp set (then the clock
    /// too): the answer path reads it for the endpoints it picked.
    #[inline]
    pub fn shed_permille(&self) -> u32 {
        let auto = self.shed.load(Relaxed);
        if !self.manual.load(Relaxed) {
            return auto;
        }
        auto.max(self.manual_permille(crate::clock::now_millis_coarse()))
    }

    /// The share shed by hand or by a drain ramp at `now_ms`, in
    /// thousandths.
    pub fn manual_permille(&self, now_ms: u64) -> u32 {
        self.hand_permille(now_ms).max(self.ramp_permille(now_ms))
    }

    /// A shed by hand in force at `now_ms`, in thousandths (0: none).
    fn hand_permille(&self, now_ms: u64) -> u32 {
        let hand = self.hand.load(Relaxed);
        let until = hand >> 16;
        if until != 0 && now_ms >= until {
            return 0;
        }
        (hand & 0xffff) as u32
    }

    /// A drain ramp's share at `now_ms`, in thousandths (0: none, or over).
    fn ramp_permille(&self, now_ms: u64) -> u32 {
        let (from, to) = (self.ramp_from.load(Relaxed), self.ramp_to.load(Relaxed));
        if from == 0 {
            return 0;
        }
        ramp_permille(from, to.saturating_sub(from), now_ms)
    }

    /// A drain ramp set: when it began and ends (ms since the epoch).
    pub fn ramp(&self) -> Option<(u64, u64)> {
        let (from, to) = (self.ramp_from.load(Relaxed), self.ramp_to.load(Relaxed));
        (from != 0).then_some((from, to))
    }

    /// Sheds `permille` of new traffic because its load `load` passed
    /// `above` (both in thousandths); 0 stops. Returns whether it changed.
    pub fn set_shed(&self, permille: u32, load: u32, above: u32) -> bool {
        self.shed_load
            .store((u64::from(load) << 32) | u64::from(above), Relaxed);
        self.shed.swap(permille.min(1000), Relaxed) != permille.min(1000)
    }

    /// While it sheds, why, naming the largest share: "shed 30 % (load
    /// 0.91 > 0.85)", "shed 30 % by hand until ...", "draining: 40 % shed,
    /// out of answers at ...".
    pub fn shed_text(&self) -> Option<String> {
        self.shed_text_at(crate::clock::now_millis())
    }

    /// [`EndpointRuntime::shed_text`] at `now_ms`.
    pub fn shed_text_at(&self, now_ms: u64) -> Option<String> {
        let auto = self.shed.load(Relaxed);
        let (hand, ramp) = (self.hand_permille(now_ms), self.ramp_permille(now_ms));
        if auto == 0 && hand == 0 && ramp == 0 {
            return None;
        }
        let v = self.shed_load.load(Relaxed);
        let (load, above) = ((v >> 32) as u32, v as u32);
        let by_load = (auto != 0).then(|| {
            if v == u64::MAX {
                String::new()
            } else {
                format!(
                    "load {:.2} > {:.2}",
                    f64::from(load) / 1000.0,
                    f64::from(above) / 1000.0
                )
            }
        });
        let text = if ramp != 0 && ramp >= hand && ramp >= auto {
            let (_, to) = self.ramp().unwrap_or_default();
            format!(
                "draining: {} % shed, out of answers at {}",
                pct(ramp),
                at(to)
            )
        } else if hand != 0 && hand >= auto {
            let until = self.hand.load(Relaxed) >> 16;
            let until = if until == 0 {
                String::new()
            } else {
                format!(" until {}", at(until))
            };
            format!("shed {} % by hand{until}", pct(hand))
        } else {
            return Some(match by_load {
                Some(l) if !l.is_empty() => format!("shed {} % ({l})", pct(auto)),
                _ => format!("shed {} %", pct(auto)),
            });
        };
        // The load's share, when smaller, is said too.
        Some(match by_load {
            Some(l) if !l.is_empty() => format!("{text}; {l} sheds {} %", pct(auto)),
            _ => text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::OverrideState;

    #[test]
    fn a_ramp_steps_from_the_first_share_at_once_to_all_then_ends() {
        // 2 s: 10 steps of 200 ms.
        let from = 1_000_000;
        assert_eq!(ramp_steps(2_000), 10);
        assert_eq!(ramp_step(from, 2_000, from), Some((1, 10)));
        assert_eq!(ramp_permille(from, 2_000, from), 100);
        assert_eq!(ramp_permille(from, 2_000, from + 199), 100);
        assert_eq!(ramp_permille(from, 2_000, from + 200), 200);
        assert_eq!(ramp_permille(from, 2_000, from + 1_000), 600);
        assert_eq!(ramp_permille(from, 2_000, from + 1_999), 1000);
        assert_eq!(ramp_step(from, 2_000, from + 2_000), None);
        assert_eq!(ramp_permille(from, 2_000, from + 2_000), 0);
        // A clock behind: the first step.
        assert_eq!(ramp_permille(from, 2_000, from - 5_000), 100);
        // Rising, never falling.
        let mut last = 0;
        for t in (0..2_000).step_by(7) {
            let p = ramp_permille(from, 2_000, from + t);
            assert!(p >= last && p > 0);
            last = p;
        }
    }

    #[test]
    fn a_ramp_steps_every_30_seconds_between_10_and_100_steps() {
        assert_eq!(ramp_steps(1), 10);
        assert_eq!(ramp_steps(10 * 60_000), 20);
        assert_eq!(ramp_steps(3_600_000), 100);
        assert_eq!(ramp_steps(7 * 86_400_000), 100);
        // 10 minutes: 5 % more every 30 s.
        let over = 10 * 60_000;
        assert_eq!(ramp_permille(1, over, 1), 50);
        assert_eq!(ramp_permille(1, over, 1 + 4 * 60_000), 450);
        assert_eq!(ramp_step(1, over, 1 + 9 * 60_000 + 59_999), Some((20, 20)));
        assert_eq!(ramp_step(0, 0, 5), None);
    }

    #[test]
    fn the_largest_share_applies_and_is_named() {
        let rt = EndpointRuntime::default();
        let now = crate::clock::now_millis();
        assert_eq!(rt.shed_permille(), 0);
        assert_eq!(rt.shed_text_at(now), None);
        rt.set_shed(200, 910, 850);
        assert_eq!(rt.shed_permille(), 200);
        rt.apply(OverrideState::Shed {
            permille: 300,
            until_ms: None,
        });
        assert_eq!(rt.shed_permille(), 300);
        assert_eq!(
            rt.shed_text_at(now).unwrap(),
            "shed 30 % by hand; load 0.91 > 0.85 sheds 20 %"
        );
        assert!(!rt.is_disabled());
        // The load's share, when larger, wins.
        rt.set_shed(500, 990, 850);
        assert_eq!(rt.shed_permille(), 500);
        assert_eq!(
            rt.shed_text_at(now).unwrap(),
            "shed 50 % (load 0.99 > 0.85)"
        );
        rt.set_shed(0, 100, 850);
        // Timed: ends by itself.
        rt.apply(OverrideState::Shed {
            permille: 300,
            until_ms: Some(now + 60_000),
        });
        assert_eq!(rt.manual_permille(now), 300);
        assert_eq!(rt.manual_permille(now + 61_000), 0);
        assert!(
            rt.shed_text_at(now)
                .unwrap()
                .starts_with("shed 30 % by hand until 20")
        );
        assert_eq!(rt.shed_text_at(now + 61_000), None);
        // An enable ends it.
        rt.apply(OverrideState::On { at_ms: now });
        assert_eq!(rt.shed_permille(), 0);
        assert_eq!(rt.shed_text_at(now), None);
    }

    #[test]
    fn a_ramping_drain_answers_and_sheds_until_its_end_then_is_out() {
        let rt = EndpointRuntime::default();
        let now = crate::clock::now_millis();
        rt.apply(OverrideState::Off {
            until_ms: None,
            drain: true,
            at_ms: now,
            ramp: Some((now, now + 60_000)),
        });
        assert!(!rt.is_disabled() && !rt.is_draining());
        assert!(rt.shed_permille() >= 100);
        assert_eq!(rt.manual_permille(now + 30_000), 600);
        assert!(
            rt.shed_text_at(now)
                .unwrap()
                .starts_with("draining: 10 % shed, out of answers at 20")
        );
        // Past its end: out of answers (no more shedding to speak of).
        let rt = EndpointRuntime::default();
        rt.apply(OverrideState::Off {
            until_ms: None,
            drain: true,
            at_ms: now - 120_000,
            ramp: Some((now - 120_000, now - 60_000)),
        });
        assert!(rt.is_disabled() && rt.is_draining());
        assert_eq!(rt.manual_permille(now), 0);
        assert!(rt.changed_secs() >= ((now - 60_000) / 1000) as u32);
    }
}
