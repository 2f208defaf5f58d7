//! `POST /api/observer/errors`: accepted errors reach stdout (embedded
//! default) and Loki with the documented labels, fields and metadata.

use serde_json::{Value, json};

use crate::common::{LokiReceiver, TestServer, now_ms, unique_id};

pub const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

const STACK: &str = "TypeError: Cannot read properties of undefined (reading 'id')\n    at renderRow (https://app.example.com/assets/main.3f2a9c1b.js:10:5)\n    at Array.map (<anonymous>)\n    at renderTable (https://app.example.com/assets/main.3f2a9c1b.js:20:7)";

fn error(message: &str, session_id: &str) -> Value {
    json!({
        "message": message,
        "type": "TypeError",
        "stack": STACK,
        "url": "https://app.example.com/orders?id=7",
        "timestamp": now_ms() - 3_600_000,
        "session_id": session_id,
        "visitor_id": "visitor-0001",
        "user_id": "user-42",
        "release": "1.2.3",
        "environment": "production",
        "context": {"component": "OrdersTable", "retry": 2},
    })
}

#[tokio::test]
async fn single_error_is_written_to_stdout_with_derived_fields() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("sess");
    let sent = error("Cannot read properties of undefined (reading 'id')", &session);
    let response = server
        .http
        .post(server.url("/api/observer/errors"))
        .header("content-type", "application/json")
        .header("user-agent", CHROME_UA)
        .body(sent.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 1}));

    let records = server.wait_stdout_records(1, |r| r["session_id"] == session.as_str()).await;
    let r = &records[0];
    assert_eq!(r["kind"], "error");
    for field in
        ["message", "type", "stack", "url", "timestamp", "visitor_id", "user_id", "release", "environment", "context"]
    {
        assert_eq!(r[field], sent[field], "field {field}");
    }
    let fingerprint = r["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 16);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(r["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["user_agent"], CHROME_UA);
    assert_eq!(r["browser"], "Chrome");
    assert_eq!(r["browser_version"], "126");
    assert_eq!(r["os"], "Windows");
    assert_eq!(r["device_type"], "desktop");
}

#[tokio::test]
async fn batch_gets_shared_fingerprints_and_reaches_loki() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[
        ("OBSERVER_LOKI_URL", &loki.url),
        ("OBSERVER_ENVIRONMENT", "staging"),
        ("OBSERVER_SERVICE_NAME", "observer-test"),
        ("OBSERVER_LOKI_BATCH_WAIT", "100ms"),
    ])
    .await;
    let session = unique_id("sess");
    let batch = json!([
        error("Order 1234 not found", &session),
        error("Order 98765 not found", &session),
        {"message": "Something else broke", "session_id": session},
    ]);
    let before = now_ms();
    let response = server.post_json("/api/observer/errors", &batch).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 3}));

    let entries = loki.wait_for(3, |e| e.metadata.get("session_id") == Some(&session)).await;
    for e in &entries {
        let labels: Vec<(&str, &str)> = e.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            labels,
            vec![("environment", "staging"), ("kind", "error"), ("level", "error"), ("service_name", "observer-test")]
        );
        assert_eq!(e.json["kind"], "error");
        assert_eq!(e.metadata["fingerprint"], e.json["fingerprint"]);
        // The entry is stamped with the receive time, not the client's clock.
        let entry_ms = (e.timestamp_nanos / 1_000_000) as i64;
        assert!(entry_ms >= before - 1000 && entry_ms <= now_ms() + 1000, "entry time {entry_ms}");
    }
    let first = entries.iter().find(|e| e.json["message"] == "Order 1234 not found").unwrap();
    let second = entries.iter().find(|e| e.json["message"] == "Order 98765 not found").unwrap();
    let other = entries.iter().find(|e| e.json["message"] == "Something else broke").unwrap();
    assert_eq!(first.json["fingerprint"], second.json["fingerprint"], "numbers must not split a group");
    assert_ne!(first.json["fingerprint"], other.json["fingerprint"]);
    assert_eq!(first.metadata["user_id"], "user-42");
    assert_eq!(first.metadata["visitor_id"], "visitor-0001");
    assert!(!other.metadata.contains_key("user_id"), "absent ids are not sent as metadata");
    // The client timestamp stays a JSON field; the default is the receive time.
    assert!(first.json["timestamp"].as_i64().unwrap() < before - 3_000_000);
    assert!(other.json["timestamp"].as_i64().unwrap() >= before);

    assert!(loki.content_types().iter().all(|ct| ct == "application/x-protobuf"));
    // The server's own logs arrive as their own low-cardinality stream.
    loki.wait_for(1, |e| e.labels.get("kind").map(String::as_str) == Some("server")).await;
    assert!(server.stdout_records().is_empty(), "with Loki configured nothing goes to stdout");
}

#[tokio::test]
async fn text_plain_and_gzip_bodies_are_accepted() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("sess");
    let body = json!({"message": "beacon error", "session_id": session}).to_string();
    let r = server.post("/api/observer/errors", "text/plain;charset=UTF-8", body.clone()).await;
    assert_eq!(r.status(), 202);
    let r = server
        .http
        .post(server.url("/api/observer/errors"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(crate::common::gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    server.wait_stdout_records(2, |r| r["session_id"] == session.as_str()).await;
}

#[tokio::test]
async fn identical_errors_in_one_batch_stay_distinct_in_loki() {
    // Loki drops an entry equal to another in stream, timestamp and line.
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "100ms")]).await;
    let session = unique_id("dupes");
    let same = json!({"message": "Script error.", "session_id": session});
    assert_eq!(server.post_json("/api/observer/errors", &json!([same, same, same])).await.status(), 202);
    let entries = loki.wait_for(3, |e| e.metadata.get("session_id") == Some(&session)).await;
    let mut stamps: Vec<i128> = entries.iter().map(|e| e.timestamp_nanos).collect();
    stamps.dedup();
    assert_eq!(stamps.len(), 3, "entry timestamps must differ: {stamps:?}");
}
