//! Local store tests: the put path and the read side on a temp directory.
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::store::{ChunkInfo, SessionQuery};

fn sid(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

const NO_DETAILS: SessionDetails = SessionDetails { url: None, user_id: None, browser: None, os: None };

const META: ChunkMeta = ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_004_321, events: 42 };

/// A chunk whose content hash is that of its (test) body.
/// What every test chunk adds to its session's listing line.
const STATS: crate::store::ChunkStats =
    crate::store::ChunkStats { pages: 1, errors: 2, received_at: Some(1_700_000_005_000) };

fn new_chunk(body: impl Into<Bytes>, meta: ChunkMeta) -> NewChunk {
    let gzip = body.into();
    NewChunk { content_hash: xxhash_rust::xxh3::xxh3_64(&gzip), gzip, meta, stats: STATS }
}

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

    let outcome = store.put_chunk(&sid("session-0001"), 7, new_chunk(body.clone(), META), &NO_DETAILS).await.unwrap();

    assert_eq!(outcome, PutOutcome::Created);
    let dir = store.root().join("replays/session-0001");
    assert_eq!(fs::read(dir.join("0000000007.json.gz")).unwrap(), body);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("0000000007.meta.json")).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "first_timestamp": 1_700_000_000_000_i64,
            "last_timestamp": 1_700_000_004_321_i64,
            "events": 42,
            "bytes": body.len(),
            "content_hash": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&body)),
            "pages": 1,
            "errors": 2,
            "received_at": 1_700_000_005_000_i64,
        })
    );
    assert_eq!(entries(&dir), ["0000000007.json.gz", "0000000007.meta.json"], "no temp files left");
}

#[tokio::test]
async fn re_put_keeps_original_and_tells_same_from_other_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-0002");
    store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"original"), META), &NO_DETAILS).await.unwrap();

    let same = store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"original"), META), &NO_DETAILS).await.unwrap();
    assert_eq!(same, PutOutcome::AlreadyExists);
    let other = ChunkMeta { events: 1, ..META };
    let outcome =
        store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"different"), other), &NO_DETAILS).await.unwrap();

    assert_eq!(outcome, PutOutcome::Conflict);
    let dir = store.root().join("replays/session-0002");
    assert_eq!(fs::read(dir.join("0000000000.json.gz")).unwrap(), b"original");
    assert_eq!(read_sidecar(&dir.join("0000000000.meta.json")).events, 42);
    // Another seq of the same session is still a new chunk.
    let outcome = store.put_chunk(&id, 1, new_chunk(Bytes::from_static(b"next"), META), &NO_DETAILS).await.unwrap();
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
                let outcome = store
                    .put_chunk(&id, 3, new_chunk(body, ChunkMeta { events: i, ..META }), &NO_DETAILS)
                    .await
                    .unwrap();
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

    let outcome = store
        .put_chunk(&sid("session-0004"), 9, new_chunk(Bytes::from_static(b"gz"), META), &NO_DETAILS)
        .await
        .unwrap();

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
    assert!(
        store.put_chunk(&sid("session-0005"), 0, new_chunk(Bytes::from_static(b"x"), META), &NO_DETAILS).await.is_err()
    );
    assert!(!tmp.path().join("data").exists(), "a put does not recreate a vanished data directory");

    fs::write(tmp.path().join("data"), b"a file").unwrap();
    let err = store.check().await.unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert!(
        store.put_chunk(&sid("session-0005"), 0, new_chunk(Bytes::from_static(b"x"), META), &NO_DETAILS).await.is_err()
    );
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

#[tokio::test]
async fn sessions_are_listed_newest_first_with_cursor() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let details = SessionDetails {
        url: Some("https://a.example/x".into()),
        user_id: Some("user-1".into()),
        ..SessionDetails::default()
    };
    for (i, name) in ["session-old1", "session-mid2", "session-new3"].iter().enumerate() {
        let meta = ChunkMeta { first_timestamp: 1_700_000_000_000 + i as i64, ..META };
        for seq in 0..=i as u32 {
            store.put_chunk(&sid(name), seq, new_chunk(Bytes::from_static(b"gz"), meta), &details).await.unwrap();
        }
    }
    // A chunk of a session whose chunk 0 never arrived is not listed.
    store
        .put_chunk(&sid("session-nochunk0"), 1, new_chunk(Bytes::from_static(b"gz"), META), &NO_DETAILS)
        .await
        .unwrap();

    let page = store.list_sessions(&SessionQuery::page(2, None)).await.unwrap();
    let ids: Vec<&str> = page.sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["session-new3", "session-mid2"]);
    assert_eq!(page.sessions[0].stats.chunks, 3);
    assert_eq!(page.sessions[0].start, 1_700_000_000_002);
    assert_eq!(page.sessions[0].details, details);
    let cursor = page.next_cursor.expect("a second page");
    let page = store.list_sessions(&SessionQuery::page(2, Some(cursor.clone()))).await.unwrap();
    let ids: Vec<&str> = page.sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["session-old1"]);
    assert_eq!(page.next_cursor, None);
    // Exactly `limit` left: no further page is promised.
    assert_eq!(store.list_sessions(&SessionQuery::page(3, None)).await.unwrap().next_cursor, None);
}

#[tokio::test]
async fn re_sent_chunk_0_repairs_a_missing_session_entry_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-repair");
    store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"gz"), META), &NO_DETAILS).await.unwrap();
    let sessions = store.root().join("sessions");
    let entry = sessions.join("8299999999999-session-repair.json");
    assert!(entry.exists());
    fs::remove_file(&entry).unwrap();
    // The re-send has other timestamps; the stored chunk's start wins.
    let other = ChunkMeta { first_timestamp: 5, ..META };
    let outcome = store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"other"), other), &NO_DETAILS).await.unwrap();
    assert_eq!(outcome, PutOutcome::Conflict, "other content; the stored chunk stays");
    store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"other"), other), &NO_DETAILS).await.unwrap();
    assert_eq!(entries(&sessions), ["8299999999999-session-repair.json"]);
}

#[tokio::test]
async fn manifest_and_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-read1");
    assert_eq!(store.list_chunks(&id, 100).await.unwrap(), ChunkListing::default());
    assert!(store.get_chunk(&id, 0).await.unwrap().is_none());
    assert!(store.chunk_etag(&id, 0).await.unwrap().is_none());
    for seq in [2u32, 0, 10, 1] {
        let body = Bytes::from(format!("body {seq}"));
        store.put_chunk(&id, seq, new_chunk(body, ChunkMeta { events: seq, ..META }), &NO_DETAILS).await.unwrap();
    }
    let listing = store.list_chunks(&id, 100).await.unwrap();
    let seqs: Vec<u32> = listing.chunks.iter().map(|c| c.seq).collect();
    assert_eq!((seqs.as_slice(), listing.truncated), ([0, 1, 2, 10].as_slice(), false));
    assert_eq!(
        listing.chunks[3],
        ChunkInfo { seq: 10, meta: ChunkMeta { events: 10, ..META }, bytes: 7, stats: STATS }
    );

    let chunk = store.get_chunk(&id, 10).await.unwrap().unwrap();
    assert_eq!(chunk.gzip, Bytes::from_static(b"body 10"));
    assert!(chunk.etag.starts_with('"') && chunk.etag.ends_with('"') && chunk.etag.len() == 18, "{}", chunk.etag);
    assert_eq!(store.get_chunk(&id, 10).await.unwrap().unwrap().etag, chunk.etag, "stable");
    assert_ne!(store.get_chunk(&id, 2).await.unwrap().unwrap().etag, chunk.etag);
    assert_eq!(store.chunk_etag(&id, 10).await.unwrap(), Some(chunk.etag), "the same tag without reading the body");
}

#[tokio::test]
async fn manifest_cap_takes_the_lowest_seqs_and_reads_only_their_sidecars() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-capped");
    for seq in [7u32, 3, 12, 0, 5] {
        store.put_chunk(&id, seq, new_chunk(Bytes::from_static(b"gz"), META), &NO_DETAILS).await.unwrap();
    }
    let seqs = |listing: &ChunkListing| listing.chunks.iter().map(|c| c.seq).collect::<Vec<_>>();
    let listing = store.list_chunks(&id, 3).await.unwrap();
    assert_eq!((seqs(&listing), listing.truncated), (vec![0, 3, 5], true));
    let listing = store.list_chunks(&id, 5).await.unwrap();
    assert_eq!((seqs(&listing), listing.truncated), (vec![0, 3, 5, 7, 12], false), "exactly the cap");
    // Sidecars past the cap are never read: one that cannot be read at all
    // (a directory in its place) would fail the listing if it were.
    let dir = store.root().join("replays/session-capped");
    let sidecar_7 = dir.join("0000000007.meta.json");
    fs::remove_file(&sidecar_7).unwrap();
    fs::create_dir(&sidecar_7).unwrap();
    let listing = store.list_chunks(&id, 3).await.unwrap();
    assert_eq!((seqs(&listing), listing.truncated), (vec![0, 3, 5], true));
    assert!(store.list_chunks(&id, 4).await.is_err(), "read once within the cap");
    // An unparsable sidecar within the cap leaves a gap and the next chunk moves up.
    fs::remove_dir(&sidecar_7).unwrap();
    let sidecar = Sidecar {
        first_timestamp: 1,
        last_timestamp: 2,
        events: 3,
        bytes: 2,
        content_hash: None,
        pages: 0,
        errors: 0,
        received_at: None,
    };
    fs::write(&sidecar_7, serde_json::to_vec(&sidecar).unwrap()).unwrap();
    fs::write(dir.join("0000000003.meta.json"), b"not json").unwrap();
    let listing = store.list_chunks(&id, 3).await.unwrap();
    assert_eq!((seqs(&listing), listing.truncated), (vec![0, 5, 7], true));
}

#[tokio::test]
async fn session_details_from_the_entry_named_by_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-details");
    let details = SessionDetails {
        url: Some("https://a.example/x".into()),
        user_id: Some("user-3".into()),
        ..SessionDetails::default()
    };
    assert_eq!(store.get_session_details(&id, META.first_timestamp).await.unwrap(), None);
    store.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"gz"), META), &details).await.unwrap();
    assert_eq!(store.get_session_details(&id, META.first_timestamp).await.unwrap(), Some(details));
    assert_eq!(store.get_session_details(&id, META.first_timestamp + 1).await.unwrap(), None, "another start");
    assert_eq!(store.get_session_details(&sid("session-other"), META.first_timestamp).await.unwrap(), None);
}

#[tokio::test]
async fn chunks_stored_without_a_hash_are_compared_by_their_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().to_owned()).unwrap();
    let id = sid("session-oldhash");
    store.put_chunk(&id, 4, new_chunk(Bytes::from_static(b"gz"), META), &NO_DETAILS).await.unwrap();
    // As an older version wrote it: no content_hash.
    let sidecar_file = store.root().join("replays/session-oldhash/0000000004.meta.json");
    let old = Sidecar { content_hash: None, ..read_sidecar(&sidecar_file) };
    fs::write(&sidecar_file, serde_json::to_vec(&old).unwrap()).unwrap();

    let same_meta = store.put_chunk(&id, 4, new_chunk(Bytes::from_static(b"re-gzipped"), META), &NO_DETAILS).await;
    assert_eq!(same_meta.unwrap(), PutOutcome::AlreadyExists);
    let other = ChunkMeta { events: 7, ..META };
    let other_meta = store.put_chunk(&id, 4, new_chunk(Bytes::from_static(b"gz"), other), &NO_DETAILS).await;
    assert_eq!(other_meta.unwrap(), PutOutcome::Conflict);
}
