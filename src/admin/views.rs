//! What the API shows: the status page, health, the status document and
//! explain (why a query gets its answer).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AdminState, error};
use crate::fsutil::shown;
use crate::routing::explain::{self, ClientView};
use crate::snapshot::Family;

/// The status page: one self-contained file, no external assets.
const PAGE: &str = include_str!("page.html");

/// The status page, with the status document rendered in it, so it reads
/// without JavaScript; its script refreshes it.
pub(super) async fn page(State(state): State<Arc<AdminState>>) -> Response {
    let html = super::page::render(PAGE, &status_doc(&state), std::time::SystemTime::now());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    (headers, Html(html)).into_response()
}

pub(super) async fn healthz(State(state): State<Arc<AdminState>>) -> Response {
    let dns = state.shared.ready.load(Ordering::Relaxed);
    let prober = !state.probing || state.reloader.prober_running();
    if dns && prober {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

pub(super) async fn status(State(state): State<Arc<AdminState>>) -> Response {
    axum::Json(status_doc(&state)).into_response()
}

/// What `/api/v1/status` returns and the page shows.
fn status_doc(state: &AdminState) -> super::status::StatusDoc {
    let table = state.shared.serving.table.load();
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
    let impairment = &state.shared.impairment;
    let prober = super::stability::ProberDoc::of(&impairment.view(), impairment.episodes());
    super::status::build(
        &table,
        &problems,
        cluster.as_deref(),
        &overrides,
        &history,
        prober,
        super::udp_path::UdpPathDoc::of(&state.shared),
    )
}

#[derive(Deserialize)]
pub(super) struct ExplainParams {
    name: Option<String>,
    #[serde(rename = "type")]
    qtype: Option<String>,
    client: Option<String>,
    ecs: Option<String>,
}

pub(super) async fn explain(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<ExplainParams>,
) -> Response {
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
    let table = state.shared.serving.table.load();
    let geo = state.shared.serving.geo.load();
    let latency = Some(state.shared.serving.latency.clone());
    let answer = match crate::dns::inspect::answer_with(
        &table,
        geo.as_deref(),
        latency,
        &name,
        &qtype,
        client,
        ecs,
    ) {
        Ok(a) => a,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let family = Family::of_type_name(&qtype);
    let mut why = explain::explain(
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
    // The prober is the one failing: the statuses routing read are the
    // ones from before, and explain says so first.
    if !answer.decision.steps.is_empty()
        && let Some(episode) = state.shared.impairment.current()
    {
        why.steps.insert(
            0,
            format!(
                "{}: every endpoint status below is as it was before (probes go on; statuses thaw when they succeed again)",
                episode.notice()
            ),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
