//! The one query handler every receive loop calls (UDP batched, UDP
//! simple, TCP): answer, rate limit (UDP only), count and log.

use std::net::{IpAddr, SocketAddr};

use tracing::debug;

use crate::dns::answer::{self, Answerer, Summary, Transport};
use crate::dns::cookie;
use crate::dns::rrl::{Class, RateLimiter, Verdict};
use crate::geo::GeoDb;
use crate::metrics::WorkerQueries;
use crate::snapshot::Snapshot;
use crate::state::Serving;
use crate::traffic::{NO_ENDPOINT, Pending, Record};

/// What a receive loop answers with, loaded once per wake-up.
pub struct Context<'a> {
    /// The routing table snapshot.
    pub table: &'a Snapshot,
    /// The GeoIP database, if any.
    pub geo: Option<&'a GeoDb>,
    /// Response rate limiting; applied to UDP only (a TCP client has
    /// proved its address, so it cannot be used for reflection).
    pub rrl: Option<&'a RateLimiter>,
    /// The rate limiter's clock ([`RateLimiter::now`]).
    pub now: u32,
    /// Metrics live here.
    pub serving: &'a Serving,
    /// The receive loop's own query counters (`None`: the shared ones in
    /// `serving`).
    pub queries: Option<&'a WorkerQueries>,
}

/// The serving state a receive thread answers from, each behind an
/// `arc_swap` cache: loading a [`Context`] costs one atomic read per value
/// when nothing changed.
pub struct Snapshots<'s> {
    serving: &'s Serving,
    tables: arc_swap::Cache<&'s arc_swap::ArcSwap<Snapshot>, std::sync::Arc<Snapshot>>,
    geos: arc_swap::Cache<&'s arc_swap::ArcSwapOption<GeoDb>, Option<std::sync::Arc<GeoDb>>>,
    limiters: arc_swap::Cache<
        &'s arc_swap::ArcSwapOption<RateLimiter>,
        Option<std::sync::Arc<RateLimiter>>,
    >,
    queries: Option<std::sync::Arc<WorkerQueries>>,
}

impl<'s> Snapshots<'s> {
    /// Caches of `serving`'s table, GeoIP database and rate limiter.
    pub fn new(serving: &'s Serving) -> Snapshots<'s> {
        Snapshots {
            serving,
            tables: arc_swap::Cache::new(&serving.table),
            geos: arc_swap::Cache::new(&serving.geo),
            limiters: arc_swap::Cache::new(&serving.rrl),
            queries: None,
        }
    }

    /// Counts the queries answered with these contexts in `queries`, a
    /// receive loop's own counters ([`crate::metrics::Metrics::worker`]),
    /// instead of the shared ones: for a loop that is their only writer.
    pub fn counting_in(mut self, queries: std::sync::Arc<WorkerQueries>) -> Snapshots<'s> {
        self.queries = Some(queries);
        self
    }

    /// What to answer the next datagrams with.
    pub fn context(&mut self) -> Context<'_> {
        let rrl = self.limiters.load().as_deref();
        Context {
            table: self.tables.load(),
            geo: self.geos.load().as_deref(),
            rrl,
            now: rrl.map_or(0, |r| r.now()),
            serving: self.serving,
            queries: self.queries.as_deref(),
        }
    }
}

/// What rate limiting decided for one response.
enum Limited {
    /// Send it as built.
    Send,
    /// Send nothing.
    Drop,
    /// Send the slipped form (already rewritten).
    Slipped,
}

/// Applies response rate limiting to the response in `out`: clients with a
/// valid cookie are never limited, exempt networks only for answers (error
/// replies are what reflection loops are made of, and a loop with a local
/// service is a loop too).
#[inline]
fn rate_limit(
    rrl: Option<&RateLimiter>,
    peer: IpAddr,
    summary: &Summary,
    now: u32,
    slips: &mut u32,
    out: &mut Vec<u8>,
) -> Limited {
    let Some(rrl) = rrl else {
        return Limited::Send;
    };
    let class = summary.class();
    if summary.cookie == Some(cookie::Verdict::Valid) || class != Class::Error && rrl.exempt(peer) {
        return Limited::Send;
    }
    match rrl.check(peer, class, summary.name_hash, summary.rtype, now, slips) {
        Verdict::Send => Limited::Send,
        Verdict::Drop => Limited::Drop,
        Verdict::Slip => {
            answer::slip(out, summary);
            Limited::Slipped
        }
    }
}

/// Answers the query `pkt` from `peer` into `out` (unframed), rate limits,
/// counts and logs it, and adds what routing answered to the loop's
/// Traffic View run (`traffic`, which the loop flushes after each batch).
/// True when `out` is to be sent.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn respond(
    cx: &Context<'_>,
    answerer: &mut Answerer,
    slips: &mut u32,
    traffic: &mut Pending,
    transport: Transport,
    pkt: &[u8],
    peer: SocketAddr,
    out: &mut Vec<u8>,
) -> bool {
    let Some(summary) = answerer.answer(cx.table, cx.geo, pkt, transport, peer.ip(), out) else {
        return false;
    };
    if let Some(rum) = &summary.rum {
        let now = crate::clock::now_millis_coarse();
        cx.serving
            .sightings
            .record(&rum.token, peer.ip(), rum.ecs, now);
    }
    let rrl = match transport {
        Transport::Udp => cx.rrl,
        Transport::Tcp => None,
    };
    let t = transport.as_str();
    match rate_limit(rrl, peer.ip(), &summary, cx.now, slips, out) {
        Limited::Drop => {
            debug!(%peer, transport = t, rcode = summary.rcode, "answer dropped (rate limit)");
            false
        }
        Limited::Slipped => {
            count(cx, transport, summary.rcode);
            debug!(%peer, transport = t, rcode = summary.rcode, "answer slipped (rate limit)");
            true
        }
        Limited::Send => {
            count(cx, transport, summary.rcode);
            if let Some(r) = summary.routed
                && cx.serving.traffic.on()
            {
                record(cx, traffic, r);
            }
            debug!(%peer, transport = t, rcode = summary.rcode, len = out.len(),
                truncated = summary.truncated, "answer");
            true
        }
    }
}

/// Counts one answered query: in the loop's own counters when it has
/// them, else in the shared ones.
#[inline]
fn count(cx: &Context<'_>, transport: Transport, code: u16) {
    match cx.queries {
        Some(q) => q.query(code),
        None => cx.serving.metrics.query(transport, code),
    }
}

/// Adds one answer routing made to the loop's run of equal answers.
#[inline]
fn record(cx: &Context<'_>, traffic: &mut Pending, r: answer::Routed) {
    let record = Record {
        table: std::ptr::from_ref(cx.table) as usize,
        profile: r.profile,
        endpoint: r.endpoint.unwrap_or(NO_ENDPOINT),
        network: r.network,
        count: 1,
    };
    traffic.add(&cx.serving.traffic, record);
}
