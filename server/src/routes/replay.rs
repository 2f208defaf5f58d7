//! `POST /api/observer/replay-events?session_id=S&seq=N[&user_id=U]`
//!
//! - Body: a JSON array of rrweb events, gzip (`Content-Encoding: gzip` or
//!   recognised by its magic bytes) or plain; `application/json`,
//!   `text/plain` or `application/octet-stream`.
//! - Limits: `OBSERVER_MAX_REPLAY_BODY` (5 MiB) as received,
//!   `OBSERVER_MAX_REPLAY_DECOMPRESSED` (50 MiB) after inflating; both
//!   enforced while streaming.
//! - Stored at `{prefix}replays/{session_id}/{seq:010}.json.gz`; a re-sent
//!   `(session_id, seq)` is answered 202 and leaves the stored chunk as it is.
//! - Answers: 202 `{"session_id", "seq", "events"}`; 400, 401, 403, 413, 415, 503.

use std::time::{Duration, SystemTime};

use axum::{
    Json,
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    routing::{MethodRouter, post},
};
use serde::Serialize;

use super::extract::{Accept, BodyEncoding, check_body_headers, content_length, request_context};
use crate::{
    delivery::{DeliveryError, LogRecord},
    error::{ApiError, LimitName},
    ingest::{decompress::read_body, records::replay_started_record, replay_chunk::prepare_chunk},
    metrics::UndeliveredReason,
    payload::ReplayChunkQuery,
    state::AppState,
    store::{ChunkMeta, PutOutcome},
};

pub fn route() -> MethodRouter<AppState> {
    post(ingest_replay_chunk)
}

#[derive(Debug, Serialize)]
pub struct ReplayChunkAccepted {
    pub session_id: String,
    pub seq: u32,
    pub events: u32,
}

#[tracing::instrument(skip_all, fields(kind = "replay", session_id, seq))]
async fn ingest_replay_chunk(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ReplayChunkAccepted>), ApiError> {
    let received_at = SystemTime::now();
    let query = ReplayChunkQuery::parse(query.as_deref())?;
    tracing::Span::current().record("session_id", query.session_id.as_str()).record("seq", query.seq);
    let encoding = check_body_headers(&headers, Accept::JsonOrBinary)?;
    let limits = state.config.limits.clone();
    let received = read_body(body, content_length(&headers), limits.max_replay_body, LimitName::ReplayBody).await?;
    let chunk = tokio::task::spawn_blocking(move || prepare_chunk(received, encoding == BodyEncoding::Gzip, &limits))
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))??;

    let summary = &chunk.summary;
    let meta = ChunkMeta {
        first_timestamp: summary.first_timestamp,
        last_timestamp: summary.last_timestamp,
        events: summary.events,
    };
    let outcome = state.store.put_chunk(&query.session_id, query.seq, chunk.gzip.clone(), meta).await?;
    if outcome == PutOutcome::Created && query.seq == 0 {
        let context = request_context(&state, &headers, received_at);
        let record = replay_started_record(&query.session_id, query.user_id.as_deref(), summary, &context);
        submit_replay_started(&state, record).await;
    }

    let m = &state.metrics;
    m.replay_chunks_accepted.inc();
    if outcome == PutOutcome::AlreadyExists {
        m.replay_chunks_duplicate.inc();
    }
    m.replay_received_bytes.inc_by(chunk.received_bytes as u64);
    m.replay_decompressed_bytes.inc_by(chunk.decompressed_bytes as u64);
    m.replay_compression_ratio.observe(chunk.decompressed_bytes as f64 / chunk.received_bytes.max(1) as f64);
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayChunkAccepted { session_id: query.session_id.to_string(), seq: query.seq, events: summary.events }),
    ))
}

/// The chunk is already stored, so answering 503 now would make the client
/// re-send it, find it stored, and never log the start. Instead wait a
/// little for room in the delivery queue; if there is none, say so loudly.
async fn submit_replay_started(state: &AppState, record: LogRecord) {
    const PATIENCE: Duration = Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match state.records.submit(vec![record.clone()]) {
            Ok(()) => return,
            Err(DeliveryError::QueueFull { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "replay_started record could not be queued; it is lost");
                state.metrics.undelivered(UndeliveredReason::QueueFull, 1);
                return;
            }
        }
    }
}
