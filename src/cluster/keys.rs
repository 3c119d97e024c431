//! What a node gossips, key by key, and how one observation is written
//! in its value.

use std::time::SystemTime;

use crate::health::Status;

/// Key prefix of observations: `h:<fingerprint>`.
pub(super) const OBSERVATION: &str = "h:";
/// Key prefix of overrides: `o:<profile>/<endpoint>`.
pub(super) const OVERRIDE: &str = "o:";
/// Key prefix of pushed health: `p:<profile>/<endpoint>/<monitor>/<source>`.
pub(super) const PUSH: &str = "p:";
/// Key prefix of the ring of recent token lookups (real user
/// measurements): `r:<0..128>`.
pub(super) const RUM: &str = "r:";
/// Key prefix of latency records: `l:<slot>` (see `latency_sync`).
pub(super) const LATENCY: &str = "l:";
/// Key of how many observations a node publishes: a peer whose state
/// holds that many has been received whole (warm start waits for it).
pub(super) const OBSERVATIONS: &str = "observations";
/// Key of the configuration digest.
pub(super) const DIGEST: &str = "digest";
/// Key of the software version.
pub(super) const VERSION: &str = "version";
/// Key a node sets when it shuts down cleanly: the others drop it (and its
/// vote) at once instead of holding it.
pub(super) const LEFT: &str = "left";
/// Key a node sets when it re-syncs after a stall (`<generation>.<n>`);
/// every peer answers with [`ACK`]: once a peer's answer has arrived, its
/// whole state as of after the stall has (chitchat sends a node's keys in
/// version order).
pub(super) const SYNC: &str = "sync";
/// Key prefix of re-sync answers: `ack:<node>` = the node's [`SYNC`] value.
pub(super) const ACK: &str = "ack:";
/// Key prefix of forgotten nodes: `f:<name>` = the newest generation
/// forgotten (`switchyard cluster forget` on any node reaches them all).
pub(super) const FORGET: &str = "f:";
/// Key a node sets while its prober is impaired (static stability):
/// `SINCE_MS REASON`; empty when it is not. Its observations are then not
/// counted by anyone: it stops voting rather than voting everything down.
pub(super) const IMPAIRED: &str = "impaired";

/// The value of [`IMPAIRED`] for an episode in progress (`None`: not
/// impaired).
pub(super) fn encode_impaired(episode: Option<&crate::health::impaired::Episode>) -> String {
    episode.map_or_else(String::new, |e| {
        format!("{} {}", crate::clock::unix_millis(e.since), e.describe())
    })
}

/// Why a node's observations do not count, from its [`IMPAIRED`] value
/// (`None`: they do).
pub(super) fn impaired_note(v: Option<&str>) -> Option<String> {
    let (since, why) = v.filter(|v| !v.is_empty())?.split_once(' ')?;
    let since = crate::clock::from_unix_millis(since.parse().ok()?);
    Some(format!(
        "not counted: its {why} (frozen since {})",
        crate::clock::rfc3339_seconds(since)
    ))
}

/// One node's observation as gossiped: `STATUS SINCE_MS SUMMARY`.
pub(super) fn encode_observation(status: Status, since: SystemTime, summary: &str) -> String {
    format!(
        "{} {} {summary}",
        status.as_str(),
        crate::clock::unix_millis(since)
    )
}

pub(super) fn decode_observation(v: &str) -> Option<(Status, SystemTime, &str)> {
    let mut parts = v.splitn(3, ' ');
    let name = parts.next()?;
    let status = Status::ALL.into_iter().find(|s| s.as_str() == name)?;
    let since = crate::clock::from_unix_millis(parts.next()?.parse().ok()?);
    Some((status, since, parts.next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_round_trip() {
        let t = crate::clock::from_unix_millis(1_796_168_154_123);
        let v = encode_observation(Status::Degraded, t, "connect refused");
        assert_eq!(v, "Degraded 1796168154123 connect refused");
        assert_eq!(
            decode_observation(&v),
            Some((Status::Degraded, t, "connect refused"))
        );
        assert_eq!(decode_observation("Bogus 1 x"), None);
        assert_eq!(decode_observation("Online x"), None);
    }

    #[test]
    fn impairment_round_trips() {
        let e = crate::health::impaired::Episode {
            since: crate::clock::from_unix_millis(1_796_168_154_000),
            failed: 6,
            population: 6,
            by_share: true,
            canaries_down: 0,
            failing: 6,
        };
        let v = encode_impaired(Some(&e));
        assert_eq!(
            impaired_note(Some(&v)).unwrap(),
            "not counted: its prober impaired, 6 of 6 probe targets failed together (frozen since 2026-12-01T23:35:54Z)"
        );
        assert_eq!(encode_impaired(None), "");
        assert_eq!(impaired_note(Some("")), None);
        assert_eq!(impaired_note(None), None);
    }
}
