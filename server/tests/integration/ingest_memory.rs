//! Memory bounded by configuration: the in-flight body budget answers 503
//! with `Retry-After` once request bodies fill it, and replay chunks nested
//! too deep to play back are refused before they are stored.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::common::{TestServer, gzip, unique_id};

/// A replay chunk whose `data` nests `depth - 2` arrays (the outer array
/// and the event object are the other two levels).
fn nested_chunk(depth: usize) -> Vec<u8> {
    let inner = depth - 2;
    let mut json = br#"[{"type":3,"timestamp":1700000000000,"data":"#.to_vec();
    json.extend(std::iter::repeat_n(b'[', inner));
    json.extend(std::iter::repeat_n(b']', inner));
    json.extend_from_slice(b"}]");
    json
}

async fn post_replay(server: &TestServer, session: &str, body: Vec<u8>, gzipped: bool) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=0")))
        .header("content-type", "application/json")
        .body(body);
    if gzipped {
        request = request.header("content-encoding", "gzip");
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn deeply_nested_chunks_are_refused_quickly_and_not_stored() {
    let server = TestServer::start(&[("OBSERVER_RATE_LIMIT_PER_IP", "0")]).await;
    for gzipped in [true, false] {
        let session = unique_id("deep");
        let body = if gzipped { gzip(&nested_chunk(10_000)) } else { nested_chunk(10_000) };
        let started = Instant::now();
        let r = post_replay(&server, &session, body, gzipped).await;
        assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
        assert_eq!(r.status(), 400, "gzip: {gzipped}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_payload");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("1000 levels") && message.contains("OBSERVER_MAX_REPLAY_DEPTH"), "{message}");
        assert!(
            !server.stored_files().iter().any(|f| f.contains(&session)),
            "nothing stored for {session}: {:?}",
            server.stored_files()
        );
    }
    // At the bound it is a valid (if odd) chunk.
    let r = post_replay(&server, &unique_id("deep"), gzip(&nested_chunk(1000)), true).await;
    assert_eq!(r.status(), 202);
}

/// Sends a request's headers and `sent` bytes of a body of
/// `content_length`, then stalls: the server holds what arrived.
async fn stalled_upload(server: &TestServer, path: &str, content_length: usize, sent: usize) -> TcpStream {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'['; sent]).await.unwrap();
    stream
}

#[tokio::test]
async fn inflight_budget_refuses_with_retry_after_then_recovers() {
    let server = TestServer::start(&[
        ("OBSERVER_RATE_LIMIT_PER_IP", "0"),
        ("OBSERVER_MAX_JSON_BODY", "256KiB"),
        ("OBSERVER_MAX_REPLAY_BODY", "1MiB"),
        ("OBSERVER_MAX_INFLIGHT_BYTES", "1MiB"),
        ("OBSERVER_REPLAY_CONCURRENCY", "4"),
    ])
    .await;
    let session = unique_id("budget");
    // Declaring a body reserves nothing: forty stalled uploads that sent
    // only their headers leave the budget free for everyone else.
    let mut idle = Vec::new();
    for n in 0..40 {
        let path = format!("/api/observer/replay-events?session_id={session}-idle{n}&seq=0");
        idle.push(stalled_upload(&server, &path, 1 << 20, 1).await);
    }
    let chunk = gzip(br#"[{"type":3,"timestamp":1700000000000}]"#);
    assert_eq!(post_replay(&server, &unique_id("budget"), chunk.clone(), true).await.status(), 202);
    assert!(server.metric("observer_inflight_body_bytes").await <= (40 * 1024) as f64);
    drop(idle);

    // One that sent (almost) its whole megabyte holds the whole budget.
    let stalled = stalled_upload(
        &server,
        &format!("/api/observer/replay-events?session_id={session}&seq=0"),
        1 << 20,
        (1 << 20) - 1000,
    )
    .await;
    // Wait until the stalled upload holds the whole budget.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("observer_inflight_body_bytes").await < (1 << 20) as f64 {
        assert!(Instant::now() < deadline, "the stalled upload never reserved the budget");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let refused = post_replay(&server, &unique_id("budget"), chunk.clone(), true).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some(), "{:?}", refused.headers());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    let error = server.post("/api/observer/errors", "application/json", r#"{"message":"m"}"#).await;
    assert_eq!(error.status(), 503, "JSON routes share the budget");
    assert!(error.headers().get("retry-after").is_some());
    assert!(server.metric("observer_overload_refusals_total{reason=\"inflight_bytes\"}").await >= 2.0);

    // The client goes away: its reservation is released and the next request is served.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = post_replay(&server, &unique_id("budget"), chunk.clone(), true).await;
        if r.status() == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "budget never released: {}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.metric("observer_inflight_body_bytes").await, 0.0);
}
