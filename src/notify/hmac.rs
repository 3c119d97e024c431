//! Webhook signatures: HMAC-SHA256 over `"<unix seconds>.<body>"`, sent as
//! `X-Switchyard-Signature: t=<unix seconds>,v1=<hex>`.
//!
//! A receiver recomputes the HMAC with the shared secret over the `t`
//! value, a `.`, and the raw request body, compares it with `v1` in
//! constant time, and rejects a `t` more than a few minutes from its own
//! clock (that stops a captured request from being replayed later). The
//! timestamp is made at each attempt, so a retry late in `retry_for` still
//! passes a five-minute tolerance; the event id (`X-Switchyard-Event-Id`)
//! stays the same across retries, for de-duplication.

use ring::hmac;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";

/// The header value for `body` signed with `secret` at `unix` seconds.
pub fn signature(secret: &[u8], unix: u64, body: &[u8]) -> String {
    format!("t={unix},v1={}", hex(mac(secret, unix, body).as_ref()))
}

fn mac(secret: &[u8], unix: u64, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(unix.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not `t=<digits>,v1=<hex>`.
    Malformed,
    /// `t` is further than the tolerance from `now`.
    Stale,
    /// The HMAC does not match.
    Mismatch,
}

/// Checks a header value the way a receiver should: the HMAC in constant
/// time, and `t` within `tolerance_s` seconds of `now` (Unix seconds).
/// Receivers in other languages do the same; see the README.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance_s: u64,
) -> Result<(), Rejected> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = data_encoding::HEXLOWER_PERMISSIVE.decode(v.as_bytes()).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(Rejected::Malformed);
    };
    if t.abs_diff(now) > tolerance_s {
        return Err(Rejected::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut msg = Vec::with_capacity(body.len() + 21);
    msg.extend_from_slice(t.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    hmac::verify(&key, &msg, &v1).map_err(|_| Rejected::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Independently: printf '%s' '1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac 'k3y-k3y-k3y-k3y-'
        let s = signature(b"k3y-k3y-k3y-k3y-", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "t=1700000000,v1=9e181c4fd97718c163d492f84506f04bcf26cd60b553f839d667928b0180e3d9"
        );
        assert_eq!(
            verify(b"k3y-k3y-k3y-k3y-", &s, br#"{"a":1}"#, 1_700_000_100, 300),
            Ok(())
        );
    }

    #[test]
    fn rejects_tampering_staleness_and_garbage() {
        let s = signature(b"secret-secret-secret", 1_000, b"body");
        assert_eq!(
            verify(b"secret-secret-secret", &s, b"body!", 1_000, 300),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret-here", &s, b"body", 1_000, 300),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            verify(b"secret-secret-secret", &s, b"body", 1_000 + 301, 300),
            Err(Rejected::Stale)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = s.replace("t=1000", "t=1001");
        assert_eq!(
            verify(b"secret-secret-secret", &moved, b"body", 1_000, 300),
            Err(Rejected::Mismatch)
        );
        for bad in ["", "t=1000", "v1=00", "t=x,v1=00", "t=1000,v1=zz"] {
            assert_eq!(
                verify(b"secret-secret-secret", bad, b"body", 1_000, 300),
                Err(Rejected::Malformed),
                "{bad}"
            );
        }
    }
}
