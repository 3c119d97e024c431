//! The latency table in the API: `GET /api/v1/latency` (what is known,
//! per network and endpoint; bounded output, filtered by profile or
//! network) and `POST /api/v1/latency/samples` (operators' own
//! measurements; the admin token required, as for every POST).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AdminState, error};
use crate::latency::Estimate;
use crate::netblock::Network;
use crate::snapshot::EndpointKey;

/// Most rows one `GET` returns (`?limit=`, default 1000).
const MAX_ROWS: usize = 10_000;
/// Most samples one `POST` carries.
pub(super) const MAX_SAMPLES: usize = 10_000;
/// Largest `POST` body.
pub(super) const MAX_SAMPLES_BODY: usize = 1 << 20;

/// `?profile=&network=&limit=`.
#[derive(Deserialize)]
pub(super) struct LatencyParams {
    profile: Option<String>,
    network: Option<String>,
    limit: Option<usize>,
}

/// One estimate, as the API shows it.
#[derive(Serialize)]
struct Row {
    network: String,
    endpoint: String,
    rtt_ms: f64,
    samples: f64,
    newest: String,
    source: &'static str,
}

fn row(net: Network, endpoint: String, e: &Estimate) -> Row {
    let t = crate::clock::from_unix_millis(u64::from(e.newest) * 1000);
    Row {
        network: net.to_string(),
        endpoint,
        rtt_ms: (e.rtt_ms * 10.0).round() / 10.0,
        samples: (e.samples * 10.0).round() / 10.0,
        newest: crate::clock::rfc3339_seconds(t),
        source: if e.from_file { "file" } else { "learned" },
    }
}

pub(super) async fn get_latency(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<LatencyParams>,
) -> Response {
    let latency = state.shared.serving.latency.clone();
    let table = state.shared.serving.table.load();
    let now = crate::clock::unix_secs_now();
    // The endpoints shown: every endpoint, or the profile's, by id.
    let mut names: Vec<(u32, String)> = Vec::new();
    for p in &table.profiles {
        if let Some(want) = &q.profile
            && crate::snapshot::normalise_profile(want) != p.name.as_str()
        {
            continue;
        }
        let profile = p.name.as_str().trim_end_matches('.');
        for e in table.endpoints_of(p) {
            names.push((e.latency_id, format!("{profile}/{}", e.name)));
        }
    }
    if let Some(want) = &q.profile
        && names.is_empty()
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("no profile {}", crate::fsutil::shown(want)),
        );
    }
    names.sort();
    let name_of = |id: u32| {
        names
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| names[i].1.clone())
    };
    let network = match q.network.as_deref().map(str::parse::<Network>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("network: {e}")),
    };
    let limit = q.limit.unwrap_or(1000).min(MAX_ROWS);
    let policy = latency.policy();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut behind = Vec::new();
    if let Some(net) = network {
        let reader = latency.reader(now);
        let look = reader.lookup(crate::latency::From::Client(net));
        for (id, name) in &names {
            if let Some(e) = look.get(*id) {
                rows.push(row(net, name.clone(), &e));
            }
        }
        for (client, weight) in latency.clients_of(net, now).as_slice() {
            behind.push(
                json!({ "network": client.to_string(), "beacons": (weight * 10.0).round() / 10.0 }),
            );
        }
    } else {
        let mut push = |net: Network, id: u32, e: Estimate| {
            if let Some(name) = name_of(id) {
                if rows.len() == limit {
                    truncated = true;
                } else {
                    rows.push(row(net, name, &e));
                }
            }
        };
        latency.for_each(now, &mut push);
        latency.file().for_each(&mut push);
    }
    let file = latency.file();
    axum::Json(json!({
        "min_samples": policy.min_samples,
        "band": policy.band.to_string(),
        "max_networks": policy.max_networks,
        "half_life_s": policy.half_life.as_secs(),
        "networks": latency.stats.networks.load(std::sync::atomic::Ordering::Relaxed),
        "resolvers": latency.stats.resolvers.load(std::sync::atomic::Ordering::Relaxed),
        "bytes": latency.stats.bytes.load(std::sync::atomic::Ordering::Relaxed),
        "file": file.path.as_ref().map(|p| json!({ "path": p.display().to_string(), "rows": file.len() })),
        "rows": rows,
        "truncated": truncated,
        "clients_behind": network.map(|_| behind),
    }))
    .into_response()
}

/// One sample posted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    network: String,
    endpoint: String,
    rtt_ms: f64,
    #[serde(default = "one")]
    samples: u64,
}

fn one() -> u64 {
    1
}

/// The body: `{"samples": [...]}` or the list alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Wrapped { samples: Vec<Posted> },
    List(Vec<Posted>),
}

pub(super) async fn post_samples(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Response {
    let list = match serde_json::from_slice::<Body>(&body) {
        Ok(Body::Wrapped { samples } | Body::List(samples)) => samples,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"samples\": [{{\"network\", \"endpoint\", \"rtt_ms\", \"samples\"}}]}}: {e}"
                ),
            );
        }
    };
    if list.len() > MAX_SAMPLES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_SAMPLES} samples a request"),
        );
    }
    let table = state.shared.serving.table.load();
    let latency = &state.shared.serving.latency;
    // Every sample is checked before any is recorded.
    let mut checked = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let bad = |field: &str, msg: String| {
            error(
                StatusCode::BAD_REQUEST,
                format!("samples[{i}].{field}: {msg}"),
            )
        };
        let net = match s.network.parse::<Network>() {
            Ok(n) => n,
            Err(e) => return bad("network", e.to_string()),
        };
        let known = s
            .endpoint
            .split_once('/')
            .is_some_and(|(p, e)| table.endpoint_by_key(&EndpointKey::new(p, e)).is_some());
        if !known {
            return bad(
                "endpoint",
                format!(
                    "{} is not PROFILE/ENDPOINT of the running configuration",
                    crate::fsutil::shown(&s.endpoint)
                ),
            );
        }
        if !(s.rtt_ms.is_finite() && s.rtt_ms > 0.0 && s.rtt_ms <= 60_000.0) {
            latency
                .stats
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return bad("rtt_ms", "must be more than 0 and at most 60000".into());
        }
        checked.push((net, Duration::from_secs_f64(s.rtt_ms / 1000.0)));
    }
    let now = std::time::SystemTime::now();
    for (s, (net, rtt)) in list.iter().zip(checked) {
        if let Err(e) = latency.record_many(net, &s.endpoint, rtt, s.samples, now) {
            return error(StatusCode::BAD_REQUEST, format!("{}: {e}", s.endpoint));
        }
    }
    state.shared.cluster_wake.notify_one();
    axum::Json(json!({ "accepted": list.len() })).into_response()
}
