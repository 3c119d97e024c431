//! Weighted routing: one usable endpoint at random, in proportion to weight.
//!
//! O(1) per query however large the profile: an alias table (Vose's method,
//! built at load time over *every* endpoint's weight) draws an endpoint in
//! proportion to its weight with one random number and one table read; an
//! endpoint that is not usable is rejected and the draw repeated. Rejection
//! keeps the distribution proportional to weight among the usable
//! endpoints and needs nothing rebuilt when health changes. Only when most
//! of the weight is unusable and [`TRIES`] draws in a row miss does one
//! exact linear pass decide.

use crate::snapshot::{Column, Endpoint};

/// Draws before the exact pass: with half the weight usable, all of them
/// miss one time in 65,536.
pub const TRIES: usize = 16;

/// Builds the alias table of the endpoints' weights (Vose's method, in
/// integers: each column's split is exact to 2^-32).
pub fn alias_table(eps: &[Endpoint]) -> Box<[Column]> {
    let n = eps.len() as u128;
    let total: u128 = eps.iter().map(|e| e.weight as u128).sum();
    if n == 0 || total == 0 {
        return Box::new([]);
    }
    // Scaled so that the average column is exactly `total`.
    let mut scaled: Vec<u128> = eps.iter().map(|e| e.weight as u128 * n).collect();
    let mut table: Vec<Column> = (0..eps.len() as u32)
        .map(|i| Column {
            threshold: u32::MAX,
            alias: i,
        })
        .collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) =
        (0..eps.len()).partition(|&i| scaled[i] < total);
    while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
        table[s] = Column {
            threshold: ((scaled[s] << 32) / total).min(u32::MAX as u128) as u32,
            alias: l as u32,
        };
        scaled[l] = scaled[l] + scaled[s] - total;
        if scaled[l] < total {
            large.pop();
            small.push(l);
        }
    }
    table.into_boxed_slice()
}

/// Draws one endpoint index in proportion to weight.
#[inline]
fn draw(table: &[Column], rng: &mut fastrand::Rng) -> usize {
    let x = rng.u64(..);
    let i = (((x >> 32) * table.len() as u64) >> 32) as usize;
    let c = table[i];
    if (x as u32) < c.threshold {
        i
    } else {
        c.alias as usize
    }
}

/// Picks one usable endpoint with probability weight / total usable weight.
pub fn pick(
    eps: &[Endpoint],
    table: &[Column],
    usable: impl Fn(&Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
    if !table.is_empty() && table.len() == eps.len() {
        for _ in 0..TRIES {
            let i = draw(table, rng);
            if eps.get(i).is_some_and(&usable) {
                return Some(i as u32);
            }
        }
    }
    exact(eps, usable, rng)
}

/// The linear pass: total usable weight, then one draw within it.
fn exact(
    eps: &[Endpoint],
    usable: impl Fn(&Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
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
    use std::cell::Cell;

    fn shares(eps: &[Endpoint], n: usize, seed: u64) -> Vec<f64> {
        let cum = alias_table(eps);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut counts = vec![0u32; eps.len()];
        for _ in 0..n {
            let i = pick(eps, &cum, |e| e.status().is_answerable(), &mut rng).unwrap();
            counts[i as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / n as f64).collect()
    }

    #[test]
    fn alias_table_is_exact() {
        // Each endpoint's probability summed over the columns equals its
        // share of the weight (to 2^-32 per column).
        let mut eps: Vec<Endpoint> = (1..=7).map(|n| ep(n, Status::Online)).collect();
        for (e, w) in eps.iter_mut().zip([1, 2, 3, 5, 8, 13, 1000]) {
            e.weight = w;
        }
        let t = alias_table(&eps);
        let n = t.len() as f64;
        let mut p = vec![0.0f64; eps.len()];
        for (i, c) in t.iter().enumerate() {
            let own = c.threshold as f64 / 4294967296.0;
            p[i] += own / n;
            p[c.alias as usize] += (1.0 - own) / n;
        }
        let total: f64 = eps.iter().map(|e| e.weight as f64).sum();
        for (e, got) in eps.iter().zip(p) {
            assert!((got - e.weight as f64 / total).abs() < 1e-8, "{got}");
        }
    }

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
        // Binomial sd at n=100k is under 0.15 percentage points; 1 point is > 6 sd.
        for (got, want) in shares(&eps, 100_000, 42).iter().zip([0.70, 0.20, 0.10]) {
            assert!((got - want).abs() < 0.01, "{got} vs {want}");
        }
    }

    #[test]
    fn distribution_is_exact_among_the_usable_whatever_is_down() {
        // Most of the weight down: the draws miss often and the exact pass
        // decides, and the shares among the usable are still exact.
        let mut eps: Vec<Endpoint> = (1..=6)
            .map(|n| {
                ep(
                    n,
                    if n <= 4 {
                        Status::Degraded
                    } else {
                        Status::Online
                    },
                )
            })
            .collect();
        for (e, w) in eps.iter_mut().zip([500, 300, 100, 50, 30, 10]) {
            e.weight = w;
        }
        let got = shares(&eps, 100_000, 7);
        assert!(got[..4].iter().all(|&s| s == 0.0), "{got:?}");
        assert!(
            (got[4] - 0.75).abs() < 0.01 && (got[5] - 0.25).abs() < 0.01,
            "{got:?}"
        );
    }

    #[test]
    fn unusable_endpoints_get_nothing() {
        let mut eps = [ep(1, Status::Degraded), ep(2, Status::Online)];
        eps[0].weight = 1000;
        let cum = alias_table(&eps);
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            assert_eq!(
                pick(&eps, &cum, |e| e.status().is_answerable(), &mut rng),
                Some(1)
            );
        }
        assert_eq!(pick(&eps, &cum, |_| false, &mut rng), None);
    }

    /// Cost does not grow with the profile: with 10,000 endpoints all up,
    /// a pick looks at a handful of them, not all.
    #[test]
    fn large_profiles_cost_a_few_looks_per_pick() {
        let eps: Vec<Endpoint> = (0..10_000u32)
            .map(|n| ep((n % 250) as u8, Status::Online))
            .collect();
        let cum = alias_table(&eps);
        let mut rng = fastrand::Rng::with_seed(3);
        let looks = Cell::new(0u32);
        for _ in 0..1000 {
            pick(
                &eps,
                &cum,
                |e| {
                    looks.set(looks.get() + 1);
                    e.status().is_answerable()
                },
                &mut rng,
            )
            .unwrap();
        }
        assert!(
            looks.get() <= 1000 * 2,
            "{} looks for 1000 picks",
            looks.get()
        );
    }
}
