//! Replay chunk storage: one trait, a local-directory and an S3 implementation.
//!
//! Key layout (both backends, relative to the data directory or to
//! `{OBSERVER_S3_KEY_PREFIX}`):
//! - `replays/{session_id}/{seq:010}.json.gz`: the gzip-compressed JSON
//!   array of rrweb events, with the chunk's first/last event timestamp,
//!   event count and content hash as metadata (S3 user metadata, or a
//!   `.meta.json` sidecar);
//! - `replays/{session_id}/index/{seq:010}-{first}-{last}-{events}-{bytes}`
//!   (S3 only): an empty object whose key carries the chunk's metadata, so
//!   one `ListObjectsV2` yields a whole manifest (see [`index`]);
//! - `sessions/{9999999999999 - start_ms:013}-{session_id}.json`: written
//!   when a session's chunk 0 is stored,
//!   `{session_id, start, url, user_id, browser, os}`;
//!   names sort newest first, so listing recent sessions is one listing,
//!   and a manifest finds its session's entry from chunk 0's first timestamp.
//!
//! There is no database: every read is a listing or a key lookup. Retention
//! (S3 lifecycle rules over `replays/` and `sessions/`, or the local sweep)
//! is in [`retention`].

pub(crate) mod index;
pub(crate) mod listing;
pub(crate) mod local;
#[cfg(test)]
pub(crate) mod memory;
pub mod retention;
pub(crate) mod s3;
mod timed;

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub(crate) use index::{SessionCursor, session_entry_start};
pub(crate) use listing::{SessionFilter, SessionQuery};
pub(crate) use local::LocalStore;
pub(crate) use s3::S3Store;
pub(crate) use timed::TimedStore;

use crate::config::StoreConfig;
use crate::metrics::Metrics;
use crate::payload::SessionId;

/// Facts about a chunk, stored beside it (S3 object metadata, or a sidecar
/// file locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Milliseconds since the epoch of the first and last event.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub events: u32,
}

/// What a chunk adds to its session's line in the listing, stored beside it
/// (sidecar, S3 metadata and index key) so the listing sums it per session
/// without reading a chunk. A re-sent chunk stores nothing, so nothing is
/// counted twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkStats {
    /// rrweb Meta events: page loads (and the SDK's periodic full snapshots).
    pub pages: u32,
    /// rrweb custom events tagged `error`.
    pub errors: u32,
    /// When Observer accepted the chunk (ms since the epoch, its own clock);
    /// `None` for chunks stored by versions that did not keep it.
    pub received_at: Option<i64>,
}

/// A validated chunk, as a put stores it.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub gzip: Bytes,
    pub meta: ChunkMeta,
    pub stats: ChunkStats,
    /// xxh3-64 of the decompressed JSON, stored with the chunk so a re-send
    /// of the same `(session_id, seq)` can be told from other content.
    pub content_hash: u64,
}

/// How far past its receive time a chunk's stored timestamps may lie: room
/// for clocks that run fast, not enough to pin a session to the top of the
/// listing (which is ordered by chunk 0's first timestamp).
pub const FUTURE_ALLOWANCE_MS: i64 = 3600 * 1000;

impl ChunkMeta {
    /// The timestamps kept for a chunk received at `received_ms`: at most
    /// [`FUTURE_ALLOWANCE_MS`] later. True when any was cut. The events
    /// themselves are stored as sent.
    pub fn clamp_future(self, received_ms: i64) -> (ChunkMeta, bool) {
        let latest = received_ms.saturating_add(FUTURE_ALLOWANCE_MS);
        let clamped = ChunkMeta {
            first_timestamp: self.first_timestamp.min(latest),
            last_timestamp: self.last_timestamp.min(latest),
            events: self.events,
        };
        (clamped, clamped != self)
    }
}

/// Whether a put wrote a new chunk or found one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The same content was already stored (an idempotent re-send).
    AlreadyExists,
    /// Other content is stored under this `(session_id, seq)`; it is kept.
    Conflict,
}

impl PutOutcome {
    /// The outcome of a put that found a chunk stored, from what is stored
    /// beside it (`None`: its metadata could not be read). Chunks stored
    /// before content hashes were kept are compared by event count and
    /// timestamps; unreadable metadata counts as the same chunk, as it did
    /// before hashes existed.
    pub fn of_existing(stored: Option<(ChunkMeta, Option<u64>)>, new: &NewChunk) -> PutOutcome {
        let same = match stored {
            None => true,
            Some((_, Some(hash))) => hash == new.content_hash,
            Some((meta, None)) => meta == new.meta,
        };
        if same { PutOutcome::AlreadyExists } else { PutOutcome::Conflict }
    }
}

/// A content hash as stored (S3 metadata, sidecar): 16 hex digits.
pub fn content_hash_text(hash: u64) -> String {
    format!("{hash:016x}")
}

pub fn parse_content_hash(text: &str) -> Option<u64> {
    // All hex digits: `from_str_radix` alone would also take a leading '+'.
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(text, 16).ok())?
}

/// What the session listing shows besides the id and start time, taken
/// from the request that stores chunk 0 (ignored for other chunks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    /// `data.href` of the first Meta event.
    pub url: Option<String>,
    pub user_id: Option<String>,
    /// uap-core's browser and OS families of chunk 0's `User-Agent`.
    #[serde(default)]
    pub browser: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

/// A session's chunks summed up (see [`ChunkStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Chunks stored so far.
    pub chunks: u32,
    pub pages: u32,
    pub errors: u32,
    /// The latest event timestamp of any chunk.
    pub last_timestamp: Option<i64>,
    /// When the newest chunk was accepted (Observer's clock).
    pub last_received: Option<i64>,
}

impl SessionStats {
    /// Adds one stored chunk.
    pub fn add(&mut self, info: &ChunkInfo) {
        self.pages = self.pages.saturating_add(info.stats.pages);
        self.errors = self.errors.saturating_add(info.stats.errors);
        self.last_timestamp = self.last_timestamp.max(Some(info.meta.last_timestamp));
        self.last_received = self.last_received.max(info.stats.received_at);
    }
}

/// One session in the listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub session_id: SessionId,
    /// Milliseconds since the epoch of chunk 0's first event.
    pub start: i64,
    pub details: SessionDetails,
    pub stats: SessionStats,
}

/// A page of the session listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<SessionCursor>,
    /// Session entries examined for this page (at most [`listing::MAX_SCAN`]).
    pub scanned: usize,
}

/// A stored chunk as a manifest lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub seq: u32,
    pub meta: ChunkMeta,
    /// Size of the stored gzip body.
    pub bytes: u64,
    pub stats: ChunkStats,
}

/// The first chunks of a session, as a manifest lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkListing {
    /// Ordered by seq: the lowest seqs stored, at most the number asked for.
    pub chunks: Vec<ChunkInfo>,
    /// Whether more chunks are stored than were asked for.
    pub truncated: bool,
}

/// A stored chunk's gzip body and a strong validator for it. Chunks never
/// change once stored, so the validator never goes stale.
#[derive(Debug, Clone)]
pub struct ChunkObject {
    /// A quoted strong entity tag (`"…"`), ready for the `ETag` header.
    pub etag: String,
    pub gzip: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("replay store I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("S3 request failed: {0}")]
    S3(String),
    #[error("replay store is misconfigured: {0}")]
    Config(String),
}

/// The object key of a chunk, relative to the store's root or bucket.
pub fn chunk_key(prefix: &str, session_id: &SessionId, seq: u32) -> String {
    format!("{prefix}replays/{}/{seq:010}.json.gz", session_id.as_str())
}

/// The seq of a chunk's file or object name (`0000000007.json.gz`).
pub fn parse_chunk_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".json.gz")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Stores a chunk unless one with the same `(session_id, seq)` exists,
    /// in which case it is left as it is and compared
    /// ([`PutOutcome::of_existing`]). Chunk 0 also adds the session to the
    /// listing, with `details`.
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        chunk: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError>;

    /// Up to `query.limit` sessions that match `query.filter`, newest first,
    /// starting after `query.after`, examining at most [`listing::MAX_SCAN`] entries
    /// (see [`listing`]).
    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError>;

    /// The stored chunks of a session with the lowest seqs, at most
    /// `max_chunks` of them, ordered by seq (empty if none). Reads no more of
    /// the store than it needs where the backend allows (S3 stops paging).
    async fn list_chunks(&self, session_id: &SessionId, max_chunks: usize) -> Result<ChunkListing, StoreError>;

    /// Seq and stored (gzip) size of a session's chunks with the lowest
    /// seqs, at most `max_chunks` of them: what the per-session byte budget
    /// is seeded from. The manifest's sizes by default; S3 reads them from
    /// one listing of the chunk objects, without the index listing.
    async fn stored_chunk_sizes(
        &self,
        session_id: &SessionId,
        max_chunks: usize,
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        let listing = self.list_chunks(session_id, max_chunks).await?;
        Ok(listing.chunks.iter().map(|chunk| (chunk.seq, chunk.bytes)).collect())
    }

    /// The details of the session's listing entry, which is named by the
    /// session's start (`start`: chunk 0's first timestamp); `None` when no
    /// entry is stored. One small read.
    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError>;

    /// One chunk's stored gzip bytes, or `None` if it is not stored.
    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError>;

    /// The entity tag [`ReplayStore::get_chunk`] would give the chunk, without
    /// reading its body (S3 `HeadObject`, a `stat` locally); `None` if the
    /// chunk is not stored.
    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StoreError>;

    /// Human description for the start-up log (no secrets).
    fn describe(&self) -> String;
}

/// Builds the backend `config` names, wrapped in a [`TimedStore`]. S3
/// credentials come from the standard AWS chain; nothing is contacted until
/// the first operation or `check()`.
pub async fn open(config: &StoreConfig, metrics: Arc<Metrics>) -> Result<Arc<dyn ReplayStore>, StoreError> {
    let backend: Arc<dyn ReplayStore> = match config {
        StoreConfig::Local { data_dir } => {
            let data_dir = data_dir.clone();
            let store = tokio::task::spawn_blocking(move || LocalStore::new(data_dir))
                .await
                .map_err(|e| StoreError::Config(format!("opening the data directory failed: {e}")))??;
            Arc::new(store)
        }
        StoreConfig::S3 { endpoint, bucket, region, key_prefix } => {
            Arc::new(S3Store::new(endpoint.clone(), bucket.clone(), region.clone(), key_prefix.clone()).await?)
        }
    };
    Ok(Arc::new(TimedStore::new(backend, metrics)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names() {
        let id = SessionId::parse("session-0001").unwrap();
        assert_eq!(chunk_key("p/", &id, 7), "p/replays/session-0001/0000000007.json.gz");
        assert_eq!(parse_chunk_name("0000000007.json.gz"), Some(7));
        assert_eq!(parse_chunk_name("4294967295.json.gz"), Some(u32::MAX));
        for bad in ["4294967296.json.gz", "000000007.json.gz", "0000000007.meta.json", "000000000x.json.gz", "index"] {
            assert_eq!(parse_chunk_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn existing_chunks_are_compared_by_hash_else_by_meta() {
        let meta = ChunkMeta { first_timestamp: 1, last_timestamp: 2, events: 3 };
        let new = NewChunk { gzip: Bytes::new(), meta, stats: ChunkStats::default(), content_hash: 7 };
        assert_eq!(PutOutcome::of_existing(Some((meta, Some(7))), &new), PutOutcome::AlreadyExists);
        let other_meta = ChunkMeta { events: 4, ..meta };
        assert_eq!(PutOutcome::of_existing(Some((other_meta, Some(7))), &new), PutOutcome::AlreadyExists);
        assert_eq!(PutOutcome::of_existing(Some((meta, Some(8))), &new), PutOutcome::Conflict);
        assert_eq!(PutOutcome::of_existing(Some((meta, None)), &new), PutOutcome::AlreadyExists);
        assert_eq!(PutOutcome::of_existing(Some((other_meta, None)), &new), PutOutcome::Conflict);
        assert_eq!(PutOutcome::of_existing(None, &new), PutOutcome::AlreadyExists);
    }

    #[test]
    fn future_timestamps_are_clamped_to_the_allowance() {
        let now = 1_700_000_000_000;
        let sent = ChunkMeta { first_timestamp: now - 5000, last_timestamp: now + 1000, events: 3 };
        assert_eq!(sent.clamp_future(now), (sent, false), "a fast clock within the allowance");
        let far = ChunkMeta { first_timestamp: now + 10 * FUTURE_ALLOWANCE_MS, last_timestamp: i64::MAX, events: 3 };
        let latest = now + FUTURE_ALLOWANCE_MS;
        let kept = ChunkMeta { first_timestamp: latest, last_timestamp: latest, events: 3 };
        assert_eq!(far.clamp_future(now), (kept, true));
        let straddling = ChunkMeta { last_timestamp: i64::MAX, ..sent };
        assert_eq!(straddling.clamp_future(now), (ChunkMeta { last_timestamp: latest, ..sent }, true));
    }

    #[test]
    fn content_hash_texts() {
        assert_eq!(content_hash_text(0xab), "00000000000000ab");
        assert_eq!(parse_content_hash(&content_hash_text(u64::MAX)), Some(u64::MAX));
        for bad in ["", "ab", "00000000000000ag", "+0000000000000ab", "000000000000000ab"] {
            assert_eq!(parse_content_hash(bad), None, "{bad:?}");
        }
    }
}
