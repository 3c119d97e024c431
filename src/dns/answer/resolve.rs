//! Resolving the name asked: from the lookup to how the answer ends, CNAMEs
//! followed inside our zones, static records or the endpoints routing
//! chooses written into the answer section, and the names whose addresses
//! go into the additional section (glue).

use super::question::Question;
use super::write::{Counts, patch_ttl, write_rr};
use crate::dns::message::{NameAt, write_owner};
use crate::proto::rr::{Link, TypeBitmap, rtype};
use crate::routing::{self, Client, Outcome, Picks};
use crate::snapshot::{
    Endpoint, EndpointId, Family, Lookup, Node, NodeId, ProfileId, Snapshot, Tally, Target, ZoneId,
};

/// Most names followed through CNAMEs in one answer.
const MAX_CHAIN: usize = 8;
/// Most names whose addresses are added as additional records.
const MAX_GLUE: usize = 16;

/// How a name's resolution ended.
#[derive(Clone, Copy)]
pub(super) enum End<'t> {
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

/// What resolving one name needs besides the table.
pub(super) struct Scratch {
    /// Count answers per endpoint (off for explain's synthetic queries).
    pub(super) count: bool,
    /// Where answers are counted until the receive loop settles them
    /// (`None`: straight into each endpoint's runtime).
    pub(super) tally: Option<Tally>,
    rng: fastrand::Rng,
    picks: Picks,
    glue: [(usize, usize, NodeId); MAX_GLUE],
    pub(super) glue_len: usize,
    /// The response denies the name (for rate limiting).
    pub(super) nxdomain: bool,
    /// The wildcard that answered, if one did (for rate limiting).
    pub(super) wildcard: Option<NodeId>,
    /// The first profile the answer routed and the endpoint it wrote
    /// first (for the Traffic View).
    pub(super) routed: Option<(ProfileId, Option<EndpointId>)>,
    /// The query sees the zone signed (DO set, the zone has a key): RRSIG
    /// and NSEC exist beside a CNAME, so queries for them stop there.
    dnssec: bool,
}

/// The name one link of a chain answers, and the type asked.
#[derive(Clone, Copy)]
struct Here<'t> {
    table: &'t Snapshot,
    node: NodeId,
    /// The node itself.
    n: &'t Node,
    /// Where its name is written (the question, or a CNAME's target).
    at: NameAt<'t>,
    qtype: u16,
}

/// A CNAME (static or chosen endpoint) to follow: its link and where its
/// target was written.
type Follow<'t> = (Link, Option<NameAt<'t>>);

/// What one link of a chain gave: a CNAME to follow, or the end.
enum Step<'t> {
    Follow(Follow<'t>),
    End(End<'t>),
}

/// The type bitmap of a name that does not exist (RFC 9824 §2): NXNAME
/// (with RRSIG and NSEC, which `write_nsec` adds).
pub(super) fn nxname() -> TypeBitmap {
    let mut types = TypeBitmap::default();
    types.set(rtype::NXNAME);
    types
}

impl Scratch {
    /// Scratch drawing randomness from `rng`, counting answers.
    pub(super) fn new(rng: fastrand::Rng) -> Scratch {
        Scratch {
            count: true,
            tally: None,
            rng,
            picks: Picks::default(),
            glue: [(0, 0, 0); MAX_GLUE],
            glue_len: 0,
            nxdomain: false,
            wildcard: None,
            routed: None,
            dnssec: false,
        }
    }

    /// Forgets what the last query found.
    #[inline(always)]
    pub(super) fn begin(&mut self) {
        self.nxdomain = false;
        self.wildcard = None;
        self.routed = None;
        self.dnssec = false;
    }

    /// How the answer to a name `found` in our zones ends: resolved into
    /// the answer section, or one of the answers resolving does not write
    /// (a referral, the parent's DS, a name's own NSEC, a denial).
    #[inline(always)]
    pub(super) fn decide<'t, T: routing::Trace>(
        &mut self,
        ask: Question<'t>,
        found: Lookup,
        client: &mut Client<'_>,
        out: &mut Vec<u8>,
        c: &mut Counts,
        trace: &mut T,
    ) -> End<'t> {
        let table = ask.table;
        self.glue_len = 0;
        if let Lookup::Wildcard(w) = found {
            self.wildcard = Some(w);
        }
        match found {
            // A name that does not exist has, to a validator,
            // only the NSEC of its compact denial (RFC 9824):
            // that NSEC is what a query for NSEC gets.
            Lookup::NxDomain(zone) if ask.qtype == rtype::NSEC && ask.signed(zone) => {
                self.nxdomain = true;
                End::OwnNsec(zone, nxname())
            }
            Lookup::NxDomain(zone) => End::NxDomain(zone, ask.name),
            Lookup::Delegated(cut) => End::Referral(cut),
            // DS at the apex of a zone inside another of ours:
            // the parent's to answer (RFC 4035 §3.1.4.1).
            Lookup::Found(node)
                if ask.qtype == rtype::DS
                    && table.zones[table.nodes[node as usize].zone as usize].apex == node
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
                if ask.qtype == rtype::NSEC
                    && ask.signed(table.nodes[node as usize].zone)
                    && table.nodes[node as usize].cut.is_none() =>
            {
                self.own_nsec(table, node)
            }
            Lookup::Found(node) | Lookup::Wildcard(node) => {
                self.dnssec = ask.signed(table.nodes[node as usize].zone);
                self.resolve(ask, client, node, out, c, trace)
            }
            Lookup::Outside => End::ServFail,
        }
    }

    /// The answer to a query for NSEC at `node` of a signed zone: its own
    /// NSEC, with the types it holds.
    #[inline(always)]
    fn own_nsec<'t>(&mut self, table: &Snapshot, node: NodeId) -> End<'t> {
        let n = &table.nodes[node as usize];
        // A disabled profile's name answers NXDOMAIN
        // when nothing else is there: the same NSEC.
        let gone = n.records.is_empty()
            && !n.has_children
            && n.profile
                .is_some_and(|p| !table.profiles[p as usize].enabled);
        if gone {
            self.nxdomain = true;
            End::OwnNsec(n.zone, nxname())
        } else {
            End::OwnNsec(n.zone, n.types)
        }
    }

    /// Answers `node` for the type asked, following CNAMEs inside our zones.
    fn resolve<'t, T: routing::Trace>(
        &mut self,
        ask: Question<'t>,
        client: &mut Client<'_>,
        mut node: NodeId,
        out: &mut Vec<u8>,
        c: &mut Counts,
        trace: &mut T,
    ) -> End<'t> {
        let (table, qtype) = (ask.table, ask.qtype);
        let mut at = ask.name;
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
            let here = Here {
                table,
                node,
                n,
                at,
                qtype,
            };
            // A CNAME (static or chosen endpoint) to follow: its link and where its target was written.
            let step = match n.profile_for(qtype) {
                None => self.records(here, out, c),
                Some(pid) => self.chosen(here, pid, client, out, c, trace),
            };
            let (link, target) = match step {
                Step::Follow(follow) => follow,
                Step::End(end) => return end,
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

    /// The static records of a name no profile answers for the type: its
    /// CNAME (followed unless the query stops there), else the RRset asked,
    /// its in-zone NS, MX and SRV targets noted for glue; else NODATA.
    #[inline(always)]
    fn records<'t>(&mut self, here: Here<'t>, out: &mut Vec<u8>, c: &mut Counts) -> Step<'t> {
        let Here {
            node, n, at, qtype, ..
        } = here;
        let sets = &n.records;
        if let Some(cname) = sets.iter().find(|s| s.rtype == rtype::CNAME) {
            let rr = &cname.rrs[0];
            let target = write_rr(out, c, at, rr);
            if qtype == rtype::CNAME || qtype == rtype::ANY || self.stops_at_cname(qtype) {
                return Step::End(End::Answered);
            }
            Step::Follow((rr.link, target))
        } else {
            // RFC 8482: ANY gets one RRset, not everything.
            let set = if qtype == rtype::ANY {
                sets.first()
            } else {
                sets.iter().find(|s| s.rtype == qtype)
            };
            let Some(set) = set else {
                return Step::End(End::NoData(n.zone, at, node));
            };
            for rr in &set.rrs {
                let target = write_rr(out, c, at, rr);
                if let (Some(t), Link::Node(id)) = (target, rr.link)
                    && matches!(rr.rtype(), rtype::NS | rtype::MX | rtype::SRV)
                {
                    self.add_glue(t, id);
                }
            }
            Step::End(End::Answered)
        }
    }

    /// The endpoints routing chooses in the name's profile `pid`, written
    /// as its records: a host endpoint's CNAME to follow, or the end of
    /// the answer (NODATA, NXDOMAIN, SERVFAIL when routing says so).
    #[inline(always)]
    fn chosen<'t, T: routing::Trace>(
        &mut self,
        here: Here<'t>,
        pid: ProfileId,
        client: &mut Client<'_>,
        out: &mut Vec<u8>,
        c: &mut Counts,
        trace: &mut T,
    ) -> Step<'t> {
        let Here {
            table,
            node,
            n,
            at,
            qtype,
        } = here;
        let top = &table.profiles[pid as usize];
        let family = Family::of_qtype(qtype);
        let first = self.routed.is_none();
        if first {
            self.routed = Some((pid, None));
        }
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
            Outcome::NoData => return Step::End(End::NoData(n.zone, at, node)),
            // NXDOMAIN would deny the names below too (RFC
            // 8020) and the apex's records: NODATA there.
            Outcome::NxDomain if n.has_children || !n.records.is_empty() => {
                return Step::End(End::NoData(n.zone, at, node));
            }
            Outcome::NxDomain => return Step::End(End::NxDomain(n.zone, at)),
            Outcome::ServFail => return Step::End(End::ServFail),
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
        let (follow, written) = self.write_endpoints(here, eps, ttl, out, c);
        if first && let Some(i) = written {
            self.routed = Some((pid, Some(p.endpoints.start + i)));
        }
        match (follow, written) {
            (Some(follow), _) => Step::Follow(follow),
            (None, Some(_)) => Step::End(End::Answered),
            (None, None) => Step::End(End::NoData(n.zone, at, node)),
        }
    }

    /// Writes the chosen endpoints among `eps` that fit the type asked,
    /// with the asked profile's `ttl` when it sets one. Returns a host
    /// endpoint's CNAME to follow (its link and where its target was
    /// written), if the query follows it, and the index in `eps` of the
    /// first endpoint written, if any was.
    #[inline(always)]
    fn write_endpoints<'t>(
        &mut self,
        here: Here<'t>,
        eps: &'t [Endpoint],
        ttl: Option<u32>,
        out: &mut Vec<u8>,
        c: &mut Counts,
    ) -> (Option<Follow<'t>>, Option<u32>) {
        let (at, qtype) = (here.at, here.qtype);
        // For drains: when each endpoint's answer leaves caches.
        let now = if self.count {
            crate::clock::unix_secs_now()
        } else {
            0
        };
        let mut follow = None;
        let mut wrote = None;
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
                    let ttl = ttl.unwrap_or_else(|| ep.rr.ttl());
                    match &mut self.tally {
                        Some(tally) => tally.answered(&ep.runtime, now, ttl),
                        None => ep.runtime.answered(now, ttl),
                    }
                }
                let target = write_rr(out, c, at, &ep.rr);
                if let Some(ttl) = ttl {
                    patch_ttl(out, &ep.rr, ttl);
                }
                wrote = wrote.or(Some(i));
                if matches!(ep.target, Target::Host(_))
                    && qtype != rtype::CNAME
                    && qtype != rtype::ANY
                    && !self.stops_at_cname(qtype)
                {
                    follow = Some((ep.rr.link, target));
                }
            }
        }
        (follow, wrote)
    }

    /// A query for RRSIG in a signed zone is not followed through a CNAME:
    /// the CNAME's own RRSIG is there, beside it (RFC 4035 §2.5). (NSEC
    /// never gets here: it is answered from the name's own NSEC.)
    #[inline]
    fn stops_at_cname(&self, qtype: u16) -> bool {
        self.dnssec && qtype == rtype::RRSIG
    }

    pub(super) fn add_glue(&mut self, at: NameAt<'_>, node: NodeId) {
        if self.glue_len < MAX_GLUE && !self.glue[..self.glue_len].iter().any(|g| g.2 == node) {
            self.glue[self.glue_len] = (at.offset, at.wire.len(), node);
            self.glue_len += 1;
        }
    }

    /// Additional section: addresses of in-zone NS, MX and SRV targets;
    /// names below a delegation only in a referral (as its glue).
    pub(super) fn write_glue(
        &mut self,
        table: &Snapshot,
        out: &mut Vec<u8>,
        c: &mut Counts,
        referral: bool,
    ) {
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
}
