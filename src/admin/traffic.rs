//! `GET /api/v1/traffic?profile=NAME&window=hour|day&format=json|csv`:
//! one profile's Traffic View ([`crate::traffic`]).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AdminState, error};
use crate::fsutil::shown;
use crate::traffic::report::{self, Context, Report};
use crate::traffic::view::Window;

/// The query string.
#[derive(Deserialize)]
pub(super) struct TrafficParams {
    profile: Option<String>,
    window: Option<String>,
    format: Option<String>,
}

/// The report the page and the API show, or the error status and why.
pub(super) fn report_for(
    state: &AdminState,
    profile: Option<&str>,
    window: Option<&str>,
) -> Result<Report, (StatusCode, String)> {
    let Some(name) = profile.filter(|p| !p.is_empty()) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "`profile` is required, e.g. ?profile=todoapi.tm.example.test".into(),
        ));
    };
    let window = match window.unwrap_or("hour") {
        "" => Window::Hour,
        w => Window::parse(w).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("`window` {} is not `hour` or `day`", shown(w)),
            )
        })?,
    };
    let serving = &state.shared.serving;
    let table = serving.table.load();
    let Some(profile) = table.profile_by_name(name) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no profile named {}", shown(name)),
        ));
    };
    if !serving.traffic.on() {
        return Err((
            StatusCode::CONFLICT,
            "the Traffic View is off ([traffic] enabled = false in switchyard.toml): nothing is recorded".into(),
        ));
    }
    let geo = serving.geo.load();
    let views = state
        .shared
        .traffic
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let cx = Context {
        table: &table,
        profile,
        geo: geo.as_deref(),
        k: views.k(),
        recording: true,
        dropped: serving.traffic.dropped(),
        now: crate::clock::unix_secs_now(),
    };
    Ok(report::build(
        views.profile(profile.name.as_str()),
        window,
        &cx,
    ))
}

pub(super) async fn traffic(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<TrafficParams>,
) -> Response {
    let csv = match q.format.as_deref() {
        None | Some("" | "json") => false,
        Some("csv") => true,
        Some(f) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`format` {} is not `json` or `csv`", shown(f)),
            );
        }
    };
    let report = match report_for(&state, q.profile.as_deref(), q.window.as_deref()) {
        Ok(r) => r,
        Err((code, why)) => return error(code, why),
    };
    if csv {
        let file = format!(
            "attachment; filename=\"traffic-{}-{}.csv\"",
            report
                .profile
                .trim_end_matches('.')
                .replace(['"', '\\'], "_"),
            report.window
        );
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, file),
            ],
            report::csv(&report),
        )
            .into_response()
    } else {
        axum::Json(report).into_response()
    }
}
