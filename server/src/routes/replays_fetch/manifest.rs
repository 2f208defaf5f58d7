//! The manifest answer: the session's first chunks (at most
//! `OBSERVER_MAX_STREAM_CHUNKS`, lowest seqs first, `truncated` when more
//! are stored), what its listing entry says (start, first URL, user id,
//! browser, OS), and whether it is live (its newest chunk accepted within
//! `OBSERVER_LIVE_WINDOW`).
//!
//! A player following a live session polls it: `?after_seq=N` lists only
//! the chunks after `N` (every other field still covers the session), and
//! the answer's `ETag` (a hash of its bytes) makes an unchanged poll a 304
//! without a body. The store is read as for any manifest: on S3 two
//! `ListObjectsV2` (one page each up to 1000 chunks) and one `GetObject`,
//! locally one `read_dir` and the sidecars.

use std::time::Duration;

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::listing::is_live;
use super::representation::{NO_STORE, not_modified};
use crate::error::{ApiError, FieldError};
use crate::payload::SessionId;
use crate::store::{ChunkInfo, ChunkListing, ReplayStore, SessionDetails, session_entry_start};

/// The clock and window that decide whether the session is live.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub now: i64,
    pub window: Duration,
}

#[derive(Debug, Serialize)]
pub struct ManifestResponse {
    pub session_id: String,
    /// From the session's listing entry (chunk 0's first event, ms since
    /// the epoch); `null` without chunk 0 or entry, as are `url` and `user_id`.
    pub start: Option<i64>,
    pub url: Option<String>,
    pub user_id: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    /// Only those after `?after_seq=` when it was given.
    pub chunks: Vec<ManifestChunk>,
    /// Whether more chunks are stored than `chunks` lists.
    pub truncated: bool,
    /// Over the chunks listed.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub duration_ms: i64,
    /// The highest seq listed (also when `chunks` holds none after `after_seq`).
    pub last_seq: u32,
    /// Errors and Meta events over the chunks listed.
    pub errors: u32,
    pub pages: u32,
    /// When the newest chunk was accepted (ms since the epoch, server clock).
    pub last_received_at: Option<i64>,
    pub live: bool,
    pub live_window_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct ManifestChunk {
    pub seq: u32,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub events: u32,
    pub bytes: u64,
    pub errors: u32,
    pub received_at: Option<i64>,
}

/// A session's listing entry, as the manifest shows it.
#[derive(Debug, Default)]
pub struct SessionEntryView {
    pub start: Option<i64>,
    pub details: SessionDetails,
}

impl ManifestResponse {
    /// `listing.chunks` is non-empty and ordered by seq.
    pub fn new(
        session_id: String,
        listing: ChunkListing,
        entry: SessionEntryView,
        live: Liveness,
        after_seq: Option<u32>,
    ) -> Self {
        let all = &listing.chunks;
        let first_timestamp = all.iter().map(|c| c.meta.first_timestamp).min().unwrap_or(0);
        let last_timestamp = all.iter().map(|c| c.meta.last_timestamp).max().unwrap_or(0);
        let last_received_at = all.iter().filter_map(|c| c.stats.received_at).max();
        let sum = |f: fn(&ChunkInfo) -> u32| all.iter().map(f).fold(0u32, u32::saturating_add);
        let chunks = all
            .iter()
            .filter(|c| after_seq.is_none_or(|after| c.seq > after))
            .map(|c| ManifestChunk {
                seq: c.seq,
                first_timestamp: c.meta.first_timestamp,
                last_timestamp: c.meta.last_timestamp,
                events: c.meta.events,
                bytes: c.bytes,
                errors: c.stats.errors,
                received_at: c.stats.received_at,
            })
            .collect();
        let duration_ms = last_timestamp.saturating_sub(first_timestamp).max(0);
        ManifestResponse {
            session_id,
            start: entry.start,
            url: entry.details.url,
            user_id: entry.details.user_id,
            browser: entry.details.browser,
            os: entry.details.os,
            chunks,
            truncated: listing.truncated,
            first_timestamp,
            last_timestamp,
            duration_ms,
            last_seq: all.last().map_or(0, |c| c.seq),
            errors: sum(|c| c.stats.errors),
            pages: sum(|c| c.stats.pages),
            last_received_at,
            live: is_live(last_received_at, live.now, live.window),
            live_window_ms: u64::try_from(live.window.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// `?after_seq=N` of the manifest. An unknown or repeated parameter is a
/// 400 naming it, as on the listing: a typo (`after=`) would otherwise
/// silently return the whole manifest.
pub fn parse_after_seq(query: Option<&str>) -> Result<Option<u32>, ApiError> {
    // `token` is read by the access extractor.
    let params = crate::payload::QueryParams::parse(query, &["after_seq", "token"])?;
    match params.get("after_seq") {
        None => Ok(None),
        Some(raw) if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) => match raw.parse::<u32>() {
            Ok(seq) => Ok(Some(seq)),
            Err(_) => Err(bad_after_seq()),
        },
        Some(_) => Err(bad_after_seq()),
    }
}

fn bad_after_seq() -> ApiError {
    ApiError::invalid_fields(vec![FieldError::new(None, "after_seq", "must be an integer from 0 to 4294967295")])
}

/// The manifest as JSON with its `ETag`, or 304 when `If-None-Match` holds it.
pub fn manifest_answer(headers: &HeaderMap, body: &ManifestResponse) -> Response {
    // A struct of strings and numbers always serialises.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let etag = format!("\"m{:016x}\"", xxh3_64(&bytes));
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"m\""));
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::CACHE_CONTROL, NO_STORE), (header::ETAG, etag_value)])
            .into_response();
    }
    let json = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json), (header::CACHE_CONTROL, NO_STORE), (header::ETAG, etag_value)], bytes)
        .into_response()
}

/// The session's listing entry. Its name holds the session's start, which
/// is chunk 0's first timestamp, so it is one small read of a known key, no
/// listing; nothing without chunk 0. The entry only adds details, so a
/// store failure here leaves them out rather than failing the manifest.
pub async fn session_entry(store: &dyn ReplayStore, session_id: &SessionId, chunks: &[ChunkInfo]) -> SessionEntryView {
    let Some(chunk_0) = chunks.first().filter(|c| c.seq == 0) else { return SessionEntryView::default() };
    let start = session_entry_start(chunk_0.meta.first_timestamp);
    match store.get_session_details(session_id, start).await {
        Ok(Some(details)) => SessionEntryView { start: Some(start), details },
        Ok(None) => SessionEntryView::default(),
        Err(e) => {
            tracing::warn!(session_id = session_id.as_str(), error = %e, "cannot read the session listing entry");
            SessionEntryView::default()
        }
    }
}
