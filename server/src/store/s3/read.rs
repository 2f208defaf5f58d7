//! The read side of the S3 store.
//!
//! - Manifest: two listings at once, `replays/{sid}/` with delimiter `/`
//!   (the chunks and their sizes) and `replays/{sid}/index/` (each chunk's
//!   metadata in its key). Up to 1000 chunks that is one round trip, so a
//!   720-chunk session needs two concurrent requests instead of 720 HEADs.
//!   Keys sort by seq, so both listings stop paging once they hold one more
//!   than the chunks asked for (`max-keys` shrinks to what is still needed).
//!   A chunk without a matching index entry (written by an older version, or
//!   the entry's write failed) costs one `HeadObject`, at most
//!   [`PARALLEL_REQUESTS`] at a time, and its entry is written then. The
//!   session's details: one `GetObject` of its listing entry, whose key
//!   follows from chunk 0's first timestamp.
//! - Listing (`store::listing`): one `ListObjectsV2` of `sessions/`
//!   (`start-after` = cursor or date bound, `max-keys` = `MAX_SCAN`), then
//!   for the entries in the date range their body (`GetObject`), and for
//!   those that pass the filters their totals: two listings at once,
//!   `replays/{sid}/` (chunk count) and `replays/{sid}/index/` (pages,
//!   errors, last event and receive time from the keys), 16 sessions at a
//!   time. A chunk without an index entry counts as a chunk, with no pages
//!   or errors.
//! - Chunk: `GetObject`; the ETag is S3's (an MD5 of the immutable bytes).
//!   The ETag alone (for `If-None-Match`): `HeadObject`, no body.

use std::collections::HashMap;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::Object;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{S3Store, s3_error, status};
use crate::payload::SessionId;
use crate::store::index::{SessionEntry, parse_chunk_index_name, session_entry_name};
use crate::store::listing::EntrySource;
use crate::store::{
    ChunkInfo, ChunkListing, ChunkMeta, ChunkObject, ChunkStats, SessionDetails, SessionStats, StoreError,
    parse_chunk_name,
};

/// Most keys S3 returns in one `ListObjectsV2` page.
const MAX_KEYS_PER_PAGE: usize = 1000;

/// Requests one read sends to S3 at the same time.
const PARALLEL_REQUESTS: usize = 16;

/// The manifest line of a chunk from its `HeadObject` answer.
pub(super) fn chunk_info_from_head(seq: u32, out: &HeadObjectOutput) -> Option<ChunkInfo> {
    let metadata = out.metadata()?;
    let field = |name: &str| metadata.get(name).and_then(|v| v.parse::<i64>().ok());
    // Absent from chunks stored by older versions.
    let count = |name: &str| field(name).and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    Some(ChunkInfo {
        seq,
        meta: ChunkMeta {
            first_timestamp: field("first-timestamp")?,
            last_timestamp: field("last-timestamp")?,
            events: u32::try_from(field("events")?).ok()?,
        },
        bytes: u64::try_from(out.content_length()?).ok()?,
        stats: ChunkStats {
            pages: count("pages"),
            errors: count("errors"),
            received_at: field("received-at").filter(|&t| t > 0),
        },
    })
}

/// The `content-hash` metadata of a chunk (see [`crate::store::NewChunk`]).
pub(super) fn content_hash_from_head(out: &HeadObjectOutput) -> Option<u64> {
    crate::store::parse_content_hash(out.metadata()?.get("content-hash")?)
}

impl S3Store {
    /// Every object under `prefix` (all pages); with a delimiter, only
    /// those directly under it.
    #[cfg(test)]
    pub(super) async fn list_all(&self, prefix: &str, delimiter: Option<&str>) -> Result<Vec<Object>, StoreError> {
        self.list_parsed(prefix, delimiter, usize::MAX, |_, object| Some(object.clone())).await
    }

    /// What `parse` makes of the objects under `prefix` (given the key
    /// without the prefix), in key order, paging only until `enough` are
    /// parsed; with a delimiter, only the objects directly under `prefix`.
    async fn list_parsed<T>(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        enough: usize,
        parse: impl Fn(&str, &Object) -> Option<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        while found.len() < enough {
            let wanted = (enough - found.len()).min(MAX_KEYS_PER_PAGE);
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_owned))
                .max_keys(i32::try_from(wanted).unwrap_or(i32::MAX))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", &self.bucket, prefix, &e))?;
            found.extend(out.contents().iter().filter_map(|o| parse(o.key()?.strip_prefix(prefix)?, o)));
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        found.truncate(enough);
        Ok(found)
    }

    /// Seq and size of the chunk objects of a session with the lowest seqs,
    /// at most `enough` of them.
    pub(super) async fn chunk_sizes(
        &self,
        session_id: &SessionId,
        enough: usize,
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        let prefix = self.session_prefix(session_id);
        self.list_parsed(&prefix, Some("/"), enough, |name, o| {
            Some((parse_chunk_name(name)?, u64::try_from(o.size()?).ok()?))
        })
        .await
    }

    pub(super) async fn read_manifest(
        &self,
        session_id: &SessionId,
        max_chunks: usize,
    ) -> Result<ChunkListing, StoreError> {
        let index_prefix = format!("{}index/", self.session_prefix(session_id));
        // One more than asked for tells whether there are more.
        let enough = max_chunks.saturating_add(1);
        let (mut sizes, entries) = tokio::try_join!(
            self.chunk_sizes(session_id, enough),
            // The entries are flat under `index/`: the delimiter changes
            // nothing on S3, and spares servers that walk their directory
            // tree for a listing (s3s-fs) the descent into other sessions.
            self.list_parsed(&index_prefix, Some("/"), enough, |name, _| parse_chunk_index_name(name)),
        )?;
        let truncated = sizes.len() > max_chunks;
        sizes.truncate(max_chunks);
        let indexed: HashMap<u32, ChunkInfo> = entries.into_iter().map(|info| (info.seq, info)).collect();

        let mut chunks = Vec::with_capacity(sizes.len());
        let mut unindexed = Vec::new();
        for (seq, size) in sizes {
            match indexed.get(&seq) {
                // An entry that disagrees with the object is not trusted.
                Some(info) if info.bytes == size => chunks.push(*info),
                _ => unindexed.push(seq),
            }
        }
        if !unindexed.is_empty() {
            tracing::debug!(session_id = session_id.as_str(), chunks = unindexed.len(), "chunks without index entry");
            let found: Vec<Option<ChunkInfo>> = stream::iter(unindexed)
                .map(|seq| self.head_and_index(session_id, seq))
                .buffer_unordered(PARALLEL_REQUESTS)
                .try_collect()
                .await?;
            chunks.extend(found.into_iter().flatten());
        }
        chunks.sort_unstable_by_key(|c| c.seq);
        Ok(ChunkListing { chunks, truncated })
    }

    /// A chunk's manifest line from its metadata; also writes its missing
    /// index entry so the next manifest is one listing again.
    async fn head_and_index(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkInfo>, StoreError> {
        let key = self.key(session_id, seq);
        let out = match self.client.head_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => out,
            // Gone since the listing.
            Err(e) if status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(s3_error("HeadObject", &self.bucket, &key, &e)),
        };
        let Some(info) = chunk_info_from_head(seq, &out) else {
            // Left out, so the player shows a gap rather than a wrong timeline.
            tracing::warn!(session_id = session_id.as_str(), seq, "chunk object has no Observer metadata; left out");
            return Ok(None);
        };
        // Best effort: a read-only replica still answers the manifest.
        if let Err(e) = self.put_chunk_index(session_id, &info).await {
            tracing::debug!(session_id = session_id.as_str(), seq, error = %e, "cannot repair the chunk index entry");
        }
        Ok(Some(info))
    }

    /// The details of the listing entry of the session that started at `start`.
    pub(super) async fn read_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        self.session_details(&format!("{}{}", self.sessions_prefix(), session_entry_name(session_id, start))).await
    }

    /// A session entry's body; `None` if there is none (or it vanished
    /// since the listing).
    async fn session_details(&self, key: &str) -> Result<Option<SessionDetails>, StoreError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let body = out.body.collect().await.map_err(|e| StoreError::S3(format!("GetObject {key}: {e}")))?;
                Ok(Some(SessionEntry::details_from_json(&body.into_bytes())))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error("GetObject", &self.bucket, key, &e)),
        }
    }

    pub(super) async fn read_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        let key = self.key(session_id, seq);
        let out = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) || status(&e) == Some(404) => {
                return Ok(None);
            }
            Err(e) => return Err(s3_error("GetObject", &self.bucket, &key, &e)),
        };
        let etag = out.e_tag().map(str::to_owned);
        let body = out.body.collect().await.map_err(|e| StoreError::S3(format!("GetObject {key}: {e}")))?;
        let gzip = body.into_bytes();
        let etag = chunk_etag(&key, etag.as_deref(), gzip.len() as u64);
        Ok(Some(ChunkObject { etag, gzip }))
    }

    /// The ETag [`S3Store::read_chunk`] gives, from `HeadObject` (no body).
    pub(super) async fn read_chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        let key = self.key(session_id, seq);
        match self.client.head_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => {
                let size = out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                Ok(Some(chunk_etag(&key, out.e_tag(), size)))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) || status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error("HeadObject", &self.bucket, &key, &e)),
        }
    }
}

#[async_trait::async_trait]
impl EntrySource for S3Store {
    async fn entry_names(&self, after: Option<&str>, max: usize) -> Result<(Vec<String>, bool), StoreError> {
        let prefix = self.sessions_prefix();
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(i32::try_from(max.min(MAX_KEYS_PER_PAGE)).unwrap_or(i32::MAX))
            .set_start_after(after.map(|after| format!("{prefix}{after}")))
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", &self.bucket, &prefix, &e))?;
        let names = out.contents().iter().filter_map(|o| Some(o.key()?.strip_prefix(&prefix)?.to_owned())).collect();
        Ok((names, out.is_truncated() == Some(true)))
    }

    async fn entry_details(&self, name: &str) -> Result<Option<SessionDetails>, StoreError> {
        self.session_details(&format!("{}{name}", self.sessions_prefix())).await
    }

    async fn session_stats(&self, session_id: &SessionId) -> Result<SessionStats, StoreError> {
        let index_prefix = format!("{}index/", self.session_prefix(session_id));
        let (sizes, entries) = tokio::try_join!(
            self.chunk_sizes(session_id, usize::MAX),
            self.list_parsed(&index_prefix, None, usize::MAX, |name, _| parse_chunk_index_name(name)),
        )?;
        let stored: HashMap<u32, u64> = sizes.into_iter().collect();
        let mut stats = SessionStats { chunks: u32::try_from(stored.len()).unwrap_or(u32::MAX), ..Default::default() };
        // Only entries that match a stored chunk, as in the manifest.
        for info in entries.iter().filter(|info| stored.get(&info.seq) == Some(&info.bytes)) {
            stats.add(info);
        }
        Ok(stats)
    }
}

/// A chunk's strong entity tag: S3's, quoted if the server left the quotes
/// out; without a usable one, a hash of key and size (which name the
/// immutable bytes too). GET and HEAD give the same tag.
fn chunk_etag(key: &str, s3_etag: Option<&str>, size: u64) -> String {
    match s3_etag {
        Some(tag) if tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2 => tag.to_owned(),
        Some(tag) if !tag.is_empty() && !tag.contains('"') => format!("\"{tag}\""),
        _ => format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(format!("{key}/{size}").as_bytes())),
    }
}
