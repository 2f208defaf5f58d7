//! `POST /api/observer/replay-events`: real rrweb recordings are stored in
//! the local directory and in a real S3-compatible server, idempotently.

use serde_json::{Value, json};

use crate::common::{LokiReceiver, S3Server, TestServer, fixture_bytes, gunzip, gzip, unique_id};

pub const SESSION_CHUNKS: usize = 6;

pub fn chunk_name(seq: usize) -> String {
    format!("session-chunk-{seq:03}.json.gz")
}

async fn post_chunk(
    server: &TestServer,
    session: &str,
    seq: usize,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}&user_id=user-9")))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn events_in(gzip_bytes: &[u8]) -> Vec<Value> {
    serde_json::from_slice(&gunzip(gzip_bytes)).unwrap()
}

fn meta_href(events: &[Value]) -> String {
    events.iter().find(|e| e["type"] == 4).unwrap()["data"]["href"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn recorded_session_is_stored_locally_and_announced_once() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("replay");
    for seq in 0..SESSION_CHUNKS {
        let body = fixture_bytes(&chunk_name(seq));
        let expected_events = events_in(&body).len();
        let r = post_chunk(&server, &session, seq, body, &[]).await;
        assert_eq!(r.status(), 202, "seq {seq}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"session_id": session, "seq": seq, "events": expected_events})
        );
    }
    for seq in 0..SESSION_CHUNKS {
        let path = server.data_dir.path().join(format!("replays/{session}/{seq:010}.json.gz"));
        let stored = std::fs::read(&path).unwrap();
        assert_eq!(stored, fixture_bytes(&chunk_name(seq)), "gzip bytes are kept as sent");
        let meta: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("").with_extension("meta.json")).unwrap())
                .unwrap();
        let events = events_in(&stored);
        assert_eq!(meta["events"], events.len());
        let timestamps: Vec<i64> = events.iter().map(|e| e["timestamp"].as_f64().unwrap() as i64).collect();
        assert_eq!(meta["first_timestamp"], *timestamps.iter().min().unwrap());
        assert_eq!(meta["last_timestamp"], *timestamps.iter().max().unwrap());
    }

    // Re-sending chunk 0 is idempotent: same single file, no second start record.
    let r = post_chunk(&server, &session, 0, fixture_bytes(&chunk_name(0)), &[]).await;
    assert_eq!(r.status(), 202);
    let files: Vec<String> = server
        .stored_files()
        .into_iter()
        .filter(|f| f.starts_with(&format!("replays/{session}/")) && !f.contains("/."))
        .collect();
    assert_eq!(files.len(), SESSION_CHUNKS * 2, "one chunk + one meta file per seq: {files:?}");
    let listed: Vec<String> = server.stored_files().into_iter().filter(|f| f.starts_with("sessions/")).collect();
    assert_eq!(listed.len(), 1, "one listing entry for the session: {listed:?}");

    let started = server.wait_stdout_records(1, |r| r["session_id"] == session.as_str()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started_again: Vec<Value> =
        server.stdout_records().into_iter().filter(|r| r["session_id"] == session.as_str()).collect();
    assert_eq!(started_again.len(), 1, "replay_started is logged once: {started_again:?}");
    let record = &started[0];
    assert_eq!(record["kind"], "replay");
    assert_eq!(record["event"], "replay_started");
    assert_eq!(record["user_id"], "user-9");
    let first_chunk = events_in(&fixture_bytes(&chunk_name(0)));
    assert_eq!(record["url"], meta_href(&first_chunk).as_str());
    assert_eq!(record["timestamp"], first_chunk.iter().map(|e| e["timestamp"].as_f64().unwrap() as i64).min().unwrap());
    assert!(record["received_at"].is_string());
    assert_eq!(server.metric("observer_replay_chunks_duplicate_total").await, 1.0);
}

#[tokio::test]
async fn plain_json_and_magic_byte_gzip_are_accepted() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("replay");
    let json = gunzip(&fixture_bytes(&chunk_name(1)));
    // Plain JSON: stored gzip-compressed.
    let r = server
        .post(&format!("/api/observer/replay-events?session_id={session}&seq=1"), "application/json", json.clone())
        .await;
    assert_eq!(r.status(), 202);
    let stored = std::fs::read(server.data_dir.path().join(format!("replays/{session}/0000000001.json.gz"))).unwrap();
    assert_eq!(gunzip(&stored), json);
    // A gzip blob without Content-Encoding (sendBeacon) is recognised by its magic bytes.
    let r = server
        .post(
            &format!("/api/observer/replay-events?session_id={session}&seq=2"),
            "application/octet-stream",
            gzip(&json),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert!(server.data_dir.path().join(format!("replays/{session}/0000000002.json.gz")).exists());
    // sendBeacon with an untyped Blob sends no Content-Type at all.
    let r = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=3")))
        .body(gzip(&json))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Not seq 0: no start record.
    assert!(server.stdout_records().is_empty());
}

#[tokio::test]
async fn large_real_chunk_is_accepted() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("replay");
    let body = fixture_bytes("large-chunk.json.gz");
    let decompressed = gunzip(&body).len();
    assert!(decompressed > 700_000, "fixture is ~850 KB decompressed");
    let r = post_chunk(&server, &session, 3, body.clone(), &[]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(server.metric("observer_replay_received_bytes_total").await, body.len() as f64);
    assert_eq!(server.metric("observer_replay_decompressed_bytes_total").await, decompressed as f64);
}

#[tokio::test]
async fn recorded_session_is_stored_in_s3_with_metadata() {
    let s3 = S3Server::start("observer-replays").await;
    let loki = LokiReceiver::start().await;
    let prefix = format!("{}/", unique_id("t"));
    let mut env: Vec<(&str, String)> = s3.env(&prefix);
    env.push(("OBSERVER_LOKI_URL", loki.url.clone()));
    env.push(("OBSERVER_LOKI_BATCH_WAIT", "100ms".to_owned()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&env_refs).await;
    let session = unique_id("replay");
    for seq in 0..SESSION_CHUNKS {
        let r = post_chunk(&server, &session, seq, fixture_bytes(&chunk_name(seq)), &[]).await;
        assert_eq!(r.status(), 202, "seq {seq}: {}", r.text().await.unwrap());
    }
    // Idempotent re-send.
    let r = post_chunk(&server, &session, 2, fixture_bytes(&chunk_name(2)), &[]).await;
    assert_eq!(r.status(), 202);

    // The chunks, beside their index entries and the session's listing entry.
    let keys: Vec<String> = s3.list(&prefix).await.into_iter().filter(|k| k.ends_with(".json.gz")).collect();
    let expected: Vec<String> =
        (0..SESSION_CHUNKS).map(|seq| format!("{prefix}replays/{session}/{seq:010}.json.gz")).collect();
    assert_eq!(keys, expected);
    assert_eq!(s3.list(&format!("{prefix}replays/{session}/index/")).await.len(), SESSION_CHUNKS);
    assert_eq!(s3.list(&format!("{prefix}sessions/")).await.len(), 1);
    for (seq, key) in expected.iter().enumerate() {
        let (body, metadata, encoding) = s3.get(key).await;
        let sent = fixture_bytes(&chunk_name(seq));
        assert_eq!(body, sent);
        assert_eq!(encoding.as_deref(), Some("gzip"));
        let events = events_in(&sent);
        let header =
            |name: &str| metadata.get(name).unwrap_or_else(|| panic!("missing {name} in {metadata:?}")).clone();
        assert_eq!(header("events"), events.len().to_string());
        let min = events.iter().map(|e| e["timestamp"].as_f64().unwrap() as i64).min().unwrap();
        let max = events.iter().map(|e| e["timestamp"].as_f64().unwrap() as i64).max().unwrap();
        assert_eq!(header("first-timestamp"), min.to_string());
        assert_eq!(header("last-timestamp"), max.to_string());
    }

    let started = loki.wait_for(1, |e| e.metadata.get("session_id") == Some(&session)).await;
    assert_eq!(started[0].labels["kind"], "replay");
    assert_eq!(started[0].labels["level"], "info");
    assert_eq!(started[0].json["event"], "replay_started");
    assert_eq!(started[0].metadata["user_id"], "user-9");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(loki.entries().iter().filter(|e| e.metadata.get("session_id") == Some(&session)).count(), 1);
}
