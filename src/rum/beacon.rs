//! The beacon the script posts to `POST /rum/beacon`, read and checked
//! before anything of it is kept:
//!
//! ```json
//! {"key": "KEY", "token": "48 hex digits",
//!  "results": [{"endpoint": "PROFILE/ENDPOINT", "ms": 23.4}]}
//! ```
//!
//! `ms` is the round trip the browser measured to the endpoint's
//! `rum_url` (Resource Timing's `responseStart - requestStart` when the
//! endpoint sends `Timing-Allow-Origin`, else the whole fetch).

use serde::Deserialize;

use crate::metrics::Beacon as Result;
use crate::sightings::Token;

/// Most measurements in one beacon.
pub const MAX_RESULTS: usize = 16;
/// The longest round trip taken for one (longer is no round trip: a
/// stalled tab, a suspended laptop).
pub const MAX_MS: f64 = 60_000.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    key: String,
    token: String,
    results: Vec<RawResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResult {
    endpoint: String,
    ms: f64,
    /// How it was timed (`resource` or `fetch`); informational.
    #[serde(default)]
    #[allow(dead_code)]
    timing: Option<String>,
}

/// A beacon that reads right (its key and token not checked yet).
#[derive(Debug, PartialEq)]
pub struct Beacon {
    /// The page's key.
    pub key: String,
    /// The token it was given.
    pub token: Token,
    /// (`PROFILE/ENDPOINT`, round trip in ms), each endpoint once.
    pub results: Vec<(String, f64)>,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Raw(<redacted>)")
    }
}

/// Reads a beacon body: `Malformed` when it is not the beacon's JSON (or
/// has no results, too many, or one endpoint twice), `BadToken` when its
/// token is not 48 hex digits, `BadTiming` when a time is no round trip.
pub fn parse(body: &[u8]) -> std::result::Result<Beacon, Result> {
    let raw: Raw = serde_json::from_slice(body).map_err(|_| Result::Malformed)?;
    if raw.results.is_empty() || raw.results.len() > MAX_RESULTS || raw.key.len() > 256 {
        return Err(Result::Malformed);
    }
    let token = super::token::from_hex(&raw.token).ok_or(Result::BadToken)?;
    let mut results: Vec<(String, f64)> = Vec::with_capacity(raw.results.len());
    for r in raw.results {
        if r.endpoint.len() > 320 || results.iter().any(|(e, _)| *e == r.endpoint) {
            return Err(Result::Malformed);
        }
        if !(r.ms.is_finite() && r.ms > 0.0 && r.ms <= MAX_MS) {
            return Err(Result::BadTiming);
        }
        results.push((r.endpoint, r.ms));
    }
    Ok(Beacon {
        key: raw.key,
        token,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00112233445566778899aabbccddeeff0011223344556677";

    fn body(results: &str) -> Vec<u8> {
        format!(r#"{{"key":"k","token":"{TOKEN}","results":[{results}]}}"#).into_bytes()
    }

    #[test]
    fn a_beacon_reads() {
        let b = parse(&body(
            r#"{"endpoint":"p.example./eu","ms":23.5,"timing":"resource"},{"endpoint":"p.example./us","ms":80}"#,
        ))
        .unwrap();
        assert_eq!(b.key, "k");
        assert_eq!(
            b.results,
            [
                ("p.example./eu".into(), 23.5),
                ("p.example./us".into(), 80.0)
            ]
        );
    }

    #[test]
    fn what_is_no_beacon_is_refused_by_reason() {
        for (text, why) in [
            (b"not json".to_vec(), Result::Malformed),
            (b"{}".to_vec(), Result::Malformed),
            (body(""), Result::Malformed),
            (
                body(r#"{"endpoint":"a/b","ms":1,"extra":1}"#),
                Result::Malformed,
            ),
            (
                body(r#"{"endpoint":"a/b","ms":1},{"endpoint":"a/b","ms":2}"#),
                Result::Malformed,
            ),
            (body(r#"{"endpoint":"a/b","ms":0}"#), Result::BadTiming),
            (body(r#"{"endpoint":"a/b","ms":-5}"#), Result::BadTiming),
            (
                body(r#"{"endpoint":"a/b","ms":3600000}"#),
                Result::BadTiming,
            ),
            (body(r#"{"endpoint":"a/b","ms":1e400}"#), Result::Malformed),
            (
                br#"{"key":"k","token":"xyz","results":[{"endpoint":"a/b","ms":1}]}"#.to_vec(),
                Result::BadToken,
            ),
        ] {
            assert_eq!(
                parse(&text).err(),
                Some(why),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
    }
}
