//! The expiry (`notAfter`) of the certificate an HTTPS endpoint presents,
//! read from its DER encoding after the handshake.
//!
//! Only the path to `tbsCertificate.validity.notAfter` is walked (RFC 5280,
//! 4.1); every other field is skipped whole, so a certificate with
//! extensions or algorithms nothing here knows still gives its expiry.
//! Read leniently (BER), since it has nothing to verify: with `tls_verify`
//! on, rustls has checked the certificate already; with it off, an odd
//! encoding should still tell when it expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use yasna::{ASN1Result, BERReaderSeq, Tag, TagClass};

/// The certificate's `notAfter`, or `None` when `der` is not a certificate.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let unix = yasna::parse_ber(der, |r| {
        r.read_sequence(|cert| {
            let not_after = cert.next().read_sequence(tbs_not_after)?;
            skip_rest(cert)?;
            Ok(not_after)
        })
    })
    .ok()?;
    let secs = u64::try_from(unix).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// `tbsCertificate`: version, serial number, signature algorithm, issuer,
/// then the validity, whose second time is `notAfter` (Unix seconds).
fn tbs_not_after(tbs: &mut BERReaderSeq) -> ASN1Result<i64> {
    let explicit_version = Tag {
        tag_class: TagClass::ContextSpecific,
        tag_number: 0,
    };
    tbs.read_optional(|r| r.read_tagged(explicit_version, |r| r.read_der()))?;
    for _ in ["serialNumber", "signature", "issuer"] {
        tbs.next().read_der()?;
    }
    let not_after = tbs.next().read_sequence(|validity| {
        validity.next().read_der()?;
        let t = validity.next();
        if t.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
            Ok(t.read_utctime()?.datetime().unix_timestamp())
        } else {
            Ok(t.read_generalized_time()?.datetime().unix_timestamp())
        }
    })?;
    skip_rest(tbs)?;
    Ok(not_after)
}

/// Skips what is left of a sequence.
fn skip_rest(seq: &mut BERReaderSeq) -> ASN1Result<()> {
    while seq.read_optional(|r| r.read_der())?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate made by rcgen, valid until `until`.
    fn cert_until(unix: u64) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(unix);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_in_either_time_encoding() {
        // Before 2050 notAfter is a UTCTime, from 2050 a GeneralizedTime
        // (RFC 5280, 4.1.2.5).
        for unix in [1_800_000_000, 2_600_000_000] {
            let got = not_after(&cert_until(unix)).unwrap();
            assert_eq!(got, UNIX_EPOCH + Duration::from_secs(unix), "{unix}");
        }
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"not a certificate"), None);
        let der = cert_until(1_800_000_000);
        assert_eq!(not_after(&der[..der.len() - 1]), None, "truncated");
        // A sequence that is not a certificate.
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x05]), None);
    }
}
