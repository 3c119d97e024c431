//! Changing the server as a whole: reloading its configuration (or
//! trying a reload), and forgetting a cluster node.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AdminState, error};

/// `?dry_run=1` (and `&staged=1`) of `POST /api/v1/reload`.
#[derive(Deserialize)]
pub(super) struct ReloadParams {
    dry_run: Option<String>,
    staged: Option<String>,
}

pub(super) async fn reload(
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
pub(super) async fn forget_node(
    State(state): State<Arc<AdminState>>,
    Path(node): Path<String>,
) -> Response {
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
