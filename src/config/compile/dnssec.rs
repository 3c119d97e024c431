//! Stage: a signed zone's keys. The signing key and any key published for
//! a rollover are loaded; their DNSKEY, CDS and CDNSKEY RRsets (RFC 7344)
//! join the apex records; the zone gets a signer that shares the one
//! signature cache.

use super::*;
use crate::dnssec::ZoneSigner;
use crate::dnssec::key::ZoneKey;
use crate::proto::rr::rtype;

/// The default signature validity: long enough that a cached answer never
/// outlives its signature, short enough to limit replay of old answers.
const DEFAULT_VALIDITY: Duration = Duration::from_secs(7 * 86_400);

impl Loader<'_> {
    /// Reads `zones[i].dnssec`: returns the zone's signer and the apex
    /// RRsets its keys publish.
    pub(super) fn zone_dnssec(
        &mut self,
        src: usize,
        zi: usize,
        origin: &DomainName,
        ttl: u32,
        raw: &Spanned<RawDnssec>,
    ) -> Option<(Arc<ZoneSigner>, Vec<StaticSet>)> {
        let p = format!("zones[{zi}].dnssec");
        let raw_ref = raw.get_ref();
        let base = base_dir(&self.r.sources[src].path);
        let validity = match &raw_ref.signature_validity {
            Some(v) => {
                let d = self
                    .r
                    .duration(src, v, &format!("{p}.signature_validity"))?;
                if d < Duration::from_secs(3 * 3600) || d > Duration::from_secs(90 * 86_400) {
                    self.r.err(
                        src,
                        v,
                        &format!("{p}.signature_validity"),
                        "between 3h and 90d: longer than any TTL in the zone, short enough to limit replays",
                    );
                    return None;
                }
                d
            }
            None => DEFAULT_VALIDITY,
        };
        let load = |this: &mut Self, r: &Spanned<RawKeyRef>, field: String| -> Option<ZoneKey> {
            let file = r.get_ref().file.get_ref();
            let path = base.join(file);
            let field = format!("{field}.file");
            if !path.exists() {
                this.r.err(
                    src,
                    &r.get_ref().file,
                    &field,
                    format!(
                        "{} does not exist: make the key with `switchyard dnssec keygen --zone {origin} --out {}`",
                        path.display(),
                        path.display()
                    ),
                );
                return None;
            }
            match ZoneKey::load(&path, origin) {
                Ok(k) => {
                    if crate::dnssec::key::is_readable_by_others(&path) {
                        this.r.warn(
                            src,
                            &r.get_ref().file,
                            &field,
                            format!(
                                "{} can be read by other users: `chmod 600` it (it is the zone's private key)",
                                path.display()
                            ),
                        );
                    }
                    Some(k)
                }
                Err(e) => {
                    this.r.err(src, &r.get_ref().file, &field, e);
                    None
                }
            }
        };
        let key = load(self, &raw_ref.key, format!("{p}.key"));
        let mut published = Vec::new();
        for (i, r) in raw_ref.publish.iter().enumerate() {
            if let Some(k) = load(self, r, format!("{p}.publish[{i}]")) {
                published.push((k, r));
            }
        }
        let key = key?;
        // RFC 4035 §2.2: every algorithm in the DNSKEY set must sign the
        // zone; a published key of another algorithm signs nothing.
        for (i, (k, r)) in published.iter().enumerate() {
            if k.algorithm() != key.algorithm() {
                let msg = format!(
                    "this key is {} and the signing key {}: every algorithm in the DNSKEY set must sign the zone (RFC 4035 §2.2), so a published key must use the signing key's algorithm (an algorithm rollover is not supported)",
                    k.algorithm().name(),
                    key.algorithm().name()
                );
                self.r.err(
                    src,
                    &r.get_ref().file,
                    &format!("{p}.publish[{i}].file"),
                    msg,
                );
            }
        }
        let at = self.r.at(src, &raw_ref.key, &format!("{p}.key"));
        let mut dnskey = Vec::new();
        let mut cds = Vec::new();
        for k in std::iter::once(&key).chain(published.iter().map(|(k, _)| k)) {
            if dnskey
                .iter()
                .any(|rr: &WireRr| rr.rdata() == k.dnskey_rdata())
            {
                let msg = format!("key {} is configured twice for {origin}", k.key_tag());
                self.r.error(&at, msg);
                return None;
            }
            dnskey.push(WireRr::from_rdata(rtype::DNSKEY, ttl, k.dnskey_rdata()).ok()?);
            cds.push(WireRr::from_rdata(rtype::CDS, ttl, k.ds_rdata()).ok()?);
        }
        let cdnskey: Vec<WireRr> = dnskey
            .iter()
            .filter_map(|rr| WireRr::from_rdata(rtype::CDNSKEY, ttl, rr.rdata()).ok())
            .collect();
        let set = |rtype: u16, rrs: Vec<WireRr>| StaticSet {
            ats: vec![at.clone(); rrs.len()],
            set: RrSet { rtype, rrs },
        };
        let sets = vec![
            set(rtype::DNSKEY, dnskey),
            set(rtype::CDS, cds),
            set(rtype::CDNSKEY, cdnskey),
        ];
        let cache = self.signature_cache();
        let signer = Arc::new(ZoneSigner::new(
            origin.clone(),
            key,
            validity.as_secs() as u32,
            cache,
        ));
        Some((signer, sets))
    }

    /// The signature cache all zones share: the running one when its size
    /// is unchanged, so a reload keeps its signatures warm.
    fn signature_cache(&mut self) -> Arc<crate::dnssec::cache::SigCache> {
        if let Some(c) = &self.sig_cache {
            return c.clone();
        }
        let want = self.run.signature_cache_size;
        let cache = match &self.run.carry.signatures {
            Some(c) if c.capacity() == crate::dnssec::cache::SigCache::capacity_for(want) => {
                c.clone()
            }
            _ => Arc::new(crate::dnssec::cache::SigCache::new(want)),
        };
        self.sig_cache = Some(cache.clone());
        cache
    }
}
