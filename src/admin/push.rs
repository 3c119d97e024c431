//! Pushed health: `PUT /api/v1/health/{profile}/{endpoint}` sets an
//! endpoint's `protocol = "push"` monitor from outside, with a time to
//! live; `POST /api/v1/alertmanager` takes Prometheus Alertmanager
//! webhooks (alerts labelled `switchyard_profile` and
//! `switchyard_endpoint` mark the endpoint's push monitor Degraded while
//! firing, Online when resolved). Both only record the push: the task
//! combining monitors decides (see `app::tasks::combine_monitors`), and in
//! a cluster every node receives it by gossip.
//!
//! A push for an endpoint that is not there, or has no push monitor, is a
//! clear error (the API) or a counted, logged rejection (Alertmanager,
//! which cannot act on an error and would resend), never a change of
//! another endpoint's health.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use super::auth::{Caller, UNNAMED};
use super::{AdminState, error};
use crate::health::Status;
use crate::health::push::{InputKey, Push, PushSettings, clean_reason};
use crate::snapshot::EndpointKey;
use crate::state::Shared;

/// Longest `ttl` of one push.
const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);

/// Which push monitor: `?monitor=NAME` when the endpoint has several.
#[derive(Deserialize, Default)]
pub(super) struct Which {
    monitor: Option<String>,
}

/// `PUT /api/v1/health/...`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    status: String,
    ttl: Option<String>,
    reason: Option<String>,
}

/// The push monitor `monitor` (or the only one) of an endpoint, with its
/// settings; an error a caller can act on otherwise.
fn push_input(
    shared: &Shared,
    profile: &str,
    endpoint: &str,
    monitor: Option<&str>,
) -> Result<(InputKey, PushSettings), String> {
    let table = shared.serving.table.load();
    let key = EndpointKey::new(profile, endpoint);
    let Some(ep) = table.endpoint_by_key(&key) else {
        return Err(format!("no endpoint `{endpoint}` in profile `{profile}`"));
    };
    let pushed: Vec<_> = ep
        .monitors
        .iter()
        .flat_map(|m| m.inputs.iter())
        .filter_map(|i| Some((&*i.name, i.push?)))
        .collect();
    let (name, settings) = match (monitor, pushed.as_slice()) {
        (_, []) => {
            return Err(format!(
                "endpoint `{endpoint}` of `{profile}` has no push monitor: add a [[monitors]] with protocol = \"push\" to its profile (and to the endpoint's `monitors` if it lists them)"
            ));
        }
        (None, [one]) => *one,
        (None, _) => {
            let names: Vec<&str> = pushed.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "endpoint `{endpoint}` has several push monitors ({}): say which with ?monitor=NAME (or the label switchyard_monitor)",
                names.join(", ")
            ));
        }
        (Some(want), list) => match list.iter().find(|(n, _)| *n == want) {
            Some(one) => *one,
            None => {
                return Err(format!(
                    "endpoint `{endpoint}` has no push monitor `{want}`"
                ));
            }
        },
    };
    let id = (
        key.profile().to_string(),
        key.endpoint().to_string(),
        name.to_string(),
    );
    Ok((id, settings))
}

/// Records a push and wakes what acts on it (the combiner, the cluster).
fn record(shared: &Shared, id: InputKey, source: &str, push: Push) {
    let changed = shared
        .pushes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(id, source, push);
    if changed {
        shared.combine_wake.notify_one();
        shared.cluster_wake.notify_one();
    }
}

/// A `ttl` as given, within 1s..7d.
fn ttl_of(given: Option<&str>, default: Duration) -> Result<Duration, String> {
    let Some(text) = given else {
        return Ok(default);
    };
    match humantime::parse_duration(text) {
        Ok(d) if d >= Duration::from_secs(1) && d <= MAX_TTL => Ok(d),
        Ok(_) => Err(format!("`ttl` must be between 1s and 7d, not {text}")),
        Err(e) => Err(format!(
            "`ttl` is not a duration ({e}): for example 30s, 5m, 1h"
        )),
    }
}

/// `PUT /api/v1/health/{profile}/{endpoint}`.
pub(super) async fn put_health(
    State(state): State<Arc<AdminState>>,
    Path((profile, endpoint)): Path<(String, String)>,
    Query(which): Query<Which>,
    caller: Option<axum::Extension<Caller>>,
    body: axum::body::Bytes,
) -> Response {
    let shared = &state.shared;
    let rejected = |code: StatusCode, msg: String| {
        shared
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(false, false);
        warn!(%profile, %endpoint, reason = %msg, "health push rejected");
        error(code, msg)
    };
    let body: PutBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return rejected(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON like {{\"status\": \"Degraded\", \"ttl\": \"5m\", \"reason\": \"...\"}}: {e}"
                ),
            );
        }
    };
    let status = match body.status.to_ascii_lowercase().as_str() {
        "online" => Status::Online,
        "degraded" => Status::Degraded,
        _ => {
            return rejected(
                StatusCode::BAD_REQUEST,
                format!(
                    "`status` must be \"Online\" or \"Degraded\", not {:?}",
                    body.status
                ),
            );
        }
    };
    let (id, settings) = match push_input(shared, &profile, &endpoint, which.monitor.as_deref()) {
        Ok(x) => x,
        Err(msg) => return rejected(StatusCode::NOT_FOUND, msg),
    };
    let ttl = match ttl_of(body.ttl.as_deref(), settings.ttl) {
        Ok(t) => t,
        Err(msg) => return rejected(StatusCode::BAD_REQUEST, msg),
    };
    let by = caller.map_or_else(|| UNNAMED.to_string(), |c| c.0.0.clone());
    let now = crate::clock::now_millis();
    let reason = clean_reason(body.reason.as_deref().unwrap_or(""));
    let reason = if reason.is_empty() {
        format!("by {by}")
    } else {
        format!("{reason} (by {by})")
    };
    let push = Push {
        status,
        reason,
        at_ms: now,
        expires_ms: now + ttl.as_millis() as u64,
        node: shared.node.clone(),
    };
    let expires = crate::clock::rfc3339_seconds(crate::clock::from_unix_millis(push.expires_ms));
    info!(profile = %id.0, endpoint = %id.1, monitor = %id.2, status = %status, %expires, by = %by, "health pushed");
    shared
        .pushes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .count(false, true);
    let monitor = id.2.clone();
    let profile = id.0.clone();
    record(shared, id, &format!("api:{by}"), push);
    axum::Json(json!({
        "profile": profile,
        "endpoint": endpoint,
        "monitor": monitor,
        "status": status.as_str(),
        "expires": expires,
    }))
    .into_response()
}

/// An Alertmanager webhook payload (version 4): only what is read.
#[derive(Deserialize)]
struct Payload {
    alerts: Vec<Alert>,
}

/// One alert of a payload.
#[derive(Deserialize)]
struct Alert {
    status: String,
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    fingerprint: Option<String>,
}

impl Alert {
    fn name(&self) -> &str {
        self.labels.get("alertname").map_or("alert", String::as_str)
    }

    /// Which alert this is across resends: Alertmanager's fingerprint,
    /// else its sorted labels.
    fn source(&self) -> String {
        match &self.fingerprint {
            Some(f) => format!("alert:{f}"),
            None => {
                let mut labels: Vec<_> = self.labels.iter().collect();
                labels.sort();
                let text = format!("{labels:?}");
                let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
                format!("alert:{}", crate::health::spec::hex(&d.as_ref()[..8]))
            }
        }
    }

    /// The push it stands for, or why it is rejected.
    fn apply(&self, shared: &Shared, now: u64) -> Result<(), String> {
        let label = |k: &str| self.labels.get(k).map(String::as_str);
        let (Some(profile), Some(endpoint)) =
            (label("switchyard_profile"), label("switchyard_endpoint"))
        else {
            return Err("without the labels switchyard_profile and switchyard_endpoint".into());
        };
        let status = match self.status.as_str() {
            "firing" => Status::Degraded,
            "resolved" => Status::Online,
            other => return Err(format!("status {other:?} (expected firing or resolved)")),
        };
        let (id, settings) = push_input(shared, profile, endpoint, label("switchyard_monitor"))?;
        let summary = self
            .annotations
            .get("summary")
            .or(self.annotations.get("description"))
            .map_or(String::new(), |s| format!(": {s}"));
        let reason = clean_reason(&format!("alert {} {}{summary}", self.name(), self.status));
        let push = Push {
            status,
            reason,
            at_ms: now,
            expires_ms: now + settings.ttl.as_millis() as u64,
            node: shared.node.clone(),
        };
        info!(profile = %id.0, endpoint = %id.1, monitor = %id.2, alert = self.name(), status = %self.status, "alert received");
        record(shared, id, &self.source(), push);
        Ok(())
    }
}

/// `POST /api/v1/alertmanager`: each alert naming an endpoint is applied;
/// the others are counted, logged and listed in the answer (200 even so:
/// Alertmanager would resend what it cannot fix).
pub(super) async fn alertmanager(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Response {
    let shared = &state.shared;
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            shared
                .pushes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .count(true, false);
            warn!(reason = %e, "Alertmanager payload rejected");
            return error(
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook payload (JSON with `alerts`): {e}"),
            );
        }
    };
    let now = crate::clock::now_millis();
    let mut accepted = 0;
    let mut rejected = Vec::new();
    for alert in &payload.alerts {
        let ok = alert.apply(shared, now);
        shared
            .pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(true, ok.is_ok());
        match ok {
            Ok(()) => accepted += 1,
            Err(reason) => {
                warn!(alert = alert.name(), %reason, "alert rejected");
                rejected.push(json!({"alert": alert.name(), "reason": reason}));
            }
        }
    }
    axum::Json(json!({"accepted": accepted, "rejected": rejected})).into_response()
}
