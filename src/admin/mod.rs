//! The admin HTTP API (loopback by default): status page, status JSON,
//! explain, runtime overrides, reload, health and Prometheus metrics.
//!
//! | method and path | returns |
//! |---|---|
//! | `GET /` | the status page (self-contained HTML, its first view rendered on the server) |
//! | `GET /healthz` | `200 ok` when DNS listeners and prober run |
//! | `GET /api/v1/status` | profiles, endpoints, statuses, last probes |
//! | `GET /api/v1/explain?name=&type=&client=&ecs=` | the answer and why |
//! | `GET /api/v1/traffic?profile=&window=hour\|day&format=json\|csv` | the profile's Traffic View; 409 when `[traffic]` is off |
//! | `POST /api/v1/profiles/{p}/endpoints/{e}/disable` (`/drain`, `/enable`, `/resume`), with `?for=30m&reason=...` | the endpoint's new status and override; 409 when it is the profile's last answerable endpoint, unless `?force=1` |
//! | `GET /api/v1/latency?profile=&network=&limit=` | the latency table: estimates per network and endpoint (at most `limit`, default 1000), the clients seen behind a resolver network |
//! | `POST /api/v1/latency/samples` | records `{"samples": [{"network", "endpoint", "rtt_ms", "samples"}]}`; 400 naming the first bad sample |
//! | `POST /api/v1/reload` | 200 summary, or 422 with every error |
//! | `POST /api/v1/reload?dry_run=1` | 200 with the answer diff, nothing applied; or 422 |
//! | `GET /metrics` | Prometheus text format |
//!
//! With `admin.token` (or named `[admin.tokens]`) set, every request other
//! than GET and HEAD needs `Authorization: Bearer <token>`. Nothing here ever shows a health key or
//! the token.
//!
//! Here: the state every handler reads, the router, the server loop and
//! the `/metrics` handler; `auth` checks each request before its handler
//! runs; the handlers are in `views` (page, health, status, explain),
//! `actions` (runtime overrides), `control` (reload, cluster) and `scrape`
//! (the shared encoding `/metrics` sends).

mod actions;
mod auth;
pub mod client;
mod control;
mod latency;
mod metrics;
mod page;
mod push;
mod scrape;
mod stability;
mod status;
mod traffic;
mod udp_path;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::net::slots::{Admission, Slots, Touching};
use crate::reload::Reloader;
use crate::state::Shared;
use actions::set_endpoint;
pub use auth::{Caller, UNNAMED};
use auth::{MAX_BODY, auth};
pub(crate) use auth::{cross_origin, loopback_host};
use control::{forget_node, reload};
pub use scrape::ScrapeCache;
use scrape::{ConnHandle, PermitBody, SCRAPE_REUSE};
pub(crate) use views::parse_ecs;
use views::{explain, healthz, page, status};

/// What every handler reads.
pub struct AdminState {
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    probing: bool,
    /// Bound to loopback: only IP-literal or `localhost` Host headers are
    /// served (a web page cannot reach the API by DNS rebinding).
    loopback: bool,
    registry: prometheus_client::registry::Registry,
    scrapes: ScrapeCache,
    /// The cluster membership, when one runs (`cluster forget`).
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl AdminState {
    /// State for the API over the running server. The token is read from
    /// [`Shared::admin_token`] on each request, so reloads apply it.
    pub fn new(
        shared: Arc<Shared>,
        reloader: Arc<Reloader>,
        probing: bool,
        loopback: bool,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Arc<AdminState> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(metrics::Collector::new(shared.clone())));
        Arc::new(AdminState {
            shared,
            reloader,
            probing,
            loopback,
            registry,
            scrapes: ScrapeCache::default(),
            cluster,
        })
    }
}

/// The router, for [`serve`] and tests.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/api/v1/status", get(status))
        .route("/api/v1/explain", get(explain))
        .route("/api/v1/traffic", get(traffic::traffic))
        .route(
            "/api/v1/profiles/{profile}/endpoints/{endpoint}/{action}",
            post(set_endpoint),
        )
        .route(
            "/api/v1/health/{profile}/{endpoint}",
            axum::routing::put(push::put_health),
        )
        .route(
            "/api/v1/alertmanager",
            post(push::alertmanager).layer(DefaultBodyLimit::max(auth::MAX_ALERTS_BODY)),
        )
        .route("/api/v1/latency", get(latency::get_latency))
        .route(
            "/api/v1/latency/samples",
            post(latency::post_samples).layer(DefaultBodyLimit::max(latency::MAX_SAMPLES_BODY)),
        )
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/cluster/forget/{node}", post(forget_node))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(MAX_BODY as usize))
        .with_state(state)
}

/// Limits that keep slow or numerous admin clients from costing the DNS
/// server anything.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once, so a flood of admin connections can never
    /// take the file descriptors that DNS over TCP and the prober need. At
    /// the cap the longest-idle connection is closed to admit the new one,
    /// so a health check still gets through clients that hold every slot.
    pub connections: usize,
    /// Time a client has to send a request's headers, counted from the
    /// connection's start or the end of its previous response: a slow or
    /// idle client is disconnected (slowloris).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}
/// Time in-flight requests get to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves the API on `listener` until `shutdown`, each connection in a slot
/// of `slots` (see [`Limits::connections`]), each client given
/// `header_timeout` to send a request's headers.
///
/// hyper's own connection builder rather than `axum::serve`, which has no
/// header timeout and no connection limit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    slots: Arc<Slots>,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let router = router(state);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Admission::Admitted(slot) = slots.admit(peer.ip()) else {
            continue;
        };
        let io = TokioIo::new(Touching::new(stream, slot.conn.clone()));
        // Handlers may close their own connection (a scrape that holds a
        // permit too long: see `ScrapeCache`).
        let handle = ConnHandle(slot.conn.clone());
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(handle.clone());
                req
            },
        ));
        let conn = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            tokio::select! {
                r = conn => if let Err(e) = r {
                    debug!(%peer, error = %e, "admin connection ended");
                },
                _ = slot.conn.evicted() => debug!(%peer, "admin connection closed to make room (longest idle)"),
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("admin connections still open at shutdown");
    }
}

/// A JSON error response: `{"error": msg}`.
fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(json!({ "error": msg.into() }))).into_response()
}

/// `/metrics`: the shared encoding (see [`ScrapeCache`]), sent while the
/// scrape holds its permit.
async fn metrics(
    State(state): State<Arc<AdminState>>,
    conn: Option<axum::Extension<ConnHandle>>,
) -> Response {
    let cache = &state.scrapes;
    let Some(permit) = cache.permit().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many scrapes at once");
    };
    let sending = conn.map(|axum::Extension(handle)| cache.track(handle));
    let body = match encoding(&state).await {
        Ok(body) => body,
        Err(msg) => return error(StatusCode::INTERNAL_SERVER_ERROR, msg),
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        axum::body::Body::new(PermitBody::new(body, permit, sending)),
    )
        .into_response()
}

/// The last encoding when it is recent enough to share, else a new one
/// (made on a blocking thread), kept for the scrapes that follow.
async fn encoding(state: &Arc<AdminState>) -> Result<bytes::Bytes, String> {
    let mut last = state.scrapes.last.lock().await;
    match &*last {
        Some((at, body)) if at.elapsed() < SCRAPE_REUSE => Ok(body.clone()),
        _ => {
            // About 3.3 KiB an endpoint (measured): sized once, not
            // doubled into twice the memory.
            let endpoints = state.shared.serving.table.load().endpoints.len();
            let hint = last
                .as_ref()
                .map_or(64 * 1024 + endpoints * 3584, |(_, b)| b.len() + b.len() / 8);
            *last = None; // the old encoding goes before the new one is made
            let st = state.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                let mut text = String::with_capacity(hint);
                prometheus_client::encoding::text::encode(&mut text, &st.registry)
                    .map(|()| bytes::Bytes::from(text))
            })
            .await;
            match encoded {
                Ok(Ok(body)) => {
                    *last = Some((std::time::Instant::now(), body.clone()));
                    Ok(body)
                }
                Ok(Err(e)) => Err(format!("cannot encode metrics: {e}")),
                Err(e) => Err(format!("cannot encode metrics: {e}")),
            }
        }
    }
}
