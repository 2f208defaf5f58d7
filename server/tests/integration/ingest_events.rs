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

#[tokio::test]
async fn web_vitals_reach_loki_with_their_fields_and_bad_ones_are_refused() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "100ms")]).await;
    let session = unique_id("sess");
    let page = "https://shop.example/products?id=*";
    let vital = |name: &str, value: f64, rating: &str| {
        json!({"type": "web_vital", "name": name, "value": value, "rating": rating, "url": page,
               "navigation_type": "navigate", "session_id": session, "visitor_id": "visitor-0003"})
    };
    let batch = json!([
        vital("LCP", 2480.5, "good"),
        vital("CLS", 0.27, "poor"),
        vital("INP", 312.0, "needs-improvement"),
        vital("FCP", 900.0, "good"),
        vital("TTFB", 75.2, "good"),
    ]);
    let r = server.post_json("/api/observer/events", &batch).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"accepted": 5}));

    // One bad item refuses the whole batch, each bad field named.
    let bad = json!([vital("TTFB", 10.0, "good"), {"type": "web_vital", "name": "FID", "value": -1, "rating": "fine",
                      "session_id": session}]);
    let r = server.post_json("/api/observer/events", &bad).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_payload");
    let mut fields: Vec<&str> =
        body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["name", "rating", "value"], "{body}");
    assert!(body["details"].as_array().unwrap().iter().all(|d| d["index"] == 1), "{body}");

    let entries = loki.wait_for(5, |e| e.metadata.get("session_id") == Some(&session)).await;
    let mut names: Vec<&str> = entries.iter().map(|e| e.json["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["CLS", "FCP", "INP", "LCP", "TTFB"], "only the accepted batch");
    for e in &entries {
        assert_eq!(e.labels["kind"], "event");
        assert_eq!(e.json["type"], "web_vital");
        assert_eq!(e.json["url"], page);
        assert_eq!(e.json["navigation_type"], "navigate");
        assert!(e.json["value"].is_number());
    }
    let cls = entries.iter().find(|e| e.json["name"] == "CLS").unwrap();
    assert_eq!((cls.json["value"].as_f64(), cls.json["rating"].as_str()), (Some(0.27), Some("poor")));
    let inp = entries.iter().find(|e| e.json["name"] == "INP").unwrap();
    assert_eq!(inp.json["rating"], "needs-improvement");
    assert_eq!(server.metric(r#"observer_events_accepted_total{type="web_vital"}"#).await, 5.0);
}
