//! Multivalue routing: up to `max_answers` usable endpoints, random subset,
//! random order, per query.

use super::{Endpoint, Picks};

/// Fills `picks` with a uniformly random subset of at most `max` usable
/// endpoints, in random order. No allocation: reservoir sampling into the
/// fixed-size [`Picks`], then a Fisher-Yates shuffle.
pub fn pick(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    max: usize,
    rng: &mut fastrand::Rng,
    picks: &mut Picks,
) {
    let max = max.min(super::MAX_PICKS);
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
