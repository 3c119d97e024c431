//! Writing a response: the header, records owned by a pointer to a name
//! already written, and the count of records per section.

use crate::dns::message::{NameAt, write_owner};
use crate::dns::wire::flags;
use crate::proto::rr::WireRr;

/// Counts of records per section while a message is written.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) an: u16,
    pub(super) ns: u16,
    pub(super) ar: u16,
}

/// Writes `rr` owned by the name at `owner` into the answer section; returns
/// where its RDATA name (if any) now sits.
#[inline]
pub(super) fn write_rr<'t>(
    out: &mut Vec<u8>,
    c: &mut Counts,
    owner: NameAt<'_>,
    rr: &'t WireRr,
) -> Option<NameAt<'t>> {
    write_owner(out, owner);
    let start = out.len();
    out.extend_from_slice(rr.bytes());
    c.an += 1;
    rr.name_span().map(|(at, _)| NameAt {
        offset: start + at,
        wire: rr.target().map_or(&[][..], |t| t.wire()),
    })
}

/// Rewrites the TTL of the record just written (nested answers carry the
/// parent profile's TTL).
pub(super) fn patch_ttl(out: &mut [u8], rr: &WireRr, ttl: u32) {
    let end = out.len();
    let start = end - rr.bytes().len();
    out[start + 4..start + 8].copy_from_slice(&ttl.to_be_bytes());
}

/// Flags of a reply: QR, opcode, RD and CD copied, AA as decided, RA never.
pub(super) fn reply_flags(query_flags: u16, code: u16, authoritative: bool) -> u16 {
    let mut f = flags::QR | (query_flags & (flags::OPCODE | flags::RD | flags::CD)) | (code & 0xF);
    if authoritative {
        f |= flags::AA;
    }
    f
}

pub(super) fn header_bytes(id: u16, f: u16, qd: u16, an: u16, ns: u16, ar: u16) -> [u8; 12] {
    let mut h = [0u8; 12];
    for (i, v) in [id, f, qd, an, ns, ar].into_iter().enumerate() {
        h[i * 2..i * 2 + 2].copy_from_slice(&v.to_be_bytes());
    }
    h
}

pub(super) fn header(out: &mut Vec<u8>, id: u16, f: u16, qd: u16, an: u16, ns: u16, ar: u16) {
    out.extend_from_slice(&header_bytes(id, f, qd, an, ns, ar));
}
