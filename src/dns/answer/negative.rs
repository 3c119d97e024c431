//! What a response holds besides the records resolving wrote: the answers
//! from elsewhere (the DS a parent holds for its child's apex, a name's own
//! NSEC), the denials (the zone's SOA for NODATA and NXDOMAIN, with their
//! NSEC proof when signed), referrals with their glue, and the response
//! code and AA bit each way of ending gets.

use super::question::Question;
use super::resolve::{End, Scratch, nxname};
use super::write::{Counts, write_rr};
use crate::dns::message::{NameAt, write_owner};
use crate::dns::online_signing as sign;
use crate::dns::wire::rcode;
use crate::proto::rr::{Link, TypeBitmap, rtype};
use crate::snapshot::{NodeId, Snapshot, ZoneId};

/// The answer section of the ends resolving does not write: the DS set a
/// parent holds for its child zone's apex, or the name's own NSEC.
#[inline(always)]
pub(super) fn answer_section(ask: Question<'_>, end: End<'_>, out: &mut Vec<u8>, c: &mut Counts) {
    match end {
        End::ParentDs(child) => {
            for rr in &ask.table.zones[child as usize].parent_ds {
                write_rr(out, c, ask.name, rr);
            }
        }
        End::OwnNsec(zone, types) => {
            sign::write_nsec(out, ask.name, types, 0, ask.neg_ttl(zone));
            c.an += 1;
        }
        _ => {}
    }
}

impl Scratch {
    /// The authority section for how the answer ended, and the response
    /// code and AA bit that go with it.
    #[inline(always)]
    pub(super) fn authority(
        &mut self,
        ask: Question<'_>,
        end: End<'_>,
        out: &mut Vec<u8>,
        c: &mut Counts,
    ) -> (u16, bool) {
        match end {
            End::Answered | End::OwnNsec(..) => (rcode::NOERROR, true),
            End::NoData(zone, at, node) => {
                no_data(ask, zone, at, node, out, c);
                (rcode::NOERROR, true)
            }
            End::ParentDs(child) => {
                parent_ds_denial(ask, child, out, c);
                (rcode::NOERROR, true)
            }
            End::NxDomain(zone, at) => {
                self.nxdomain = true;
                (nx_domain(ask, zone, at, out, c), true)
            }
            End::Referral(cut) => {
                // Nothing answered before a referral: it is the
                // whole response.
                out.truncate(ask.end);
                *c = Counts::default();
                self.glue_len = 0;
                self.referral(ask.table, ask.name, cut, out, c);
                unsigned_child(ask, cut, out, c);
                (rcode::NOERROR, false)
            }
            End::ServFail => {
                out.truncate(ask.end);
                *c = Counts::default();
                self.glue_len = 0;
                (rcode::SERVFAIL, true)
            }
        }
    }

    /// A referral to the delegation `cut` (RFC 1034 §4.3.2): its NS set in
    /// the authority section, owned by the cut's name inside the question,
    /// with its DS set when it has one; the name servers' glue is added as
    /// additional records.
    fn referral(
        &mut self,
        table: &Snapshot,
        question: NameAt<'_>,
        cut: NodeId,
        out: &mut Vec<u8>,
        c: &mut Counts,
    ) {
        let n = &table.nodes[cut as usize];
        let wire = n.name.wire();
        let at = NameAt {
            offset: question.offset + question.wire.len() - wire.len(),
            wire,
        };
        for set in n
            .records
            .iter()
            .filter(|s| s.rtype == rtype::NS || s.rtype == rtype::DS)
        {
            for rr in &set.rrs {
                write_owner(out, at);
                let start = out.len();
                out.extend_from_slice(rr.bytes());
                c.ns += 1;
                if let (Some((name_at, _)), Link::Node(id), Some(t)) =
                    (rr.name_span(), rr.link, rr.target())
                {
                    self.add_glue(
                        NameAt {
                            offset: start + name_at,
                            wire: t.wire(),
                        },
                        id,
                    );
                }
            }
        }
    }
}

/// NODATA: the zone's SOA and, when signed, the NSEC of the name (written
/// at `at`) with the types that are there.
#[inline(always)]
fn no_data(
    ask: Question<'_>,
    zone: ZoneId,
    at: NameAt<'_>,
    node: NodeId,
    out: &mut Vec<u8>,
    c: &mut Counts,
) {
    let table = ask.table;
    negative(table, out, c, zone, apex_of(table, zone, at));
    if ask.signed(zone) {
        // The types that are there; never the one
        // asked, nor CNAME (RFC 4035 §5.4).
        let mut types = table.nodes[node as usize].types;
        types.clear(rtype::CNAME);
        sign::write_nsec(out, at, types, ask.qtype, ask.neg_ttl(zone));
        c.ns += 1;
    }
}

/// A DS query at the apex of a zone inside another of ours, answered from
/// the parent's side: when the parent holds no DS for the child, the
/// parent's NODATA (the DS set itself is in the answer section).
#[inline(always)]
fn parent_ds_denial(ask: Question<'_>, child: ZoneId, out: &mut Vec<u8>, c: &mut Counts) {
    let table = ask.table;
    let parent = table.zones[child as usize].parent.unwrap_or(child);
    if table.zones[child as usize].parent_ds.is_empty() {
        // No DS: the parent's NODATA, and in a signed
        // parent its proof that the child is unsigned.
        negative(table, out, c, parent, apex_of(table, parent, ask.name));
        if ask.signed(parent) {
            let mut types = TypeBitmap::default();
            types.set(rtype::NS);
            sign::write_nsec(out, ask.name, types, ask.qtype, ask.neg_ttl(parent));
            c.ns += 1;
        }
    }
}

/// NXDOMAIN for the name written at `at`: the zone's SOA and, when signed,
/// the NSEC of a compact denial. Returns the response code.
#[inline(always)]
fn nx_domain(
    ask: Question<'_>,
    zone: ZoneId,
    at: NameAt<'_>,
    out: &mut Vec<u8>,
    c: &mut Counts,
) -> u16 {
    negative(ask.table, out, c, zone, apex_of(ask.table, zone, at));
    if ask.signed(zone) {
        sign::write_nsec(out, at, nxname(), ask.qtype, ask.neg_ttl(zone));
        c.ns += 1;
        // RFC 9824 §3.1: NOERROR, unless the client
        // said it reads compact answers (CO).
        if ask.compact_ok {
            rcode::NXDOMAIN
        } else {
            rcode::NOERROR
        }
    } else {
        rcode::NXDOMAIN
    }
}

/// After a referral from a signed zone to a delegation without DS: the
/// NSEC of the cut.
#[inline(always)]
fn unsigned_child(ask: Question<'_>, cut: NodeId, out: &mut Vec<u8>, c: &mut Counts) {
    let n = &ask.table.nodes[cut as usize];
    if n.set(rtype::DS).is_none() && ask.signed(n.zone) {
        // Proof that the child is unsigned: no DS
        // at the cut (RFC 4035 §3.1.4).
        let wire = n.name.wire();
        let at = NameAt {
            offset: ask.name.offset + ask.name.wire.len() - wire.len(),
            wire,
        };
        sign::write_nsec(out, at, n.types, rtype::DS, ask.neg_ttl(n.zone));
        c.ns += 1;
    }
}

/// Where the zone apex sits inside a name written at `at`.
fn apex_of<'t>(table: &'t Snapshot, zone: ZoneId, at: NameAt<'t>) -> NameAt<'t> {
    let origin = table.zones[zone as usize].origin.wire();
    NameAt {
        offset: at.offset + at.wire.len() - origin.len(),
        wire: origin,
    }
}

/// NODATA / NXDOMAIN authority: the zone SOA with the negative TTL.
fn negative(table: &Snapshot, out: &mut Vec<u8>, c: &mut Counts, zone: ZoneId, apex: NameAt<'_>) {
    write_owner(out, apex);
    out.extend_from_slice(table.zones[zone as usize].negative_soa.bytes());
    c.ns += 1;
}
