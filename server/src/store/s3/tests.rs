//! S3 store tests against a real moto server.
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::store::{ChunkMeta, SessionFilter, SessionQuery};

#[test]
fn prefixes() {
    for (raw, want) in [("", ""), ("/", ""), ("obs", "obs/"), ("obs/", "obs/"), ("a/b//", "a/b/"), (" x ", "x/")] {
        assert_eq!(normalize_prefix(raw), want, "{raw:?}");
    }
}

/// A `moto_server` on a port it picked itself, killed on drop. Panics if it
/// cannot start: the S3 tests never skip.
///
/// moto binds port 0 and the port is read from its start line. Probing a free
/// port first and passing it on left seconds (moto's start-up, longer under
/// load) in which another process could take the port: moto then exited with
/// "address in use" while the probe loop connected to the other server, and
/// the test failed with refused connections when that one stopped.
struct Moto {
    child: Child,
    endpoint: Url,
    /// moto's last stderr lines (one per request), for a failure message.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Moto {
    fn start() -> Moto {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the S3 store tests need moto_server on PATH (pip install 'moto[server]'): {e}")
            });
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = log.clone();
        // Drains stderr for moto's whole life: a full pipe would block its request log.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let _ = port_tx.send(port.trim().to_owned());
                }
                let mut lines = lines.lock().unwrap();
                if lines.len() == 20 {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
        let Ok(port) = port_rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!(
                "moto_server did not start within 30 s ({status}):\n{}",
                Vec::from(log.lock().unwrap().clone()).join("\n")
            );
        };
        let endpoint = format!("http://127.0.0.1:{port}").parse().unwrap();
        Moto { child, endpoint, log }
    }

    /// Whether moto still runs, and what it logged last: for failure messages.
    fn state(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(None) => "moto_server is running".to_owned(),
            Ok(Some(status)) => format!("moto_server exited ({status})"),
            Err(e) => format!("moto_server state unknown ({e})"),
        };
        format!("{status}; its last lines:\n{}", Vec::from(self.log.lock().unwrap().clone()).join("\n"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn all_keys(s3: &S3Store, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        s3.list_all(prefix, None).await.unwrap().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    keys.sort();
    keys
}

fn credentials() -> Credentials {
    Credentials::new("observer-test-key", "observer-test-secret", None, None, "observer-tests")
}

async fn store(endpoint: &Url, bucket: &str, prefix: &str) -> S3Store {
    S3Store::build(
        Some(endpoint.clone()),
        bucket.to_owned(),
        "us-east-1".to_owned(),
        prefix.to_owned(),
        Some(credentials()),
    )
    .await
    .unwrap()
}

const NO_DETAILS: SessionDetails = SessionDetails { url: None, user_id: None, browser: None, os: None };

/// A chunk whose content hash is that of its (test) body.
/// What every test chunk adds to its session's listing line.
const STATS: crate::store::ChunkStats =
    crate::store::ChunkStats { pages: 1, errors: 2, received_at: Some(1_700_000_005_000) };

fn new_chunk(body: impl Into<Bytes>, meta: ChunkMeta) -> NewChunk {
    let gzip = body.into();
    NewChunk { content_hash: xxhash_rust::xxh3::xxh3_64(&gzip), gzip, meta, stats: STATS }
}

const META: ChunkMeta = ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_004_321, events: 42 };

/// One moto server for every S3 check, run in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_store_against_moto() {
    let moto = Moto::start();
    let s3 = store(&moto.endpoint, "observer-test", "tenant-a").await;
    assert_eq!(
        s3.describe(),
        format!("s3 bucket observer-test at {} (prefix \"tenant-a/\")", moto.endpoint.as_str().trim_end_matches('/'))
    );

    // check() fails before the bucket exists, and names it.
    let err = s3.check().await.unwrap_err().to_string();
    assert!(err.contains("observer-test") && err.contains("does not exist"), "{err}");
    s3.client.create_bucket().bucket("observer-test").send().await.unwrap();
    s3.check().await.unwrap();

    // Put, then re-sends with the same and with other content: the first object stays.
    let id = SessionId::parse("session-s3-0001").unwrap();
    let body = Bytes::from_static(b"\x1f\x8b\x08\x00 first body");
    assert_eq!(s3.put_chunk(&id, 5, new_chunk(body.clone(), META), &NO_DETAILS).await.unwrap(), PutOutcome::Created);
    assert_eq!(
        s3.put_chunk(&id, 5, new_chunk(body.clone(), META), &NO_DETAILS).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    let other = ChunkMeta { events: 1, ..META };
    assert_eq!(
        s3.put_chunk(&id, 5, new_chunk(Bytes::from_static(b"second"), other), &NO_DETAILS).await.unwrap(),
        PutOutcome::Conflict
    );

    let key = "tenant-a/replays/session-s3-0001/0000000005.json.gz";
    assert_eq!(s3.key(&id, 5), key);
    let got = s3.client.get_object().bucket("observer-test").key(key).send().await.unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(got.content_encoding(), Some("gzip"));
    let metadata = got.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata.get("first-timestamp").map(String::as_str), Some("1700000000000"));
    assert_eq!(metadata.get("last-timestamp").map(String::as_str), Some("1700000004321"));
    assert_eq!(metadata.get("events").map(String::as_str), Some("42"));
    assert_eq!(metadata.get("pages").map(String::as_str), Some("1"));
    assert_eq!(metadata.get("errors").map(String::as_str), Some("2"));
    assert_eq!(metadata.get("received-at").map(String::as_str), Some("1700000005000"));
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&body));
    assert_eq!(metadata.get("content-hash"), Some(&hash));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);
    let keys = all_keys(&s3, "tenant-a/").await;
    assert_eq!(
        keys,
        [
            "tenant-a/replays/session-s3-0001/0000000005.json.gz",
            "tenant-a/replays/session-s3-0001/index/0000000005-1700000000000-1700000004321-42-15-1-2-1700000005000",
        ],
        "one chunk object, no duplicate, and its index entry"
    );

    // The server honours If-None-Match: a conditional put on the existing
    // key (skipping the HEAD) is refused and classified as AlreadyExists.
    assert_eq!(
        s3.put_new(key, new_chunk(Bytes::from_static(b"third"), META)).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    let raw = s3
        .client
        .put_object()
        .bucket("observer-test")
        .key(key)
        .if_none_match("*")
        .body(ByteStream::from_static(b"raw"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(conditional_failure(&raw), Some(ConditionalFailure::Exists), "{}", error_chain(&raw));

    // Concurrent re-sends of a new chunk.
    let s3 = Arc::new(s3);
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let (s3, id) = (s3.clone(), id.clone());
            tokio::spawn(async move {
                s3.put_chunk(
                    &id,
                    6,
                    new_chunk(Bytes::from(format!("body {i}")), ChunkMeta { events: i, ..META }),
                    &NO_DETAILS,
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.unwrap() == PutOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one concurrent put creates the object");

    // The read side.
    let s3 = Arc::try_unwrap(s3).unwrap();
    read_side(&s3).await;

    // Errors are useful and hold no secret.
    let missing = store(&moto.endpoint, "no-such-bucket", "").await;
    let err = missing
        .put_chunk(&id, 0, new_chunk(Bytes::from_static(b"x"), META), &NO_DETAILS)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "PutObject s3://no-such-bucket/replays/session-s3-0001/0000000000.json.gz (HTTP 404): NoSuchBucket"
        ),
        "{err}"
    );
    assert!(!err.contains("observer-test-secret") && !err.contains("<Error>") && !err.contains("headers"), "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint: Url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let s3 = store(&endpoint, "observer-test", "").await;
    let started = Instant::now();
    let err = s3.check().await.unwrap_err().to_string();
    assert!(started.elapsed() < OPERATION_TIMEOUT, "took {:?}", started.elapsed());
    assert!(err.contains("HeadBucket s3://observer-test/") && err.contains("Connection refused"), "{err}");
    assert!(!err.contains("observer-test-secret"), "{err}");
}

#[tokio::test]
async fn rejects_endpoint_with_credentials() {
    let endpoint: Url = "http://user:pass@127.0.0.1:9000".parse().unwrap();
    let err = S3Store::new(Some(endpoint), "b-1".to_owned(), "us-east-1".to_owned(), String::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err}");
    assert!(!err.to_string().contains("pass"), "{err}");
}

/// Listing, manifest (with and without index entries) and chunk reads.
async fn read_side(s3: &S3Store) {
    let id = SessionId::parse("session-s3-read").unwrap();
    assert_eq!(s3.list_chunks(&id, 100).await.unwrap(), ChunkListing::default());
    assert!(s3.get_chunk(&id, 0).await.unwrap().is_none());
    assert!(s3.chunk_etag(&id, 0).await.unwrap().is_none());
    assert_eq!(s3.get_session_details(&id, META.first_timestamp).await.unwrap(), None);
    let details = SessionDetails {
        url: Some("https://a.example/".into()),
        user_id: Some("user-7".into()),
        ..SessionDetails::default()
    };
    for seq in [1u32, 0, 2] {
        let meta = ChunkMeta { events: seq + 1, ..META };
        s3.put_chunk(&id, seq, new_chunk(Bytes::from(format!("chunk {seq}")), meta), &details).await.unwrap();
    }
    let expected: Vec<ChunkInfo> = (0..3)
        .map(|seq| ChunkInfo { seq, meta: ChunkMeta { events: seq + 1, ..META }, bytes: 7, stats: STATS })
        .collect();
    let all = ChunkListing { chunks: expected.clone(), truncated: false };
    assert_eq!(s3.list_chunks(&id, 100).await.unwrap(), all);
    assert_eq!(s3.list_chunks(&id, 3).await.unwrap(), all, "exactly the cap");
    let capped = ChunkListing { chunks: expected[..2].to_vec(), truncated: true };
    assert_eq!(s3.list_chunks(&id, 2).await.unwrap(), capped, "the lowest seqs");
    // The byte budget's sizes: one listing, the same sizes as the manifest.
    assert_eq!(s3.stored_chunk_sizes(&id, 100).await.unwrap(), [(0, 7), (1, 7), (2, 7)]);
    assert_eq!(s3.stored_chunk_sizes(&id, 2).await.unwrap(), [(0, 7), (1, 7)]);

    // The session's details: its listing entry, named by chunk 0's start.
    assert_eq!(s3.get_session_details(&id, META.first_timestamp).await.unwrap(), Some(details.clone()));
    assert_eq!(s3.get_session_details(&id, META.first_timestamp + 1).await.unwrap(), None);

    // Without index entries the manifest falls back to HEAD and repairs them.
    let index_prefix = "tenant-a/replays/session-s3-read/index/";
    let entries = all_keys(s3, index_prefix).await;
    assert_eq!(entries.len(), 3);
    for key in &entries {
        s3.client.delete_object().bucket("observer-test").key(key).send().await.unwrap();
    }
    assert_eq!(s3.list_chunks(&id, 2).await.unwrap(), capped, "HEAD only for the chunks listed");
    assert_eq!(all_keys(s3, index_prefix).await, entries[..2], "their index entries written again");
    assert_eq!(s3.list_chunks(&id, 100).await.unwrap(), all);
    assert_eq!(all_keys(s3, index_prefix).await, entries, "index entries written again");

    let chunk = s3.get_chunk(&id, 2).await.unwrap().unwrap();
    assert_eq!(chunk.gzip, Bytes::from_static(b"chunk 2"));
    assert!(chunk.etag.starts_with('"') && chunk.etag.ends_with('"') && chunk.etag.len() > 2, "{}", chunk.etag);
    assert_eq!(s3.chunk_etag(&id, 2).await.unwrap(), Some(chunk.etag.clone()), "HEAD gives GET's tag");
    assert_ne!(s3.chunk_etag(&id, 1).await.unwrap(), Some(chunk.etag));

    // Listing: both sessions with chunk 0, newest first; the entry of the
    // first session (chunk 0 stored under test above) has no details.
    let later = SessionId::parse("session-s3-later").unwrap();
    let meta = ChunkMeta { first_timestamp: META.first_timestamp + 1, ..META };
    s3.put_chunk(&later, 0, new_chunk(Bytes::from_static(b"x"), meta), &NO_DETAILS).await.unwrap();
    let page = s3.list_sessions(&SessionQuery::page(1, None)).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].session_id, later);
    assert_eq!(page.sessions[0].stats.chunks, 1);
    let page = s3.list_sessions(&SessionQuery::page(5, page.next_cursor.clone())).await.unwrap();
    assert_eq!(page.next_cursor, None);
    let read = page.sessions.iter().find(|s| s.session_id == id).expect("listed");
    assert_eq!((read.start, read.stats.chunks, &read.details), (META.first_timestamp, 3, &details));
    // Summed from the chunks' index entries.
    let stats = read.stats;
    assert_eq!((stats.pages, stats.errors), (3, 6));
    assert_eq!((stats.last_timestamp, stats.last_received), (Some(META.last_timestamp), STATS.received_at));
    // Filters: by user (exact), first URL (substring, any case), errors.
    let user = SessionFilter { user_id: Some("user-7".into()), ..SessionFilter::default() };
    let page = s3.list_sessions(&SessionQuery { limit: 5, after: None, filter: user }).await.unwrap();
    assert_eq!(page.sessions.iter().map(|s| &s.session_id).collect::<Vec<_>>(), [&id]);
    let url = SessionFilter { url: Some("A.EXAMPLE".into()), has_errors: Some(true), ..SessionFilter::default() };
    let page = s3.list_sessions(&SessionQuery { limit: 5, after: None, filter: url }).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    let clean = SessionFilter { has_errors: Some(false), ..SessionFilter::default() };
    assert!(
        s3.list_sessions(&SessionQuery { limit: 5, after: None, filter: clean }).await.unwrap().sessions.is_empty()
    );

    // A deleted listing entry comes back with a re-send of chunk 0.
    let sessions = all_keys(s3, "tenant-a/sessions/").await;
    let entry = sessions.iter().find(|k| k.ends_with("-session-s3-read.json")).unwrap();
    s3.client.delete_object().bucket("observer-test").key(entry).send().await.unwrap();
    let outcome = s3.put_chunk(&id, 0, new_chunk(Bytes::from_static(b"chunk 0"), META), &details).await.unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyExists);
    assert_eq!(all_keys(s3, "tenant-a/sessions/").await, sessions);
}

/// The manifest of a 720-chunk session (an hour of 5 s chunks) comes from
/// two listings. Prints the time taken; asserts only completeness.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manifest_of_720_chunks() {
    use futures_util::{StreamExt, stream};
    const CHUNKS: u32 = 720;
    let mut moto = Moto::start();
    let s3 = store(&moto.endpoint, "observer-big", "").await;
    s3.client.create_bucket().bucket("observer-big").send().await.unwrap();
    let id = SessionId::parse("session-720-chunks").unwrap();
    let s3 = &s3;
    let failed: Vec<String> = stream::iter(0..CHUNKS)
        .map(|seq| {
            let id = id.clone();
            async move {
                let meta = ChunkMeta { first_timestamp: 1_700_000_000_000 + i64::from(seq) * 5000, ..META };
                let put = s3.put_chunk(&id, seq, new_chunk(Bytes::from(vec![b'x'; 100]), meta), &NO_DETAILS).await;
                put.err().map(|e| format!("chunk {seq}: {e}"))
            }
        })
        .buffer_unordered(16)
        .filter_map(std::future::ready)
        .collect()
        .await;
    assert!(failed.is_empty(), "{} puts failed, first {}; {}", failed.len(), failed[0], moto.state());

    let started = Instant::now();
    let manifest = s3.list_chunks(&id, 2000).await.unwrap();
    let indexed = started.elapsed();
    assert!(!manifest.truncated);
    let manifest = manifest.chunks;
    assert_eq!(manifest.len(), CHUNKS as usize);
    assert!(manifest.iter().enumerate().all(|(i, c)| c.seq == i as u32 && c.bytes == 100));
    assert_eq!(manifest[719].meta.first_timestamp, 1_700_000_000_000 + 719 * 5000);
    // Capped: the lowest seqs, from only as many keys as needed.
    for cap in [1, 10, 719] {
        let capped = s3.list_chunks(&id, cap).await.unwrap();
        assert!(capped.truncated, "{cap}");
        assert_eq!(capped.chunks, manifest[..cap], "{cap}");
    }
    assert!(!s3.list_chunks(&id, 720).await.unwrap().truncated);

    // For comparison: the same manifest from HEAD requests alone.
    let index_keys = all_keys(s3, "replays/session-720-chunks/index/").await;
    for key in &index_keys {
        s3.client.delete_object().bucket("observer-big").key(key).send().await.unwrap();
    }
    let started = Instant::now();
    assert_eq!(s3.list_chunks(&id, 2000).await.unwrap().chunks, manifest);
    let headed = started.elapsed();
    eprintln!("manifest of {CHUNKS} chunks from moto: {indexed:?} with index entries, {headed:?} with HEAD fallback");
}
