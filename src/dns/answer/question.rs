//! The question a response answers, as the stages that write the response
//! read it: the snapshot, the name where the response holds it, the type
//! asked, and whether the answer is signed.

use crate::dns::message::NameAt;
use crate::dns::wire::Query;
use crate::snapshot::{Snapshot, ZoneId};

/// A well-formed query for a name of ours, being answered.
#[derive(Clone, Copy)]
pub(super) struct Question<'t> {
    /// The snapshot that answers.
    pub(super) table: &'t Snapshot,
    /// The name asked (lowercase), as written right after the header.
    pub(super) name: NameAt<'t>,
    /// The type asked.
    pub(super) qtype: u16,
    /// Where the question ends in the response.
    pub(super) end: usize,
    /// Signed answers for clients that set DO, in zones that have a key:
    /// the query set DO and some zone has a key.
    pub(super) sign: bool,
    /// The client said it reads compact answers (CO, RFC 9824 §4).
    pub(super) compact_ok: bool,
}

impl<'t> Question<'t> {
    /// The question of `q`, whose name is `qname` (lowercase).
    #[inline(always)]
    pub(super) fn new(table: &'t Snapshot, q: &Query<'_>, qname: &'t [u8]) -> Question<'t> {
        Question {
            table,
            name: NameAt {
                offset: 12,
                wire: qname,
            },
            qtype: q.qtype,
            end: 12 + q.question.len(),
            sign: q.edns.is_some_and(|e| e.dnssec_ok) && table.signed(),
            compact_ok: q.edns.is_some_and(|e| e.compact_ok),
        }
    }

    /// The answer from `zone` is signed: DO set and the zone has a key.
    #[inline(always)]
    pub(super) fn signed(&self, zone: ZoneId) -> bool {
        self.sign && self.table.zones[zone as usize].signer.is_some()
    }

    /// The negative TTL of a zone, which its NSEC shares.
    #[inline(always)]
    pub(super) fn neg_ttl(&self, zone: ZoneId) -> u32 {
        self.table.zones[zone as usize].negative_soa.ttl()
    }
}
