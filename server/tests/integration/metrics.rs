//! `/metrics` passes `promtool check metrics` and its counters move as
//! requests are accepted and refused; `/healthz` and `/readyz` answer.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::common::{S3Server, TestServer, fixture_bytes, unique_id};

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install Debian's `prometheus` package (scripts/setup does)")
        });
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn counters_move_and_promtool_accepts_the_output() {
    let server = TestServer::start(&[]).await;
    let session = unique_id("metrics");
    assert_eq!(
        server.post_json("/api/observer/errors", &json!([{"message": "a"}, {"message": "b"}])).await.status(),
        202
    );
    assert_eq!(server.post_json("/api/observer/errors", &json!({"message": ""})).await.status(), 400);
    assert_eq!(
        server
            .post_json(
                "/api/observer/events",
                &json!([{"type": "page_view"}, {"type": "custom", "name": "x"}, {"type": "page_view"}])
            )
            .await
            .status(),
        202
    );
    assert_eq!(server.post("/api/observer/events", "application/xml", "<x/>").await.status(), 415);
    let chunk = fixture_bytes("session-chunk-000.json.gz");
    let r = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=0")))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    server.wait_stdout_records(6, |_| true).await;

    let text = server.metrics_text().await;
    promtool_check(&text);
    // Prometheus itself negotiates OpenMetrics.
    let openmetrics = server
        .http
        .get(server.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(openmetrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let openmetrics = openmetrics.text().await.unwrap();
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(openmetrics.contains("# TYPE observer_errors_accepted counter"));
    let expectations = [
        ("observer_errors_accepted_total", 2.0),
        (r#"observer_events_accepted_total{type="page_view"}"#, 2.0),
        (r#"observer_events_accepted_total{type="custom"}"#, 1.0),
        (r#"observer_payloads_rejected_total{route="errors",reason="invalid"}"#, 1.0),
        (r#"observer_payloads_rejected_total{route="events",reason="unsupported"}"#, 1.0),
        (r#"observer_http_requests_total{route="errors",status="202"}"#, 1.0),
        (r#"observer_http_requests_total{route="errors",status="400"}"#, 1.0),
        (r#"observer_http_requests_total{route="replay_events",status="202"}"#, 1.0),
        ("observer_replay_chunks_accepted_total", 1.0),
        ("observer_replay_received_bytes_total", chunk.len() as f64),
        (r#"observer_records_enqueued_total{kind="error"}"#, 2.0),
        (r#"observer_records_enqueued_total{kind="event"}"#, 3.0),
        (r#"observer_records_enqueued_total{kind="replay"}"#, 1.0),
        ("observer_records_delivered_total", 6.0),
        (r#"observer_store_operation_duration_seconds_count{operation="put"}"#, 1.0),
    ];
    for (series, want) in expectations {
        assert_eq!(server.metric(series).await, want, "{series}");
    }
    assert!(text.contains("observer_http_request_duration_seconds_bucket{"));
    assert!(!text.contains(&session), "ids never become metric labels");
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start(&[]).await;
    let r = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["spool"], "ok");
}

#[tokio::test]
async fn readiness_and_ingestion_report_an_unreachable_store() {
    let s3 = S3Server::start("observer-ready").await;
    let env: Vec<(&str, String)> = s3.env("ready/");
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&env_refs).await;
    drop(s3);
    let r = server
        .http
        .post(server.url("/api/observer/replay-events?session_id=session-unreachable&seq=1"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(fixture_bytes("session-chunk-001.json.gz"))
        .send()
        .await
        .unwrap();
    // Acknowledged from the disk spool; uploaded once S3 is back.
    assert_eq!(r.status(), 202);
    assert_eq!(server.metric(r#"observer_spool_items{target="s3"}"#).await, 1.0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = server.http.get(server.url("/readyz")).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        // S3's chunks are spooled: degraded, still ready (200).
        if body["status"] == "degraded" {
            assert_eq!(status, 200, "{body}");
            assert_ne!(body["checks"]["store"], "ok", "{body}");
            assert!(body["message"].as_str().unwrap().contains("store"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "readiness never noticed the store is gone");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The chunk's session is new to this process: its stored bytes are
    // listed (and fail), then the put is tried (and fails).
    let failures = server.metric(r#"observer_store_operation_failures_total{operation="put"}"#).await
        + server.metric(r#"observer_store_operation_failures_total{operation="list"}"#).await;
    assert!(failures >= 1.0);
}
