//! `POST /api/v1/profiles/{p}/endpoints/{e}/{action}`: runtime overrides
//! (disable, drain, enable, resume), and the guard that refuses to take a
//! profile's last answerable endpoint without `force`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{Caller, UNNAMED};
use super::{AdminState, error, status};
use crate::reload::OverrideError;

/// Parameters of an override: `?force=1&for=30m&reason=...`.
#[derive(serde::Deserialize, Default)]
pub(super) struct SetParams {
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

pub(super) async fn set_endpoint(
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
        let table = state.shared.serving.table.load();
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
            let table = state.shared.serving.table.load();
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
