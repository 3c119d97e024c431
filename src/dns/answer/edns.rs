//! EDNS in a response: the client routing sees (ECS, when honoured), the
//! DNS cookie answered, and our OPT record with the options it echoes.

use std::net::IpAddr;

use crate::dns::cookie;
use crate::dns::wire::{self, Edns, Query};
use crate::geo::{self, GeoDb};
use crate::netblock::Network;
use crate::routing::Client;
use crate::snapshot::Snapshot;

/// Our advertised EDNS UDP payload size (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;

/// A response's cookie: the verdict on the query's, the client cookie and
/// the server cookie to send.
pub(super) type ResponseCookie = (cookie::Verdict, [u8; 8], [u8; 16]);

/// The cookie of the response to `q`, when it carried one and cookies are
/// on (the server cookie is made from the transport address `peer`, never
/// ECS).
#[inline(always)]
pub(super) fn response_cookie(
    cookies: &mut cookie::Cache,
    table: &Snapshot,
    q: &Query<'_>,
    peer: IpAddr,
) -> Option<ResponseCookie> {
    match (q.edns.and_then(|e| e.cookie), &table.cookies) {
        (Some(c), Some(secrets)) => {
            let (verdict, server) = cookies.respond(secrets, &c, peer, cookie::now());
            Some((verdict, c.client, server))
        }
        _ => None,
    }
}

/// The client routing decides for: the ECS address when present and
/// honoured (source prefix 0: the client asked not to be used), else the
/// resolver's address.
#[inline(always)]
pub(super) fn client<'a>(
    table: &Snapshot,
    q: &Query<'_>,
    peer: IpAddr,
    geo: Option<&'a GeoDb>,
    geo_cache: &'a mut geo::Cache,
) -> Client<'a> {
    let ecs = q.edns.and_then(|e| e.ecs).filter(|_| table.ecs);
    match ecs {
        Some(s) if s.source_prefix == 0 => Client::from_ecs(None, 0, geo, geo_cache),
        Some(s) => Client::from_ecs(Some(s.ip()), s.source_prefix, geo, geo_cache),
        None => Client::from_resolver(peer, geo, geo_cache),
    }
}

/// The client's network for the Traffic View: the ECS network when ECS is
/// honoured and its source prefix names one (/24, /56 or longer), else
/// the resolver's.
#[inline]
pub(super) fn network(table: &Snapshot, q: &Query<'_>, peer: IpAddr) -> Network {
    q.edns
        .and_then(|e| e.ecs)
        .filter(|_| table.ecs)
        .and_then(|s| Network::of_prefix(s.ip(), s.source_prefix))
        .unwrap_or_else(|| Network::of(peer))
}

/// Appends our OPT record: payload 1232, version 0, DO copied (RFC 3225
/// §3), the client's ECS option echoed with the scope the answer justifies
/// (never longer than its source prefix) when ECS is honoured, and the
/// client cookie with our server cookie when the query carried a cookie,
/// and this server's identifier when the query asked for it (NSID) and one
/// is configured.
pub(super) fn push_opt(
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
