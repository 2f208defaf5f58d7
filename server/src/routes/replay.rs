//! `POST /api/observer/replay-events?session_id=S&seq=N[&user_id=U]`
//!
//! - Body: a JSON array of rrweb events, gzip (`Content-Encoding: gzip` or
//!   recognised by its magic bytes) or plain; `application/json`,
//!   `text/plain` or `application/octet-stream`.
//! - Limits: `OBSERVER_MAX_REPLAY_BODY` (5 MiB) as received,
//!   `OBSERVER_MAX_REPLAY_DECOMPRESSED` (50 MiB) after inflating; both
//!   enforced while streaming.
//! - Stored at `{prefix}replays/{session_id}/{seq:010}.json.gz` (with S3,
//!   via the disk spool while S3 fails: acknowledged once on disk); a re-sent
//!   `(session_id, seq)` leaves the stored chunk as it is: 202 when it holds
//!   the same events, 409 `conflict` when it holds others.
//! - Per session: `OBSERVER_RATE_LIMIT_PER_SESSION` (20/s, 429),
//!   `seq` below `OBSERVER_MAX_SESSION_CHUNKS` (720, 413) and at most
//!   `OBSERVER_MAX_SESSION_BYTES` stored (200 MiB, 413).
//! - Stored timestamps (what the listing and manifest show) are clamped to
//!   the receive time + 1 h; the events are stored as sent.
//! - Bodies count against `OBSERVER_MAX_INFLIGHT_BYTES` as they arrive and
//!   until stored; past their first 64 KiB, at most
//!   `OBSERVER_REPLAY_CONCURRENCY` chunks are read and validated at once (a
//!   chunk waits up to 10 s for a slot). Either bound answers 503 with
//!   `Retry-After`. Gzip is inflated as a stream while it is validated.
//! - JSON nested deeper than `OBSERVER_MAX_REPLAY_DEPTH` (1000) is refused.
//! - Answers: 202 `{"session_id", "seq", "events"}`; 400, 401, 403, 409, 413, 415, 429, 503.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    Json,
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    routing::{MethodRouter, post},
};
use serde::Serialize;

use super::extract::{Accept, BodyEncoding, check_body_headers, content_length, epoch_ms, request_context};
use crate::{
    error::{ApiError, LimitName},
    ingest::{
        decompress::{BodyReader, is_gzip},
        records::{RequestContext, replay_started_record},
        replay_chunk::{ChunkLimits, PreparedChunk, prepare_chunk},
    },
    metrics::Overload,
    payload::ReplayChunkQuery,
    state::Ingest,
    store::{ChunkMeta, ChunkStats, NewChunk, PutOutcome, SessionDetails},
};

/// How much of a chunk is read before it waits for a processing slot.
const READ_BEFORE_SLOT: usize = 64 * 1024;

/// How long a chunk waits for a free decompression slot before 503.
const REPLAY_PERMIT_WAIT: Duration = Duration::from_secs(10);

/// The replay route's limits, set in the route table.
#[derive(Debug, Clone, Copy)]
pub struct ReplayLimits {
    /// `OBSERVER_MAX_REPLAY_BODY`, as received.
    pub max_body: usize,
    /// Inflated size and JSON depth.
    pub chunk: ChunkLimits,
    /// `OBSERVER_MAX_SESSION_CHUNKS`: `seq` must be below it.
    pub max_chunks: u32,
}

pub fn route(limits: ReplayLimits) -> MethodRouter<Arc<Ingest>> {
    post(move |state, query, headers, body| ingest_replay_chunk(state, query, headers, body, limits))
}

#[derive(Debug, Serialize)]
pub struct ReplayChunkAccepted {
    pub session_id: String,
    pub seq: u32,
    pub events: u32,
}

#[tracing::instrument(skip_all, fields(kind = "replay", session_id, seq))]
async fn ingest_replay_chunk(
    State(state): State<Arc<Ingest>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
    limits: ReplayLimits,
) -> Result<(StatusCode, Json<ReplayChunkAccepted>), ApiError> {
    let received_at = SystemTime::now();
    // However it ends, the chunk's buffers go back to the system soon.
    let _release = crate::memory::ReleaseOnDrop;
    let query = ReplayChunkQuery::parse(query.as_deref())?;
    tracing::Span::current().record("session_id", query.session_id.as_str()).record("seq", query.seq);
    check_session_limits(&state, &query, limits.max_chunks)?;
    let encoding = check_body_headers(&headers, Accept::JsonOrBinary)?;
    let declared = content_length(&headers);
    // The body counts against the in-flight budget as it arrives. Its first
    // `READ_BEFORE_SLOT` bytes are read before a processing slot is taken,
    // the rest after: the slot bounds how many chunks are read in full and
    // validated at once (bodies, inflate buffers), and a client must really
    // send before it can hold one (taken before any byte, 4 clients sending
    // 1 KB/s held every slot). Reading whole bodies before the slot instead
    // let 64 concurrent uploads starve each other of budget.
    let mut reservation = state.inflight.empty()?;
    let mut reader = BodyReader::new(body, declared, limits.max_body, LimitName::ReplayBody)?;
    reader.read_until(READ_BEFORE_SLOT, &mut reservation).await?;
    let Ok(Ok(permit)) = tokio::time::timeout(REPLAY_PERMIT_WAIT, state.replay_permits.clone().acquire_owned()).await
    else {
        state.metrics.overload_refused(Overload::ReplaySlots);
        return Err(ApiError::Unavailable { what: "replay processing", retry_after: Duration::from_secs(5) });
    };
    reader.read_until(usize::MAX, &mut reservation).await?;
    let received = reader.into_bytes();
    if encoding != BodyEncoding::Gzip && !is_gzip(&received) {
        // A plain chunk is compressed for storage: while that runs, its body
        // and the compressed copy (as large, for incompressible text) are
        // both in memory, so both count.
        reservation.grow_to(received.len().saturating_mul(2)).await?;
    }
    let chunk = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut chunk = prepare_chunk(received, encoding == BodyEncoding::Gzip, limits.chunk)?;
        // The budget follows the bytes to be stored (the body itself when it
        // was gzip) until the store is done with them.
        chunk.gzip = reservation.attach(chunk.gzip);
        Ok::<_, ApiError>(chunk)
    })
    .await
    .map_err(|e| ApiError::Internal(Box::new(e)))??;

    let context = request_context(&state, &headers, received_at);
    let (session_id, seq, events) = (query.session_id.clone(), query.seq, chunk.summary.events);
    let (received_bytes, decompressed_bytes, was_gzip) =
        (chunk.received_bytes, chunk.decompressed_bytes, chunk.was_gzip);
    // Detached: once the chunk is written its replay_started record must
    // follow, even if the client disconnects or the request times out.
    let outcome = tokio::spawn(store_and_announce(state.clone(), query, chunk, context))
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))??;

    let m = &state.metrics;
    m.replay_chunks_accepted.inc();
    if outcome == PutOutcome::AlreadyExists {
        m.replay_chunks_duplicate.inc();
    } else {
        m.replay_received_bytes.inc_by(received_bytes as u64);
        m.replay_chunk_size.observe(received_bytes as f64);
        m.replay_decompressed_bytes.inc_by(decompressed_bytes as u64);
        if was_gzip {
            m.replay_compression_ratio.observe(decompressed_bytes as f64 / received_bytes.max(1) as f64);
        }
    }
    Ok((StatusCode::ACCEPTED, Json(ReplayChunkAccepted { session_id: session_id.to_string(), seq, events })))
}

/// The per-session limits known from the query alone, checked before the
/// body is read: the chunk count (stateless: `seq` must be below the cap,
/// so every replica agrees) and the session's request rate.
fn check_session_limits(state: &Ingest, query: &ReplayChunkQuery, max_chunks: u32) -> Result<(), ApiError> {
    if query.seq >= max_chunks {
        return Err(ApiError::TooLarge {
            limit: LimitName::SessionChunks,
            what: "the session's chunk count",
            max: usize::try_from(max_chunks).unwrap_or(usize::MAX),
        });
    }
    state.session_rate_limiter.check([query.session_id.as_str()])
}

async fn store_and_announce(
    state: Arc<Ingest>,
    query: ReplayChunkQuery,
    chunk: PreparedChunk,
    context: RequestContext,
) -> Result<PutOutcome, ApiError> {
    let PreparedChunk { gzip, summary, content_hash, .. } = chunk;
    let sent = ChunkMeta {
        first_timestamp: summary.first_timestamp,
        last_timestamp: summary.last_timestamp,
        events: summary.events,
    };
    let received_ms = epoch_ms(context.received_at);
    let (meta, clamped) = sent.clamp_future(received_ms);
    if clamped {
        state.metrics.replay_chunks_clamped.inc();
    }
    let reservation = state.session_bytes.reserve(state.store.as_ref(), &query.session_id, gzip.len() as u64).await?;
    // What the session listing shows; the store only keeps it for chunk 0.
    let details = SessionDetails {
        url: summary.meta_href.clone(),
        user_id: query.user_id.clone(),
        browser: context.client.browser.clone(),
        os: context.client.os.clone(),
    };
    // The receive time is the request's, so a chunk that waits (for the
    // session's byte budget, a store retry) still says when it was sent.
    let stats = ChunkStats { pages: summary.pages, errors: summary.errors, received_at: Some(received_ms) };
    let new = NewChunk { gzip, meta, stats, content_hash };
    let started = (query.seq == 0)
        .then(|| replay_started_record(&query.session_id, query.user_id.as_deref(), &summary, &context));
    let outcome = state.chunks.put(&query.session_id, query.seq, new, &details, context.received_at, started).await?;
    match outcome {
        PutOutcome::Created => reservation.commit(),
        // Dropping the reservation gives its bytes back.
        PutOutcome::AlreadyExists => {}
        PutOutcome::Conflict => {
            return Err(ApiError::Conflict {
                message: format!(
                    "chunk {} of this session is already stored with other events, and is kept; \
                     send new events under a new seq",
                    query.seq
                ),
            });
        }
    }
    Ok(outcome)
}
