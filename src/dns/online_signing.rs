//! Signing responses online (RFC 4035 §3.1, RFC 9824).
//!
//! Once a section is written, the RRsets in it (consecutive records with
//! one owner and type, as the answer path writes them) get their RRSIGs
//! appended to the same section. A signature is looked up in the shared
//! [`SigCache`] by the RRset's content (owner, type, TTL, the sorted
//! RDATA, the key), so a hot answer is signed once per refresh period;
//! only a miss signs, through hickory-proto. A hit copies bytes: no lock,
//! no allocation once the per-worker key buffer has grown.
//!
//! Denials are compact ("black lies", RFC 9824): one NSEC owned by the
//! name asked, whose next name is its immediate successor, so it covers
//! nothing else and nothing can be walked. A name that does not exist is
//! denied with the NXNAME pseudo-type in the NSEC bitmap; a type that does
//! not exist with the bitmap of the types that do.

use super::message::{NameAt, write_owner};
use crate::dnssec::budget::{Refusal, Who};
use crate::dnssec::cache::SigCache;
use crate::proto::name::MAX_WIRE_LEN;
use crate::proto::rr::{TypeBitmap, rtype};
use crate::snapshot::Snapshot;

/// Most records of one RRset whose RDATA is sorted for the cache key;
/// larger sets (only ever static ones) are keyed in written order.
const MAX_SORTED: usize = 32;

/// Per-worker buffers for signing, and the query's standing with the
/// signing budget.
#[derive(Default)]
pub struct SignScratch {
    /// The cache key of the RRset being signed.
    key: Vec<u8>,
    /// Who the query's signatures are made for (set per query).
    pub client: Option<Who>,
    /// A signature the answer needed was refused by the budget (reset per
    /// query): the answer is incomplete and must not be sent as it is.
    pub refused: Option<Refusal>,
}

/// A record as written in the message: where its owner, fixed fields and
/// RDATA are.
#[derive(Clone, Copy)]
struct Rec {
    /// Where the owner starts.
    at: usize,
    /// Where TYPE starts (the owner's end).
    fixed: usize,
    /// RDATA span.
    rdata: (usize, usize),
}

impl Rec {
    fn rtype(&self, m: &[u8]) -> u16 {
        u16::from_be_bytes([m[self.fixed], m[self.fixed + 1]])
    }
    fn ttl(&self, m: &[u8]) -> u32 {
        let f = self.fixed + 4;
        u32::from_be_bytes([m[f], m[f + 1], m[f + 2], m[f + 3]])
    }
}

/// Reads the record at `at`; `None` if the message is not as we wrote it.
fn read_rec(m: &[u8], at: usize) -> Option<Rec> {
    let mut p = at;
    loop {
        let len = *m.get(p)? as usize;
        if len == 0 {
            p += 1;
            break;
        }
        if len & 0xC0 == 0xC0 {
            p += 2;
            break;
        }
        p += 1 + len;
    }
    let fixed = p;
    let rdlen = u16::from_be_bytes([*m.get(p + 8)?, *m.get(p + 9)?]) as usize;
    let start = p + 10;
    let end = start + rdlen;
    if end > m.len() {
        return None;
    }
    Some(Rec {
        at,
        fixed,
        rdata: (start, end),
    })
}

/// The name at `at` in the message, decompressed and lowercased into
/// `buf`; returns its length.
fn read_name(m: &[u8], mut at: usize, buf: &mut [u8; MAX_WIRE_LEN]) -> Option<usize> {
    let mut n = 0;
    for _ in 0..128 {
        let len = *m.get(at)? as usize;
        if len & 0xC0 == 0xC0 {
            at = ((len & 0x3F) << 8) | *m.get(at + 1)? as usize;
            continue;
        }
        if n + 1 + len > MAX_WIRE_LEN {
            return None;
        }
        buf[n] = len as u8;
        let label = m.get(at + 1..at + 1 + len)?;
        for (d, s) in buf[n + 1..n + 1 + len].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        n += 1 + len;
        if len == 0 {
            return Some(n);
        }
        at += 1 + len;
    }
    None
}

impl SignScratch {
    /// Appends an RRSIG for each RRset among the `count` records written
    /// from `from`, when its owner is in a signed zone; returns how many
    /// were added. `skip_ns`: a referral's NS set is the child's, never
    /// signed by the parent (RFC 4035 §2.2). `parent_side`: RRsets owned by
    /// this (lowercase wire) name are the parent zone's (a DS answer at a
    /// child zone's apex), signed with its key.
    #[allow(clippy::too_many_arguments)]
    pub fn sign_section(
        &mut self,
        table: &Snapshot,
        out: &mut Vec<u8>,
        from: usize,
        count: u16,
        skip_ns: bool,
        parent_side: Option<&[u8]>,
        now: u32,
    ) -> u16 {
        let mut added = 0;
        let mut pos = from;
        let mut left = count;
        while left > 0 {
            let Some(first) = read_rec(out, pos) else {
                return added;
            };
            // The RRset: following records with the same owner bytes and type.
            let owner = first.at..first.fixed;
            let t = first.rtype(out);
            let mut rrs = [(0usize, 0usize); MAX_SORTED];
            let mut n = 0usize;
            let mut total = 0u16;
            let mut next = pos;
            while left > 0 {
                let Some(r) = read_rec(out, next) else {
                    return added;
                };
                if total > 0 && (out[r.at..r.fixed] != out[owner.clone()] || r.rtype(out) != t) {
                    break;
                }
                if n < MAX_SORTED {
                    rrs[n] = r.rdata;
                    n += 1;
                }
                total += 1;
                left -= 1;
                next = r.rdata.1;
            }
            pos = next;
            if (skip_ns && t == rtype::NS) || t == rtype::RRSIG {
                continue;
            }
            let mut name = [0u8; MAX_WIRE_LEN];
            let Some(len) = read_name(out, first.at, &mut name) else {
                continue;
            };
            let owner_name = &name[..len];
            let signer = if parent_side.is_some_and(|p| p.eq_ignore_ascii_case(owner_name)) {
                table.signer_above(owner_name)
            } else {
                table.signer_for(owner_name)
            };
            let Some(signer) = signer else {
                continue;
            };
            let ttl = first.ttl(out);
            // Every record's RDATA, when the set is small enough to sort.
            let sorted = total as usize <= MAX_SORTED;
            if sorted {
                rrs[..n].sort_unstable_by(|a, b| out[a.0..a.1].cmp(&out[b.0..b.1]));
            }
            self.key.clear();
            self.key.push(signer.key.algorithm().number());
            self.key
                .extend_from_slice(&signer.key.key_tag().to_be_bytes());
            self.key.extend_from_slice(&name[..len]);
            self.key.extend_from_slice(&t.to_be_bytes());
            self.key.extend_from_slice(&ttl.to_be_bytes());
            if sorted {
                for &(s, e) in &rrs[..n] {
                    self.key.extend_from_slice(&((e - s) as u16).to_be_bytes());
                    self.key.extend_from_slice(&out[s..e]);
                }
            } else {
                // Keyed as written; the signature itself sorts (hickory).
                let mut p = first.at;
                for _ in 0..total {
                    let Some(r) = read_rec(out, p) else { break };
                    self.key
                        .extend_from_slice(&((r.rdata.1 - r.rdata.0) as u16).to_be_bytes());
                    self.key.extend_from_slice(&out[r.rdata.0..r.rdata.1]);
                    p = r.rdata.1;
                }
            }
            // The RRSIG's owner: the RRset's, by pointer when possible.
            let mut owner_bytes = [0u8; MAX_WIRE_LEN + 2];
            let owner_len = if first.fixed - first.at == 2 || first.at > 0x3FFF {
                let l = first.fixed - first.at;
                owner_bytes[..l].copy_from_slice(&out[owner.clone()]);
                l
            } else {
                owner_bytes[..2].copy_from_slice(&(0xC000 | first.at as u16).to_be_bytes());
                2
            };
            let cache = &signer.cache;
            let h = SigCache::hash(&self.key);
            let hit = cache.with(h, &self.key, now, |record| {
                out.extend_from_slice(&owner_bytes[..owner_len]);
                out.extend_from_slice(record);
            });
            if !hit {
                // Cold: within the budget, sign through hickory-proto,
                // then cache; past it, the answer cannot be signed whole.
                if let (Some(budget), Some(client)) = (&table.sign_budget, self.client)
                    && let Err(why) = budget.allow(client)
                {
                    self.refused = Some(why);
                    return added;
                }
                let mut rdatas: Vec<&[u8]> = Vec::with_capacity(total as usize);
                let mut p = first.at;
                for _ in 0..total {
                    let Some(r) = read_rec(out, p) else { break };
                    rdatas.push(&out[r.rdata.0..r.rdata.1]);
                    p = r.rdata.1;
                }
                let Some(record) = signer.sign(&name[..len], t, ttl, &rdatas, now) else {
                    continue;
                };
                out.extend_from_slice(&owner_bytes[..owner_len]);
                out.extend_from_slice(&record);
                cache.insert(h, &self.key, record, signer.refresh_at(now));
            }
            added += 1;
        }
        added
    }
}

/// Writes the compact-denial NSEC owned by the name at `owner` (RFC 9824
/// §3): its next name is the owner's immediate successor (`\000.owner`),
/// its bitmap `types` plus RRSIG and NSEC, but never `qtype`, the type the
/// query asked for and the NSEC denies (a query for RRSIG included; 0
/// when it denies nothing: the NSEC answering a query for NSEC, at the
/// name it belongs to). Returns false (nothing written) only if the
/// record cannot be built.
pub(super) fn write_nsec(
    out: &mut Vec<u8>,
    owner: NameAt<'_>,
    mut types: TypeBitmap,
    qtype: u16,
    ttl: u32,
) -> bool {
    types.set(rtype::RRSIG);
    types.set(rtype::NSEC);
    types.clear(qtype);
    write_owner(out, owner);
    out.extend_from_slice(&rtype::NSEC.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    write_successor(out, owner.wire);
    types.write(out);
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    true
}

/// Writes the name that immediately follows `name` (lowercase wire) in
/// canonical order (RFC 4034 §6.1, as RFC 4471 §3.1.2 derives it): `\000`
/// prepended when there is room; else `\000` appended to the first label;
/// else the first label's last octet incremented (skipping the upper-case
/// letters, which sort as lower case). A first label ending in `\255` at
/// the length limit has no successor that fits: the name itself.
fn write_successor(out: &mut Vec<u8>, name: &[u8]) {
    let first = name.first().copied().unwrap_or(0) as usize;
    if name.len() + 2 <= MAX_WIRE_LEN {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(name);
    } else if name.len() < MAX_WIRE_LEN && (1..63).contains(&first) {
        out.push(first as u8 + 1);
        out.extend_from_slice(&name[1..=first]);
        out.push(0);
        out.extend_from_slice(&name[first + 1..]);
    } else if first > 0 && name[first] < 0xFF {
        let next = match name[first] + 1 {
            b'A'..=b'Z' => b'Z' + 1,
            b => b,
        };
        out.extend_from_slice(&name[..first]);
        out.push(next);
        out.extend_from_slice(&name[first + 1..]);
    } else {
        out.extend_from_slice(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_through_pointers_and_lowercased() {
        // 12-byte header, then "Www.Example." at 12, then a pointer to it.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(b"\x03Www\x07Example\x00");
        let ptr = m.len();
        m.extend_from_slice(&[0xC0, 12]);
        let mut buf = [0u8; MAX_WIRE_LEN];
        let n = read_name(&m, ptr, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x03www\x07example\x00");
        // A pointer loop ends, with None.
        let mut l = vec![0u8; 12];
        l.extend_from_slice(&[0xC0, 12]);
        assert_eq!(read_name(&l, 12, &mut buf), None);
    }

    #[test]
    fn the_nsec_of_a_denial_covers_only_its_owner() {
        let mut out = vec![0u8; 12];
        out.extend_from_slice(b"\x01x\x04test\x00");
        let mut types = TypeBitmap::default();
        types.set(rtype::NXNAME);
        let wire = b"\x01x\x04test\x00";
        assert!(write_nsec(
            &mut out,
            NameAt { offset: 12, wire },
            types,
            rtype::A,
            60
        ));
        let r = read_rec(&out, 20).unwrap();
        assert_eq!(r.rtype(&out), rtype::NSEC);
        assert_eq!(r.ttl(&out), 60);
        let rdata = &out[r.rdata.0..r.rdata.1];
        // Next name \000.x.test., then window 0: RRSIG NSEC (46, 47), and NXNAME (128).
        assert_eq!(&rdata[..10], b"\x01\x00\x01x\x04test\x00");
        assert_eq!(rdata[10], 0);
        assert_eq!(rdata[11] as usize, rdata.len() - 12);
        assert_eq!(rdata[12 + 5], 0x03, "RRSIG and NSEC");
        assert_eq!(rdata[12 + 16], 0x80, "NXNAME");
        // Asked for NSEC itself: its bit is not in the denial.
        let mut out = vec![0u8; 12];
        out.extend_from_slice(wire);
        write_nsec(
            &mut out,
            NameAt { offset: 12, wire },
            types,
            rtype::NSEC,
            60,
        );
        let r = read_rec(&out, 20).unwrap();
        assert_eq!(out[r.rdata.0 + 12 + 5], 0x02, "RRSIG only");
    }

    #[test]
    fn successors_follow_rfc_4471_at_every_length() {
        let succ = |name: &[u8]| {
            let mut out = Vec::new();
            write_successor(&mut out, name);
            out
        };
        // A name with labels of `first` then of 62, 62 and 63 octets.
        let name = |first: &[u8]| {
            let mut n = vec![first.len() as u8];
            n.extend_from_slice(first);
            for len in [62u8, 62, 63] {
                n.push(len);
                n.extend_from_slice(&vec![b'b'; len as usize]);
            }
            n.push(0);
            n
        };
        assert_eq!(succ(b"\x01x\x00"), b"\x01\x00\x01x\x00");
        let n = name(&[b'a'; 61]);
        assert_eq!(n.len(), 253);
        assert_eq!(succ(&n)[..2], [1, 0], "room for a label");
        // 254 octets with a first label of 62: no room for a label, room
        // for an octet: `\000` appended to the first label.
        let n = name(&[b'a'; 62]);
        assert_eq!(n.len(), 254);
        let s = succ(&n);
        assert_eq!(s.len(), 255);
        assert_eq!((s[0], s[63]), (63, 0));
        // 255 octets: the first label's last octet incremented.
        let mut first = vec![b'x'; 62];
        first.push(b'a');
        let n = name(&first);
        assert_eq!(n.len(), 255);
        assert_eq!(succ(&n)[63], b'b');
        // `@` + 1 is `A`, which sorts as `a`: the successor skips to `[`.
        let mut first = vec![b'x'; 62];
        first.push(b'@');
        assert_eq!(succ(&name(&first))[63], b'[');
        // `\255` last at the limit: no successor fits.
        let mut first = vec![b'x'; 62];
        first.push(0xFF);
        let n = name(&first);
        assert_eq!(succ(&n), n);
    }
}
