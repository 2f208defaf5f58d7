//! The manifest answer: the session's first chunks (at most
//! `OBSERVER_MAX_STREAM_CHUNKS`, lowest seqs first, `truncated` when more
//! are stored) and what its listing entry says (start, first URL, user id).

use serde::Serialize;

use crate::payload::SessionId;
use crate::store::{ChunkInfo, ChunkListing, ReplayStore, SessionDetails, session_entry_start};

#[derive(Debug, Serialize)]
pub struct ManifestResponse {
    pub session_id: String,
    /// From the session's listing entry (chunk 0's first event, ms since
    /// the epoch); `null` without chunk 0 or entry, as are `url` and `user_id`.
    pub start: Option<i64>,
    pub url: Option<String>,
    pub user_id: Option<String>,
    pub chunks: Vec<ManifestChunk>,
    /// Whether more chunks are stored than `chunks` lists.
    pub truncated: bool,
    /// Over the chunks listed.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct ManifestChunk {
    pub seq: u32,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub events: u32,
    pub bytes: u64,
}

/// A session's listing entry, as the manifest shows it.
#[derive(Debug, Default)]
pub struct SessionEntryView {
    pub start: Option<i64>,
    pub details: SessionDetails,
}

impl ManifestResponse {
    /// `listing.chunks` is non-empty and ordered by seq.
    pub fn new(session_id: String, listing: ChunkListing, entry: SessionEntryView) -> Self {
        let chunks = &listing.chunks;
        let first_timestamp = chunks.iter().map(|c| c.meta.first_timestamp).min().unwrap_or(0);
        let last_timestamp = chunks.iter().map(|c| c.meta.last_timestamp).max().unwrap_or(0);
        let chunks = chunks
            .iter()
            .map(|c| ManifestChunk {
                seq: c.seq,
                first_timestamp: c.meta.first_timestamp,
                last_timestamp: c.meta.last_timestamp,
                events: c.meta.events,
                bytes: c.bytes,
            })
            .collect();
        let duration_ms = last_timestamp.saturating_sub(first_timestamp).max(0);
        ManifestResponse {
            session_id,
            start: entry.start,
            url: entry.details.url,
            user_id: entry.details.user_id,
            chunks,
            truncated: listing.truncated,
            first_timestamp,
            last_timestamp,
            duration_ms,
        }
    }
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
