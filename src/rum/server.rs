//! The public listener: `GET /rum.js`, `GET /rum/config?key=`, `POST
//! /rum/beacon`, and any request to a token name (`<token>.<rum.zone>`:
//! 204, the lookup was the point). Open to the Internet, so bounded every
//! way: connection slots (per client and in total, the longest idle closed
//! first), a header timeout (slowloris), a body size checked before it is
//! read and a body timeout, a rate per client network, a TLS handshake
//! timeout.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Rum, limit};
use crate::metrics::Beacon;
use crate::net::slots::{Admission, Slots, Touching};
use crate::netblock::Network;

/// Connections served at once.
pub const CONNECTIONS: usize = 512;
/// Connections one client address (/32, /64) may hold: a browser opens
/// six per host; a NAT hides several browsers.
pub const PER_CLIENT: usize = 32;
/// Time a client has to send a request's headers (and to finish a TLS
/// handshake).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to send a beacon's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Time in-flight requests get at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The address the connection came from.
#[derive(Clone, Copy, Debug)]
struct Peer(IpAddr);

/// The router.
fn router(rum: Arc<Rum>) -> Router {
    Router::new()
        .route("/rum.js", get(script))
        .route("/rum/config", get(config))
        .route("/rum/beacon", post(beacon).options(preflight))
        .fallback(elsewhere)
        .with_state(rum)
}

/// Serves `rum` on `listener` until `shutdown`; HTTPS when `tls` is given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    rum: Arc<Rum>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let router = router(rum.clone());
    let slots = Slots::new(CONNECTIONS, PER_CLIENT);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let joins = tokio::spawn(join_task(rum.clone(), shutdown.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "rum accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Admission::Admitted(slot) = slots.admit(peer.ip()) else {
            continue;
        };
        let io = Touching::new(stream, slot.conn.clone());
        let ip = peer.ip().to_canonical();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(ip));
                req
            },
        ));
        let http = http.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    let conn = http.serve_connection(TokioIo::new(io), service);
                    tokio::select! {
                        r = watcher.watch(conn) => r.map_err(|e| e.to_string()),
                        _ = slot.conn.evicted() => Ok(()),
                    }
                }
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => {
                            let conn = http.serve_connection(TokioIo::new(tls), service);
                            tokio::select! {
                                r = watcher.watch(conn) => r.map_err(|e| e.to_string()),
                                _ = slot.conn.evicted() => Ok(()),
                            }
                        }
                        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                        Err(_) => Err("TLS handshake timed out".to_string()),
                    }
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "rum connection ended");
            }
            drop(slot);
        });
    }
    joins.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("rum connections still open at shutdown");
    }
    info!("rum listener stopped");
}

/// Checks the beacons waiting for their token's lookup, every
/// [`super::JOIN_EVERY`].
async fn join_task(rum: Arc<Rum>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(super::JOIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if rum.pending() > 0 {
            rum.join_pending();
        }
    }
}

/// The client's network: the connection's address, or, from a trusted
/// proxy, the last address of `X-Forwarded-For` that is not one of the
/// trusted proxies.
fn client(rum: &Rum, peer: IpAddr, headers: &HeaderMap) -> Network {
    let trusted = |ip: &IpAddr| rum.settings.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Network::of(peer);
    }
    let mut addr = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        addr = ip.to_canonical();
        if !trusted(&addr) {
            break;
        }
    }
    Network::of(addr)
}

/// CORS (the script runs on the operator's pages, another origin) and no
/// caching, on every answer but the script's.
fn headers(mut r: Response, cache: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn error(code: StatusCode, result: &str) -> Response {
    headers(
        (code, axum::Json(json!({ "error": result }))).into_response(),
        "no-store",
    )
}

/// `GET /rum.js`.
async fn script() -> Response {
    headers(
        (
            [(
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            )],
            super::script::SCRIPT,
        )
            .into_response(),
        "public, max-age=3600",
    )
}

#[derive(serde::Deserialize)]
struct ConfigQuery {
    key: Option<String>,
}

/// `GET /rum/config?key=`: a token and what to measure.
async fn config(
    State(rum): State<Arc<Rum>>,
    peer: axum::Extension<Peer>,
    req_headers: HeaderMap,
    Query(q): Query<ConfigQuery>,
) -> Response {
    let net = client(&rum, peer.0.0, &req_headers);
    if !rum.allow(net, limit::Kind::Token) {
        return error(StatusCode::TOO_MANY_REQUESTS, Beacon::RateLimited.as_str());
    }
    let key = q.key.unwrap_or_default();
    let Some((token, endpoints)) = rum.issue(&key, net) else {
        return error(StatusCode::FORBIDDEN, Beacon::UnknownKey.as_str());
    };
    let endpoints: Vec<_> = endpoints
        .into_iter()
        .map(|(id, url)| json!({ "endpoint": id, "url": url }))
        .collect();
    let body = json!({
        "token": token,
        "zone": rum.settings.zone.trim_end_matches('.'),
        "endpoints": endpoints,
    });
    headers(axum::Json(body).into_response(), "no-store")
}

/// `POST /rum/beacon`: 204 when stored; 413 (unread beyond `max_body`),
/// 429, or 400/403 with the result.
async fn beacon(
    State(rum): State<Arc<Rum>>,
    peer: axum::Extension<Peer>,
    req: Request<Body>,
) -> Response {
    let net = client(&rum, peer.0.0, req.headers());
    let max = rum.settings.max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        rum.serving.metrics.rum.beacon(Beacon::TooLarge);
        return close(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Beacon::TooLarge.as_str(),
        ));
    }
    let limited = http_body_util::Limited::new(req.into_body(), max as usize);
    let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            rum.serving.metrics.rum.beacon(Beacon::TooLarge);
            return close(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Beacon::TooLarge.as_str(),
            ));
        }
        Ok(Err(_)) | Err(_) => {
            rum.serving.metrics.rum.beacon(Beacon::Malformed);
            return close(error(
                StatusCode::REQUEST_TIMEOUT,
                Beacon::Malformed.as_str(),
            ));
        }
    };
    let rum2 = rum.clone();
    // HMAC, JSON and the tables: short, but off the I/O threads.
    let result = match tokio::task::spawn_blocking(move || rum2.take(net, &body)).await {
        Ok(r) => r,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let code = match result {
        Beacon::Stored => {
            return headers(StatusCode::NO_CONTENT.into_response(), "no-store");
        }
        Beacon::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Beacon::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Beacon::UnknownKey | Beacon::BadToken | Beacon::Expired | Beacon::Replayed => {
            StatusCode::FORBIDDEN
        }
        Beacon::Refused => StatusCode::SERVICE_UNAVAILABLE,
        Beacon::Malformed | Beacon::BadTiming | Beacon::UnknownEndpoint => StatusCode::BAD_REQUEST,
    };
    error(code, result.as_str())
}

/// Closes the connection after this response (its body was not read).
fn close(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `OPTIONS /rum/beacon`: a `fetch` fallback with a JSON content type.
async fn preflight() -> Response {
    let mut r = headers(StatusCode::NO_CONTENT.into_response(), "max-age=86400");
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    r
}

/// Anything else: a token name's request is answered 204 (the browser
/// had to resolve the name to send it, which was the point); the rest 404.
async fn elsewhere(req_headers: HeaderMap) -> Response {
    let host = req_headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let first = host.split('.').next().unwrap_or("");
    if crate::sightings::token_of_label(first.as_bytes()).is_some() {
        return headers(StatusCode::NO_CONTENT.into_response(), "no-store");
    }
    error(StatusCode::NOT_FOUND, "not found")
}

/// The TLS settings of `tls_cert` and `tls_key`.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = crate::health::tls::load_certs(cert)?;
    let key = crate::health::tls::load_key(key)?;
    let mut c = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("{}: {e}", cert.display()))?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}
