//! The read side of the local store (blocking; called on the blocking pool).
//!
//! - Listing (`store::listing`): `read_dir("sessions")`, names sorted
//!   (newest first by construction), those after the cursor; then the
//!   entries' bodies, and for the sessions that pass the filters their
//!   totals: one `read_dir` of the session directory and every sidecar
//!   (at most `OBSERVER_MAX_SESSION_CHUNKS` small files).
//! - Manifest: `read_dir("replays/{sid}")`, then the sidecars of the lowest
//!   seqs only, as many as asked for; and the session's listing entry, named
//!   by chunk 0's first timestamp (one `read`).
//! - Chunk: the file itself; its ETag is derived from session, seq and size,
//!   which identify the immutable bytes, so a `stat` gives it without
//!   reading the file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use super::{SESSIONS_DIR, Sidecar, sidecar_path};
use crate::payload::SessionId;
use crate::store::index::SessionEntry;
use crate::store::listing::EntrySource;
use crate::store::{ChunkInfo, ChunkListing, ChunkObject, SessionDetails, SessionStats, StoreError};

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

/// The session listing's view of the data directory.
pub struct Entries {
    pub root: PathBuf,
}

#[async_trait::async_trait]
impl EntrySource for Entries {
    async fn entry_names(&self, after: Option<&str>, max: usize) -> Result<(Vec<String>, bool), StoreError> {
        let (dir, after) = (self.root.join(SESSIONS_DIR), after.map(str::to_owned));
        super::run_blocking(move || {
            let mut entries: Vec<String> =
                names(&dir)?.into_iter().filter(|name| after.as_ref().is_none_or(|after| name > after)).collect();
            entries.sort_unstable();
            let more = entries.len() > max;
            entries.truncate(max);
            Ok((entries, more))
        })
        .await
    }

    async fn entry_details(&self, name: &str) -> Result<Option<SessionDetails>, StoreError> {
        let entry = self.root.join(SESSIONS_DIR).join(name);
        super::run_blocking(move || session_details(&entry)).await
    }

    async fn session_stats(&self, session_id: &SessionId) -> Result<SessionStats, StoreError> {
        let dir = self.root.join("replays").join(session_id.as_str());
        super::run_blocking(move || {
            let listing = list_chunks(&dir, usize::MAX)?;
            let mut stats = SessionStats::default();
            for info in &listing.chunks {
                stats.add(info);
            }
            // Chunks whose sidecar was unreadable still count as chunks.
            stats.chunks = count_chunks(&dir)?;
            Ok(stats)
        })
        .await
    }
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
                Ok(s) => chunks.push(ChunkInfo { seq, meta: s.meta(), bytes: s.bytes, stats: s.stats() }),
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
