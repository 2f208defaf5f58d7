//! The sweep on a temp directory, with file times set in the past.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::store::{ChunkMeta, LocalStore, NewChunk, ReplayStore, SessionDetails};

const DAY: Duration = Duration::from_secs(86_400);

fn sid(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

async fn put(store: &LocalStore, id: &str, seq: u32) {
    let meta = ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_001_000, events: 2 };
    let chunk = NewChunk {
        gzip: Bytes::from(format!("{id}/{seq}")),
        meta,
        stats: Default::default(),
        content_hash: u64::from(seq),
    };
    store.put_chunk(&sid(id), seq, chunk, &SessionDetails::default()).await.unwrap();
}

fn set_mtime(path: &Path, time: SystemTime) {
    File::open(path).unwrap().set_modified(time).unwrap();
}

/// Dates every file of a session, then its directory, `days` back.
fn age_session(root: &Path, id: &str, days: u32) {
    let time = SystemTime::now() - DAY * days;
    let dir = root.join("replays").join(id);
    for entry in fs::read_dir(&dir).unwrap() {
        set_mtime(&entry.unwrap().path(), time);
    }
    set_mtime(&dir, time);
}

fn listing(root: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(root.join("sessions")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn cutoff(days: u32) -> SystemTime {
    SystemTime::now() - DAY * days
}

static GO: AtomicBool = AtomicBool::new(false);

#[tokio::test]
async fn old_sessions_go_whole_recent_ones_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let root = store.root().to_owned();
    for seq in 0..3 {
        put(&store, "session-old-1", seq).await;
        put(&store, "session-new-1", seq).await;
    }
    put(&store, "session-old-2", 0).await;
    age_session(&root, "session-old-1", 40);
    age_session(&root, "session-old-2", 31);
    age_session(&root, "session-new-1", 29);
    assert_eq!(listing(&root).len(), 3);

    let outcome = sweep(&root, cutoff(30), 100, &GO).unwrap();

    assert_eq!(outcome, SweepOutcome { sessions_deleted: 2, ..SweepOutcome::default() });
    assert!(!root.join("replays/session-old-1").exists());
    assert!(!root.join("replays/session-old-2").exists());
    assert_eq!(store.list_chunks(&sid("session-new-1"), 10).await.unwrap().chunks.len(), 3);
    let listed = listing(&root);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].ends_with("-session-new-1.json"));
    let left: Vec<_> = fs::read_dir(root.join("replays")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["session-new-1"], "no trash left");

    assert_eq!(sweep(&root, cutoff(30), 100, &GO).unwrap(), SweepOutcome::default(), "nothing more to do");
}

#[tokio::test]
async fn a_chunk_that_arrived_since_the_directory_scan_keeps_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let root = store.root().to_owned();
    put(&store, "session-busy", 0).await;
    put(&store, "session-busy", 1).await;
    age_session(&root, "session-busy", 40);
    // As if chunk 1 had been linked after the directory was looked at.
    set_mtime(&root.join(chunk_key("", &sid("session-busy"), 1)), SystemTime::now());

    let outcome = sweep(&root, cutoff(30), 100, &GO).unwrap();

    assert_eq!(outcome.sessions_kept, 1);
    assert_eq!(outcome.sessions_deleted, 0);
    assert_eq!(store.list_chunks(&sid("session-busy"), 10).await.unwrap().chunks.len(), 2);
}

#[tokio::test]
async fn a_put_waiting_for_the_lock_of_a_deleted_session_starts_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(tmp.path().to_owned()).unwrap());
    let root = store.root().to_owned();
    put(&store, "session-late", 0).await;
    let dir = root.join("replays/session-late");
    // The sweep's side: the session's lock, held.
    let lock = File::options().write(true).open(dir.join(".lock")).unwrap();
    lock.lock().unwrap();

    let writer = store.clone();
    let late = tokio::spawn(async move { put(&writer, "session-late", 1).await });
    // Let the put reach the lock and wait there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!late.is_finished(), "the put waits for the lock");
    fs::rename(&dir, root.join("replays/.trash-test")).unwrap();
    drop(lock);
    late.await.unwrap();

    let chunks = store.list_chunks(&sid("session-late"), 10).await.unwrap().chunks;
    assert_eq!(chunks.iter().map(|c| c.seq).collect::<Vec<_>>(), [1], "the late chunk is stored, in a new directory");
}

#[tokio::test]
async fn one_sweep_is_bounded_and_leftovers_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let root = store.root().to_owned();
    for n in 0..5 {
        let id = format!("session-bulk-{n}");
        put(&store, &id, 0).await;
        age_session(&root, &id, 40);
    }
    // An interrupted sweep: a trash directory and an entry whose session is gone.
    fs::create_dir_all(root.join("replays/.trash-session-x-1/sub")).unwrap();
    put(&store, "session-gone", 0).await;
    fs::remove_dir_all(root.join("replays/session-gone")).unwrap();

    let first = sweep(&root, cutoff(30), 2, &GO).unwrap();
    assert_eq!((first.sessions_deleted, first.more), (2, true));
    assert!(!root.join("replays/.trash-session-x-1").exists());
    assert_eq!(first.orphan_entries_deleted, 1, "the deleted sessions took their entries with them");

    let second = sweep(&root, cutoff(30), 100, &GO).unwrap();
    assert_eq!((second.sessions_deleted, second.more), (3, false));
    assert!(listing(&root).is_empty());

    let stop = AtomicBool::new(true);
    put(&store, "session-stop", 0).await;
    age_session(&root, "session-stop", 40);
    let stopped = sweep(&root, cutoff(30), 100, &stop).unwrap();
    assert_eq!((stopped.sessions_deleted, stopped.more), (0, true));
}
