//! The admin HTTP API (loopback by default): status page, status JSON,
//! explain, runtime overrides, reload, health and Prometheus metrics.
//!
//! | method and path | returns |
//! |---|---|
//! | `GET /` | the status page (self-contained HTML, its first view rendered on the server) |
//! | `GET /healthz` | `200 ok` when DNS listeners and prober run |
//! | `GET /api/v1/status` | profiles, endpoints, statuses, last probes |
//! | `GET /api/v1/explain?name=&type=&client=&ecs=` | the answer and why |
//! | `POST /api/v1/profiles/{p}/endpoints/{e}/disable` (`/drain`, `/enable`, `/resume`), with `?for=30m&reason=...` | the endpoint's new status and override; 409 when it is the profile's last answerable endpoint, unless `?force=1` |
//! | `POST /api/v1/reload` | 200 summary, or 422 with every error |
//! | `POST /api/v1/reload?dry_run=1` | 200 with the answer diff, nothing applied; or 422 |
//! | `GET /metrics` | Prometheus text format |
//!
//! With `admin.token` (or named `[admin.tokens]`) set, every request other
//! than GET and HEAD needs `Authorization: Bearer <token>`. Nothing here ever shows a health key or
//! the token.

pub mod client;
mod metrics;
mod page;
mod status;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::fsutil::shown;
use crate::net::slots::{Admission, Slots, Touching};
use crate::reload::{OverrideError, Reloader};
use crate::routing::explain::{self, ClientView};
use crate::snapshot::Family;
use crate::state::Shared;

/// The status page: one self-contained file, no external assets.
const PAGE: &str = include_str!("page.html");

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
        .route(
            "/api/v1/profiles/{profile}/endpoints/{endpoint}/{action}",
            post(set_endpoint),
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

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(json!({ "error": msg.into() }))).into_response()
}

/// Largest request body accepted (no endpoint takes one today).
const MAX_BODY: u64 = 16 * 1024;

/// Who made a request: the name of the admin token it carried
/// (`[admin.tokens]`), else [`UNNAMED`].
#[derive(Clone, Debug)]
pub struct Caller(pub String);

/// Who made a request without a named token.
pub const UNNAMED: &str = "admin API";

/// Rejects oversized bodies up front, and requires the bearer token on every
/// request that is not a read.
async fn auth(State(state): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_BODY) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {MAX_BODY} bytes"),
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

/// The status page, with the status document rendered in it, so it reads
/// without JavaScript; its script refreshes it.
async fn page(State(state): State<Arc<AdminState>>) -> Response {
    let html = page::render(PAGE, &status_doc(&state), std::time::SystemTime::now());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    (headers, Html(html)).into_response()
}

async fn healthz(State(state): State<Arc<AdminState>>) -> Response {
    let dns = state.shared.ready.load(Ordering::Relaxed);
    let prober = !state.probing || state.reloader.prober_running();
    if dns && prober {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn status(State(state): State<Arc<AdminState>>) -> Response {
    axum::Json(status_doc(&state)).into_response()
}

/// What `/api/v1/status` returns and the page shows.
fn status_doc(state: &AdminState) -> status::StatusDoc {
    let table = state.shared.table.load();
    let problems: Vec<_> = state
        .shared
        .problems
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let cluster = state.shared.cluster.load_full();
    let overrides = state.shared.overrides_now();
    let history: Vec<_> = state
        .shared
        .history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    status::build(&table, &problems, cluster.as_deref(), &overrides, &history)
}

#[derive(Deserialize)]
struct ExplainParams {
    name: Option<String>,
    #[serde(rename = "type")]
    qtype: Option<String>,
    client: Option<String>,
    ecs: Option<String>,
}

async fn explain(State(state): State<Arc<AdminState>>, Query(q): Query<ExplainParams>) -> Response {
    let Some(name) = q.name.filter(|n| !n.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`name` is required, e.g. ?name=todoapi.tm.example.test",
        );
    };
    let qtype = q.qtype.unwrap_or_else(|| "A".into());
    let client: IpAddr = match q.client.as_deref() {
        None | Some("") => IpAddr::from([127, 0, 0, 1]),
        Some(c) => match c.parse() {
            Ok(ip) => ip,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`client` {} is not an IP address", shown(c)),
                );
            }
        },
    };
    let ecs = match q.ecs.as_deref() {
        None | Some("") => None,
        Some(e) => match parse_ecs(e) {
            Ok(v) => Some(v),
            Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
        },
    };
    let table = state.shared.table.load();
    let geo = state.shared.geo.load();
    let answer =
        match crate::dns::inspect::answer_for(&table, geo.as_deref(), &name, &qtype, client, ecs) {
            Ok(a) => a,
            Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
        };
    let family = Family::of_type_name(&qtype);
    let why = explain::explain(
        &table,
        geo.as_deref(),
        &name,
        family,
        ClientView {
            resolver: client,
            ecs,
        },
        &answer.decision,
    );
    axum::Json(json!({
        "name": name,
        "type": qtype.to_ascii_uppercase(),
        "client": client.to_string(),
        "ecs": q.ecs,
        "rcode": answer.rcode,
        "answers": answer.answers,
        "authority": answer.authority,
        "ttl": answer.ttl,
        "ecs_scope": answer.ecs_scope,
        "steps": why.steps,
        "chosen": why.chosen,
        "excluded": why.excluded,
    }))
    .into_response()
}

/// `address/prefix` for explain's ECS.
pub(crate) fn parse_ecs(text: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = text.split_once('/').unwrap_or((text, ""));
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("`ecs` {} is not address/prefix", shown(text)))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = if p.is_empty() {
        max
    } else {
        p.parse()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("`ecs` prefix must be 0..={max}"))?
    };
    Ok((crate::geo::truncate(addr, prefix).0, prefix))
}

/// Parameters of an override: `?force=1&for=30m&reason=...`.
#[derive(serde::Deserialize, Default)]
struct SetParams {
    force: Option<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    reason: Option<String>,
}

/// Longest `for` accepted.
const MAX_FOR: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// Why disabling `endpoint` would leave `profile` with nothing answerable,
/// and what it would answer then; `None` when another endpoint still
/// answers (or this one does not now).
fn last_answerable(
    table: &crate::snapshot::Snapshot,
    profile: &str,
    endpoint: &str,
    action: &str,
) -> Option<String> {
    let p = table.profile_by_name(profile)?;
    let eps = table.endpoints_of(p);
    let target = eps.iter().find(|e| &*e.name == endpoint)?;
    if !p.enabled || !table.status(target).is_answerable() {
        return None;
    }
    if eps
        .iter()
        .any(|e| !std::ptr::eq(e, target) && table.status(e).is_answerable())
    {
        return None;
    }
    // What routing would answer with it Disabled, for a client no
    // client-aware rule matches: routing says, the guard only renders it.
    use crate::routing::{Client, Decision, Picks, choose_by};
    use crate::snapshot::Family;
    let without = |e: &crate::snapshot::Endpoint| {
        if std::ptr::eq(e, target) {
            crate::health::Status::Disabled
        } else {
            table.status(e)
        }
    };
    let mut cache = crate::geo::Cache::default();
    let mut decision = Decision::default();
    choose_by(
        table,
        without,
        target.profile,
        Family::Any,
        &mut Client::unknown(&mut cache),
        &mut fastrand::Rng::with_seed(1),
        &mut Picks::default(),
        false,
        &mut decision,
    );
    let stage = decision.steps.first()?.stage;
    let instead = format!(
        "{}, since {}",
        decision.answer_text(table),
        p.stage_text(stage, eps)
    );
    let verb = if action == "drain" {
        "Drain"
    } else {
        "Disable"
    };
    Some(format!(
        "refused: {endpoint} is the last answerable endpoint of {}; without it the profile would answer {instead}. {verb} it anyway with force (CLI: --force; API: ?force=1)",
        p.name
    ))
}

async fn set_endpoint(
    State(state): State<Arc<AdminState>>,
    Path((profile, endpoint, action)): Path<(String, String, String)>,
    Query(params): Query<SetParams>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    use crate::overrides::Kind;
    let kind = match action.as_str() {
        "disable" => Kind::Disable,
        "drain" => Kind::Drain,
        "enable" => Kind::Enable,
        "resume" => Kind::Resume,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "use .../disable, .../drain, .../enable or .../resume",
            );
        }
    };
    let until = match params.for_.as_deref() {
        None => None,
        Some(_) if matches!(kind, Kind::Enable | Kind::Resume) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`for` applies to disable and drain only",
            );
        }
        Some(f) => match humantime::parse_duration(f) {
            Ok(d) if d >= std::time::Duration::from_secs(1) && d <= MAX_FOR => {
                Some(crate::clock::now_millis() + d.as_millis() as u64)
            }
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`for` must be between 1s and 366d, not {f}"),
                );
            }
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`for` is not a duration ({e}): for example 30m, 2h, 1h30m"),
                );
            }
        },
    };
    let force = matches!(params.force.as_deref(), Some("1" | "true" | "yes"));
    if matches!(kind, Kind::Disable | Kind::Drain) && !force {
        let table = state.shared.table.load();
        if let Some(msg) = last_answerable(&table, &profile, &endpoint, &action) {
            return error(StatusCode::CONFLICT, msg);
        }
    }
    let change = crate::reload::Change {
        kind,
        until,
        reason: params
            .reason
            .as_deref()
            .and_then(crate::overrides::clean_reason),
        by: caller.map_or_else(|| UNNAMED.to_string(), |c| c.0.0.clone()),
    };
    match state
        .reloader
        .set_override(&profile, &endpoint, change)
        .await
    {
        Ok(applied) => {
            let table = state.shared.table.load();
            let view = table
                .endpoint_by_key(&crate::snapshot::EndpointKey::new(&profile, &endpoint))
                .map(|ep| {
                    status::override_view(ep, Some(&applied.record), crate::clock::now_millis())
                });
            axum::Json(json!({
                "profile": crate::reload::normalise_profile(&profile),
                "endpoint": endpoint,
                "action": action,
                "disabled_at_runtime": matches!(kind, Kind::Disable | Kind::Drain),
                "status": applied.status.as_str(),
                "saved": applied.saved,
                "override": view,
            }))
            .into_response()
        }
        Err(OverrideError::NotFound(msg)) => error(StatusCode::NOT_FOUND, msg),
        Err(e @ OverrideError::NotSaved { .. }) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// `?dry_run=1` (and `&staged=1`) of `POST /api/v1/reload`.
#[derive(Deserialize)]
struct ReloadParams {
    dry_run: Option<String>,
    staged: Option<String>,
}

async fn reload(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<ReloadParams>,
) -> Response {
    let yes = |v: &Option<String>| matches!(v.as_deref(), Some("1" | "true" | "yes"));
    let staged = yes(&params.staged);
    if yes(&params.dry_run) {
        return match state.reloader.dry_run(staged).await {
            Ok((dry, staged)) => axum::Json(json!({
                "result": "dry-run",
                "config": state.reloader.path().display().to_string(),
                "staged": staged.map(|d| d.display().to_string()),
                "dry_run": dry,
            }))
            .into_response(),
            Err(errors) => rejected(&errors),
        };
    }
    if staged {
        return error(
            StatusCode::BAD_REQUEST,
            "staged=1 goes with dry_run=1: a reload reads only the live profiles; `switchyard apply` moves the staged ones there",
        );
    }
    match state.reloader.reload("api").await {
        Ok(summary) => axum::Json(json!({ "result": "ok", "summary": summary })).into_response(),
        Err(errors) => rejected(&errors),
    }
}

/// `POST /api/v1/cluster/forget/{node}`: stop listing a dead node (one
/// removed on purpose), here and, through gossip, on every node.
async fn forget_node(State(state): State<Arc<AdminState>>, Path(node): Path<String>) -> Response {
    let Some(c) = &state.cluster else {
        return error(
            StatusCode::NOT_FOUND,
            "this server runs alone (no [cluster])",
        );
    };
    match c.forget(&node).await {
        Ok(()) => axum::Json(json!({ "forgotten": node })).into_response(),
        Err(e) if e.starts_with("no node named") => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

/// 422 with every error of a rejected configuration.
fn rejected(errors: &crate::config::ConfigErrors) -> Response {
    let list: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({ "result": "rejected", "errors": list })),
    )
        .into_response()
}

/// The connection a request came on, for handlers that may close it.
#[derive(Clone)]
struct ConnHandle(Arc<crate::net::slots::Conn>);

/// Scrapes served at once; more wait their turn (bounded by the admin
/// connection cap).
const SCRAPES_IN_FLIGHT: usize = 4;
/// Scrapes within this long of an encoding share it.
const SCRAPE_REUSE: Duration = Duration::from_secs(1);
/// A scrape waiting longer than this for a permit closes the connection of
/// the oldest scrape still sending (a client that stopped reading).
const SCRAPE_PREEMPT: Duration = Duration::from_secs(5);

/// `/metrics` costs memory in proportion to the endpoints (a few KiB each),
/// so scrapes share one encoding: one scraper encodes (on a blocking
/// thread) while concurrent ones wait and then send the same bytes, and at
/// most `SCRAPES_IN_FLIGHT` responses are in flight, each holding its
/// permit until its body is sent. Memory stays at a few encodings however
/// many scrapers there are; and clients that ask and never read cannot
/// keep the permits: a scrape that waits `SCRAPE_PREEMPT` closes the
/// connection of the oldest one still sending.
pub struct ScrapeCache {
    permits: Arc<tokio::sync::Semaphore>,
    last: tokio::sync::Mutex<Option<(std::time::Instant, bytes::Bytes)>>,
    /// Responses being sent: (id, since, connection), oldest first.
    sending: Arc<std::sync::Mutex<Vec<(u64, std::time::Instant, ConnHandle)>>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Default for ScrapeCache {
    fn default() -> Self {
        ScrapeCache {
            permits: Arc::new(tokio::sync::Semaphore::new(SCRAPES_IN_FLIGHT)),
            last: tokio::sync::Mutex::new(None),
            sending: Arc::default(),
            next_id: Default::default(),
        }
    }
}

impl ScrapeCache {
    /// A permit to send a scrape, closing the oldest sender's connection
    /// when the wait grows long; `None` after 30 s.
    async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let wait = SCRAPE_PREEMPT.min(give_up - tokio::time::Instant::now());
            match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
                Ok(p) => return p.ok(),
                Err(_) if tokio::time::Instant::now() >= give_up => return None,
                Err(_) => {
                    let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some((_, since, conn)) = sending.first()
                        && since.elapsed() >= SCRAPE_PREEMPT
                    {
                        warn!(
                            "a metrics scrape has not been read for a while; closing its connection for another"
                        );
                        conn.0.close();
                    }
                }
            }
        }
    }
}

/// Removes a response from [`ScrapeCache::sending`] when its body goes.
struct Sending {
    id: u64,
    list: Arc<std::sync::Mutex<Vec<(u64, std::time::Instant, ConnHandle)>>>,
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        l.retain(|(id, _, _)| *id != self.id);
    }
}

async fn metrics(
    State(state): State<Arc<AdminState>>,
    conn: Option<axum::Extension<ConnHandle>>,
) -> Response {
    let cache = &state.scrapes;
    let Some(permit) = cache.permit().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many scrapes at once");
    };
    let sending = conn.map(|axum::Extension(handle)| {
        let id = cache
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        cache
            .sending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, std::time::Instant::now(), handle));
        Sending {
            id,
            list: cache.sending.clone(),
        }
    });
    let body = {
        let mut last = cache.last.lock().await;
        match &*last {
            Some((at, body)) if at.elapsed() < SCRAPE_REUSE => body.clone(),
            _ => {
                // About 3.3 KiB an endpoint (measured): sized once, not
                // doubled into twice the memory.
                let endpoints = state.shared.table.load().endpoints.len();
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
                        body
                    }
                    Ok(Err(e)) => {
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot encode metrics: {e}"),
                        );
                    }
                    Err(e) => {
                        return error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot encode metrics: {e}"),
                        );
                    }
                }
            }
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        axum::body::Body::new(PermitBody {
            data: body,
            _permit: permit,
            _sending: sending,
        }),
    )
        .into_response()
}

/// A response body that holds a scrape permit until it is sent (or the
/// client goes away). It hands the shared encoding to hyper in slices
/// (no copy), one at a time as the connection drains, so the permit lasts
/// as long as the sending does.
struct PermitBody {
    data: bytes::Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _sending: Option<Sending>,
}

/// Bytes handed to hyper at a time.
const SCRAPE_SLICE: usize = 64 * 1024;

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.data.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.data.len().min(SCRAPE_SLICE);
        let slice = self.data.split_to(n);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(slice))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }
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

    #[test]
    fn ecs_parameter() {
        assert_eq!(
            parse_ecs("81.2.69.7/24").unwrap().0.to_string(),
            "81.2.69.0"
        );
        assert!(parse_ecs("81.2.69.0/33").is_err());
        assert!(parse_ecs("nope").is_err());
    }
}
