//! A zone's signing state as the answer path uses it: the key, how long
//! signatures are valid, and the signature cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use super::cache::SigCache;
use super::key::ZoneKey;
use super::rrsig::sign_rrset;
use crate::proto::name::DomainName;

/// How far before "now" a signature's inception is put, so a validator
/// whose clock is behind ours still accepts it.
pub const INCEPTION_BACKDATE: u32 = 3600;

/// One signed zone. Built by the configuration at load time, shared by
/// every answering thread; immutable but for the cache it points at.
#[derive(Debug)]
pub struct ZoneSigner {
    /// The zone (the RRSIGs' signer name).
    pub zone: DomainName,
    /// Its key. The answer path reads the algorithm and key tag (for cache
    /// keys); `sign` uses the private half.
    pub key: ZoneKey,
    /// Where signatures are kept; shared by all zones (and carried across
    /// reloads by the configuration). The answer path looks up and inserts.
    pub cache: Arc<SigCache>,
    /// Seconds from signing to expiration.
    validity: u32,
    /// Set once a signing error has been logged at warn (later ones go to
    /// debug: one bad record must not flood the log at the query rate).
    warned: AtomicBool,
}

impl ZoneSigner {
    /// A signer for `zone` with `key`, making signatures valid for
    /// `validity` seconds.
    pub fn new(zone: DomainName, key: ZoneKey, validity: u32, cache: Arc<SigCache>) -> ZoneSigner {
        debug_assert_eq!(&zone, key.zone(), "a key signs its own zone");
        ZoneSigner {
            zone,
            key,
            cache,
            validity,
            warned: AtomicBool::new(false),
        }
    }

    /// Seconds from signing to expiration.
    pub fn validity(&self) -> u32 {
        self.validity
    }

    /// The RRSIG record (without owner) for one RRset, signed at `now`
    /// (Unix seconds): valid from `now - INCEPTION_BACKDATE` to `now +
    /// validity`. See [`sign_rrset`] for the arguments. `None` on an
    /// error, which is logged (at warn the first time).
    pub fn sign(
        &self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdatas: &[&[u8]],
        now: u32,
    ) -> Option<Vec<u8>> {
        let inception = now.saturating_sub(INCEPTION_BACKDATE);
        let expiration = now.saturating_add(self.validity);
        match sign_rrset(
            &self.key, &self.zone, owner, rtype, ttl, rdatas, inception, expiration,
        ) {
            Ok(rr) => Some(rr),
            Err(e) => {
                let name = crate::proto::name::render(owner);
                if !self.warned.swap(true, Ordering::Relaxed) {
                    warn!(zone = %self.zone, owner = %name, rtype, error = %e, "cannot sign an RRset; answering without its RRSIG (further errors are logged at debug)");
                } else {
                    debug!(zone = %self.zone, owner = %name, rtype, error = %e, "cannot sign an RRset");
                }
                None
            }
        }
    }

    /// When a signature made at `now` should be made again: after half its
    /// validity, less up to a tenth of it at random, so signatures made
    /// together (at start-up) are not all remade in the same second. A
    /// cached signature so always has at least 40% of its validity left.
    pub fn refresh_at(&self, now: u32) -> u32 {
        let half = self.validity / 2;
        let jitter = fastrand::u32(..=self.validity / 10);
        now.saturating_add(half - jitter.min(half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::key::{Algorithm, KeyFile};

    #[test]
    fn signs_with_its_validity_and_refreshes_halfway() {
        let zone = DomainName::parse("tm.example.test.", None).unwrap();
        let key =
            ZoneKey::from_file(KeyFile::generate(&zone, Algorithm::default()).unwrap()).unwrap();
        let week = 7 * 86_400;
        let signer = ZoneSigner::new(zone.clone(), key, week, Arc::new(SigCache::new(64)));
        let now = 1_800_000_000;
        let rr = signer
            .sign(
                b"\x01x\x02tm\x07example\x04test\x00",
                1,
                60,
                &[&[192, 0, 2, 1]],
                now,
            )
            .unwrap();
        let field = |at: usize| u32::from_be_bytes(rr[at..at + 4].try_into().unwrap());
        assert_eq!(field(18), now + week, "expiration");
        assert_eq!(field(22), now - INCEPTION_BACKDATE, "inception");
        for _ in 0..100 {
            let r = signer.refresh_at(now);
            assert!(r <= now + week / 2 && r >= now + week * 4 / 10, "{r}");
        }
        // Errors are None (and logged), not panics.
        assert!(signer.sign(b"\x03com\x00", 1, 60, &[&[1]], now).is_none());
        assert!(signer.sign(b"\x03com\x00", 1, 60, &[&[1]], now).is_none());
    }
}
