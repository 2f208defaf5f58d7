//! The spool against a real SQLite file in a temporary directory.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use prometheus_client::registry::Registry;

use super::*;
use crate::{
    delivery::Level,
    store::{ChunkStats, SessionDetails},
};

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&mut Registry::default()))
}

fn record(line: &str, age: Duration) -> LogRecord {
    LogRecord {
        kind: RecordKind::Error,
        level: Level::Error,
        received_at: SystemTime::now() - age,
        line: line.to_owned(),
        metadata: vec![("session_id", "s-1".to_owned()), ("fingerprint", "abc".to_owned())],
    }
}

fn chunk(session: &str, seq: u32, hash: u64) -> SpooledChunk {
    let received_at = SystemTime::now();
    let received_ms = received_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    SpooledChunk {
        session_id: session.to_owned(),
        seq,
        received_at,
        meta: ChunkMeta { first_timestamp: 1, last_timestamp: 2, events: 3 },
        content_hash: hash,
        details: SessionDetails { url: Some("https://example.test/".into()), user_id: None, browser: None, os: None },
        // The spool keeps the receive time once, in `received_at`.
        stats: ChunkStats { received_at: Some(received_ms), ..ChunkStats::default() },
        gzip: bytes::Bytes::from_static(b"\x1f\x8b-not-really"),
    }
}

fn open(dir: &std::path::Path, max_bytes: u64) -> Spool {
    Spool::open(dir, max_bytes, DeliveryTarget::Loki, metrics()).unwrap()
}

#[tokio::test]
async fn records_come_back_oldest_first_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    spool.put_records(vec![record("a", Duration::ZERO), record("b", Duration::ZERO)]).await.unwrap();
    spool.put_records(vec![record("c", Duration::ZERO)]).await.unwrap();
    let batch = spool.oldest_records(2, 1 << 20).await.unwrap();
    let lines: Vec<&str> = batch.iter().map(|r| r.record.line.as_str()).collect();
    assert_eq!(lines, ["a", "b"]);
    assert_eq!(batch[0].record.metadata, record("a", Duration::ZERO).metadata, "metadata names are kept");
    spool.delete_records(batch[0].id, batch[1].id).await.unwrap();
    assert_eq!(spool.record_backlog(), 1);
    drop(spool);

    // What was committed and not deleted is there after a restart.
    let reopened = open(dir.path(), 1 << 30);
    assert_eq!(reopened.record_backlog(), 1);
    let rest = reopened.oldest_records(10, 1 << 20).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.record.line.as_str()).collect::<Vec<_>>(), ["c"]);
    assert!(rest[0].id > batch[1].id, "ids keep growing");
}

#[tokio::test]
async fn a_full_spool_refuses_the_whole_submission_until_room_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1100);
    let big = "x".repeat(400);
    spool.put_records(vec![record(&big, Duration::ZERO)]).await.unwrap();
    let refused = spool.put_records(vec![record(&big, Duration::ZERO), record(&big, Duration::ZERO)]).await;
    assert!(matches!(refused, Err(SpoolError::Full)), "{refused:?}");
    assert_eq!(spool.record_backlog(), 1, "none of a refused submission went in");
    assert!(spool.fill_ratio() > 0.4);
    let batch = spool.oldest_records(10, 1 << 20).await.unwrap();
    spool.delete_records(batch[0].id, batch[0].id).await.unwrap();
    assert_eq!(spool.fill_ratio(), 0.0);
    spool.put_records(vec![record(&big, Duration::ZERO), record(&big, Duration::ZERO)]).await.unwrap();
}

#[tokio::test]
async fn a_chunk_is_spooled_once_with_its_start_record() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    let started = record("replay_started", Duration::ZERO);
    assert_eq!(spool.put_chunk(chunk("s-1", 0, 7), Some(started.clone())).await.unwrap(), None);
    let again = spool.put_chunk(chunk("s-1", 0, 8), Some(started)).await.unwrap();
    assert_eq!(again, Some((chunk("s-1", 0, 7).meta, 7)), "the spooled one is kept and reported");
    assert_eq!(spool.record_backlog(), 1, "one start record");
    let second = chunk("s-1", 2, 9);
    spool.put_chunk(second.clone(), None).await.unwrap();
    let listed: Vec<u32> = spool.session_chunks("s-1").await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(listed, [0, 2]);
    assert_eq!(spool.chunk("s-1", 2).await.unwrap(), Some(second), "read back as written");
    let (id, oldest) = spool.oldest_chunk().await.unwrap().unwrap();
    assert_eq!((oldest.session_id.as_str(), oldest.seq, oldest.content_hash), ("s-1", 0, 7));
    assert_eq!(oldest.details.url.as_deref(), Some("https://example.test/"));
    spool.delete_chunk(id).await.unwrap();
    assert_eq!(spool.chunk_backlog(), 1);
}

#[tokio::test]
async fn items_past_the_maximum_age_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    let day = Duration::from_secs(24 * 3600);
    spool
        .put_records(vec![record("old", day * 2), record("old", day * 2), record("fresh", Duration::ZERO)])
        .await
        .unwrap();
    let mut old = chunk("s-old", 0, 1);
    old.received_at -= day * 2;
    spool.put_chunk(old, None).await.unwrap();
    spool.put_chunk(chunk("s-new", 0, 2), None).await.unwrap();

    let cutoff = SystemTime::now() - day;
    assert_eq!(spool.expire_records(cutoff).await.unwrap(), 2);
    assert_eq!(spool.expire_chunks(cutoff).await.unwrap(), 1);
    let m = spool.metrics();
    assert_eq!(m.spool_expired.get_or_create(&TargetLabels { target: DeliveryTarget::Loki }).get(), 2);
    assert_eq!(m.spool_expired.get_or_create(&TargetLabels { target: DeliveryTarget::S3 }).get(), 1);
    let left = spool.oldest_records(10, 1 << 20).await.unwrap();
    assert_eq!(left.iter().map(|r| r.record.line.as_str()).collect::<Vec<_>>(), ["fresh"]);
    assert_eq!(spool.chunk_backlog(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let spool = spool.clone();
            tokio::spawn(async move { spool.put_records(vec![record(&format!("r{i}"), Duration::ZERO)]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let commits = spool.metrics().spool_commits.get();
    assert_eq!(spool.record_backlog(), 200);
    assert!(commits < 200, "200 requests took {commits} commits");
}

/// Reads are served from the in-memory cache of recent records when they
/// can be and from SQLite otherwise; either way a reader sees every record
/// once per read, oldest first, and nothing is lost from disk by a read.
#[tokio::test]
async fn reads_see_every_record_whether_cached_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), 1 << 30);
    let lines = |batch: &[db::SpooledRecord]| batch.iter().map(|r| r.record.line.clone()).collect::<Vec<_>>();
    for line in ["a", "b", "c", "d", "e"] {
        spool.put_records(vec![record(line, Duration::ZERO)]).await.unwrap();
    }
    // A partial batch, then the rest after it (how delivery lingers).
    let head = spool.records_after(0, 2, 1 << 20, true).await.unwrap();
    assert_eq!(lines(&head), ["a", "b"]);
    let tail = spool.records_after(head[1].id, 10, 1 << 20, false).await.unwrap();
    assert_eq!(lines(&tail), ["c", "d", "e"]);
    // Nothing deleted yet: reading from the oldest again finds them all
    // (from SQLite, since the cache gave them out).
    let again = spool.oldest_records(10, 1 << 20).await.unwrap();
    assert_eq!(lines(&again), ["a", "b", "c", "d", "e"]);
    // A byte budget smaller than the next record returns nothing unless
    // the first record is always taken.
    assert!(spool.records_after(head[1].id, 10, 1, false).await.unwrap().is_empty());
    spool.delete_records(again[0].id, again[4].id).await.unwrap();
    spool.put_records(vec![record("f", Duration::ZERO), record("g", Duration::ZERO)]).await.unwrap();
    assert_eq!(lines(&spool.oldest_records(10, 1 << 20).await.unwrap()), ["f", "g"]);
    assert_eq!(spool.record_backlog(), 2);
}
