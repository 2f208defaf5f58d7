//! Replay fetch API, for the player and for scripts (docs/replay-api.md).
//!
//! | method | path | access | answer |
//! |---|---|---|---|
//! | GET  | `/api/observer/replays?limit=50&cursor=…&user_id=&url=&from=&to=&has_errors=&live=` | viewer token or sign-in cookie | `SessionsResponse`, newest first (see `listing`) |
//! | GET  | `/api/observer/replays/{session_id}[?after_seq=N]` | viewer or share token, sign-in cookie | `ManifestResponse`, `ETag` (see `manifest`) |
//! | GET  | `/api/observer/replays/{session_id}/chunks/{seq}` | viewer or share token, sign-in cookie | the chunk's JSON array |
//! | GET  | `/api/observer/replays/{session_id}/events` | viewer or share token, sign-in cookie | the session's events, one JSON array, streamed |
//! | POST | `/api/observer/replays/{session_id}/share` | viewer token, in the header | `ShareResponse` |
//!
//! - Access: `Authorization: Bearer <token>`; a share token may also come
//!   as `?token=`, a viewer token never; without either, the sign-in
//!   cookie (see `auth::viewer`, `auth::viewer_session`). Checked before
//!   the store is touched: 401 `unauthorized`, `token_expired` or
//!   `token_invalid`, whether or not the session exists. Then a bad id, seq,
//!   limit, cursor or TTL is a 400. Too many 401s from one client IP
//!   (`OBSERVER_AUTH_FAILURES_PER_MINUTE`) and its failures get 429
//!   `rate_limited` for a while; a valid token is always served.
//! - The manifest lists at most `OBSERVER_MAX_STREAM_CHUNKS` chunks, lowest
//!   seqs first, with `truncated`, and the `start`, `url` and `user_id` of
//!   the session's listing entry and whether it is live (see `manifest`);
//!   `If-None-Match` with its `ETag` → 304, so a live player polls cheaply.
//! - Chunks go out as stored (`Content-Encoding: gzip`) when the client
//!   accepts gzip, else inflated (at most `OBSERVER_MAX_REPLAY_DECOMPRESSED`);
//!   with `ETag`, `Cache-Control: private, immutable, max-age=31536000`,
//!   `Vary: Accept-Encoding`; `If-None-Match` → 304, decided from the
//!   chunk's tag alone (S3 `HeadObject`), without downloading it.
//! - Limits: `limit` 1..=200 (default 50), at most `store::listing::MAX_SCAN` (500)
//!   session entries examined per listing request; `events` streams at most
//!   `OBSERVER_MAX_STREAM_CHUNKS` chunks (else 413); chunk and `events` reads
//!   at once `OBSERVER_FETCH_CONCURRENCY` (see `permits`); share TTL
//!   60 s..=30 days (default 24 h); share request body `OBSERVER_MAX_JSON_BODY`.
//! - Statuses: 200, 304, 400, 401, 404 (no chunk / no such chunk), 413, 415,
//!   429 (a failure after too many 401s), 503 (store unreachable, no free
//!   fetch permit).

mod events;
mod listing;
mod manifest;
mod permits;
mod representation;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json,
    body::Body,
    extract::{RawPathParams, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use serde::{Deserialize, Serialize};

use super::extract::{Accept, BodyEncoding, check_body_headers, content_length, epoch_ms};
use crate::{
    auth::{SessionAccess, ViewerAccess, ViewerAuth, share, viewer::unix_now},
    error::{ApiError, FieldError, LimitName},
    ingest::decompress::{gunzip_bounded, read_body},
    state::{AppState, Fetch},
};
use listing::{SessionItem, SessionsResponse, parse_list_query};
use manifest::{Liveness, ManifestResponse, manifest_answer, parse_after_seq, session_entry};
use permits::{PERMIT_WAIT, fetch_permit, holding};
use representation::{NO_STORE, accepts_gzip, chunk_headers, has_if_none_match, identity_etag, not_modified};

pub fn list_sessions() -> MethodRouter<AppState> {
    get(list_recent_sessions)
}

pub fn get_manifest() -> MethodRouter<AppState> {
    get(get_session_manifest)
}

pub fn get_chunk() -> MethodRouter<AppState> {
    get(get_replay_chunk)
}

pub fn stream_session_events() -> MethodRouter<AppState> {
    get(stream_events)
}

/// `max_body`: the share request's body (`OBSERVER_MAX_JSON_BODY`).
pub fn create_share_link(max_body: usize) -> MethodRouter<AppState> {
    post(move |state, auth, access, params, headers, body| {
        share_session(state, auth, access, params, headers, body, max_body)
    })
}

#[tracing::instrument(skip_all)]
async fn list_recent_sessions(
    State(state): State<Arc<Fetch>>,
    access: ViewerAccess,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    access.require_viewer()?;
    let (now, window) = (epoch_ms(SystemTime::now()), state.config.limits.live_window);
    let query = parse_list_query(query.as_deref(), now, window)?;
    let page = state.store.list_sessions(&query).await?;
    let body = SessionsResponse {
        sessions: page.sessions.into_iter().map(|s| SessionItem::new(s, now, window)).collect(),
        next_cursor: page.next_cursor.map(|c| c.as_str().to_owned()),
        scanned: page.scanned,
        live_window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
    };
    Ok(([(header::CACHE_CONTROL, NO_STORE)], Json(body)).into_response())
}

#[tracing::instrument(skip_all, fields(session_id))]
async fn get_session_manifest(
    State(state): State<Arc<Fetch>>,
    SessionAccess { session_id }: SessionAccess,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("session_id", session_id.as_str());
    let after_seq = parse_after_seq(query.as_deref())?;
    let listing = state.store.list_chunks(&session_id, state.config.limits.max_stream_chunks).await?;
    if listing.chunks.is_empty() {
        return Err(ApiError::NotFound);
    }
    let entry = session_entry(state.store.as_ref(), &session_id, &listing.chunks).await;
    let live = Liveness { now: epoch_ms(SystemTime::now()), window: state.config.limits.live_window };
    let body = ManifestResponse::new(session_id.to_string(), listing, entry, live, after_seq);
    Ok(manifest_answer(&headers, &body))
}

/// The `{seq}` of the chunk route: decimal digits, a `u32`.
fn parse_seq(params: &RawPathParams) -> Result<u32, ApiError> {
    let raw = params.iter().find_map(|(name, value)| (name == "seq").then_some(value)).unwrap_or("");
    match raw.parse::<u32>() {
        Ok(seq) if raw.bytes().all(|b| b.is_ascii_digit()) => Ok(seq),
        _ => {
            Err(ApiError::invalid_fields(vec![FieldError::new(None, "seq", "must be an integer from 0 to 4294967295")]))
        }
    }
}

#[tracing::instrument(skip_all, fields(session_id, seq))]
async fn get_replay_chunk(
    State(state): State<Arc<Fetch>>,
    SessionAccess { session_id }: SessionAccess,
    params: RawPathParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let seq = parse_seq(&params)?;
    tracing::Span::current().record("session_id", session_id.as_str()).record("seq", seq);
    let gzip = accepts_gzip(&headers);
    let representation_tag = |stored: &str| if gzip { stored.to_owned() } else { identity_etag(stored) };
    // A revalidation is answered from the tag alone, without the download.
    if has_if_none_match(&headers) {
        let stored = state.store.chunk_etag(&session_id, seq).await?.ok_or(ApiError::NotFound)?;
        let etag = representation_tag(&stored);
        if not_modified(&headers, &etag) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            chunk_headers(response.headers_mut(), &etag);
            return Ok(response);
        }
    }
    let permit = fetch_permit(&state.permits, PERMIT_WAIT).await?;
    let chunk = state.store.get_chunk(&session_id, seq).await?.ok_or(ApiError::NotFound)?;
    let body = if gzip {
        Body::from(chunk.gzip)
    } else {
        let pieces = events::gunzip_pieces(chunk.gzip, state.config.limits.max_replay_decompressed);
        Body::from_stream(futures_util::stream::iter(pieces))
    };
    let mut response = holding(body, permit).into_response();
    let out = response.headers_mut();
    if gzip {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    chunk_headers(out, &representation_tag(&chunk.etag));
    Ok(response)
}

#[tracing::instrument(skip_all, fields(session_id))]
async fn stream_events(
    State(state): State<Arc<Fetch>>,
    SessionAccess { session_id }: SessionAccess,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("session_id", session_id.as_str());
    let max = state.config.limits.max_stream_chunks;
    let listing = state.store.list_chunks(&session_id, max).await?;
    if listing.chunks.is_empty() {
        return Err(ApiError::NotFound);
    }
    if listing.truncated {
        return Err(ApiError::TooLarge { limit: LimitName::StreamChunks, what: "the session's chunk count", max });
    }
    // Held until the stream ends or the client goes away.
    let permit = fetch_permit(&state.permits, PERMIT_WAIT).await?;
    let seqs = listing.chunks.iter().map(|c| c.seq).collect();
    let stream =
        events::session_events(state.store.clone(), session_id, seqs, state.config.limits.max_replay_decompressed);
    let headers =
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::CACHE_CONTROL, NO_STORE)];
    Ok((headers, holding(Body::from_stream(stream), permit)).into_response())
}

/// The share request body; an empty body takes the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareRequest {
    ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ShareResponse {
    /// `/replay/{session_id}?token=…`, relative to where Observer is served.
    pub url: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

#[tracing::instrument(skip_all, fields(session_id))]
async fn share_session(
    State(state): State<Arc<Fetch>>,
    State(auth): State<Arc<ViewerAuth>>,
    access: ViewerAccess,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
    max_body: usize,
) -> Result<Response, ApiError> {
    access.require_viewer_token()?;
    let raw_id = params.iter().find_map(|(name, value)| (name == "session_id").then_some(value)).unwrap_or("");
    let session_id = crate::payload::SessionId::parse(raw_id)
        .ok_or_else(|| ApiError::invalid_fields(vec![FieldError::new(None, "session_id", crate::payload::ID_RULE)]))?;
    tracing::Span::current().record("session_id", session_id.as_str());
    let request = read_share_request(&state, &headers, body, max_body).await?;
    let ttl = request.ttl_seconds.unwrap_or(share::DEFAULT_TTL_SECS);
    if !(share::MIN_TTL_SECS..=share::MAX_TTL_SECS).contains(&ttl) {
        let reason = format!("must be from {} to {}", share::MIN_TTL_SECS, share::MAX_TTL_SECS);
        return Err(ApiError::invalid_fields(vec![FieldError::new(None, "ttl_seconds", reason)]));
    }
    let link = auth.share_signer.link(session_id.as_str(), ttl, unix_now());
    let expires_at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(link.expires_at)).to_string();
    Ok(([(header::CACHE_CONTROL, NO_STORE)], Json(ShareResponse { url: link.path, expires_at })).into_response())
}

/// An empty body means defaults; anything else must be a JSON object.
async fn read_share_request(
    state: &Fetch,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<ShareRequest, ApiError> {
    // Viewer-only route, but its body shares the in-flight budget all the same.
    let mut reservation = state.inflight.empty()?;
    let received = read_body(body, content_length(headers), max, LimitName::JsonBody, &mut reservation).await?;
    if received.trim_ascii().is_empty() {
        return Ok(ShareRequest::default());
    }
    let json = match check_body_headers(headers, Accept::Json)? {
        BodyEncoding::Gzip => gunzip_bounded(&received, max, LimitName::JsonBody)?.into(),
        BodyEncoding::Identity => received,
    };
    let mut de = serde_json::Deserializer::from_slice(&json);
    let request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = match e.path().to_string() {
            path if path == "." => "body".to_owned(),
            path => path,
        };
        ApiError::invalid_fields(vec![FieldError::new(None, field, e.inner().to_string())])
    })?;
    de.end().map_err(|e| ApiError::invalid_body(e.to_string()))?;
    Ok(request)
}

#[cfg(test)]
mod tests;
