//! Building responses: the per-query hot path.
//!
//! A response is assembled into a reused buffer from parts prepared at load
//! time: the header, the question copied byte for byte from the query, then
//! pre-encoded records each preceded by a two-byte compression pointer to
//! its owner name. Names inside the message are always written in full once
//! (the question, RDATA names), so every later owner is a pointer to a known
//! offset. One snapshot, no locks, no allocation once the buffer has grown.
//!
//! [`Answerer::answer`] takes one query through its stages, each a
//! function inlined into it: read the query (or reply with its error code),
//! answer its cookie, find the client routing decides for, admit the
//! question, resolve the name (`resolve.rs`), write and sign the rest of the
//! answer, the authority and the additional sections (`negative.rs`:
//! denials and referrals), then the OPT record (`edns.rs`) and the header,
//! and cut the response down when it does not fit. `question.rs` is the
//! question the stages share, `write.rs` writes records and headers,
//! `summary.rs` is what is reported of a response.

mod edns;
mod negative;
mod question;
mod resolve;
mod summary;
mod write;

use std::net::IpAddr;

use super::online_signing as sign;
use super::wire::{self, Parsed, Query, flags, rcode};
use super::{cookie, rrl};
use crate::dnssec::budget::Who;
use crate::geo::{self, GeoDb};
use crate::proto::name::MAX_WIRE_LEN;
use crate::proto::rr::rtype;
use crate::routing;
use crate::snapshot::{Lookup, Snapshot};
use edns::{ResponseCookie, push_opt};
use question::Question;
use resolve::{End, Scratch};
use write::{Counts, header, header_bytes, reply_flags};

pub use edns::EDNS_PAYLOAD;
pub use summary::{Routed, RumLookup, Summary, slip};

/// How the query arrived; decides the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: truncate beyond the client's limit.
    Udp,
    /// TCP: full answers.
    Tcp,
}

impl Transport {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Per-worker state: one per thread (UDP) or connection task (TCP), so the
/// answer path shares nothing mutable.
pub struct Answerer {
    scratch: Scratch,
    lower: [u8; MAX_WIRE_LEN],
    geo_cache: geo::Cache,
    cookies: cookie::Cache,
    signing: sign::SignScratch,
    /// The latency table performance routing reads (`None`: distance
    /// only).
    latency: Option<std::sync::Arc<crate::latency::Latency>>,
}

impl Default for Answerer {
    fn default() -> Self {
        Self::new(fastrand::Rng::new())
    }
}

/// What [`Answerer::respond`] wrote: the rcode, the ECS scope the answer
/// justifies and where the OPT record starts.
#[derive(Clone, Copy)]
struct Reply {
    code: u16,
    scope: u8,
    opt_at: Option<u16>,
}

impl Answerer {
    /// A new answerer drawing randomness from `rng`.
    pub fn new(rng: fastrand::Rng) -> Self {
        Answerer {
            scratch: Scratch::new(rng),
            lower: [0; MAX_WIRE_LEN],
            geo_cache: geo::Cache::default(),
            cookies: cookie::Cache::default(),
            signing: sign::SignScratch::default(),
            latency: None,
        }
    }

    /// Lets performance routing read `latency` (the server's table).
    pub fn with_latency(mut self, latency: std::sync::Arc<crate::latency::Latency>) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Counts answers per endpoint in a [`crate::snapshot::Tally`] that
    /// [`Answerer::settle`] adds to the endpoints' counters, instead of
    /// once per answer: for a receive loop, which settles after each batch
    /// and before sending it.
    pub fn tallied(mut self) -> Self {
        self.scratch.tally = Some(crate::snapshot::Tally::default());
        self
    }

    /// Adds the answers counted since the last call to their endpoints'
    /// counters (see [`Answerer::tallied`]; nothing to do otherwise).
    #[inline]
    pub fn settle(&mut self) {
        if let Some(tally) = &mut self.scratch.tally {
            tally.settle();
        }
    }

    /// An answerer whose answers are not counted in the endpoints' answer
    /// counters (for `explain`, which asks without a client).
    pub fn uncounted() -> Self {
        let mut a = Self::default();
        a.scratch.count = false;
        a
    }

    /// Answers one packet from `peer` into `out` (cleared first). Returns
    /// `None` when the packet must be dropped without reply.
    #[inline]
    pub fn answer(
        &mut self,
        table: &Snapshot,
        geo: Option<&GeoDb>,
        pkt: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<Summary> {
        self.answer_traced(table, geo, pkt, transport, peer, out, &mut routing::NoTrace)
    }

    /// [`Answerer::answer`], with routing telling `trace` what it decided
    /// (`explain` passes a [`routing::Decision`]).
    #[allow(clippy::too_many_arguments)]
    pub fn answer_traced<T: routing::Trace>(
        &mut self,
        table: &Snapshot,
        geo: Option<&GeoDb>,
        pkt: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut Vec<u8>,
        trace: &mut T,
    ) -> Option<Summary> {
        out.clear();
        let q = match wire::parse(pkt, &mut self.lower) {
            Parsed::Drop => return None,
            Parsed::Error {
                id,
                flags: f,
                question,
                rcode: code,
            } => return Some(error_reply(out, id, f, question, code)),
            Parsed::Query(q) => q,
        };
        // The cookie of the response (the server cookie is made from the
        // transport address, never ECS).
        let cookie = edns::response_cookie(&mut self.cookies, table, &q, peer);
        self.begin(transport, peer, cookie.as_ref());
        let reply = self.respond(table, geo, &q, peer, cookie.as_ref(), out, trace);
        let name_hash = self.name_hash(table, &q);
        let (reply, truncated) = self.fit(table, &q, transport, cookie.as_ref(), out, reply);
        let q_end = 12 + q.question.len();
        Some(Summary {
            rcode: reply.code,
            truncated,
            cookie: cookie.map(|c| c.0),
            name_hash,
            rtype: match out.get(q_end + 2..q_end + 4) {
                // The first answer's owner is a 2-byte pointer to the question.
                Some(t) if out[6..8] != [0, 0] => u16::from_be_bytes([t[0], t[1]]),
                _ => q.qtype,
            },
            answers: u16::from_be_bytes([out[6], out[7]]),
            question_end: q_end as u16,
            opt_at: reply.opt_at,
            nxdomain: self.scratch.nxdomain,
            rum: self.rum_lookup(table, &q),
            routed: self.scratch.routed.map(|(profile, endpoint)| Routed {
                profile,
                endpoint,
                network: edns::network(table, &q, peer),
            }),
        })
    }

    /// The token of a lookup the rum wildcard answered (`<token>.<rum.zone>`):
    /// the first label, when it is one, and the ECS network.
    #[inline(always)]
    fn rum_lookup(&self, table: &Snapshot, q: &Query<'_>) -> Option<RumLookup> {
        if self.scratch.wildcard.is_none() || self.scratch.wildcard != table.rum_wildcard {
            return None;
        }
        let name = &self.lower[..q.qname_len];
        let len = usize::from(*name.first()?);
        let token = crate::sightings::token_of_label(name.get(1..1 + len)?)?;
        let ecs = q
            .edns
            .and_then(|e| e.ecs)
            .filter(|_| table.ecs)
            .and_then(|s| crate::netblock::Network::of_prefix(s.ip(), s.source_prefix));
        Some(RumLookup { token, ecs })
    }

    /// Readies the worker for a new query: forgets the last one's findings
    /// and tells the signing budget who asks. New signatures are budgeted;
    /// clients that proved their address (TCP, a valid cookie) come first
    /// and are counted each.
    #[inline(always)]
    fn begin(&mut self, transport: Transport, peer: IpAddr, cookie: Option<&ResponseCookie>) {
        self.scratch.begin();
        let proven =
            transport == Transport::Tcp || cookie.is_some_and(|c| c.0 == cookie::Verdict::Valid);
        self.signing.client = Some(if proven {
            Who::Proven(peer)
        } else {
            Who::Unproven
        });
        self.signing.refused = None;
    }

    /// The name rate limiting counts the response under, hashed. Answers a
    /// wildcard made are counted under the wildcard's name, not each name
    /// asked (BIND's RRL does the same).
    #[inline(always)]
    fn name_hash(&self, table: &Snapshot, q: &Query<'_>) -> u64 {
        match self.scratch.wildcard {
            Some(w) => rrl::name_hash(table.nodes[w as usize].name.wire()),
            None => rrl::name_hash(&self.lower[..q.qname_len]),
        }
    }

    /// Writes the full response for a well-formed query: the header, the
    /// question, the sections for the name asked, then the OPT record.
    #[allow(clippy::too_many_arguments)]
    fn respond<T: routing::Trace>(
        &mut self,
        table: &Snapshot,
        geo: Option<&GeoDb>,
        q: &Query<'_>,
        peer: IpAddr,
        cookie: Option<&ResponseCookie>,
        out: &mut Vec<u8>,
        trace: &mut T,
    ) -> Reply {
        let Answerer {
            scratch,
            lower,
            geo_cache,
            signing,
            latency,
            ..
        } = self;
        // Header placeholder, then the question exactly as sent.
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(q.question);
        let mut c = Counts::default();
        let mut client = edns::client(table, q, peer, geo, geo_cache);
        if let Some(l) = latency.as_deref() {
            client = client.with_latency(l, peer);
        }
        let qname = &lower[..q.qname_len];
        let (code, authoritative) = match admit(table, q, qname) {
            Err(code) => (code, false),
            Ok(found) => {
                let ask = Question::new(table, q, qname);
                let end = scratch.decide(ask, found, &mut client, out, &mut c, trace);
                sections(scratch, signing, ask, end, out, &mut c)
            }
        };
        let scope = client.scope;
        let mut opt_at = None;
        if let Some(e) = q.edns {
            opt_at = u16::try_from(out.len()).ok();
            push_opt(out, code, e, table, scope, cookie);
            c.ar += 1;
        }
        let f = reply_flags(q.flags, code, authoritative);
        out[..12].copy_from_slice(&header_bytes(q.id, f, 1, c.an, c.ns, c.ar));
        Reply {
            code,
            scope,
            opt_at,
        }
    }

    /// Cuts the response down when it cannot go out whole. An answer that
    /// needed a signature the budget refused: over TCP, SERVFAIL (the
    /// client asked too fast, or everyone together did); over UDP,
    /// truncated, so a real client comes back over TCP. An answer over the
    /// client's size limit is truncated too. Returns the reply as sent and
    /// whether it was truncated.
    #[inline(always)]
    fn fit(
        &self,
        table: &Snapshot,
        q: &Query<'_>,
        transport: Transport,
        cookie: Option<&ResponseCookie>,
        out: &mut Vec<u8>,
        reply: Reply,
    ) -> (Reply, bool) {
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => u16::MAX as usize,
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => e.udp_size.clamp(512, EDNS_PAYLOAD) as usize,
        };
        let refused = self.signing.refused.is_some();
        if refused && transport == Transport::Tcp {
            (servfail(table, q, cookie, out, reply), false)
        } else if out.len() > limit || refused {
            (truncate(table, q, cookie, out, reply), true)
        } else {
            (reply, false)
        }
    }
}

/// The reply to a packet that is no query we answer (FORMERR, NOTIMP):
/// the header, and the question when it could be read.
#[inline]
fn error_reply(out: &mut Vec<u8>, id: u16, f: u16, question: Option<&[u8]>, code: u16) -> Summary {
    let q = question.unwrap_or(&[]);
    // RD and CD mean nothing under an opcode we do not know:
    // a NOTIMP reply carries neither (ISC genreport `opcodeflg`).
    let f = if code == rcode::NOTIMP {
        f & !(flags::RD | flags::CD)
    } else {
        f
    };
    header(
        out,
        id,
        reply_flags(f, code, false),
        u16::from(question.is_some()),
        0,
        0,
        0,
    );
    out.extend_from_slice(q);
    Summary::error(code, out.len())
}

/// Where the name asked is, or the code of a question no zone answers:
/// BADVERS for an EDNS version we do not speak; REFUSED for another
/// class, a name outside our zones or a zone transfer; FORMERR for NXNAME.
#[inline(always)]
fn admit(table: &Snapshot, q: &Query<'_>, qname: &[u8]) -> Result<Lookup, u16> {
    if q.edns.is_some_and(|e| e.version != 0) {
        return Err(rcode::BADVERS);
    }
    if q.qclass != 1 {
        return Err(rcode::REFUSED);
    }
    match table.lookup(qname) {
        Lookup::Outside => Err(rcode::REFUSED),
        _ if q.qtype == rtype::AXFR || q.qtype == rtype::IXFR => Err(rcode::REFUSED),
        // RFC 9824 §3.5: NXNAME only ever appears in a denial's NSEC.
        _ if q.qtype == rtype::NXNAME => Err(rcode::FORMERR),
        found => Ok(found),
    }
}

/// Writes the sections of the answer to a name of ours after what
/// resolving wrote: the rest of the answer section, the authority section
/// and the additional section (glue), each signed once written when the
/// answer is signed. Returns the rcode and the AA bit.
#[inline(always)]
fn sections(
    scratch: &mut Scratch,
    signing: &mut sign::SignScratch,
    ask: Question<'_>,
    end: End<'_>,
    out: &mut Vec<u8>,
    c: &mut Counts,
) -> (u16, bool) {
    let table = ask.table;
    let now = if ask.sign {
        crate::clock::unix_secs_now()
    } else {
        0
    };
    // The records a parent-side DS answer owns at the child's
    // apex are the parent zone's: signed with its key.
    let parent_side = match end {
        End::ParentDs(_) => Some(ask.name.wire),
        _ => None,
    };
    negative::answer_section(ask, end, out, c);
    if ask.sign
        && matches!(
            end,
            End::Answered
                | End::NoData(..)
                | End::NxDomain(..)
                | End::ParentDs(_)
                | End::OwnNsec(..)
        )
    {
        c.an += signing.sign_section(table, out, ask.end, c.an, false, parent_side, now);
    }
    let authority_at = out.len();
    let (code, aa) = scratch.authority(ask, end, out, c);
    if ask.sign && c.ns > 0 {
        c.ns += signing.sign_section(table, out, authority_at, c.ns, !aa, parent_side, now);
    }
    let additional_at = out.len();
    scratch.write_glue(table, out, c, !aa);
    if ask.sign && aa && c.ar > 0 {
        c.ar += signing.sign_section(table, out, additional_at, c.ar, false, None, now);
    }
    (code, aa)
}

/// Cuts the response down to a SERVFAIL: header, question and OPT.
#[inline]
fn servfail(
    table: &Snapshot,
    q: &Query<'_>,
    cookie: Option<&ResponseCookie>,
    out: &mut Vec<u8>,
    reply: Reply,
) -> Reply {
    let reply = Reply {
        code: rcode::SERVFAIL,
        ..reply
    };
    out.truncate(12 + q.question.len());
    let f = reply_flags(q.flags, reply.code, false);
    out[..12].copy_from_slice(&header_bytes(q.id, f, 1, 0, 0, 0));
    Reply {
        opt_at: opt_again(table, q, cookie, out, reply),
        ..reply
    }
}

/// Truncates the response (TC): keep the question (and OPT); the client
/// retries over TCP.
#[inline]
fn truncate(
    table: &Snapshot,
    q: &Query<'_>,
    cookie: Option<&ResponseCookie>,
    out: &mut Vec<u8>,
    reply: Reply,
) -> Reply {
    out.truncate(12 + q.question.len());
    let f = u16::from_be_bytes([out[2], out[3]]) | flags::TC;
    out[2..4].copy_from_slice(&f.to_be_bytes());
    out[6..12].fill(0);
    Reply {
        opt_at: opt_again(table, q, cookie, out, reply),
        ..reply
    }
}

/// Appends the OPT record again (when the query had EDNS) after the
/// question of a response cut down to it; returns where it starts.
#[inline]
fn opt_again(
    table: &Snapshot,
    q: &Query<'_>,
    cookie: Option<&ResponseCookie>,
    out: &mut Vec<u8>,
    reply: Reply,
) -> Option<u16> {
    let e = q.edns?;
    let at = out.len() as u16;
    push_opt(out, reply.code, e, table, reply.scope, cookie);
    out[10..12].copy_from_slice(&1u16.to_be_bytes());
    Some(at)
}

#[cfg(test)]
mod tests {
    //! The answer path on the bundled example's table (the test copy):
    //! what a user sees with dig, byte for byte where it matters.
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};
    use std::net::Ipv4Addr;

    fn table() -> Snapshot {
        crate::config::load(&crate::fuzzing::example_dir().join("switchyard.toml"))
            .expect("example config")
            .table
    }

    fn ask(table: &Snapshot, name: &str, t: RecordType) -> (Message, Vec<u8>, Summary) {
        let mut q = Message::query();
        q.metadata.id = 0x5a5a;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let pkt = q.to_vec().unwrap();
        let mut out = Vec::new();
        let summary = Answerer::default()
            .answer(
                table,
                None,
                &pkt,
                Transport::Udp,
                Ipv4Addr::LOCALHOST.into(),
                &mut out,
            )
            .expect("answered");
        (Message::from_vec(&out).unwrap(), out, summary)
    }

    #[test]
    fn a_profile_answers_its_first_choice_with_the_question_as_asked() {
        let t = table();
        // 0x20: the question comes back with the case it was asked in.
        let (m, out, s) = ask(&t, "ToDoApi.Tm.Example.Test.", RecordType::A);
        assert_eq!(m.metadata.id, 0x5a5a);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(s.answers, 1);
        assert!(out.windows(9).any(|w| w == b"\x07ToDoApi\x02"));
        let a = &m.answers[0];
        assert_eq!(a.ttl, 30, "the profile's TTL");
        assert_eq!(a.data, RData::A(Ipv4Addr::new(203, 0, 113, 10).into()));
    }

    #[test]
    fn a_missing_name_is_nxdomain_with_the_soa() {
        let t = table();
        let (m, _, s) = ask(&t, "nope.tm.example.test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(s.nxdomain);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn another_type_at_a_profile_name_is_nodata() {
        let t = table();
        let (m, _, s) = ask(&t, "todoapi.tm.example.test.", RecordType::MX);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(s.answers, 0);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn a_name_outside_every_zone_is_refused() {
        let t = table();
        let (m, _, _) = ask(&t, "example.org.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(!m.metadata.authoritative);
    }

    #[test]
    fn garbage_gets_formerr_or_nothing_never_a_panic() {
        let t = table();
        let mut out = Vec::new();
        let mut a = Answerer::default();
        for pkt in [&[][..], &[0u8; 5], &[0xff; 12], &[0u8; 600]] {
            out.clear();
            if let Some(s) = a.answer(
                &t,
                None,
                pkt,
                Transport::Udp,
                Ipv4Addr::LOCALHOST.into(),
                &mut out,
            ) {
                assert_eq!(s.rcode, rcode::FORMERR, "{pkt:?}");
            }
        }
    }
}
