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
}
