//! The read side of the local store (blocking; called on the blocking pool).
//!
//! - Listing: `read_dir("sessions")`, names sorted (newest first by
//!   construction), those after the cursor, `limit` of them; then each
//!   entry's body and its session directory's chunk count.
//! - Manifest: `read_dir("replays/{sid}")`, then the sidecars of the lowest
//!   seqs only, as many as asked for; and the session's listing entry, named
//!   by chunk 0's first timestamp (one `read`).
//! - Chunk: the file itself; its ETag is derived from session, seq and size,
//!   which identify the immutable bytes, so a `stat` gives it without
//!   reading the file.

use std::fs;
use std::io;
use std::path::Path;

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use super::{SESSIONS_DIR, Sidecar, sidecar_path};
use crate::payload::SessionId;
use crate::store::index::{SessionEntry, parse_session_entry_name};
use crate::store::{
    ChunkInfo, ChunkListing, ChunkMeta, ChunkObject, SessionCursor, SessionDetails, SessionPage, SessionSummary,
    StoreError,
};

/// File names in `dir`, or none if it does not exist.
fn names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        // Non-UTF-8 names are never ours.
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

pub fn list_sessions(root: &Path, limit: usize, after: Option<&SessionCursor>) -> Result<SessionPage, StoreError> {
    let after = after.map(SessionCursor::entry_name);
    let mut entries: Vec<String> = names(&root.join(SESSIONS_DIR))?
        .into_iter()
        .filter(|name| after.as_ref().is_none_or(|after| name > after))
        .filter(|name| parse_session_entry_name(name).is_some())
        .collect();
    entries.sort_unstable();
    // The same "is there more" rule as S3's IsTruncated.
    let more = entries.len() > limit;
    entries.truncate(limit);

    let mut sessions = Vec::with_capacity(entries.len());
    let mut next_cursor = None;
    for name in &entries {
        let Some((session_id, start, cursor)) = parse_session_entry_name(name) else { continue };
        let details = match fs::read(root.join(SESSIONS_DIR).join(name)) {
            Ok(body) => SessionEntry::details_from_json(&body),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let chunks = count_chunks(&root.join("replays").join(session_id.as_str()))?;
        sessions.push(SessionSummary { session_id, start, details, chunks });
        next_cursor = Some(cursor);
    }
    Ok(SessionPage { sessions, next_cursor: next_cursor.filter(|_| more) })
}

fn count_chunks(dir: &Path) -> io::Result<u32> {
    let count = names(dir)?.iter().filter(|n| crate::store::parse_chunk_name(n).is_some()).count();
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The sidecars of the `max_chunks` lowest seqs in `dir`; the directory
/// listing is read whole (one `read_dir`), the sidecars only as needed.
pub fn list_chunks(dir: &Path, max_chunks: usize) -> Result<ChunkListing, StoreError> {
    let mut stored: Vec<(u32, String)> =
        names(dir)?.into_iter().filter_map(|name| Some((crate::store::parse_chunk_name(&name)?, name))).collect();
    stored.sort_unstable();
    let mut chunks = Vec::new();
    for (seq, name) in &stored {
        if chunks.len() == max_chunks {
            // This chunk and maybe others are left out.
            return Ok(ChunkListing { chunks, truncated: true });
        }
        let (seq, chunk) = (*seq, dir.join(name));
        match fs::read(sidecar_path(&chunk)) {
            Ok(body) => match serde_json::from_slice::<Sidecar>(&body) {
                Ok(s) => chunks.push(ChunkInfo {
                    seq,
                    meta: ChunkMeta {
                        first_timestamp: s.first_timestamp,
                        last_timestamp: s.last_timestamp,
                        events: s.events,
                    },
                    bytes: s.bytes,
                }),
                // Left out, so the player shows a gap rather than a wrong timeline.
                Err(e) => {
                    tracing::warn!(path = %chunk.display(), error = %e, "unreadable chunk sidecar; chunk left out")
                }
            },
            // Removed between read_dir and now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ChunkListing { chunks, truncated: false })
}

/// The details in a session's listing entry; `None` if there is none.
pub fn session_details(entry: &Path) -> Result<Option<SessionDetails>, StoreError> {
    match fs::read(entry) {
        Ok(body) => Ok(Some(SessionEntry::details_from_json(&body))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn get_chunk(chunk: &Path, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
    let gzip = match fs::read(chunk) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(ChunkObject { etag: local_etag(session_id, seq, gzip.len() as u64), gzip }))
}

/// The tag [`get_chunk`] gives, from the file's size alone.
pub fn chunk_etag(chunk: &Path, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
    match fs::metadata(chunk) {
        Ok(md) => Ok(Some(local_etag(session_id, seq, md.len()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A stored chunk never changes, so (session, seq, size) names its bytes.
fn local_etag(session_id: &SessionId, seq: u32, size: u64) -> String {
    format!("\"{:016x}\"", xxh3_64(format!("{}/{seq}/{size}", session_id.as_str()).as_bytes()))
}
