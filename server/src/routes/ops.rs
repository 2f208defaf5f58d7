//! Operations routes, no auth (keep them off the public internet or behind
//! the load balancer's own rules):
//!
//! - `GET /healthz` — 200 while the process runs.
//! - `GET /readyz` — 200 when the replay store (and Loki, when configured)
//!   answer and the delivery queue has room; 503 naming each failing check.
//! - `GET /metrics` — Prometheus metrics (OpenMetrics text).

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use serde_json::{Map, Value, json};

use crate::{error::ApiError, state::AppState};

pub fn healthz() -> MethodRouter<AppState> {
    get(|| async { Json(json!({"status": "ok"})) })
}

pub fn readyz() -> MethodRouter<AppState> {
    get(get_readiness)
}

pub fn metrics() -> MethodRouter<AppState> {
    get(get_metrics)
}

async fn get_readiness(State(state): State<AppState>) -> Response {
    let checks = state.readiness.current();
    let failing: Vec<String> =
        checks.iter().filter_map(|(name, r)| r.as_ref().err().map(|why| format!("{name}: {why}"))).collect();
    let checks: Map<String, Value> = checks
        .into_iter()
        .map(|(name, r)| (name.to_owned(), Value::from(r.err().unwrap_or_else(|| "ok".to_owned()))))
        .collect();
    if failing.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready", "checks": checks}))).into_response()
    } else {
        let body =
            json!({"status": "not_ready", "error": "not_ready", "message": failing.join("; "), "checks": checks});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the 0.0.4
/// text format for everyone else (curl, promtool).
async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let openmetrics = crate::metrics::render(&state.registry).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    if wants_openmetrics {
        Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], openmetrics)
            .into_response())
    } else {
        let text = crate::metrics::openmetrics_to_text_004(&openmetrics);
        Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
    }
}
