//! Replay chunks in a local directory.
//!
//! Layout under the data directory, for each chunk:
//! - `replays/{session_id}/{seq:010}.json.gz`: the gzip body as received;
//! - `replays/{session_id}/{seq:010}.meta.json`:
//!   `{"first_timestamp","last_timestamp","events","bytes","content_hash","pages","errors","received_at"}`
//!   (`content_hash`, 16 hex digits, and the last three (`store::ChunkStats`)
//!   are absent from chunks stored by older versions).
//!
//! A session directory may also hold `.lock` (see below) and, briefly, `.tmp-*`
//! files; anything reading the directory should only look at the two names above.
//!
//! Storing chunk 0 also writes the session's listing entry
//! `sessions/{inverted_start:013}-{session_id}.json` (see `store::index`), after
//! the chunk, from the chunk's own sidecar; a re-send of chunk 0 writes it if it
//! is missing, which repairs a crash between the two. Reads are in [`read`].
//!
//! Writes are idempotent and safe under concurrent re-sends:
//! 1. take an exclusive advisory lock on `replays/{session_id}/.lock`, so re-sends
//!    of one chunk (from this or another process) go one at a time;
//! 2. if the chunk exists, compare its sidecar with the new chunk and answer
//!    `AlreadyExists` or `Conflict` without touching anything (also checked
//!    before step 1, to answer common re-sends without a lock);
//! 3. write the sidecar to a temp file and rename it into place (replacing any
//!    sidecar left behind by a write that crashed before step 4);
//! 4. write the body to a temp file, fsync it and move it to its final name
//!    with `tempfile`'s `persist_noclobber` (`renameat2(RENAME_NOREPLACE)`, or
//!    link-then-unlink where that is missing). That is the commit point: it
//!    fails atomically if the name exists, so an existing chunk is never
//!    replaced even without the lock. The
//!    directory is then fsynced, so an acknowledged chunk survives a power cut.
//!
//! The sidecar is in place before the chunk appears, so a visible chunk always
//! has its metadata, and the lock keeps a losing re-send from replacing the
//! sidecar of the chunk that won. The retention [`sweep`] deletes a session
//! under the same lock by renaming its directory away; a put that then gets
//! the lock sees its lock file gone from the session path and starts again
//! in a new directory. All file I/O runs on the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::index::{SessionEntry, session_entry_name};
use super::{
    ChunkListing, ChunkMeta, ChunkObject, ChunkStats, NewChunk, PutOutcome, ReplayStore, SessionDetails, SessionPage,
    SessionQuery, StoreError, chunk_key, content_hash_text, parse_content_hash,
};
use crate::payload::SessionId;

mod read;
pub mod sweep;

/// Directory of the session listing entries, under the data directory.
const SESSIONS_DIR: &str = "sessions";

/// The sidecar file beside each chunk.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Sidecar {
    first_timestamp: i64,
    last_timestamp: i64,
    events: u32,
    /// Size of the gzip body in bytes.
    bytes: u64,
    /// See [`crate::store::content_hash_text`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_hash: Option<String>,
    #[serde(default)]
    pages: u32,
    #[serde(default)]
    errors: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received_at: Option<i64>,
}

impl Sidecar {
    fn meta(&self) -> ChunkMeta {
        ChunkMeta { first_timestamp: self.first_timestamp, last_timestamp: self.last_timestamp, events: self.events }
    }

    fn stats(&self) -> ChunkStats {
        ChunkStats { pages: self.pages, errors: self.errors, received_at: self.received_at }
    }
}

/// A [`ReplayStore`] writing to a directory on the local file system.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Creates `data_dir` (and its parents) if needed. The path is made absolute
    /// so that the store does not depend on the working directory later.
    pub fn new(data_dir: PathBuf) -> Result<LocalStore, StoreError> {
        fs::create_dir_all(&data_dir)
            .map_err(|e| StoreError::Config(format!("cannot create data directory {}: {e}", data_dir.display())))?;
        let root = fs::canonicalize(&data_dir)
            .or_else(|_| std::path::absolute(&data_dir))
            .map_err(|e| StoreError::Config(format!("cannot resolve data directory {}: {e}", data_dir.display())))?;
        Ok(LocalStore { root })
    }

    /// The absolute data directory.
    #[cfg(test)]
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait::async_trait]
impl ReplayStore for LocalStore {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        new: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError> {
        let chunk = self.root.join(chunk_key("", session_id, seq));
        let (root, id, details) = (self.root.clone(), session_id.clone(), details.clone());
        let outcome = run_blocking(move || {
            let outcome = put_blocking(&chunk, &new)?;
            if seq == 0 {
                // The chunk is stored: a failure here must not make the client
                // re-send (its re-send would find the chunk and repair this).
                if let Err(e) = ensure_session_entry(&root, &id, &chunk, &details) {
                    tracing::warn!(session_id = id.as_str(), error = %e, "cannot write the session listing entry");
                }
            }
            Ok(outcome)
        })
        .await?;
        tracing::debug!(session_id = session_id.as_str(), seq, ?outcome, "stored replay chunk locally");
        Ok(outcome)
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        super::listing::list_sessions(&read::Entries { root: self.root.clone() }, query).await
    }

    async fn list_chunks(&self, session_id: &SessionId, max_chunks: usize) -> Result<ChunkListing, StoreError> {
        let dir = self.root.join("replays").join(session_id.as_str());
        run_blocking(move || read::list_chunks(&dir, max_chunks)).await
    }

    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        let entry = self.root.join(SESSIONS_DIR).join(session_entry_name(session_id, start));
        run_blocking(move || read::session_details(&entry)).await
    }

    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        let (chunk, id) = (self.root.join(chunk_key("", session_id, seq)), session_id.clone());
        run_blocking(move || read::get_chunk(&chunk, &id, seq)).await
    }

    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        let (chunk, id) = (self.root.join(chunk_key("", session_id, seq)), session_id.clone());
        run_blocking(move || read::chunk_etag(&chunk, &id, seq)).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        run_blocking(move || check_blocking(&root)).await
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(io::Error::other(format!("replay store task failed: {e}"))))?
}

/// `replays/{sid}/0000000007.json.gz` -> `replays/{sid}/0000000007.meta.json`.
fn sidecar_path(chunk: &Path) -> PathBuf {
    let name = chunk.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name.strip_suffix(".json.gz").unwrap_or(name);
    chunk.with_file_name(format!("{stem}.meta.json"))
}

/// Attempts of a put whose session directory the retention sweep removed
/// while the put waited for its lock (each attempt starts a fresh one).
const PUT_ATTEMPTS: usize = 3;

fn put_blocking(chunk: &Path, new: &NewChunk) -> Result<PutOutcome, StoreError> {
    // Cheap answer for the common re-send, before creating or locking anything.
    if chunk.try_exists()? {
        return Ok(existing_outcome(chunk, new));
    }
    for _ in 0..PUT_ATTEMPTS {
        if let Some(outcome) = put_locked(chunk, new)? {
            return Ok(outcome);
        }
    }
    Err(StoreError::Io(io::Error::other(format!(
        "the session directory of {} was removed {PUT_ATTEMPTS} times while storing a chunk",
        chunk.display()
    ))))
}

/// One attempt of [`put_blocking`]; `None` when the session directory was
/// removed (by the retention sweep) before the lock was ours.
fn put_locked(chunk: &Path, new: &NewChunk) -> Result<Option<PutOutcome>, StoreError> {
    let no_dir = || StoreError::Config(format!("chunk path {} has no session directory", chunk.display()));
    let dir = chunk.parent().ok_or_else(no_dir)?;
    let replays = dir.parent().ok_or_else(no_dir)?;
    // `replays/` then the session directory, but never the data directory
    // itself: if it vanished (an unmounted volume), fail rather than refill it.
    create_dir_once(replays)?;
    let new_session = create_dir_once(dir)?;

    let lock_path = dir.join(".lock");
    let lock = match OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) {
        Ok(lock) => lock,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    lock.lock()?;
    // Released when `lock` is dropped at the end of this function.
    if !is_at(&lock, &lock_path)? {
        return Ok(None);
    }

    if chunk.try_exists()? {
        return Ok(Some(existing_outcome(chunk, new)));
    }

    let (body, meta) = (&new.gzip, new.meta);
    let sidecar = Sidecar {
        first_timestamp: meta.first_timestamp,
        last_timestamp: meta.last_timestamp,
        events: meta.events,
        bytes: body.len() as u64,
        content_hash: Some(content_hash_text(new.content_hash)),
        pages: new.stats.pages,
        errors: new.stats.errors,
        received_at: new.stats.received_at,
    };
    let sidecar_json = serde_json::to_vec(&sidecar).map_err(io::Error::other)?;
    write_temp(dir, &sidecar_json)?.persist(sidecar_path(chunk)).map_err(|e| e.error)?;

    // A failed persist drops (removes) the temp file.
    let outcome = match write_temp(dir, body)?.persist_noclobber(chunk) {
        Ok(_) => PutOutcome::Created,
        // Only reachable if a writer ignored the lock (e.g. a file system
        // without advisory locks): the existing chunk wins and is left alone
        // (its sidecar may have been replaced by ours, so this cannot tell a
        // conflict).
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => PutOutcome::AlreadyExists,
        Err(e) => return Err(e.error.into()),
    };
    if outcome == PutOutcome::Created {
        sync_dir(dir)?;
        if new_session {
            sync_dir(replays)?;
        }
    }
    Ok(Some(outcome))
}

/// Whether `path` still names the open `file` (the retention sweep renames
/// a session directory away under its lock).
fn is_at(file: &File, path: &Path) -> io::Result<bool> {
    let linked = match fs::metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        Ok(open.dev() == linked.dev() && open.ino() == linked.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (file, linked);
        Ok(true)
    }
}

/// Compares the stored chunk's sidecar with `new`. A visible chunk always
/// has its sidecar; one that cannot be read counts as the same chunk.
fn existing_outcome(chunk: &Path, new: &NewChunk) -> PutOutcome {
    let stored = match read_sidecar(chunk) {
        Ok(sidecar) => Some((sidecar.meta(), sidecar.content_hash.as_deref().and_then(parse_content_hash))),
        Err(e) => {
            tracing::warn!(path = %chunk.display(), error = %e, "unreadable chunk sidecar; re-send taken as the same chunk");
            None
        }
    };
    PutOutcome::of_existing(stored, new)
}

fn read_sidecar(chunk: &Path) -> io::Result<Sidecar> {
    serde_json::from_slice(&fs::read(sidecar_path(chunk))?).map_err(io::Error::other)
}

/// Writes the listing entry of the session whose chunk 0 is `chunk`, unless
/// it exists. The start time comes from the stored chunk's sidecar, so a
/// re-send with other timestamps cannot add a second entry.
fn ensure_session_entry(
    root: &Path,
    session_id: &SessionId,
    chunk: &Path,
    details: &SessionDetails,
) -> Result<(), StoreError> {
    let sidecar = read_sidecar(chunk)?;
    let sessions = root.join(SESSIONS_DIR);
    let entry = sessions.join(session_entry_name(session_id, sidecar.first_timestamp));
    if entry.try_exists()? {
        return Ok(());
    }
    create_dir_once(&sessions)?;
    let body = SessionEntry::new(session_id, sidecar.first_timestamp, details).to_json();
    match write_temp(&sessions, &body)?.persist_noclobber(&entry) {
        Ok(_) => sync_dir(&sessions)?,
        // A concurrent re-send wrote it first; its entry stays.
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.error.into()),
    }
    Ok(())
}

/// Creates `dir` if it is missing (its parent must exist); true if it did.
fn create_dir_once(dir: &Path) -> io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `data` to a new uniquely named `.tmp-*` file in `dir` and flushes
/// it to disk; the file is removed when dropped, unless persisted.
fn write_temp(dir: &Path, data: &[u8]) -> io::Result<NamedTempFile> {
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(data)?;
    temp.as_file().sync_data()?;
    Ok(temp)
}

/// Makes the new directory entries durable (no-op where directories cannot be opened).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn check_blocking(root: &Path) -> Result<(), StoreError> {
    let md = fs::metadata(root)
        .map_err(|e| StoreError::Io(io::Error::new(e.kind(), format!("data directory {}: {e}", root.display()))))?;
    if !md.is_dir() {
        return Err(StoreError::Io(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("data directory {} is not a directory", root.display()),
        )));
    }
    let not_writable =
        |e: io::Error| io::Error::new(e.kind(), format!("data directory {} is not writable: {e}", root.display()));
    let mut probe = tempfile::Builder::new().prefix(".probe-").tempfile_in(root).map_err(not_writable)?;
    probe.write_all(b"probe")?;
    // Removed here (not on drop) so that a failure to remove is reported.
    probe.close()?;
    Ok(())
}

#[cfg(test)]
mod tests;
