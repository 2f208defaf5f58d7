//! Connection limits against the real binary, with raw TCP clients that
//! misbehave on purpose: headers that never end, idle keep-alive, more
//! connections than allowed, readers that stop reading, and clients that
//! write their whole body before reading the answer (Python's http.client).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::common::{TestServer, gzip, now_ms, unique_id};
use crate::replay_fetch::{self, VIEWER_TOKEN};

fn addr(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(addr(server)).await.unwrap()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: observer\r\n\r\n";

/// Reads one answer with a `Content-Length` body; its status.
async fn read_answer(stream: &mut TcpStream) -> u16 {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before an answer: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while received.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed mid-answer");
        received.extend_from_slice(&buf[..n]);
    }
    head[9..12].parse().unwrap()
}

/// How long until the server closes `stream` (EOF or reset), at most 10 s.
async fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the connection was still open after 10 s"),
        }
    }
}

async fn wait_metric_at_least(server: &TestServer, series: &str, at_least: f64, within: Duration) {
    let deadline = Instant::now() + within;
    while server.metric(series).await < at_least {
        assert!(Instant::now() < deadline, "{series} stayed below {at_least}:\n{}", server.metrics_text().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off_after_the_header_read_timeout() {
    let server = TestServer::start(&[("OBSERVER_HEADER_READ_TIMEOUT", "1s"), ("OBSERVER_IDLE_TIMEOUT", "30s")]).await;

    // First request: half the headers, then nothing.
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: obs").await.unwrap();
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(500), "closed after {waited:?}, before the timeout");

    // A keep-alive connection may wait longer than the header timeout for
    // its next request (that is the idle timeout), but once the next
    // request has started its headers must arrive in time.
    let mut stream = connect(&server).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_answer(&mut stream).await, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(500), "closed after {waited:?}, before the timeout");

    wait_metric_at_least(
        &server,
        r#"observer_connections_closed_total{reason="header_timeout"}"#,
        2.0,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start(&[("OBSERVER_IDLE_TIMEOUT", "1s"), ("OBSERVER_HEADER_READ_TIMEOUT", "30s")]).await;
    let mut stream = connect(&server).await;
    for _ in 0..2 {
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_answer(&mut stream).await, 200, "kept alive between requests");
    }
    let waited = time_until_closed(&mut stream).await;
    assert!(waited >= Duration::from_millis(500), "closed after {waited:?}, before the timeout");
    wait_metric_at_least(
        &server,
        r#"observer_connections_closed_total{reason="idle_timeout"}"#,
        1.0,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_health_checks_recover() {
    const MAX: usize = 4;
    let server = TestServer::start(&[
        ("OBSERVER_MAX_CONNECTIONS", "4"),
        ("OBSERVER_IDLE_TIMEOUT", "60s"),
        ("OBSERVER_HEADER_READ_TIMEOUT", "60s"),
    ])
    .await;

    // Fill every slot with a served keep-alive connection. A slot freed by
    // the start-up readiness checks may take a moment to come back.
    let mut holders = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while holders.len() < MAX {
        let mut stream = connect(&server).await;
        stream.write_all(HEALTHZ).await.unwrap();
        let mut first = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut first)).await.unwrap() {
            Ok(1) => {
                assert_eq!(read_answer(&mut stream).await, 200);
                holders.push(stream);
            }
            _ => assert!(Instant::now() < deadline, "could not open {MAX} connections"),
        }
    }

    // One more: closed without an answer, at once.
    let mut extra = connect(&server).await;
    let _ = extra.write_all(HEALTHZ).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await.expect("closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "an over-limit connection got an answer");

    // Once they go away, health checks are served again.
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match server.http.get(server.url("/healthz")).send().await {
            Ok(r) if r.status() == 200 => break,
            _ => assert!(Instant::now() < deadline, "/healthz not served after the connections closed"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.metric(r#"observer_connections_closed_total{reason="over_limit"}"#).await >= 1.0);
    assert!(server.metric("observer_connections_accepted_total").await >= (MAX + 2) as f64);
    let open = server.metric("observer_connections_open").await;
    assert!((1.0..=MAX as f64).contains(&open), "connections open: {open}");
}

/// A valid replay chunk that inflates to `size` bytes of JSON from a few
/// KiB of gzip: its identity answer is far larger than socket buffers.
fn huge_compressible_chunk(size: usize) -> (Vec<u8>, usize) {
    let prefix = format!(r#"[{{"type":3,"timestamp":{},"data":{{"source":0,"text":""#, now_ms());
    let suffix = r#""}}]"#;
    let mut json = prefix.into_bytes();
    json.resize(size - suffix.len(), b'a');
    json.extend_from_slice(suffix.as_bytes());
    (gzip(&json), json.len())
}

#[tokio::test]
async fn readers_that_stop_reading_do_not_hold_fetch_permits() {
    const STALLED: usize = 64;
    let server = replay_fetch::start(vec![
        ("OBSERVER_SEND_TIMEOUT", "2s".into()),
        ("OBSERVER_FETCH_CONCURRENCY", "4".into()),
        ("OBSERVER_MAX_REPLAY_DECOMPRESSED", "64MiB".into()),
    ])
    .await;
    let session = unique_id("stalled");
    let (chunk, json_len) = huge_compressible_chunk(40 << 20);
    let stored = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=0")))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(chunk)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 202, "{}", stored.text().await.unwrap());

    // Each asks for the chunk uncompressed (40 MiB) and never reads.
    let request = format!(
        "GET /api/observer/replays/{session}/chunks/0 HTTP/1.1\r\nHost: observer\r\nAuthorization: Bearer {VIEWER_TOKEN}\r\n\r\n"
    );
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut stream = connect(&server).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // The permit holders are abandoned after the send timeout...
    wait_metric_at_least(
        &server,
        r#"observer_connections_closed_total{reason="send_timeout"}"#,
        4.0,
        Duration::from_secs(20),
    )
    .await;

    // ...so, with all 64 still connected, a real viewer is served: at once
    // or, while stalled readers queue for permits, after a 503 + Retry-After.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let r = replay_fetch::get(&server, &format!("/api/observer/replays/{session}/chunks/0"), &[]).await;
        match r.status().as_u16() {
            200 => break r.bytes().await.unwrap(),
            503 => assert!(Instant::now() < deadline, "fetches still refused after 60 s"),
            other => panic!("unexpected status {other}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(body.len(), json_len);
    drop(stalled);
}

/// Runs Python's http.client, which writes the whole body before it reads
/// the answer; returns the status and JSON body it read.
async fn post_write_first(server: &TestServer, path: &str, size: usize, key: &str) -> (u16, Value) {
    const SCRIPT: &str = r#"
import http.client, json, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=60)
conn.request("POST", sys.argv[2], body=b"x" * int(sys.argv[3]),
             headers={"Content-Type": "application/json", "X-Observer-Key": sys.argv[4]})
response = conn.getresponse()
print(json.dumps({"status": response.status, "body": response.read().decode()}))
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &addr(server), path, &size.to_string(), key])
        .output()
        .await
        .expect("python3 is needed for the write-first client");
    assert!(
        output.status.success(),
        "http.client could not read the answer to {size} bytes on {path}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let body = serde_json::from_str(printed["body"].as_str().unwrap()).unwrap();
    (printed["status"].as_u64().unwrap() as u16, body)
}

#[tokio::test]
async fn refusals_before_the_body_is_read_reach_write_first_clients() {
    let server = TestServer::start(&[("OBSERVER_INGEST_KEYS", "right-key"), ("OBSERVER_RATE_LIMIT_PER_IP", "0")]).await;
    let replay = format!("/api/observer/replay-events?session_id={}&seq=0", unique_id("write-first"));
    for (path, size, key, status, code) in [
        ("/api/observer/errors", 10 << 20, "right-key", 413, "payload_too_large"),
        ("/api/observer/events", 40 << 20, "right-key", 413, "payload_too_large"),
        (replay.as_str(), 6 << 20, "right-key", 413, "payload_too_large"),
        ("/api/observer/errors", 2 << 20, "wrong-key", 401, "unauthorized"),
    ] {
        let (got, body) = post_write_first(&server, path, size, key).await;
        assert_eq!((got, body["error"].clone()), (status, json!(code)), "{size} bytes to {path}: {body}");
    }
}
