//! `POST /api/v1/profiles/{p}/endpoints/{e}/{action}`: runtime overrides
//! (disable, drain, shed, enable, resume), and the guard that refuses to
//! take a profile's last answerable endpoint without `force`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::{Caller, UNNAMED};
use super::{AdminState, error, status};
use crate::overrides::Kind;
use crate::reload::OverrideError;

/// Parameters of an override: `?force=1&for=30m&reason=...`, and
/// `percent=30` (shed), `over=10m` (drain).
#[derive(serde::Deserialize, Default)]
pub(super) struct SetParams {
    force: Option<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    reason: Option<String>,
    percent: Option<String>,
    over: Option<String>,
}

/// Longest `for` accepted.
const MAX_FOR: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// Longest drain ramp (`over`) accepted.
const MAX_OVER: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// What the parameters ask, checked: `for` as its end (ms since the
/// epoch), `percent` (shed), `over` in ms (drain).
type Checked = (Option<u64>, Option<u16>, Option<u64>);

/// The parameters checked; or the 400's message saying what is wrong.
fn checked(kind: Kind, p: &SetParams) -> Result<Checked, String> {
    let duration = |name: &str, v: &str, max: std::time::Duration, most: &str| {
        match humantime::parse_duration(v) {
            Ok(d) if d >= std::time::Duration::from_secs(1) && d <= max => Ok(d),
            Ok(_) => Err(format!("`{name}` must be between 1s and {most}, not {v}")),
            Err(e) => Err(format!(
                "`{name}` is not a duration ({e}): for example 30m, 2h, 1h30m"
            )),
        }
    };
    let for_ = match p.for_.as_deref() {
        None => None,
        Some(_) if matches!(kind, Kind::Enable | Kind::Resume) => {
            return Err("`for` applies to disable, drain and shed only".into());
        }
        Some(f) => Some(duration("for", f, MAX_FOR, "366d")?),
    };
    let percent = match (kind, p.percent.as_deref()) {
        (Kind::Shed, None) => {
            return Err(
                "shed needs `percent`: the share of client networks to move away, 1 to 100 (CLI: --percent 30)"
                    .into(),
            );
        }
        (Kind::Shed, Some(v)) => match v.trim().parse::<u16>() {
            Ok(n @ 1..=100) => Some(n),
            _ => {
                return Err(format!(
                    "`percent` must be a whole number from 1 to 100, not {v:?}"
                ));
            }
        },
        (_, Some(_)) => return Err("`percent` applies to shed only".into()),
        (_, None) => None,
    };
    let over = match (kind, p.over.as_deref()) {
        (Kind::Drain, Some(v)) => Some(duration("over", v, MAX_OVER, "7d")?),
        (_, Some(_)) => return Err("`over` applies to drain only".into()),
        (_, None) => None,
    };
    if let (Some(f), Some(o)) = (for_, over)
        && f <= o
    {
        return Err(format!(
            "`for` ({}) must be longer than `over` ({}): the drain would end before its ramp",
            humantime::format_duration(f),
            humantime::format_duration(o)
        ));
    }
    let now = crate::clock::now_millis();
    Ok((
        for_.map(|d| now + d.as_millis() as u64),
        percent,
        over.map(|d| d.as_millis() as u64),
    ))
}

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
    let kind = match action.as_str() {
        "disable" => Kind::Disable,
        "drain" => Kind::Drain,
        "shed" => Kind::Shed,
        "enable" => Kind::Enable,
        "resume" => Kind::Resume,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "use .../disable, .../drain, .../shed, .../enable or .../resume",
            );
        }
    };
    let (until, shed, over_ms) = match checked(kind, &params) {
        Ok(v) => v,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
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
        shed,
        over_ms,
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
                // Out of answers now (a ramping drain is not, yet).
                "disabled_at_runtime": applied.record.keeps_out(crate::clock::now_millis()),
                "shed_percent": shed,
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
