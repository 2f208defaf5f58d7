//! The read side of the S3 store.
//!
//! - Manifest: two listings at once, `replays/{sid}/` with delimiter `/`
//!   (the chunks and their sizes) and `replays/{sid}/index/` (each chunk's
//!   metadata in its key). Up to 1000 chunks that is one round trip, so a
//!   720-chunk session needs two concurrent requests instead of 720 HEADs.
//!   A chunk without a matching index entry (written by an older version, or
//!   the entry's write failed) costs one `HeadObject`, at most
//!   [`PARALLEL_REQUESTS`] at a time, and its entry is written then.
//! - Listing: one `ListObjectsV2` of `sessions/` (`max-keys` = limit,
//!   `start-after` = cursor), then for each session its entry body and a
//!   chunk count, [`PARALLEL_REQUESTS`] sessions at a time.
//! - Chunk: `GetObject`; the ETag is S3's (an MD5 of the immutable bytes).

use std::collections::HashMap;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::Object;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{S3Store, s3_error, status};
use crate::payload::SessionId;
use crate::store::index::{SessionEntry, parse_chunk_index_name, parse_session_entry_name};
use crate::store::{
    ChunkInfo, ChunkMeta, ChunkObject, SessionCursor, SessionDetails, SessionPage, SessionSummary, StoreError,
    parse_chunk_name,
};

/// Requests one read sends to S3 at the same time.
const PARALLEL_REQUESTS: usize = 16;

/// The manifest line of a chunk from its `HeadObject` answer.
pub(super) fn chunk_info_from_head(seq: u32, out: &HeadObjectOutput) -> Option<ChunkInfo> {
    let metadata = out.metadata()?;
    let field = |name: &str| metadata.get(name).and_then(|v| v.parse::<i64>().ok());
    Some(ChunkInfo {
        seq,
        meta: ChunkMeta {
            first_timestamp: field("first-timestamp")?,
            last_timestamp: field("last-timestamp")?,
            events: u32::try_from(field("events")?).ok()?,
        },
        bytes: u64::try_from(out.content_length()?).ok()?,
    })
}

impl S3Store {
    /// Every object under `prefix` (all pages); with a delimiter, only
    /// those directly under it.
    pub(super) async fn list_all(&self, prefix: &str, delimiter: Option<&str>) -> Result<Vec<Object>, StoreError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", &self.bucket, prefix, &e))?;
            objects.extend(out.contents().iter().cloned());
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(objects),
            }
        }
    }

    /// Seq and size of each chunk object of a session.
    async fn chunk_sizes(&self, session_id: &SessionId) -> Result<Vec<(u32, u64)>, StoreError> {
        let prefix = self.session_prefix(session_id);
        let objects = self.list_all(&prefix, Some("/")).await?;
        Ok(objects
            .iter()
            .filter_map(|o| {
                let seq = parse_chunk_name(o.key()?.strip_prefix(&prefix)?)?;
                Some((seq, u64::try_from(o.size()?).ok()?))
            })
            .collect())
    }

    pub(super) async fn read_manifest(&self, session_id: &SessionId) -> Result<Vec<ChunkInfo>, StoreError> {
        let index_prefix = format!("{}index/", self.session_prefix(session_id));
        let (sizes, entries) = tokio::try_join!(self.chunk_sizes(session_id), self.list_all(&index_prefix, None))?;
        let indexed: HashMap<u32, ChunkInfo> = entries
            .iter()
            .filter_map(|o| parse_chunk_index_name(o.key()?.strip_prefix(&index_prefix)?))
            .map(|info| (info.seq, info))
            .collect();

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
        Ok(chunks)
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

    pub(super) async fn read_sessions(
        &self,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage, StoreError> {
        let prefix = self.sessions_prefix();
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_start_after(after.map(|cursor| format!("{prefix}{}", cursor.entry_name())))
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", &self.bucket, &prefix, &e))?;
        let more = out.is_truncated() == Some(true);
        let names: Vec<(String, SessionId, i64, SessionCursor)> = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?;
                let (id, start, cursor) = parse_session_entry_name(key.strip_prefix(&prefix)?)?;
                Some((key.to_owned(), id, start, cursor))
            })
            .collect();
        let next_cursor = names.last().map(|(_, _, _, cursor)| cursor.clone()).filter(|_| more);
        let sessions: Vec<Option<SessionSummary>> = stream::iter(names)
            .map(|(key, session_id, start, _)| async move {
                let (details, sizes) = tokio::try_join!(self.session_details(&key), self.chunk_sizes(&session_id))?;
                let chunks = u32::try_from(sizes.len()).unwrap_or(u32::MAX);
                Ok::<_, StoreError>(details.map(|details| SessionSummary { session_id, start, details, chunks }))
            })
            .buffered(PARALLEL_REQUESTS)
            .try_collect()
            .await?;
        Ok(SessionPage { sessions: sessions.into_iter().flatten().collect(), next_cursor })
    }

    /// A session entry's body; `None` if it vanished since the listing.
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
        let etag = match etag {
            Some(tag) if tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2 => tag,
            Some(tag) if !tag.is_empty() && !tag.contains('"') => format!("\"{tag}\""),
            // No usable ETag from this server: (key, size) names the immutable bytes too.
            _ => format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(format!("{key}/{}", gzip.len()).as_bytes())),
        };
        Ok(Some(ChunkObject { etag, gzip }))
    }
}
