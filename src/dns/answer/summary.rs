//! What a response was, for logging, metrics and rate limiting, and the
//! rewrite of a response that rate limiting slipped.

use crate::dns::wire::{self, flags, rcode};
use crate::dns::{cookie, rrl};
use crate::netblock::Network;
use crate::snapshot::{EndpointId, ProfileId};

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
    /// A lookup of a real-user-measurement token name (`<token>.<rum.zone>`,
    /// answered by the rum wildcard): the token and the query's ECS
    /// network, for [`crate::sightings::Sightings::record`].
    pub rum: Option<RumLookup>,
    /// What routing answered, when the name asked (or the first name of
    /// its CNAME chain with a profile) has one: for the Traffic View.
    pub routed: Option<Routed>,
}

/// A token name's lookup, as the answer path saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RumLookup {
    /// The token the first label spells.
    pub token: crate::sightings::Token,
    /// The query's ECS network, when ECS is honoured and it names one.
    pub ecs: Option<crate::netblock::Network>,
}

/// What routing answered a query, as the Traffic View records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The profile whose name was asked.
    pub profile: ProfileId,
    /// The endpoint written first (a nested profile's, when one
    /// answered); `None` when none was (NODATA, NXDOMAIN, SERVFAIL).
    pub endpoint: Option<EndpointId>,
    /// The client's network: the ECS network when the source prefix names
    /// one (and ECS is honoured), else the resolver's.
    pub network: Network,
}

impl Summary {
    pub(super) fn error(rcode: u16, question_end: usize) -> Summary {
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
            rum: None,
            routed: None,
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
    // The OPT record is the response's last.
    let opt = s
        .opt_at
        .map(usize::from)
        .filter(|&at| at >= q_end && at < out.len())
        .map(|at| (at, out.len()));
    let opt_len = wire::cut_to_question(out, q_end, opt);
    let mut f = u16::from_be_bytes([out[2], out[3]]) & !(flags::AA | 0xF);
    if s.cookie.is_some() && opt_len > 0 {
        // BADCOOKIE = 23: 7 in the header, 1 in the OPT's extended rcode.
        f |= rcode::BADCOOKIE & 0xF;
        out[q_end + 5] = (rcode::BADCOOKIE >> 4) as u8;
    } else {
        f |= flags::TC | (s.rcode & 0xF);
    }
    out[2..4].copy_from_slice(&f.to_be_bytes());
}
