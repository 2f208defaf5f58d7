//! `POST /api/observer/events`: page views and custom events.

use serde_json::{Value, json};

use crate::common::{LokiReceiver, TestServer, unique_id};

#[tokio::test]
async fn page_views_and_custom_events_reach_loki() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "100ms")]).await;
    let session = unique_id("sess");
    let batch = json!([
        {"type": "page_view", "url": "https://app.example.com/", "referrer": "https://search.example/",
         "title": "Home", "screen_width": 1920, "screen_height": 1080, "language": "en-GB",
         "session_id": session, "visitor_id": "visitor-0002"},
        {"type": "custom", "name": "checkout_started", "properties": {"cart_value": 42.5, "items": 3},
         "session_id": session, "visitor_id": "visitor-0002", "user_id": "user-7"},
    ]);
    let response = server
        .http
        .post(server.url("/api/observer/events"))
        .header("content-type", "application/json")
        .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 2}));

    let entries = loki.wait_for(2, |e| e.metadata.get("session_id") == Some(&session)).await;
    for e in &entries {
        assert_eq!(e.labels["kind"], "event");
        assert_eq!(e.labels["level"], "info");
        assert_eq!(e.labels["service_name"], "observer");
        assert!(!e.labels.contains_key("environment"), "no environment label unless configured");
        assert_eq!(e.json["kind"], "event");
        assert_eq!(e.json["device_type"], "mobile");
        assert_eq!(e.json["browser"], "Mobile Safari");
        assert!(e.json["received_at"].is_string());
        assert!(e.json["timestamp"].is_i64());
        assert!(!e.metadata.contains_key("fingerprint"));
    }
    let page_view = entries.iter().find(|e| e.json["type"] == "page_view").unwrap();
    assert_eq!(page_view.json["title"], "Home");
    assert_eq!(page_view.json["screen_width"], 1920);
    assert_eq!(page_view.metadata["visitor_id"], "visitor-0002");
    let custom = entries.iter().find(|e| e.json["type"] == "custom").unwrap();
    assert_eq!(custom.json["name"], "checkout_started");
    assert_eq!(custom.json["properties"], json!({"cart_value": 42.5, "items": 3}));
    assert_eq!(custom.metadata["user_id"], "user-7");
}

#[tokio::test]
async fn single_event_goes_to_stdout() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("sess");
    let r = server
        .post_json(
            "/api/observer/events",
            &json!({"type": "page_view", "url": "https://a.example/", "session_id": session}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let records = server.wait_stdout_records(1, |r| r["session_id"] == session.as_str()).await;
    assert_eq!(records[0]["kind"], "event");
    assert_eq!(records[0]["type"], "page_view");
}
