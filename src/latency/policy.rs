//! `[latency]` as the table applies it: the policy (`min_samples`,
//! `band`, `max_networks`, `half_life`) and what a measurement must be.

use std::time::Duration;

use super::{DEFAULT_HALF_LIFE, DEFAULT_MAX_NETWORKS, DEFAULT_MIN_SAMPLES, MAX_RTT, table};
/// Why a measurement was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Zero or negative.
    #[error("round trip time must be more than 0")]
    NotPositive,
    /// Longer than [`MAX_RTT`].
    #[error("round trip time {0:?} is longer than 60 s")]
    TooLong(Duration),
    /// Not `PROFILE/ENDPOINT`.
    #[error("endpoint {0:?} is not PROFILE/ENDPOINT")]
    Endpoint(String),
    /// A sample count of 0, or more than a million.
    #[error("samples must be 1 to 1000000, not {0}")]
    Samples(u64),
}

/// How close to the best latency counts as equal (`band`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Band {
    /// Within this many percent of the best.
    Percent(f64),
    /// Within this many milliseconds of the best.
    Millis(f64),
}

impl Band {
    /// Whether `rtt_ms` counts as equal to `best_ms`.
    #[inline]
    pub fn within(self, best_ms: f64, rtt_ms: f64) -> bool {
        match self {
            Band::Percent(p) => rtt_ms <= best_ms * (1.0 + p / 100.0) + 1e-9,
            Band::Millis(m) => rtt_ms <= best_ms + m + 1e-9,
        }
    }

    /// The largest ln(ms) that counts as equal to a best of `best_ln`
    /// (ln(ms)): routing compares logarithms, one `exp` per decision.
    #[inline]
    pub fn ln_limit(self, best_ln: f64) -> f64 {
        match self {
            Band::Percent(p) => best_ln + (p / 100.0).ln_1p() + 1e-12,
            Band::Millis(m) => (best_ln.exp() + m).ln() + 1e-12,
        }
    }

    /// Parses `"10%"` or `"10ms"`.
    pub fn parse(s: &str) -> Result<Band, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        if let Some(p) = s.strip_suffix('%') {
            return num(p)
                .filter(|v| *v <= 1000.0)
                .map(Band::Percent)
                .ok_or_else(|| {
                    format!("{s:?}: expected a percentage such as \"10%\" (0 to 1000)")
                });
        }
        if let Some(m) = s.strip_suffix("ms") {
            return num(m)
                .filter(|v| *v <= 60_000.0)
                .map(Band::Millis)
                .ok_or_else(|| {
                    format!("{s:?}: expected milliseconds such as \"10ms\" (0 to 60000)")
                });
        }
        Err(format!("{s:?}: expected \"10%\" or \"10ms\""))
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Band::Percent(p) => write!(f, "{p}%"),
            Band::Millis(m) => write!(f, "{m}ms"),
        }
    }
}

/// `[latency]`: how the table is read and bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Decayed samples an estimate needs before routing uses it.
    pub min_samples: u32,
    /// Latencies within this of the best count as equal.
    pub band: Band,
    /// Networks kept.
    pub max_networks: usize,
    /// A sample this old counts a half.
    pub half_life: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_samples: DEFAULT_MIN_SAMPLES,
            band: Band::Percent(10.0),
            max_networks: DEFAULT_MAX_NETWORKS,
            half_life: DEFAULT_HALF_LIFE,
        }
    }
}

/// Whether a decayed count reaches `min` samples: within 1/128 of it
/// (bf16, which keeps the counts, holds 8 bits: 30 reads back as
/// 29.875; and one sample decays below 1 a second after it is taken, so
/// `min_samples = 1` was never met). 1/128 is about 16 minutes of decay at
/// the default half-life. Routing and explain both ask this.
#[inline]
pub fn reaches(samples: f64, min_samples: u32) -> bool {
    samples >= f64::from(min_samples) * (1.0 - 1.0 / 128.0)
}

impl Policy {
    /// 2^(-age/half_life).
    #[inline]
    pub(super) fn decay(&self, age_secs: u32) -> f64 {
        if age_secs == 0 {
            return 1.0;
        }
        (-(f64::from(age_secs)) / self.half_life.as_secs_f64().max(1.0)).exp2()
    }

    /// Networks a shard keeps.
    pub(super) fn per_shard(&self) -> usize {
        self.max_networks.div_ceil(table::SHARDS).max(1)
    }

    /// Resolver networks a shard keeps (a sixteenth of `max_networks`:
    /// resolvers are far fewer than the networks behind them).
    pub(super) fn resolvers_per_shard(&self) -> usize {
        (self.max_networks / 16).div_ceil(table::SHARDS).max(1)
    }
}

pub(super) fn check(endpoint: &str, rtt: Duration, samples: u64) -> Result<(), Rejected> {
    if rtt.is_zero() {
        return Err(Rejected::NotPositive);
    }
    if rtt > MAX_RTT {
        return Err(Rejected::TooLong(rtt));
    }
    if !(1..=1_000_000).contains(&samples) {
        return Err(Rejected::Samples(samples));
    }
    match endpoint.split_once('/') {
        Some((p, e)) if !p.is_empty() && !e.is_empty() && endpoint.len() <= 512 => Ok(()),
        _ => Err(Rejected::Endpoint(crate::fsutil::shown(endpoint))),
    }
}
