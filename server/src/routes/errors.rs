//! `POST /api/observer/errors`
//!
//! - Body: one `ErrorReport` or an array of at most `OBSERVER_MAX_BATCH_ITEMS`
//!   (100), JSON as `application/json` or `text/plain`, optionally gzip.
//! - Limits: `OBSERVER_MAX_JSON_BODY` (1 MiB) as received and decompressed.
//! - Rate: `OBSERVER_RATE_LIMIT_PER_SESSION` per distinct `session_id` of
//!   the batch (429 for the whole batch).
//! - Parsing: bodies over 8 KiB on a blocking thread, one per core at a
//!   time (`ParsePool`); 503 after 10 s without a thread. At most 20
//!   problems are listed in a 400, the rest counted in `details_truncated`.
//! - Answers: 202 `{"accepted": N}`; 400, 401, 403, 413, 415, 429, 503.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{MethodRouter, post},
};
use serde::Serialize;

use super::extract::{BatchLimits, epoch_ms, read_json_body, request_context};
use crate::{error::ApiError, ingest::records::error_record, payload::ErrorReport, state::Ingest};

pub fn route(limits: BatchLimits) -> MethodRouter<Arc<Ingest>> {
    post(move |state, headers, body| ingest_errors(state, headers, body, limits))
}

#[derive(Debug, Serialize)]
pub struct ErrorsAccepted {
    pub accepted: usize,
}

#[tracing::instrument(skip_all, fields(kind = "error", items))]
async fn ingest_errors(
    State(state): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Body,
    limits: BatchLimits,
) -> Result<(StatusCode, Json<ErrorsAccepted>), ApiError> {
    let received_at = SystemTime::now();
    let json = read_json_body(&state, &headers, body, limits.max_body).await?;
    let reports: Vec<ErrorReport> = state.parse_pool.parse_batch(json, limits.max_items, epoch_ms(received_at)).await?;
    tracing::Span::current().record("items", reports.len());
    state.session_rate_limiter.check(reports.iter().filter_map(|item| item.session_id.as_deref()))?;
    let context = request_context(&state, &headers, received_at);
    let records = reports.iter().enumerate().map(|(i, report)| error_record(report, i, &context)).collect();
    state.records.submit(records).await?;
    state.metrics.errors_accepted.inc_by(reports.len() as u64);
    Ok((StatusCode::ACCEPTED, Json(ErrorsAccepted { accepted: reports.len() })))
}
