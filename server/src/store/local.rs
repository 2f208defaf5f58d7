//! Replay chunks in a local directory.
//!
//! Layout under the data directory, for each chunk:
//! - `replays/{session_id}/{seq:010}.json.gz`: the gzip body as received;
//! - `replays/{session_id}/{seq:010}.meta.json`: `{"first_timestamp","last_timestamp","events","bytes"}`.
//!
//! A session directory may also hold `.lock` (see below) and, briefly, `.tmp-*`
//! files; anything reading the directory should only look at the two names above.
//!
//! Writes are idempotent and safe under concurrent re-sends:
//! 1. take an exclusive advisory lock on `replays/{session_id}/.lock`, so re-sends
//!    of one chunk (from this or another process) go one at a time;
//! 2. if the chunk exists, answer `AlreadyExists` without touching anything
//!    (also checked before step 1, to answer common re-sends without a lock);
//! 3. write the sidecar to a temp file and rename it into place (replacing any
//!    sidecar left behind by a write that crashed before step 4);
//! 4. write the body to a temp file, fsync it and `hard_link` it to its final
//!    name. The link is the commit point: it fails atomically if the name exists,
//!    so an existing chunk is never replaced even without the lock. The
//!    directory is then fsynced, so an acknowledged chunk survives a power cut.
//!
//! The sidecar is in place before the chunk appears, so a visible chunk always
//! has its metadata, and the lock keeps a losing re-send from replacing the
//! sidecar of the chunk that won. All file I/O runs on the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{ChunkMeta, PutOutcome, ReplayStore, StoreError, chunk_key};
use crate::payload::SessionId;

/// The sidecar file beside each chunk.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Sidecar {
    first_timestamp: i64,
    last_timestamp: i64,
    events: u32,
    /// Size of the gzip body in bytes.
    bytes: u64,
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
        gzip_body: Bytes,
        meta: ChunkMeta,
    ) -> Result<PutOutcome, StoreError> {
        let chunk = self.root.join(chunk_key("", session_id, seq));
        let outcome = run_blocking(move || put_blocking(&chunk, &gzip_body, meta)).await?;
        tracing::debug!(session_id = session_id.as_str(), seq, ?outcome, "stored replay chunk locally");
        Ok(outcome)
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

fn put_blocking(chunk: &Path, body: &[u8], meta: ChunkMeta) -> Result<PutOutcome, StoreError> {
    // Cheap answer for the common re-send, before creating or locking anything.
    if chunk.try_exists()? {
        return Ok(PutOutcome::AlreadyExists);
    }
    let dir = chunk.parent().expect("chunk keys have a directory");
    let replays = dir.parent().expect("chunk keys are under replays/");
    // `replays/` then the session directory, but never the data directory
    // itself: if it vanished (an unmounted volume), fail rather than refill it.
    create_dir_once(replays)?;
    let new_session = create_dir_once(dir)?;

    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
    lock.lock()?;
    // Released when `lock` is dropped at the end of this function.

    if chunk.try_exists()? {
        return Ok(PutOutcome::AlreadyExists);
    }

    let sidecar = Sidecar {
        first_timestamp: meta.first_timestamp,
        last_timestamp: meta.last_timestamp,
        events: meta.events,
        bytes: body.len() as u64,
    };
    let sidecar_json = serde_json::to_vec(&sidecar).map_err(io::Error::other)?;
    write_temp(dir, &sidecar_json)?.rename_to(&sidecar_path(chunk))?;

    let body_tmp = write_temp(dir, body)?;
    let outcome = match fs::hard_link(body_tmp.path(), chunk) {
        Ok(()) => PutOutcome::Created,
        // Only reachable if a writer ignored the lock (e.g. a file system
        // without advisory locks): the existing chunk wins and is left alone.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => PutOutcome::AlreadyExists,
        Err(e) => return Err(e.into()),
    };
    drop(body_tmp);
    if outcome == PutOutcome::Created {
        sync_dir(dir)?;
        if new_session {
            sync_dir(replays)?;
        }
    }
    Ok(outcome)
}

/// Creates `dir` if it is missing (its parent must exist); true if it did.
fn create_dir_once(dir: &Path) -> io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A temp file that is removed when dropped, unless renamed into place.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().expect("temp file not yet renamed")
    }

    fn rename_to(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(self.path(), dest)?;
        self.0 = None;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes `data` to a new uniquely named file in `dir` and flushes it to disk.
fn write_temp(dir: &Path, data: &[u8]) -> io::Result<TempFile> {
    let (mut file, path) = create_unique(dir, ".tmp-")?;
    let temp = TempFile(Some(path));
    file.write_all(data)?;
    file.sync_data()?;
    Ok(temp)
}

fn create_unique(dir: &Path, prefix: &str) -> io::Result<(File, PathBuf)> {
    let mut attempts = 0;
    loop {
        let path = dir.join(format!("{prefix}{:016x}", fastrand::u64(..)));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
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
    let (mut file, path) = create_unique(root, ".probe-").map_err(|e| {
        StoreError::Io(io::Error::new(e.kind(), format!("data directory {} is not writable: {e}", root.display())))
    })?;
    let written = file.write_all(b"probe");
    drop(file);
    let removed = fs::remove_file(&path);
    written?;
    removed?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    const META: ChunkMeta =
        ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_004_321, events: 42 };

    fn read_sidecar(path: &Path) -> Sidecar {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// Names in a session directory other than `.lock`.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".lock")
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn put_creates_chunk_and_sidecar() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().join("nested/data")).unwrap();
        let body = Bytes::from_static(b"\x1f\x8b gzip bytes");

        let outcome = store.put_chunk(&sid("session-0001"), 7, body.clone(), META).await.unwrap();

        assert_eq!(outcome, PutOutcome::Created);
        let dir = store.root().join("replays/session-0001");
        assert_eq!(fs::read(dir.join("0000000007.json.gz")).unwrap(), body);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("0000000007.meta.json")).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "first_timestamp": 1_700_000_000_000_i64,
                "last_timestamp": 1_700_000_004_321_i64,
                "events": 42,
                "bytes": body.len(),
            })
        );
        assert_eq!(entries(&dir), ["0000000007.json.gz", "0000000007.meta.json"], "no temp files left");
    }

    #[tokio::test]
    async fn re_put_keeps_original() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().to_owned()).unwrap();
        let id = sid("session-0002");
        store.put_chunk(&id, 0, Bytes::from_static(b"original"), META).await.unwrap();

        let other = ChunkMeta { events: 1, ..META };
        let outcome = store.put_chunk(&id, 0, Bytes::from_static(b"different"), other).await.unwrap();

        assert_eq!(outcome, PutOutcome::AlreadyExists);
        let dir = store.root().join("replays/session-0002");
        assert_eq!(fs::read(dir.join("0000000000.json.gz")).unwrap(), b"original");
        assert_eq!(read_sidecar(&dir.join("0000000000.meta.json")).events, 42);
        // Another seq of the same session is still a new chunk.
        let outcome = store.put_chunk(&id, 1, Bytes::from_static(b"next"), META).await.unwrap();
        assert_eq!(outcome, PutOutcome::Created);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_puts_create_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(tmp.path().to_owned()).unwrap());
        let id = sid("session-0003");

        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    let body = Bytes::from(format!("body from task {i}"));
                    let outcome = store.put_chunk(&id, 3, body, ChunkMeta { events: i, ..META }).await.unwrap();
                    (i, outcome)
                })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            let (i, outcome) = task.await.unwrap();
            if outcome == PutOutcome::Created {
                created.push(i);
            }
        }

        assert_eq!(created.len(), 1, "exactly one put wins: {created:?}");
        let winner = created[0];
        let dir = store.root().join("replays/session-0003");
        assert_eq!(fs::read(dir.join("0000000003.json.gz")).unwrap(), format!("body from task {winner}").as_bytes());
        assert_eq!(read_sidecar(&dir.join("0000000003.meta.json")).events, winner, "sidecar belongs to the winner");
        assert_eq!(entries(&dir), ["0000000003.json.gz", "0000000003.meta.json"], "no temp files left");
    }

    #[tokio::test]
    async fn leftover_sidecar_without_chunk_is_replaced() {
        // A write that crashed between the sidecar rename and the chunk link.
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().to_owned()).unwrap();
        let dir = store.root().join("replays/session-0004");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("0000000009.meta.json"), b"{\"stale\":true}").unwrap();

        let outcome = store.put_chunk(&sid("session-0004"), 9, Bytes::from_static(b"gz"), META).await.unwrap();

        assert_eq!(outcome, PutOutcome::Created);
        assert_eq!(read_sidecar(&dir.join("0000000009.meta.json")).bytes, 2);
    }

    #[tokio::test]
    async fn check_ok_and_describe() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().to_owned()).unwrap();
        store.check().await.unwrap();
        assert_eq!(fs::read_dir(store.root()).unwrap().count(), 0, "probe file removed");
        let described = store.describe();
        assert!(described.starts_with("local directory /"), "{described}");
    }

    #[tokio::test]
    async fn check_fails_when_dir_missing_or_not_a_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().join("data")).unwrap();
        fs::remove_dir(tmp.path().join("data")).unwrap();
        let err = store.check().await.unwrap_err();
        assert!(err.to_string().contains("data"), "{err}");
        assert!(store.put_chunk(&sid("session-0005"), 0, Bytes::from_static(b"x"), META).await.is_err());
        assert!(!tmp.path().join("data").exists(), "a put does not recreate a vanished data directory");

        fs::write(tmp.path().join("data"), b"a file").unwrap();
        let err = store.check().await.unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert!(store.put_chunk(&sid("session-0005"), 0, Bytes::from_static(b"x"), META).await.is_err());
    }

    /// `/proc/self` is a directory nobody (root included) can create files in,
    /// which permission bits cannot give us when tests run as root.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn check_fails_when_dir_unwritable() {
        let store = LocalStore::new(PathBuf::from("/proc/self")).unwrap();
        let err = store.check().await.unwrap_err();
        assert!(err.to_string().contains("not writable"), "{err}");
    }

    #[test]
    fn new_fails_when_path_is_a_file() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let err = LocalStore::new(tmp.path().to_owned()).unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err}");
    }

    #[test]
    fn sidecar_name() {
        assert_eq!(
            sidecar_path(Path::new("/d/replays/s/0000000012.json.gz")),
            Path::new("/d/replays/s/0000000012.meta.json")
        );
    }
}
