//! Per-session limits on ingestion, with the built-in defaults where the
//! test is about a default: the request rate per `session_id` (429), the
//! chunk count and stored bytes per session (413), replays that stay
//! playable (a re-sent seq with other content is 409 on both stores;
//! far-future timestamps are clamped in what the listing sorts by).

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::common::{BUILT_IN, S3Server, TestServer, fixture_bytes, gunzip, now_ms, unique_id};
use crate::ingest_replay::chunk_name;
use crate::replay_fetch::{get, viewer_env};

/// Rate limits as shipped (the harness turns them off for other tests).
const DEFAULT_RATES: [(&str, &str); 2] =
    [("OBSERVER_RATE_LIMIT_PER_IP", BUILT_IN), ("OBSERVER_RATE_LIMIT_PER_SESSION", BUILT_IN)];

async fn post_chunk(
    server: &TestServer,
    session: &str,
    seq: u64,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    server.post(&format!("/api/observer/replay-events?session_id={session}&seq={seq}"), content_type, body).await
}

/// A small valid chunk (plain JSON) whose events carry `timestamp`.
fn events_at(timestamp: i64) -> Vec<u8> {
    json!([
        {"type": 4, "timestamp": timestamp, "data": {"href": "https://shop.example/", "width": 800, "height": 600}},
        {"type": 3, "timestamp": timestamp, "data": {"source": 1}},
    ])
    .to_string()
    .into_bytes()
}

async fn error_of(response: reqwest::Response) -> (u16, Option<u64>, Value) {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn one_session_over_its_default_rate_gets_429_and_others_are_still_accepted() {
    let server = TestServer::start(&DEFAULT_RATES).await;
    let session = unique_id("rated");
    let body = json!({"message": "flood", "session_id": session});
    // 20/s with a burst of 40: a hundred requests at once cannot all fit.
    let mut refused = None;
    for _round in 0..5 {
        let answers = join_all((0..100).map(|_| server.post_json("/api/observer/errors", &body))).await;
        for answer in answers {
            if answer.status() == 429 {
                refused = Some(error_of(answer).await);
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let (_, retry_after, body) = refused.expect("a 429 for the flooded session");
    assert!(retry_after.is_some_and(|s| s >= 1), "Retry-After: {retry_after:?}");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("session_id"), "{body}");

    let other = json!([{"message": "calm", "session_id": unique_id("calm")}, {"message": "no session"}]);
    assert_eq!(server.post_json("/api/observer/errors", &other).await.status(), 202, "another session is accepted");
    let limited = server.metric(r#"observer_payloads_rejected_total{route="errors",reason="rate_limited_session"}"#);
    assert!(limited.await >= 1.0);

    // Replay chunks are limited by the session in their query, before the body is read.
    let session = unique_id("rated-replay");
    let answers =
        join_all((0..100u64).map(|seq| post_chunk(&server, &session, seq, "application/json", events_at(now_ms()))))
            .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.contains(&202) && statuses.contains(&429), "{statuses:?}");
    let limited =
        server.metric(r#"observer_payloads_rejected_total{route="replay_events",reason="rate_limited_session"}"#);
    assert!(limited.await >= 1.0);
}

#[tokio::test]
async fn a_seq_at_the_default_chunk_cap_is_refused_before_reading_the_body() {
    let server = TestServer::start(&DEFAULT_RATES).await;
    let session = unique_id("capped");
    let r = post_chunk(&server, &session, 719, "application/json", events_at(now_ms())).await;
    assert_eq!(r.status(), 202, "the 720th chunk (seq 719) is the last one allowed");
    for seq in [720, u64::from(u32::MAX)] {
        let (status, _, body) =
            error_of(post_chunk(&server, &session, seq, "application/json", b"[]".to_vec()).await).await;
        assert_eq!(status, 413, "seq {seq}: {body}");
        assert_eq!(body["error"], "payload_too_large");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("720") && message.contains("OBSERVER_MAX_SESSION_CHUNKS"), "{message}");
    }
    assert_eq!(
        server.metric(r#"observer_payloads_rejected_total{route="replay_events",reason="too_large"}"#).await,
        2.0
    );
}

#[tokio::test]
async fn the_session_byte_cap_holds_across_a_restart() {
    let sizes: Vec<usize> = (0..3).map(|seq| fixture_bytes(&chunk_name(seq)).len()).collect();
    let cap = (sizes[0] + sizes[1]).to_string();
    let env = [("OBSERVER_MAX_SESSION_BYTES", cap.as_str())];
    let mut server = TestServer::start(&env).await;
    let session = unique_id("bytes");
    for seq in 0..2 {
        let r = post_chunk(&server, &session, seq, "application/json", fixture_bytes(&chunk_name(seq as usize))).await;
        assert_eq!(r.status(), 202, "seq {seq}");
    }
    let (status, _, body) = third_chunk(&server, &session).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("OBSERVER_MAX_SESSION_BYTES"), "{body}");
    let other = unique_id("bytes-other");
    let r = post_chunk(&server, &other, 0, "application/json", fixture_bytes(&chunk_name(0))).await;
    assert_eq!(r.status(), 202, "another session has its own allowance");

    // A new process counts what the store already holds.
    server.terminate().await;
    let server = TestServer::start_in(server.take_data_dir(), &env).await;
    let (status, _, body) = third_chunk(&server, &session).await;
    assert_eq!(status, 413, "after a restart: {body}");
    assert!(!server.data_dir.path().join(format!("replays/{session}/0000000002.json.gz")).exists());
}

async fn third_chunk(server: &TestServer, session: &str) -> (u16, Option<u64>, Value) {
    error_of(post_chunk(server, session, 2, "application/json", fixture_bytes(&chunk_name(2))).await).await
}

/// Re-sends of seq 1: the same events (gzip as recorded, then as plain
/// JSON) are 202; other events are 409 and the first chunk stays.
async fn re_sends_are_told_apart(server: &TestServer, session: &str) -> Vec<u8> {
    let first = fixture_bytes(&chunk_name(1));
    for (content_type, body) in
        [("application/json", first.clone()), ("application/json", first.clone()), ("text/plain", gunzip(&first))]
    {
        let r = post_chunk(server, session, 1, content_type, body).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let (status, retry_after, body) =
        error_of(post_chunk(server, session, 1, "application/json", fixture_bytes(&chunk_name(2))).await).await;
    assert_eq!((status, retry_after), (409, None), "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("chunk 1"), "{body}");
    assert_eq!(server.metric("observer_replay_chunks_duplicate_total").await, 2.0);
    assert_eq!(
        server.metric(r#"observer_payloads_rejected_total{route="replay_events",reason="conflict"}"#).await,
        1.0
    );
    first
}

#[tokio::test]
async fn a_re_sent_seq_with_other_content_is_409_on_the_local_store() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("conflict");
    let first = re_sends_are_told_apart(&server, &session).await;
    let stored = std::fs::read(server.data_dir.path().join(format!("replays/{session}/0000000001.json.gz"))).unwrap();
    assert_eq!(stored, first, "the first content is kept");
}

#[tokio::test]
async fn a_re_sent_seq_with_other_content_is_409_on_s3() {
    let s3 = S3Server::start("observer-limits").await;
    let prefix = format!("{}/", unique_id("limits"));
    let env = s3.env(&prefix);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&env).await;
    let session = unique_id("conflict-s3");
    let first = re_sends_are_told_apart(&server, &session).await;
    let (stored, metadata, _) = s3.get(&format!("{prefix}replays/{session}/0000000001.json.gz")).await;
    assert_eq!(stored, first, "the first content is kept");
    assert_eq!(metadata.get("content-hash").map(String::len), Some(16), "{metadata:?}");
}

#[tokio::test]
async fn far_future_timestamps_do_not_pin_a_session_to_the_top_of_the_listing() {
    const YEAR_2100_MS: i64 = 4_102_444_800_000;
    const HOUR_MS: i64 = 3_600_000;
    let env = viewer_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&env).await;

    let pinned = unique_id("future");
    let before = now_ms();
    let r = post_chunk(&server, &pinned, 0, "application/json", events_at(YEAR_2100_MS)).await;
    assert_eq!(r.status(), 202);
    let after = now_ms();
    // A client whose clock runs 61 minutes fast, a moment later.
    let later = unique_id("fast-clock");
    let r = post_chunk(&server, &later, 0, "application/json", events_at(now_ms() + 61 * 60_000)).await;
    assert_eq!(r.status(), 202);

    let listing: Value = get(&server, "/api/observer/replays", &[]).await.json().await.unwrap();
    let order: Vec<&str> =
        listing["sessions"].as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap()).collect();
    assert_eq!(order, [later.as_str(), pinned.as_str()], "the session sent later is listed first");
    let start = listing["sessions"][1]["start"].as_i64().unwrap();
    assert!((before + HOUR_MS..=after + HOUR_MS).contains(&start), "clamped to receive time + 1 h: {start}");

    let manifest: Value = get(&server, &format!("/api/observer/replays/{pinned}"), &[]).await.json().await.unwrap();
    assert_eq!(manifest["chunks"][0]["first_timestamp"], start);
    assert_eq!(manifest["chunks"][0]["last_timestamp"], start);
    // The events themselves are stored as sent.
    let stored = std::fs::read(server.data_dir.path().join(format!("replays/{pinned}/0000000000.json.gz"))).unwrap();
    let events: Value = serde_json::from_slice(&gunzip(&stored)).unwrap();
    assert_eq!(events[0]["timestamp"], YEAR_2100_MS);
    assert_eq!(server.metric("observer_replay_chunks_clamped_total").await, 2.0);
}
