//! Operations routes, no auth required (keep them off the public internet or
//! behind the load balancer's own rules):
//!
//! - `GET /healthz` — 200 while the process runs.
//! - `GET /readyz` — 200 `ready` when the replay store (and Loki, when
//!   configured, accepting our pushes) answer and the disk spool has room;
//!   200 `degraded` naming the failing checks while Loki (or S3) fails but
//!   the spool takes what they cannot (`health::blocks_readiness`); 503
//!   `not_ready` naming them otherwise. Anonymous callers get each check's name and
//!   `ok` / `failing` only; the reasons (which name hosts, buckets and
//!   upstream errors) need the viewer token as `Authorization: Bearer`
//!   (another token: 401, under the brute-force brake). A `retention` object
//!   (`state`: `pending`, `covered`, `not_covered`, `unknown`, `local_sweep`
//!   or `off`; `detail` for viewers) says whether stored replays expire; it
//!   never makes the answer 503.
//! - `GET /metrics` — Prometheus metrics (OpenMetrics text).

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use prometheus_client::registry::Registry;
use serde_json::{Map, Value, json};

use crate::{auth::OptionalViewer, error::ApiError, health::Readiness, state::AppState};

pub fn healthz() -> MethodRouter<AppState> {
    get(|| async { Json(json!({"status": "ok"})) })
}

pub fn readyz() -> MethodRouter<AppState> {
    get(get_readiness)
}

pub fn metrics() -> MethodRouter<AppState> {
    get(get_metrics)
}

async fn get_readiness(State(readiness): State<Readiness>, OptionalViewer(detailed): OptionalViewer) -> Response {
    let checks = readiness.current();
    let failing: Vec<&str> = checks.iter().filter(|(_, r)| r.is_err()).map(|(name, _)| *name).collect();
    let ready = failing.iter().all(|name| !readiness.blocks(name));
    let message = if detailed {
        let reasons = checks.iter().filter_map(|(name, r)| r.as_ref().err().map(|why| format!("{name}: {why}")));
        reasons.collect::<Vec<_>>().join("; ")
    } else {
        format!("failing: {}", failing.join(", "))
    };
    let checks: Map<String, Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let shown = match r {
                Ok(()) => "ok".to_owned(),
                Err(why) if detailed => why,
                Err(_) => "failing".to_owned(),
            };
            (name.to_owned(), Value::from(shown))
        })
        .collect();
    let mut body = if failing.is_empty() {
        json!({"status": "ready", "checks": checks})
    } else if ready {
        // Still acknowledging (into the spool): ready, but say what fails.
        json!({"status": "degraded", "message": message, "checks": checks})
    } else {
        json!({"status": "not_ready", "error": "not_ready", "message": message, "checks": checks})
    };
    // Information, not a check: a bucket without expiry can still take replays.
    if let Some(retention) = readiness.retention() {
        let mut shown = json!({"state": retention.state.as_str()});
        if detailed {
            shown["detail"] = Value::from(retention.detail);
        }
        body["retention"] = shown;
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the 0.0.4
/// text format for everyone else (curl, promtool).
async fn get_metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let openmetrics = crate::metrics::render(&registry).map_err(|e| ApiError::Internal(Box::new(e)))?;
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
