//! One retention sweep of the local directory store (blocking; run on the
//! blocking pool).
//!
//! A session is deleted whole when its newest chunk file was written before
//! the cutoff. File times are the server's receive times, so a client whose
//! clock runs late cannot get its sessions deleted early.
//!
//! 1. Candidates: session directories under `replays/` whose own mtime is
//!    before the cutoff (a directory's mtime moves whenever a chunk is
//!    linked into it, so it bounds its newest chunk: one `stat` per session).
//! 2. Each candidate, under the session's `.lock` (the lock a put takes
//!    before writing): the chunk files' mtimes are read again, and if one is
//!    recent (a chunk arrived since step 1) the session is kept. Otherwise
//!    the directory is renamed to `replays/.trash-*` (atomic: readers see
//!    the whole session or nothing), the lock is released, the listing entry
//!    is removed and the trash directory deleted.
//! 3. A put that was waiting for that lock finds its lock file no longer at
//!    `replays/{sid}/.lock` and starts again in a fresh directory
//!    (`LocalStore::put_chunk`), so a chunk arriving during a sweep is
//!    stored, never lost.
//! 4. Leftovers of an interrupted sweep are finished: `.trash-*` directories
//!    are deleted, and listing entries older than the cutoff whose session
//!    directory is gone are removed.
//!
//! At most `max_sessions` sessions are deleted per sweep; the outcome says
//! when more are due, and the caller sweeps again soon.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::{SESSIONS_DIR, Sidecar, is_at, sidecar_path};
use crate::payload::SessionId;
use crate::store::index::{parse_session_entry_name, session_entry_name};
use crate::store::{chunk_key, parse_chunk_name};

/// Name prefix of session directories being deleted (never a session id).
const TRASH_PREFIX: &str = ".trash-";

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Sessions deleted whole.
    pub sessions_deleted: u64,
    /// Candidates kept because a chunk arrived while the sweep ran.
    pub sessions_kept: u64,
    /// Listing entries removed whose session was already gone.
    pub orphan_entries_deleted: u64,
    /// Sessions that could not be deleted (logged).
    pub failures: u64,
    /// More sessions were due than one sweep deletes, or it was stopped.
    pub more: bool,
}

/// Deletes, under `root`, the sessions whose newest chunk was written before
/// `cutoff` (see the module docs). `stop` ends the sweep between sessions.
pub fn sweep(root: &Path, cutoff: SystemTime, max_sessions: usize, stop: &AtomicBool) -> io::Result<SweepOutcome> {
    let replays = root.join("replays");
    let sessions = root.join(SESSIONS_DIR);
    let mut outcome = SweepOutcome::default();

    let mut candidates = Vec::new();
    for entry in read_dir_or_empty(&replays)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with(TRASH_PREFIX) {
            remove_dir_logged(&entry.path());
            continue;
        }
        let Some(session_id) = SessionId::parse(&name) else { continue };
        let Ok(md) = entry.metadata() else { continue };
        if md.is_dir() && md.modified()? < cutoff {
            if candidates.len() == max_sessions {
                outcome.more = true;
                break;
            }
            candidates.push(session_id);
        }
    }

    for session_id in candidates {
        if stop.load(Ordering::Relaxed) {
            outcome.more = true;
            return Ok(outcome);
        }
        match delete_session(root, &session_id, cutoff) {
            Ok(true) => outcome.sessions_deleted += 1,
            Ok(false) => outcome.sessions_kept += 1,
            Err(e) => {
                outcome.failures += 1;
                tracing::warn!(session_id = session_id.as_str(), error = %e, "retention: cannot delete an expired session");
            }
        }
    }

    let cutoff_ms = unix_ms(cutoff);
    let mut orphans = 0;
    for entry in read_dir_or_empty(&sessions)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let Some((session_id, start, _)) = parse_session_entry_name(&name) else { continue };
        // The entry is written after chunk 0, so a live session always has
        // its directory; an old entry without one lost it to a sweep.
        if start < cutoff_ms && !replays.join(session_id.as_str()).try_exists()? {
            if orphans == max_sessions {
                outcome.more = true;
                break;
            }
            remove_file_if_present(&entry.path())?;
            orphans += 1;
        }
    }
    outcome.orphan_entries_deleted = orphans as u64;
    Ok(outcome)
}

/// Deletes one session if, under its lock, its newest chunk is still older
/// than `cutoff`; false when it was kept (or is already gone).
fn delete_session(root: &Path, session_id: &SessionId, cutoff: SystemTime) -> io::Result<bool> {
    let dir = root.join("replays").join(session_id.as_str());
    let lock = match OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock")) {
        Ok(lock) => lock,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    lock.lock()?;
    if !is_at(&lock, &dir.join(".lock"))? {
        // Another process deleted it while we waited.
        return Ok(false);
    }
    let mut newest = None::<SystemTime>;
    let mut first_timestamp = None;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let Some(seq) = entry.file_name().to_str().and_then(parse_chunk_name) else { continue };
        let modified = entry.metadata()?.modified()?;
        newest = Some(newest.map_or(modified, |n| n.max(modified)));
        if seq == 0 {
            first_timestamp = chunk0_first_timestamp(root, session_id);
        }
    }
    if newest.is_some_and(|newest| newest >= cutoff) {
        return Ok(false);
    }
    let trash = root.join("replays").join(format!("{TRASH_PREFIX}{}-{:016x}", session_id.as_str(), fastrand::u64(..)));
    fs::rename(&dir, &trash)?;
    drop(lock);
    if let Some(start) = first_timestamp {
        remove_file_if_present(&root.join(SESSIONS_DIR).join(session_entry_name(session_id, start)))?;
    }
    fs::remove_dir_all(&trash)?;
    Ok(true)
}

/// Chunk 0's first timestamp, which names the session's listing entry.
fn chunk0_first_timestamp(root: &Path, session_id: &SessionId) -> Option<i64> {
    let body = fs::read(sidecar_path(&root.join(chunk_key("", session_id, 0)))).ok()?;
    serde_json::from_slice::<Sidecar>(&body).ok().map(|s| s.first_timestamp)
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir_logged(path: &Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "retention: cannot remove a deleted session's directory");
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
