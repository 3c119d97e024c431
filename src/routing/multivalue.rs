//! Multivalue routing: up to `max_answers` usable endpoints, random subset,
//! random order, per query.
//!
//! Large profiles are sampled, not scanned: endpoints drawn uniformly at
//! random, keeping usable ones not drawn before, give a uniformly random
//! ordered subset after a few draws whatever the profile's size. When the
//! draws cannot fill the answer (few usable endpoints), one reservoir pass
//! over the profile decides, which is just as uniform.

use super::picks::{MAX_PICKS, Picks};
use crate::snapshot::Endpoint;

/// Profiles smaller than this are scanned: cheaper than sampling.
const SAMPLE_FROM: usize = 32;

/// Fills `picks` with a uniformly random subset of at most `max` usable
/// endpoints, in random order. No allocation.
pub fn pick(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    max: usize,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
) {
    let max = max.min(MAX_PICKS);
    if max == 0 {
        return;
    }
    if eps.len() >= SAMPLE_FROM {
        for _ in 0..max * 8 + 16 {
            let i = rng.usize(0..eps.len()) as u32;
            if !picks.as_slice().contains(&i) && usable(&eps[i as usize]) {
                picks.push(i);
                if picks.as_slice().len() == max {
                    return;
                }
            }
        }
        picks.clear();
    }
    reservoir(eps, usable, max, rng, picks);
}

/// Reservoir sampling into the fixed-size [`Picks`], then a Fisher-Yates
/// shuffle.
fn reservoir(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    max: usize,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
) {
    let mut seen = 0usize;
    for (i, e) in eps.iter().enumerate() {
        if !usable(e) {
            continue;
        }
        if seen < max {
            picks.push(i as u32);
        } else {
            let j = rng.usize(0..=seen);
            if j < max {
                picks.as_mut_slice()[j] = i as u32;
            }
        }
        seen += 1;
    }
    let s = picks.as_mut_slice();
    for i in (1..s.len()).rev() {
        s.swap(i, rng.usize(0..=i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use crate::routing::test_support::ep;

    fn answerable(e: &Endpoint) -> bool {
        e.status().is_answerable()
    }

    #[test]
    fn at_most_max_distinct_usable() {
        let eps: Vec<_> = (1..=6)
            .map(|n| {
                ep(
                    n,
                    if n == 3 {
                        Status::Degraded
                    } else {
                        Status::Online
                    },
                )
            })
            .collect();
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..500 {
            let mut picks = Picks::default();
            pick(&eps, answerable, 3, &mut rng, &mut picks);
            let mut got = picks.as_slice().to_vec();
            assert_eq!(got.len(), 3);
            assert!(!got.contains(&2), "degraded endpoint picked");
            got.sort();
            got.dedup();
            assert_eq!(got.len(), 3, "duplicates");
        }
    }

    #[test]
    fn subsets_and_orders_are_uniform() {
        let eps: Vec<_> = (1..=4).map(|n| ep(n, Status::Online)).collect();
        let mut rng = fastrand::Rng::with_seed(11);
        let mut first = [0u32; 4];
        let mut included = [0u32; 4];
        let n = 40_000;
        for _ in 0..n {
            let mut picks = Picks::default();
            pick(&eps, answerable, 2, &mut rng, &mut picks);
            first[picks.as_slice()[0] as usize] += 1;
            for &i in picks.as_slice() {
                included[i as usize] += 1;
            }
        }
        for c in first {
            assert!((c as f64 / n as f64 - 0.25).abs() < 0.02, "{first:?}");
        }
        for c in included {
            assert!((c as f64 / n as f64 - 0.5).abs() < 0.02, "{included:?}");
        }
    }

    #[test]
    fn large_profiles_are_sampled_uniformly_and_cheaply() {
        let mut eps: Vec<_> = (0..10_000u32)
            .map(|n| ep((n % 250) as u8, Status::Online))
            .collect();
        // A few down: never picked.
        for e in eps.iter_mut().take(100) {
            e.health = crate::snapshot::Health::Disabled;
        }
        let mut rng = fastrand::Rng::with_seed(5);
        let looks = std::cell::Cell::new(0u32);
        let mut hits = vec![0u32; eps.len()];
        let rounds = 20_000;
        for _ in 0..rounds {
            let mut picks = Picks::default();
            pick(
                &eps,
                |e| {
                    looks.set(looks.get() + 1);
                    e.status().is_answerable()
                },
                4,
                &mut rng,
                &mut picks,
            );
            let mut got = picks.as_slice().to_vec();
            assert_eq!(got.len(), 4);
            got.sort();
            got.dedup();
            assert_eq!(got.len(), 4, "duplicates");
            for i in got {
                assert!(i >= 100, "a disabled endpoint was picked");
                hits[i as usize] += 1;
            }
        }
        assert!(looks.get() <= rounds * 6, "{} looks", looks.get());
        // Uniform: halves of the usable range get half the picks each.
        let low: u32 = hits[100..5050].iter().sum();
        let high: u32 = hits[5050..].iter().sum();
        let share = low as f64 / (low + high) as f64;
        assert!((share - 0.5).abs() < 0.02, "{share}");
    }

    #[test]
    fn sampling_falls_back_when_few_are_usable() {
        let mut eps: Vec<_> = (0..100u32).map(|n| ep(n as u8, Status::Degraded)).collect();
        eps[7] = ep(7, Status::Online);
        eps[93] = ep(93, Status::Online);
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..100 {
            let mut picks = Picks::default();
            pick(&eps, answerable, 3, &mut rng, &mut picks);
            let mut got = picks.as_slice().to_vec();
            got.sort();
            assert_eq!(got, [7, 93]);
        }
    }

    #[test]
    fn fewer_usable_than_max() {
        let eps = [ep(1, Status::Online), ep(2, Status::Degraded)];
        let mut picks = Picks::default();
        pick(
            &eps,
            answerable,
            10,
            &mut fastrand::Rng::with_seed(1),
            &mut picks,
        );
        assert_eq!(picks.as_slice(), &[0]);
    }
}
