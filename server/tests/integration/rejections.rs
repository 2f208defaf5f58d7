//! Every refusal: status, error code, the field or limit it names — and
//! nothing from a refused request is logged or stored.

use serde_json::{Value, json};

use crate::common::{TestServer, fixture_bytes, gunzip, gzip, now_ms, unique_id};

const MARKER: &str = "rejected-marker";

async fn expect(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["error"], code, "body: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
    body
}

fn field_of(body: &Value, index: Option<usize>) -> Vec<String> {
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d.get("index").and_then(Value::as_u64).map(|i| i as usize) == index)
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

fn valid_error() -> Value {
    json!({"message": MARKER, "session_id": "session-rejected"})
}

fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

#[tokio::test]
async fn invalid_error_fields_are_named() {
    let server = TestServer::start(&[]).await;
    let cases: Vec<(&str, Value)> = vec![
        ("message", json!({"session_id": "session-rejected"})),
        ("message", with(valid_error(), "message", json!(""))),
        ("message", with(valid_error(), "message", json!("x".repeat(8193)))),
        ("message", with(valid_error(), "message", json!(12))),
        ("type", with(valid_error(), "type", json!("t".repeat(257)))),
        ("stack", with(valid_error(), "stack", json!("s".repeat(65537)))),
        ("url", with(valid_error(), "url", json!("u".repeat(2049)))),
        ("timestamp", with(valid_error(), "timestamp", json!(now_ms() - 8 * 24 * 3600 * 1000))),
        ("timestamp", with(valid_error(), "timestamp", json!(now_ms() + 2 * 3600 * 1000))),
        ("timestamp", with(valid_error(), "timestamp", json!("yesterday"))),
        ("timestamp", with(valid_error(), "timestamp", json!(1.5))),
        ("session_id", with(valid_error(), "session_id", json!("../x"))),
        ("session_id", with(valid_error(), "session_id", json!("short"))),
        ("visitor_id", with(valid_error(), "visitor_id", json!("has space in it"))),
        ("user_id", with(valid_error(), "user_id", json!("u".repeat(257)))),
        ("release", with(valid_error(), "release", json!("r".repeat(129)))),
        ("environment", with(valid_error(), "environment", json!("e".repeat(65)))),
        ("context", with(valid_error(), "context", json!([1, 2]))),
        ("context", with(valid_error(), "context", json!({"big": "x".repeat(17 * 1024)}))),
        ("colour", with(valid_error(), "colour", json!("red"))),
    ];
    for (field, body) in cases {
        let r = server.post_json("/api/observer/errors", &body).await;
        let answer = expect(r, 400, "invalid_payload").await;
        assert_eq!(field_of(&answer, None), vec![field.to_owned()], "case {field}: {answer}");
    }
    // A batch is validated whole: one detail per bad field, with its index.
    let batch =
        json!([valid_error(), with(with(valid_error(), "message", json!("")), "user_id", json!("")), {"oops": 1}, 7]);
    let answer = expect(server.post_json("/api/observer/errors", &batch).await, 400, "invalid_payload").await;
    assert!(field_of(&answer, Some(0)).is_empty());
    assert_eq!(field_of(&answer, Some(1)), vec!["message", "user_id"]);
    assert_eq!(field_of(&answer, Some(2)), vec!["oops", "message"]);
    assert_eq!(field_of(&answer, Some(3)), vec!["item"]);
    for body in [json!([]), json!("text"), json!(null)] {
        expect(server.post_json("/api/observer/errors", &body).await, 400, "invalid_payload").await;
    }
    expect(server.post("/api/observer/errors", "application/json", "{not json").await, 400, "invalid_payload").await;
    assert_nothing_logged_or_stored(&server).await;
}

#[tokio::test]
async fn invalid_event_fields_are_named() {
    let server = TestServer::start(&[]).await;
    let ok = json!({"type": "custom", "name": MARKER});
    let cases: Vec<(&str, Value)> = vec![
        ("type", json!({"name": MARKER})),
        ("type", json!({"type": "click", "name": MARKER})),
        ("name", json!({"type": "custom"})),
        ("name", with(ok.clone(), "name", json!("n".repeat(257)))),
        ("url", with(ok.clone(), "url", json!("u".repeat(2049)))),
        ("referrer", with(ok.clone(), "referrer", json!("u".repeat(2049)))),
        ("title", with(ok.clone(), "title", json!("t".repeat(1025)))),
        ("screen_width", with(ok.clone(), "screen_width", json!(100_001))),
        ("screen_height", with(ok.clone(), "screen_height", json!(-1))),
        ("language", with(ok.clone(), "language", json!("l".repeat(36)))),
        ("session_id", with(ok.clone(), "session_id", json!("../../etc/passwd"))),
        ("timestamp", with(ok.clone(), "timestamp", json!(0))),
        ("properties", with(ok.clone(), "properties", json!("not an object"))),
        ("properties", with(ok.clone(), "properties", json!({"big": "x".repeat(17 * 1024)}))),
        ("message", with(ok.clone(), "message", json!("errors only"))),
    ];
    for (field, body) in cases {
        let r = server.post_json("/api/observer/events", &body).await;
        let answer = expect(r, 400, "invalid_payload").await;
        assert_eq!(field_of(&answer, None), vec![field.to_owned()], "case {field}: {answer}");
    }
    assert_nothing_logged_or_stored(&server).await;
}

#[tokio::test]
async fn size_and_count_limits_answer_413_naming_the_limit() {
    let server = TestServer::start(&[
        ("OBSERVER_MAX_JSON_BODY", "16KiB"),
        ("OBSERVER_MAX_REPLAY_BODY", "64KiB"),
        ("OBSERVER_MAX_REPLAY_DECOMPRESSED", "256KiB"),
        ("OBSERVER_MAX_BATCH_ITEMS", "3"),
    ])
    .await;
    let big = json!({"message": MARKER, "context": {"pad": "x".repeat(15 * 1024)}, "stack": "y".repeat(2000)});
    let answer = expect(server.post_json("/api/observer/errors", &big).await, 413, "payload_too_large").await;
    assert!(answer["message"].as_str().unwrap().contains("OBSERVER_MAX_JSON_BODY"));
    // Small on the wire, too large once inflated.
    let inflated = json!({"message": MARKER, "stack": "z".repeat(20 * 1024)}).to_string();
    let r = server
        .http
        .post(server.url("/api/observer/errors"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(inflated.as_bytes()))
        .send()
        .await
        .unwrap();
    let answer = expect(r, 413, "payload_too_large").await;
    assert!(answer["message"].as_str().unwrap().contains("OBSERVER_MAX_JSON_BODY"));
    let four = json!([valid_error(), valid_error(), valid_error(), valid_error()]);
    let answer = expect(server.post_json("/api/observer/errors", &four).await, 413, "payload_too_large").await;
    assert!(answer["message"].as_str().unwrap().contains("OBSERVER_MAX_BATCH_ITEMS"));
    let four_events = json!([{"type":"page_view"},{"type":"page_view"},{"type":"page_view"},{"type":"page_view"}]);
    expect(server.post_json("/api/observer/events", &four_events).await, 413, "payload_too_large").await;

    // Replay: as received (the large real chunk is ~70 KB gzip) ...
    let session = unique_id("rejected");
    let replay = |seq: u32| server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}"));
    let r = server
        .http
        .post(replay(0))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(fixture_bytes("large-chunk.json.gz"))
        .send()
        .await
        .unwrap();
    let answer = expect(r, 413, "payload_too_large").await;
    assert!(answer["message"].as_str().unwrap().contains("OBSERVER_MAX_REPLAY_BODY"), "{answer}");
    // ... and decompressed: a gzip bomb (~16 KB that inflate to 16 MiB) stops at the limit.
    let bomb = gzip(&vec![b' '; 16 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let r =
        server.http.post(replay(1)).header("content-type", "application/octet-stream").body(bomb).send().await.unwrap();
    let answer = expect(r, 413, "payload_too_large").await;
    assert!(answer["message"].as_str().unwrap().contains("OBSERVER_MAX_REPLAY_DECOMPRESSED"), "{answer}");
    assert_nothing_logged_or_stored(&server).await;
    assert_eq!(
        server.metric(r#"observer_payloads_rejected_total{route="replay_events",reason="too_large"}"#).await,
        2.0
    );
}

#[tokio::test]
async fn bad_replay_bodies_and_queries() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("rejected");
    let url = |query: &str| server.url(&format!("/api/observer/replay-events?{query}"));
    let post = |query: String, body: Vec<u8>, encoding: Option<&'static str>| {
        let mut request = server.http.post(url(&query)).header("content-type", "application/json").body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send()
    };
    let good = fixture_bytes("session-chunk-001.json.gz");
    let q = format!("session_id={session}&seq=0");

    // Bad gzip, truncated gzip.
    let answer = expect(
        post(q.clone(), b"\x1f\x8b\x08\x00garbage".to_vec(), Some("gzip")).await.unwrap(),
        400,
        "invalid_payload",
    )
    .await;
    assert_eq!(field_of(&answer, None), vec!["body"]);
    let truncated = good[..good.len() / 2].to_vec();
    let answer = expect(post(q.clone(), truncated, Some("gzip")).await.unwrap(), 400, "invalid_payload").await;
    assert!(answer["message"].as_str().unwrap().contains("truncated"), "{answer}");
    // Declared gzip but plain text.
    expect(post(q.clone(), b"[]".to_vec(), Some("gzip")).await.unwrap(), 400, "invalid_payload").await;
    // Not an array; empty array; a bad element (reported by index).
    expect(post(q.clone(), br#"{"type":4,"timestamp":1}"#.to_vec(), None).await.unwrap(), 400, "invalid_payload").await;
    expect(post(q.clone(), b"[]".to_vec(), None).await.unwrap(), 400, "invalid_payload").await;
    let mut events: Vec<Value> = serde_json::from_slice(&gunzip(&good)).unwrap();
    events[5]["type"] = json!(9);
    let answer =
        expect(post(q.clone(), serde_json::to_vec(&events).unwrap(), None).await.unwrap(), 400, "invalid_payload")
            .await;
    assert_eq!(answer["details"][0]["index"], 5);
    assert_eq!(answer["details"][0]["field"], "type");
    events[5]["type"] = json!(3);
    events[7].as_object_mut().unwrap().remove("timestamp");
    let answer = expect(
        post(q.clone(), gzip(&serde_json::to_vec(&events).unwrap()), Some("gzip")).await.unwrap(),
        400,
        "invalid_payload",
    )
    .await;
    assert_eq!(
        (answer["details"][0]["index"].as_u64(), answer["details"][0]["field"].as_str()),
        (Some(7), Some("timestamp"))
    );
    // Queries: path tricks, missing or out-of-range seq, unknown parameters.
    for (query, field) in [
        ("session_id=../x&seq=0".to_owned(), "session_id"),
        ("session_id=..%2F..%2Fetc&seq=0".to_owned(), "session_id"),
        (format!("session_id={session}%2F..&seq=0"), "session_id"),
        ("seq=0".to_owned(), "session_id"),
        (format!("session_id={session}"), "seq"),
        (format!("session_id={session}&seq=-1"), "seq"),
        (format!("session_id={session}&seq=4294967296"), "seq"),
        (format!("session_id={session}&seq=0&evil=1"), "evil"),
        (format!("session_id={session}&seq=0&seq=1"), "seq"),
    ] {
        let answer =
            expect(post(query.clone(), good.clone(), Some("gzip")).await.unwrap(), 400, "invalid_payload").await;
        assert_eq!(field_of(&answer, None), vec![field.to_owned()], "{query}: {answer}");
    }
    assert_nothing_logged_or_stored(&server).await;
}

#[tokio::test]
async fn unsupported_media_types_and_encodings_answer_415() {
    let server = TestServer::start(&[]).await;
    let body = valid_error().to_string();
    for content_type in
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream"]
    {
        expect(server.post("/api/observer/errors", content_type, body.clone()).await, 415, "unsupported_media_type")
            .await;
    }
    let r = server.http.post(server.url("/api/observer/events")).body(body.clone()).send().await.unwrap();
    expect(r, 415, "unsupported_media_type").await;
    for encoding in ["br", "deflate", "zstd"] {
        let r = server
            .http
            .post(server.url("/api/observer/errors"))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        expect(r, 415, "unsupported_encoding").await;
    }
    let r = server
        .http
        .post(server.url("/api/observer/replay-events?session_id=session-rejected&seq=0"))
        .header("content-type", "image/png")
        .body(fixture_bytes("session-chunk-000.json.gz"))
        .send()
        .await
        .unwrap();
    expect(r, 415, "unsupported_media_type").await;
    assert_nothing_logged_or_stored(&server).await;
}

#[tokio::test]
async fn ingest_keys_are_required_when_configured() {
    let server = TestServer::start(&[("OBSERVER_INGEST_KEYS", "key-one-123456,key-two-654321")]).await;
    let body = json!({"message": "keyed", "session_id": "session-keyed"}).to_string();
    let send = |key_header: Option<&'static str>, query: &'static str| {
        let mut request = server
            .http
            .post(server.url(&format!("/api/observer/errors{query}")))
            .header("content-type", "text/plain")
            .body(body.clone());
        if let Some(key) = key_header {
            request = request.header("x-observer-key", key);
        }
        request.send()
    };
    expect(send(None, "").await.unwrap(), 401, "unauthorized").await;
    expect(send(Some("wrong-key-0000"), "").await.unwrap(), 401, "unauthorized").await;
    expect(send(None, "?key=key-one-12345").await.unwrap(), 401, "unauthorized").await;
    let r = server
        .http
        .post(server.url("/api/observer/replay-events?session_id=session-keyed&seq=0&key=nope"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(fixture_bytes("session-chunk-000.json.gz"))
        .send()
        .await
        .unwrap();
    expect(r, 401, "unauthorized").await;
    assert_nothing_logged_or_stored(&server).await;
    assert_eq!(send(Some("key-two-654321"), "").await.unwrap().status(), 202);
    assert_eq!(send(None, "?key=key-one-123456").await.unwrap().status(), 202);
    server.wait_stdout_records(2, |r| r["session_id"] == "session-keyed").await;
    assert!(!server.stderr_text().contains("key-one-123456"), "keys never reach the logs");
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let server =
        TestServer::start(&[("OBSERVER_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:3000")]).await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/observer/errors"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,content-encoding,x-observer-key")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
    let allowed_headers = ok.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed_headers.contains("content-encoding") && allowed_headers.contains("x-observer-key"));
    let bad = preflight("https://evil.example").await.unwrap();
    assert!(bad.headers().get("access-control-allow-origin").is_none());

    let post = |origin: &'static str| {
        server
            .http
            .post(server.url("/api/observer/errors"))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(valid_error().to_string())
            .send()
    };
    let answer = expect(post("https://evil.example").await.unwrap(), 403, "origin_not_allowed").await;
    assert!(answer["message"].as_str().unwrap().contains("evil.example"));
    assert_nothing_logged_or_stored(&server).await;
    let r = post("http://localhost:3000").await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert!(
        r.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase().contains("retry-after")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = TestServer::start(&[]).await;
    expect(server.http.get(server.url("/api/observer/nope")).send().await.unwrap(), 404, "not_found").await;
    expect(server.http.get(server.url("/api/observer/errors")).send().await.unwrap(), 405, "method_not_allowed").await;
}

/// Nothing with the marker reached stdout, and no replay chunk was stored.
async fn assert_nothing_logged_or_stored(server: &TestServer) {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let records = server.stdout_records();
    assert!(records.is_empty(), "rejected requests must not be logged: {records:?}");
    let files = server.stored_files();
    assert!(files.is_empty(), "rejected requests must not be stored: {files:?}");
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let server = TestServer::start(&[("OBSERVER_RATE_LIMIT_PER_IP", "2")]).await;
    let mut accepted = 0;
    let mut limited = 0;
    for i in 0..10 {
        let r = server.post_json("/api/observer/errors", &json!({"message": format!("burst {i}")})).await;
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");
                expect(r, 429, "rate_limited").await;
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Burst of twice the per-second rate, then refused.
    assert!((4..=5).contains(&accepted), "accepted {accepted}");
    assert_eq!(accepted + limited, 10);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(server.stdout_records().len(), accepted, "refused requests are not logged");
    assert_eq!(
        server.metric(r#"observer_payloads_rejected_total{route="errors",reason="rate_limited_ip"}"#).await,
        limited as f64
    );
}

#[tokio::test]
async fn every_bad_field_of_an_item_is_reported() {
    let server = TestServer::start(&[]).await;
    let body = json!([
        {"message": MARKER},
        {"message": 5, "colour": "red", "shape": 1, "user_id": "", "timestamp": 1, "session_id": "../x"},
    ]);
    let answer = expect(server.post_json("/api/observer/errors", &body).await, 400, "invalid_payload").await;
    let mut fields = field_of(&answer, Some(1));
    fields.sort();
    assert_eq!(fields, vec!["colour", "message", "session_id", "shape", "timestamp", "user_id"], "{answer}");
    assert!(field_of(&answer, Some(0)).is_empty());
    let answer = expect(
        server.post_json("/api/observer/events", &json!({"type": "custom", "screen_width": -5, "size": 1})).await,
        400,
        "invalid_payload",
    )
    .await;
    let mut fields = field_of(&answer, None);
    fields.sort();
    assert_eq!(fields, vec!["name", "screen_width", "size"], "{answer}");
    assert_nothing_logged_or_stored(&server).await;
}
