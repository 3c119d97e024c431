//! Building responses: the per-query hot path.
//!
//! A response is assembled into a reused buffer from parts prepared at load
//! time: the header, the question copied byte for byte from the query, then
//! pre-encoded records each preceded by a two-byte compression pointer to
//! its owner name. Names inside the message are always written in full once
//! (the question, RDATA names), so every later owner is a pointer to a known
//! offset. One snapshot, no locks, no allocation once the buffer has grown.

use std::net::IpAddr;

use super::message::{NameAt, write_owner};
use super::online_signing as sign;
use super::wire::{self, Edns, Parsed, Query, flags, rcode};
use super::{cookie, rrl};
use crate::dnssec::budget::Who;
use crate::geo::{self, GeoDb};
use crate::proto::name::MAX_WIRE_LEN;
use crate::proto::rr::{Link, TypeBitmap, WireRr, rtype};
use crate::routing::{self, Client, Outcome, Picks};
use crate::snapshot::{Family, Lookup, NodeId, Snapshot, Target, ZoneId};

/// Our advertised EDNS UDP payload size (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Most names followed through CNAMEs in one answer.
const MAX_CHAIN: usize = 8;
/// Most names whose addresses are added as additional records.
const MAX_GLUE: usize = 16;

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

/// What was sent, for logging, metrics and rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The response code (extended codes included).
    pub rcode: u16,
    /// The response was truncated (TC).
    pub truncated: bool,
    /// The query's DNS cookie, when it had one and cookies are on.
    pub cookie: Option<cookie::Verdict>,
    /// The query name, hashed (rate limiting buckets).
    pub name_hash: u64,
    /// The type rate limiting counts answers by: the first answer
    /// record's (a CNAME answers every query type alike, so the query's
    /// would give every type its own bucket), else the query's.
    pub rtype: u16,
    /// Records in the answer section.
    pub answers: u16,
    /// Where the question ends in the response.
    pub question_end: u16,
    /// Where the OPT record starts, when there is one (it is last).
    pub opt_at: Option<u16>,
    /// The name does not exist, whatever the rcode says (a compact denial
    /// answers NOERROR): rate limiting counts it as an NXDOMAIN.
    pub nxdomain: bool,
}

impl Summary {
    fn error(rcode: u16, question_end: usize) -> Summary {
        Summary {
            rcode,
            truncated: false,
            cookie: None,
            name_hash: 0,
            rtype: 0,
            answers: 0,
            question_end: question_end as u16,
            opt_at: None,
            nxdomain: false,
        }
    }
}

impl Summary {
    /// The rate-limiting class of this response.
    pub fn class(&self) -> rrl::Class {
        if self.nxdomain {
            return rrl::Class::NxDomain;
        }
        rrl::Class::of(self.rcode, self.answers)
    }
}

/// Rewrites a response that rate limiting slipped: header, question and OPT
/// only. TC=1, so the client retries over TCP; or, when the query carried
/// a cookie, BADCOOKIE (RFC 7873 §5.2.3), so it retries at once over UDP
/// with the fresh server cookie in the OPT.
pub fn slip(out: &mut Vec<u8>, s: &Summary) {
    let q_end = s.question_end as usize;
    if out.len() < q_end || q_end < 12 {
        return;
    }
    let opt_len = match s.opt_at {
        Some(at) if (at as usize) >= q_end && (at as usize) < out.len() => {
            let at = at as usize;
            let len = out.len() - at;
            out.copy_within(at.., q_end);
            len
        }
        _ => 0,
    };
    out.truncate(q_end + opt_len);
    let mut f = u16::from_be_bytes([out[2], out[3]]) & !(flags::AA | 0xF);
    if s.cookie.is_some() && opt_len > 0 {
        // BADCOOKIE = 23: 7 in the header, 1 in the OPT's extended rcode.
        f |= rcode::BADCOOKIE & 0xF;
        out[q_end + 5] = (rcode::BADCOOKIE >> 4) as u8;
    } else {
        f |= flags::TC | (s.rcode & 0xF);
    }
    out[2..4].copy_from_slice(&f.to_be_bytes());
    out[6..10].fill(0);
    out[10..12].copy_from_slice(&u16::from(opt_len > 0).to_be_bytes());
}

/// How a name's resolution ended.
enum End<'t> {
    Answered,
    /// The name (written at the given place) exists without the type.
    NoData(ZoneId, NameAt<'t>, NodeId),
    NxDomain(ZoneId, NameAt<'t>),
    /// The name is at or below this delegation: a referral.
    Referral(NodeId),
    /// A DS query at the apex of this zone, which is inside another of
    /// ours: answered from the parent's side.
    ParentDs(ZoneId),
    /// A query for NSEC at a name of this signed zone, with DO: the
    /// name's own compact NSEC, with these types, is the answer.
    OwnNsec(ZoneId, TypeBitmap),
    ServFail,
}

/// Per-worker state: one per thread (UDP) or connection task (TCP), so the
/// answer path shares nothing mutable.
pub struct Answerer {
    scratch: Scratch,
    lower: [u8; MAX_WIRE_LEN],
    geo_cache: geo::Cache,
    cookies: cookie::Cache,
    signing: sign::SignScratch,
}

/// What resolving one name needs besides the table.
struct Scratch {
    /// Count answers per endpoint (off for explain's synthetic queries).
    count: bool,
    rng: fastrand::Rng,
    picks: Picks,
    glue: [(usize, usize, NodeId); MAX_GLUE],
    glue_len: usize,
    /// The response denies the name (for rate limiting).
    nxdomain: bool,
    /// The wildcard that answered, if one did (for rate limiting).
    wildcard: Option<NodeId>,
    /// The query sees the zone signed (DO set, the zone has a key): RRSIG
    /// and NSEC exist beside a CNAME, so queries for them stop there.
    dnssec: bool,
}

impl Default for Answerer {
    fn default() -> Self {
        Self::new(fastrand::Rng::new())
    }
}

/// Counts of records per section while a message is written.
#[derive(Default)]
struct Counts {
    an: u16,
    ns: u16,
    ar: u16,
}

impl Answerer {
    /// A new answerer drawing randomness from `rng`.
    pub fn new(rng: fastrand::Rng) -> Self {
        Answerer {
            scratch: Scratch {
                count: true,
                rng,
                picks: Picks::default(),
                glue: [(0, 0, 0); MAX_GLUE],
                glue_len: 0,
                nxdomain: false,
                wildcard: None,
                dnssec: false,
            },
            lower: [0; MAX_WIRE_LEN],
            geo_cache: geo::Cache::default(),
            cookies: cookie::Cache::default(),
            signing: sign::SignScratch::default(),
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
            } => {
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
                return Some(Summary::error(code, out.len()));
            }
            Parsed::Query(q) => q,
        };
        // The cookie of the response (the server cookie is made from the
        // transport address, never ECS).
        let cookie = match (q.edns.and_then(|e| e.cookie), &table.cookies) {
            (Some(c), Some(secrets)) => {
                let (verdict, server) = self.cookies.respond(secrets, &c, peer, cookie::now());
                Some((verdict, c.client, server))
            }
            _ => None,
        };
        self.scratch.nxdomain = false;
        self.scratch.wildcard = None;
        self.scratch.dnssec = false;
        // New signatures are budgeted; clients that proved their address
        // (TCP, a valid cookie) come first and are counted each.
        let proven = transport == Transport::Tcp
            || cookie
                .as_ref()
                .is_some_and(|c| c.0 == cookie::Verdict::Valid);
        self.signing.client = Some(if proven {
            Who::Proven(peer)
        } else {
            Who::Unproven
        });
        self.signing.refused = None;
        let (code, scope, opt_at) = self.respond(table, geo, &q, peer, cookie.as_ref(), out, trace);
        // Answers a wildcard made are counted under the wildcard's name,
        // not each name asked (BIND's RRL does the same).
        let name_hash = match self.scratch.wildcard {
            Some(w) => rrl::name_hash(table.nodes[w as usize].name.wire()),
            None => rrl::name_hash(&self.lower[..q.qname_len]),
        };
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => u16::MAX as usize,
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => e.udp_size.clamp(512, EDNS_PAYLOAD) as usize,
        };
        let mut truncated = false;
        let mut opt_at = opt_at;
        let mut code = code;
        // An answer that needed a signature the budget refused: over TCP,
        // SERVFAIL (the client asked too fast, or everyone together did);
        // over UDP, truncated, so a real client comes back over TCP.
        if self.signing.refused.is_some() && transport == Transport::Tcp {
            code = rcode::SERVFAIL;
            out.truncate(12 + q.question.len());
            let f = reply_flags(q.flags, code, false);
            out[..12].copy_from_slice(&header_bytes(q.id, f, 1, 0, 0, 0));
            opt_at = None;
            if let Some(e) = q.edns {
                opt_at = Some(out.len() as u16);
                push_opt(out, code, e, table, scope, cookie.as_ref());
                out[10..12].copy_from_slice(&1u16.to_be_bytes());
            }
        } else if out.len() > limit || self.signing.refused.is_some() {
            // Keep the question (and OPT); the client retries over TCP.
            truncated = true;
            out.truncate(12 + q.question.len());
            let f = u16::from_be_bytes([out[2], out[3]]) | flags::TC;
            out[2..4].copy_from_slice(&f.to_be_bytes());
            out[6..12].fill(0);
            opt_at = None;
            if let Some(e) = q.edns {
                opt_at = Some(out.len() as u16);
                push_opt(out, code, e, table, scope, cookie.as_ref());
                out[10..12].copy_from_slice(&1u16.to_be_bytes());
            }
        }
        let q_end = 12 + q.question.len();
        Some(Summary {
            rcode: code,
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
            opt_at,
            nxdomain: self.scratch.nxdomain,
        })
    }

    /// Writes the full response for a well-formed query; returns the rcode,
    /// the ECS scope the answer justifies and where the OPT record starts.
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
    ) -> (u16, u8, Option<u16>) {
        let Answerer {
            scratch,
            lower,
            geo_cache,
            signing,
            ..
        } = self;
        // Header placeholder, then the question exactly as sent.
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(q.question);
        let mut c = Counts::default();
        // The ECS address when present and honoured (source prefix 0: the
        // client asked not to be used), else the resolver's address.
        let ecs = q.edns.and_then(|e| e.ecs).filter(|_| table.ecs);
        let mut client = match ecs {
            Some(s) if s.source_prefix == 0 => Client::from_ecs(None, 0, geo, geo_cache),
            Some(s) => Client::from_ecs(Some(s.ip()), s.source_prefix, geo, geo_cache),
            None => Client::from_resolver(peer, geo, geo_cache),
        };

        let (code, authoritative) = if q.edns.is_some_and(|e| e.version != 0) {
            (rcode::BADVERS, false)
        } else if q.qclass != 1 {
            (rcode::REFUSED, false)
        } else {
            let qname = &lower[..q.qname_len];
            let question = NameAt {
                offset: 12,
                wire: qname,
            };
            // Signed answers for clients that set DO, in zones that have
            // a key.
            let sign = q.edns.is_some_and(|e| e.dnssec_ok) && table.signed();
            let signed = |zone: ZoneId| sign && table.zones[zone as usize].signer.is_some();
            match table.lookup(qname) {
                Lookup::Outside => (rcode::REFUSED, false),
                _ if q.qtype == rtype::AXFR || q.qtype == rtype::IXFR => (rcode::REFUSED, false),
                // RFC 9824 §3.5: NXNAME only ever appears in a denial's NSEC.
                _ if q.qtype == rtype::NXNAME => (rcode::FORMERR, false),
                found => {
                    scratch.glue_len = 0;
                    if let Lookup::Wildcard(w) = found {
                        scratch.wildcard = Some(w);
                    }
                    let end = match found {
                        // A name that does not exist has, to a validator,
                        // only the NSEC of its compact denial (RFC 9824):
                        // that NSEC is what a query for NSEC gets.
                        Lookup::NxDomain(zone) if q.qtype == rtype::NSEC && signed(zone) => {
                            scratch.nxdomain = true;
                            End::OwnNsec(zone, nxname())
                        }
                        Lookup::NxDomain(zone) => End::NxDomain(zone, question),
                        Lookup::Delegated(cut) => End::Referral(cut),
                        // DS at the apex of a zone inside another of ours:
                        // the parent's to answer (RFC 4035 §3.1.4.1).
                        Lookup::Found(node)
                            if q.qtype == rtype::DS
                                && table.zones[table.nodes[node as usize].zone as usize].apex
                                    == node
                                && table.zones[table.nodes[node as usize].zone as usize]
                                    .parent
                                    .is_some() =>
                        {
                            End::ParentDs(table.nodes[node as usize].zone)
                        }
                        // NSEC at a name of a signed zone: the name's own
                        // NSEC, never a CNAME's target (NSEC lives beside
                        // a CNAME, RFC 4035 §2.5); below a delegation, the
                        // referral.
                        Lookup::Found(node) | Lookup::Wildcard(node)
                            if q.qtype == rtype::NSEC
                                && signed(table.nodes[node as usize].zone)
                                && table.nodes[node as usize].cut.is_none() =>
                        {
                            let n = &table.nodes[node as usize];
                            // A disabled profile's name answers NXDOMAIN
                            // when nothing else is there: the same NSEC.
                            let gone = n.records.is_empty()
                                && !n.has_children
                                && n.profile
                                    .is_some_and(|p| !table.profiles[p as usize].enabled);
                            if gone {
                                scratch.nxdomain = true;
                                End::OwnNsec(n.zone, nxname())
                            } else {
                                End::OwnNsec(n.zone, n.types)
                            }
                        }
                        Lookup::Found(node) | Lookup::Wildcard(node) => {
                            scratch.dnssec = signed(table.nodes[node as usize].zone);
                            scratch.resolve(
                                table,
                                &mut client,
                                node,
                                question,
                                q.qtype,
                                out,
                                &mut c,
                                trace,
                            )
                        }
                        Lookup::Outside => End::ServFail,
                    };
                    let now = if sign {
                        crate::clock::unix_secs_now()
                    } else {
                        0
                    };
                    let q_end = 12 + q.question.len();
                    // The records a parent-side DS answer owns at the child's
                    // apex are the parent zone's: signed with its key.
                    let parent_side = match end {
                        End::ParentDs(_) => Some(question.wire),
                        _ => None,
                    };
                    // The negative TTL of a zone, which its NSEC shares.
                    let neg_ttl = |zone: ZoneId| table.zones[zone as usize].negative_soa.ttl();
                    match end {
                        End::ParentDs(child) => {
                            for rr in &table.zones[child as usize].parent_ds {
                                write_rr(out, &mut c, question, rr);
                            }
                        }
                        End::OwnNsec(zone, types) => {
                            sign::write_nsec(out, question, types, 0, neg_ttl(zone));
                            c.an += 1;
                        }
                        _ => {}
                    }
                    if sign
                        && matches!(
                            end,
                            End::Answered
                                | End::NoData(..)
                                | End::NxDomain(..)
                                | End::ParentDs(_)
                                | End::OwnNsec(..)
                        )
                    {
                        c.an +=
                            signing.sign_section(table, out, q_end, c.an, false, parent_side, now);
                    }
                    let authority_at = out.len();
                    let (code, aa) = match end {
                        End::Answered | End::OwnNsec(..) => (rcode::NOERROR, true),
                        End::NoData(zone, at, node) => {
                            negative(table, out, &mut c, zone, apex_of(table, zone, at));
                            if signed(zone) {
                                // The types that are there; never the one
                                // asked, nor CNAME (RFC 4035 §5.4).
                                let mut types = table.nodes[node as usize].types;
                                types.clear(rtype::CNAME);
                                sign::write_nsec(out, at, types, q.qtype, neg_ttl(zone));
                                c.ns += 1;
                            }
                            (rcode::NOERROR, true)
                        }
                        End::ParentDs(child) => {
                            let parent = table.zones[child as usize].parent.unwrap_or(child);
                            if table.zones[child as usize].parent_ds.is_empty() {
                                // No DS: the parent's NODATA, and in a signed
                                // parent its proof that the child is unsigned.
                                negative(
                                    table,
                                    out,
                                    &mut c,
                                    parent,
                                    apex_of(table, parent, question),
                                );
                                if signed(parent) {
                                    let mut types = TypeBitmap::default();
                                    types.set(rtype::NS);
                                    sign::write_nsec(
                                        out,
                                        question,
                                        types,
                                        q.qtype,
                                        neg_ttl(parent),
                                    );
                                    c.ns += 1;
                                }
                            }
                            (rcode::NOERROR, true)
                        }
                        End::NxDomain(zone, at) => {
                            scratch.nxdomain = true;
                            negative(table, out, &mut c, zone, apex_of(table, zone, at));
                            if signed(zone) {
                                sign::write_nsec(out, at, nxname(), q.qtype, neg_ttl(zone));
                                c.ns += 1;
                                // RFC 9824 §3.1: NOERROR, unless the client
                                // said it reads compact answers (CO).
                                if q.edns.is_some_and(|e| e.compact_ok) {
                                    (rcode::NXDOMAIN, true)
                                } else {
                                    (rcode::NOERROR, true)
                                }
                            } else {
                                (rcode::NXDOMAIN, true)
                            }
                        }
                        End::Referral(cut) => {
                            // Nothing answered before a referral: it is the
                            // whole response.
                            out.truncate(q_end);
                            c = Counts::default();
                            scratch.glue_len = 0;
                            scratch.referral(table, question, cut, out, &mut c);
                            let n = &table.nodes[cut as usize];
                            if n.set(rtype::DS).is_none() && signed(n.zone) {
                                // Proof that the child is unsigned: no DS
                                // at the cut (RFC 4035 §3.1.4).
                                let wire = n.name.wire();
                                let at = NameAt {
                                    offset: question.offset + question.wire.len() - wire.len(),
                                    wire,
                                };
                                sign::write_nsec(out, at, n.types, rtype::DS, neg_ttl(n.zone));
                                c.ns += 1;
                            }
                            (rcode::NOERROR, false)
                        }
                        End::ServFail => {
                            out.truncate(q_end);
                            c = Counts::default();
                            scratch.glue_len = 0;
                            (rcode::SERVFAIL, true)
                        }
                    };
                    if sign && c.ns > 0 {
                        c.ns += signing.sign_section(
                            table,
                            out,
                            authority_at,
                            c.ns,
                            !aa,
                            parent_side,
                            now,
                        );
                    }
                    let additional_at = out.len();
                    scratch.write_glue(table, out, &mut c, !aa);
                    if sign && aa && c.ar > 0 {
                        c.ar +=
                            signing.sign_section(table, out, additional_at, c.ar, false, None, now);
                    }
                    (code, aa)
                }
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
        (code, scope, opt_at)
    }
}

impl Scratch {
    /// Answers `node` for `qtype`, following CNAMEs inside our zones.
    #[allow(clippy::too_many_arguments)]
    fn resolve<'t, T: routing::Trace>(
        &mut self,
        table: &'t Snapshot,
        client: &mut Client<'_>,
        mut node: NodeId,
        mut at: NameAt<'t>,
        qtype: u16,
        out: &mut Vec<u8>,
        c: &mut Counts,
        trace: &mut T,
    ) -> End<'t> {
        for hop in 0..MAX_CHAIN {
            let n = &table.nodes[node as usize];
            if let Some(cut) = n.cut {
                // At or below a delegation: the query gets a referral (but
                // the DS at the cut is the parent's to answer); a chain
                // that leads there ends, the name is not ours to answer.
                if hop > 0 {
                    return End::Answered;
                }
                if !(cut == node && qtype == rtype::DS) {
                    return End::Referral(cut);
                }
            }
            // A CNAME (static or chosen endpoint) to follow: its link and where its target was written.
            let (link, target) = match n.profile_for(qtype) {
                None => {
                    let sets = &n.records;
                    if let Some(cname) = sets.iter().find(|s| s.rtype == rtype::CNAME) {
                        let rr = &cname.rrs[0];
                        let target = write_rr(out, c, at, rr);
                        if qtype == rtype::CNAME
                            || qtype == rtype::ANY
                            || self.stops_at_cname(qtype)
                        {
                            return End::Answered;
                        }
                        (rr.link, target)
                    } else {
                        // RFC 8482: ANY gets one RRset, not everything.
                        let set = if qtype == rtype::ANY {
                            sets.first()
                        } else {
                            sets.iter().find(|s| s.rtype == qtype)
                        };
                        let Some(set) = set else {
                            return End::NoData(n.zone, at, node);
                        };
                        for rr in &set.rrs {
                            let target = write_rr(out, c, at, rr);
                            if let (Some(t), Link::Node(id)) = (target, rr.link)
                                && matches!(rr.rtype(), rtype::NS | rtype::MX | rtype::SRV)
                            {
                                self.add_glue(t, id);
                            }
                        }
                        return End::Answered;
                    }
                }
                Some(pid) => {
                    let top = &table.profiles[pid as usize];
                    let family = Family::of_qtype(qtype);
                    // A nested endpoint answers with its child profile's
                    // choice, owned by this name and with this TTL.
                    let chosen = routing::choose(
                        table,
                        pid,
                        family,
                        client,
                        &mut self.rng,
                        &mut self.picks,
                        self.count,
                        trace,
                    );
                    match chosen.outcome {
                        Outcome::NoData => return End::NoData(n.zone, at, node),
                        // NXDOMAIN would deny the names below too (RFC
                        // 8020) and the apex's records: NODATA there.
                        Outcome::NxDomain if n.has_children || !n.records.is_empty() => {
                            return End::NoData(n.zone, at, node);
                        }
                        Outcome::NxDomain => return End::NxDomain(n.zone, at),
                        Outcome::ServFail => return End::ServFail,
                        Outcome::Endpoints => {}
                    }
                    let (p, eps) = (chosen.profile, chosen.endpoints);
                    // The asked profile's TTL (a nested answer carries it),
                    // shorter while it is not settled (`ttl_degraded`).
                    let ttl = if top.ttl_degraded.is_some() {
                        Some(top.answer_ttl(table, crate::clock::unix_secs_now()).0)
                    } else {
                        (!std::ptr::eq(p, top)).then_some(top.ttl)
                    };
                    // For drains: when each endpoint's answer leaves caches.
                    let now = if self.count {
                        crate::clock::unix_secs_now()
                    } else {
                        0
                    };
                    let mut follow = None;
                    let mut wrote = false;
                    // Each type's records together, so every RRset is
                    // whole (and signed whole): the first chosen
                    // endpoint's type, then (ANY, both families) the other.
                    let mut first_type = None;
                    for pass in 0..2 {
                        if pass == 1 && qtype != rtype::ANY {
                            break;
                        }
                        for &i in self.picks.as_slice() {
                            let ep = &eps[i as usize];
                            let fits = match ep.target {
                                Target::V4(_) => matches!(qtype, rtype::A | rtype::ANY),
                                Target::V6(_) => matches!(qtype, rtype::AAAA | rtype::ANY),
                                Target::Host(_) => true,
                                Target::Nested(_) => false,
                            };
                            let t = ep.rr.rtype();
                            if !fits || (pass == 0) != (*first_type.get_or_insert(t) == t) {
                                continue;
                            }
                            if self.count {
                                ep.runtime.answered(now, ttl.unwrap_or_else(|| ep.rr.ttl()));
                            }
                            let target = write_rr(out, c, at, &ep.rr);
                            if let Some(ttl) = ttl {
                                patch_ttl(out, &ep.rr, ttl);
                            }
                            wrote = true;
                            if matches!(ep.target, Target::Host(_))
                                && qtype != rtype::CNAME
                                && qtype != rtype::ANY
                                && !self.stops_at_cname(qtype)
                            {
                                follow = Some((ep.rr.link, target));
                            }
                        }
                    }
                    match follow {
                        Some(f) => f,
                        None if wrote => return End::Answered,
                        None => return End::NoData(n.zone, at, node),
                    }
                }
            };
            let Some(target) = target else {
                return End::Answered;
            };
            match link {
                Link::Node(next) => {
                    node = next;
                    at = target;
                }
                Link::Missing(zone) => return End::NxDomain(zone, target),
                Link::None => return End::Answered,
            }
        }
        End::Answered
    }

    /// A query for RRSIG in a signed zone is not followed through a CNAME:
    /// the CNAME's own RRSIG is there, beside it (RFC 4035 §2.5). (NSEC
    /// never gets here: it is answered from the name's own NSEC.)
    #[inline]
    fn stops_at_cname(&self, qtype: u16) -> bool {
        self.dnssec && qtype == rtype::RRSIG
    }

    fn add_glue(&mut self, at: NameAt<'_>, node: NodeId) {
        if self.glue_len < MAX_GLUE && !self.glue[..self.glue_len].iter().any(|g| g.2 == node) {
            self.glue[self.glue_len] = (at.offset, at.wire.len(), node);
            self.glue_len += 1;
        }
    }

    /// Additional section: addresses of in-zone NS, MX and SRV targets;
    /// names below a delegation only in a referral (as its glue).
    fn write_glue(&mut self, table: &Snapshot, out: &mut Vec<u8>, c: &mut Counts, referral: bool) {
        for g in 0..self.glue_len {
            let (offset, _, node) = self.glue[g];
            let n = &table.nodes[node as usize];
            if n.cut.is_some() != referral {
                continue;
            }
            let at = NameAt {
                offset,
                wire: n.name.wire(),
            };
            for set in n
                .records
                .iter()
                .filter(|s| s.rtype == rtype::A || s.rtype == rtype::AAAA)
            {
                for rr in &set.rrs {
                    write_owner(out, at);
                    out.extend_from_slice(rr.bytes());
                    c.ar += 1;
                }
            }
        }
        self.glue_len = 0;
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

/// The type bitmap of a name that does not exist (RFC 9824 §2): NXNAME
/// (with RRSIG and NSEC, which `write_nsec` adds).
fn nxname() -> TypeBitmap {
    let mut types = TypeBitmap::default();
    types.set(rtype::NXNAME);
    types
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

/// Writes `rr` owned by the name at `owner` into the answer section; returns
/// where its RDATA name (if any) now sits.
#[inline]
fn write_rr<'t>(
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
fn patch_ttl(out: &mut [u8], rr: &WireRr, ttl: u32) {
    let end = out.len();
    let start = end - rr.bytes().len();
    out[start + 4..start + 8].copy_from_slice(&ttl.to_be_bytes());
}

/// A response's cookie: the verdict on the query's, the client cookie and
/// the server cookie to send.
type ResponseCookie = (cookie::Verdict, [u8; 8], [u8; 16]);

/// Appends our OPT record: payload 1232, version 0, DO copied (RFC 3225
/// §3), the client's ECS option echoed with the scope the answer justifies
/// (never longer than its source prefix) when ECS is honoured, and the
/// client cookie with our server cookie when the query carried a cookie,
/// and this server's identifier when the query asked for it (NSID) and one
/// is configured.
fn push_opt(
    out: &mut Vec<u8>,
    code: u16,
    client: Edns,
    table: &Snapshot,
    scope: u8,
    cookie: Option<&ResponseCookie>,
) {
    let ecs_enabled = table.ecs;
    let ext = (code >> 4) as u8;
    // DO copied; CO too when we sign (RFC 9824 §4: compact answers).
    let do_bit = match (client.dnssec_ok, client.compact_ok && table.signed()) {
        (true, true) => 0xC0,
        (true, false) => 0x80,
        _ => 0,
    };
    out.extend_from_slice(&[0, 0, 41]);
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[ext, 0, do_bit, 0]);
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some(ecs) = client.ecs.filter(|_| ecs_enabled) {
        let n = ecs.address_len();
        out.extend_from_slice(&wire::OPTION_ECS.to_be_bytes());
        out.extend_from_slice(&(4 + n as u16).to_be_bytes());
        out.extend_from_slice(&ecs.family.to_be_bytes());
        out.push(ecs.source_prefix);
        // Longer than the source prefix when the deciding network is
        // (RFC 7871 §7.2.1): the resolver then knows to send more bits.
        out.push(scope);
        out.extend_from_slice(&ecs.address[..n]);
    }
    if let Some((_, client_cookie, server_cookie)) = cookie {
        out.extend_from_slice(&wire::OPTION_COOKIE.to_be_bytes());
        out.extend_from_slice(&24u16.to_be_bytes());
        out.extend_from_slice(client_cookie);
        out.extend_from_slice(server_cookie);
    }
    if client.nsid
        && let Some(nsid) = table.nsid.as_deref()
    {
        out.extend_from_slice(&wire::OPTION_NSID.to_be_bytes());
        out.extend_from_slice(&(nsid.len() as u16).to_be_bytes());
        out.extend_from_slice(nsid);
    }
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// Flags of a reply: QR, opcode, RD and CD copied, AA as decided, RA never.
fn reply_flags(query_flags: u16, code: u16, authoritative: bool) -> u16 {
    let mut f = flags::QR | (query_flags & (flags::OPCODE | flags::RD | flags::CD)) | (code & 0xF);
    if authoritative {
        f |= flags::AA;
    }
    f
}

fn header_bytes(id: u16, f: u16, qd: u16, an: u16, ns: u16, ar: u16) -> [u8; 12] {
    let mut h = [0u8; 12];
    for (i, v) in [id, f, qd, an, ns, ar].into_iter().enumerate() {
        h[i * 2..i * 2 + 2].copy_from_slice(&v.to_be_bytes());
    }
    h
}

fn header(out: &mut Vec<u8>, id: u16, f: u16, qd: u16, an: u16, ns: u16, ar: u16) {
    out.extend_from_slice(&header_bytes(id, f, qd, an, ns, ar));
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
