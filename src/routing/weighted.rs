//! Weighted routing: one usable endpoint at random, in proportion to weight.

use super::Endpoint;

/// Picks one usable endpoint with probability weight / total usable weight.
pub fn pick(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
    // Two passes over a handful of endpoints beat building a cumulative
    // table per query: the usable set changes with health, so nothing can be
    // precomputed beyond the weights themselves.
    let total: u64 = eps
        .iter()
        .filter(|e| usable(e))
        .map(|e| e.weight as u64)
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rng.u64(0..total);
    for (i, e) in eps.iter().enumerate() {
        if !usable(e) {
            continue;
        }
        let w = e.weight as u64;
        if r < w {
            return Some(i as u32);
        }
        r -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use crate::routing::test_support::ep;

    #[test]
    fn distribution_follows_weights() {
        let mut eps = [
            ep(1, Status::Online),
            ep(2, Status::Online),
            ep(3, Status::Online),
        ];
        eps[0].weight = 70;
        eps[1].weight = 20;
        eps[2].weight = 10;
        let mut rng = fastrand::Rng::with_seed(42);
        let mut counts = [0u32; 3];
        let n = 100_000;
        for _ in 0..n {
            let i = pick(&eps, |e| e.status().is_answerable(), &mut rng).unwrap();
            counts[i as usize] += 1;
        }
        // Binomial sd at n=100k is under 0.15 percentage points; 1 point is > 6 sd.
        for (c, want) in counts.iter().zip([0.70, 0.20, 0.10]) {
            let share = *c as f64 / n as f64;
            assert!((share - want).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn unusable_endpoints_get_nothing() {
        let mut eps = [ep(1, Status::Degraded), ep(2, Status::Online)];
        eps[0].weight = 1000;
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            assert_eq!(
                pick(&eps, |e| e.status().is_answerable(), &mut rng),
                Some(1)
            );
        }
        assert_eq!(pick(&eps, |_| false, &mut rng), None);
    }
}
