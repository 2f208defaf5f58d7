//! SIGTERM: in-flight work finishes, queued records are delivered, exit 0.
//! Loki failures are retried (429/5xx) or counted (other 4xx), never silent.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{LokiReceiver, TestServer, unique_id};

#[tokio::test]
async fn sigterm_flushes_queued_records_to_loki() {
    let loki = LokiReceiver::start().await;
    // A long linger: records are still batched when the signal arrives.
    let mut server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "30s")]).await;
    let session = unique_id("shutdown");
    let batch: Vec<_> = (0..50).map(|i| json!({"message": format!("error {i}"), "session_id": session})).collect();
    assert_eq!(server.post_json("/api/observer/errors", &json!(batch)).await.status(), 202);
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status:?}");
    let delivered = loki.entries().into_iter().filter(|e| e.metadata.get("session_id") == Some(&session)).count();
    assert_eq!(delivered, 50);
}

#[tokio::test]
async fn sigterm_flushes_stdout_records() {
    let mut server = TestServer::start(&[]).await;
    let session = unique_id("shutdown");
    assert_eq!(
        server.post_json("/api/observer/events", &json!({"type": "page_view", "session_id": session})).await.status(),
        202
    );
    assert!(server.terminate().await.success());
    assert_eq!(server.stdout_records().iter().filter(|r| r["session_id"] == session.as_str()).count(), 1);
}

#[tokio::test]
async fn loki_errors_are_retried_or_counted() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "50ms")]).await;
    // 503 twice, then accepted: delivered once.
    loki.script(StatusCode::SERVICE_UNAVAILABLE, 2);
    let session = unique_id("retry");
    assert_eq!(
        server.post_json("/api/observer/errors", &json!({"message": "retry me", "session_id": session})).await.status(),
        202
    );
    loki.wait_for(1, |e| e.metadata.get("session_id") == Some(&session)).await;
    assert!(server.metric(r#"observer_loki_pushes_total{outcome="retried"}"#).await >= 2.0);

    // 400 (e.g. entry too old): not retried forever, counted and logged.
    loki.script(StatusCode::BAD_REQUEST, 1);
    let refused = unique_id("refused");
    assert_eq!(
        server.post_json("/api/observer/errors", &json!({"message": "refused", "session_id": refused})).await.status(),
        202
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric(r#"observer_records_undelivered_total{reason="rejected"}"#).await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "a refused push must be counted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(server.metric(r#"observer_loki_pushes_total{outcome="failed"}"#).await >= 1.0);
    // Delivery goes on afterwards.
    let after = unique_id("after");
    assert_eq!(
        server.post_json("/api/observer/errors", &json!({"message": "after", "session_id": after})).await.status(),
        202
    );
    loki.wait_for(1, |e| e.metadata.get("session_id") == Some(&after)).await;
}
