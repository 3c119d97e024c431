//! What every request passes before its handler: the body limit, the
//! Host check on loopback, no cross-origin writes, and the admin token on
//! everything that is not a read (naming the caller).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{AdminState, error};

/// Largest request body accepted (`PUT /api/v1/health/...`; Alertmanager's
/// route takes more, see [`MAX_ALERTS_BODY`]).
pub(super) const MAX_BODY: u64 = 16 * 1024;

/// Largest Alertmanager payload read (a group of alerts; set
/// `max_alerts` in Alertmanager's webhook_config to stay below it).
pub(super) const MAX_ALERTS_BODY: usize = 256 * 1024;

/// Who made a request: the name of the admin token it carried
/// (`[admin.tokens]`), else [`UNNAMED`].
#[derive(Clone, Debug)]
pub struct Caller(pub String);

/// Who made a request without a named token.
pub const UNNAMED: &str = "admin API";

/// Rejects oversized bodies up front, and requires the bearer token on every
/// request that is not a read.
pub(super) async fn auth(
    State(state): State<Arc<AdminState>>,
    req: Request,
    next: Next,
) -> Response {
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Alertmanager sends a group of alerts at once: its route takes more.
    let limit = match req.uri().path() {
        "/api/v1/alertmanager" => MAX_ALERTS_BODY as u64,
        // Operators' measurements come in batches too.
        "/api/v1/latency/samples" => super::latency::MAX_SAMPLES_BODY as u64,
        _ => MAX_BODY,
    };
    if length.is_some_and(|n| n > limit) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {limit} bytes"),
        );
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if state.loopback && !loopback_host(host) {
        return error(
            StatusCode::FORBIDDEN,
            "on loopback the admin API answers only requests for an IP address or localhost",
        );
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    // A browser page elsewhere must not be able to change anything: refuse
    // cross-origin writes whatever the token setting.
    if writes && cross_origin(req.headers(), host) {
        return error(
            StatusCode::FORBIDDEN,
            "cross-origin requests cannot change anything here",
        );
    }
    let token = state.shared.admin_token.load();
    let named = state.shared.admin_tokens.load();
    let mut req = req;
    if (token.is_some() || !named.is_empty()) && writes {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let caller = given.as_deref().and_then(|g| {
            let eq =
                |t: &crate::secret::Secret| constant_time_eq(g.as_bytes(), t.expose().as_bytes());
            // Every token is compared, so the time taken does not say which.
            let mut found = None;
            for (name, t) in named.iter() {
                if eq(t) && found.is_none() {
                    found = Some(name.clone());
                }
            }
            match token.as_deref() {
                Some(t) if eq(t) => found.or_else(|| Some(UNNAMED.to_string())),
                _ => found,
            }
        });
        if let Some(name) = caller.clone() {
            req.extensions_mut().insert(Caller(name));
        }
        if caller.is_none() {
            // Missing and wrong are told apart (never what was expected).
            let msg = match given.as_deref() {
                None => "this request needs the admin token: Authorization: Bearer <admin token>",
                Some(_) => "the admin token given is not this server's admin token",
            };
            let mut r = error(StatusCode::UNAUTHORIZED, msg);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}

/// True when `host` (a Host header) names an IP address or localhost.
pub(crate) fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(
            host,
            |(h, p)| if p.parse::<u16>().is_ok() { h } else { host },
        ),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// True when the request comes from a browser page of another origin.
pub(crate) fn cross_origin(headers: &HeaderMap, host: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => false,
        Some(origin) => {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            !authority.eq_ignore_ascii_case(host)
        }
    }
}

/// Compares without an early exit, so timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn hosts_and_origins() {
        assert!(loopback_host("127.0.0.1:8053"));
        assert!(loopback_host("localhost:8053"));
        assert!(loopback_host("[::1]:8053"));
        assert!(loopback_host("127.0.0.1"));
        assert!(!loopback_host("evil.example:8053"));
        assert!(!loopback_host(""));
        let mut h = HeaderMap::new();
        assert!(!cross_origin(&h, "127.0.0.1:8053"));
        h.insert(header::ORIGIN, "http://127.0.0.1:8053".parse().unwrap());
        assert!(!cross_origin(&h, "127.0.0.1:8053"));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_origin(&h, "127.0.0.1:8053"));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_origin(&h, "127.0.0.1:8053"));
    }
}
