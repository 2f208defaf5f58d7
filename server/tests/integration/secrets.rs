//! Secrets stay secret, and Loki's answers about them are heard: Loki
//! credentials never reach any output (stdout, stderr, `--help`, config
//! errors, nor any line Loki receives, the server's own logs included) while
//! every request to Loki carries them and the tenant; a Loki refusing our
//! credentials makes the instance degraded (still ready: the records are
//! spooled) and keeps the records; `/readyz` tells anonymous callers no
//! hosts, buckets or error texts.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{LokiReceiver, S3Server, TestServer, observer_command, unique_id};

const PASSWORD: &str = "s3cr3t-pw";
const BEARER: &str = "loki-bearer-s3cr3t-0123";
const VIEWER_TOKEN: &str = "viewer-token-for-secrets-0123456789";

/// Everything the server wrote and Loki received, as one text to search.
fn all_output(server: &TestServer, loki: &LokiReceiver) -> String {
    let mut text = server.stderr_text();
    for record in server.stdout_records() {
        text.push_str(&record.to_string());
    }
    for entry in loki.entries() {
        text.push_str(&format!("{:?} {} {:?}\n", entry.labels, entry.line, entry.metadata));
    }
    text
}

fn assert_absent(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into the output:\n{text}");
    }
}

/// Polls `/readyz` (anonymous) until its `status` is `want`; `ready` and
/// `degraded` answer 200, `not_ready` 503.
async fn wait_readiness(server: &TestServer, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.http.get(server.url("/readyz")).send().await.unwrap();
        let code = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        if body["status"] == want {
            assert_eq!(code, if want == "not_ready" { 503 } else { 200 }, "{body}");
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz never answered {want}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readiness_as_viewer(server: &TestServer) -> (u16, Value) {
    let r = server.http.get(server.url("/readyz")).bearer_auth(VIEWER_TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post_error(server: &TestServer, session: &str) {
    let body = json!({"message": "secrets test error", "session_id": session});
    assert_eq!(server.post_json("/api/observer/errors", &body).await.status(), 202);
}

#[tokio::test]
async fn loki_url_credentials_reach_no_output_but_every_loki_request() {
    let loki = LokiReceiver::start().await;
    let url = loki.url.replacen("http://", &format!("http://user:{PASSWORD}@"), 1);
    let server = TestServer::start(&[
        ("OBSERVER_LOKI_URL", &url),
        ("OBSERVER_LOKI_TENANT_ID", "tenant-a"),
        ("OBSERVER_LOKI_BATCH_WAIT", "100ms"),
        ("OBSERVER_LOG", "debug"),
    ])
    .await;
    let session = unique_id("secrets");
    post_error(&server, &session).await;
    loki.wait_for(1, |e| e.metadata.get("session_id") == Some(&session)).await;
    // The server's own logs are shipped too ("observer started" and more).
    loki.wait_for(1, |e| e.labels.get("kind").map(String::as_str) == Some("server")).await;
    // A refused push logs Loki's error at error level: still no secret.
    loki.refuse_with(Some(StatusCode::UNAUTHORIZED));
    post_error(&server, &unique_id("secrets-refused")).await;
    wait_readiness(&server, "degraded").await;
    loki.refuse_with(None);

    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("user:{PASSWORD}")));
    let requests = loki.request_headers();
    assert!(requests.len() >= 3, "data, server-log and /ready requests: {}", requests.len());
    for headers in &requests {
        assert_eq!(headers.get("authorization").map(|v| v.to_str().unwrap()), Some(basic.as_str()), "{headers:?}");
        assert_eq!(headers.get("x-scope-orgid").map(|v| v.to_str().unwrap()), Some("tenant-a"), "{headers:?}");
    }
    let b64 = basic.trim_start_matches("Basic ");
    assert_absent(&all_output(&server, &loki), &[PASSWORD, b64]);

    // Not in --help (clap shows environment values) nor in a config error.
    let help = observer_command().env("OBSERVER_LOKI_URL", &url).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert_absent(&String::from_utf8_lossy(&help.stdout), &[PASSWORD]);
    let bad_url = url.replacen("http://", "ftp://", 1);
    let refused = observer_command().env("OBSERVER_LOKI_URL", &bad_url).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("OBSERVER_LOKI_URL"), "{stderr}");
    assert_absent(&stderr, &[PASSWORD]);
}

#[tokio::test]
async fn loki_refusing_our_credentials_is_degraded_and_loses_nothing() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[
        ("OBSERVER_LOKI_URL", &loki.url),
        ("OBSERVER_LOKI_BEARER_TOKEN", BEARER),
        ("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN),
        ("OBSERVER_LOKI_BATCH_WAIT", "100ms"),
    ])
    .await;
    loki.refuse_with(Some(StatusCode::UNAUTHORIZED));
    let sessions: Vec<String> = (0..3).map(|_| unique_id("refused")).collect();
    for session in &sessions {
        post_error(&server, session).await;
    }

    // Anonymous: which check fails, nothing more. Still ready: the records
    // are acknowledged into the spool, so a load balancer keeps sending.
    let anonymous = wait_readiness(&server, "degraded").await;
    assert_eq!(anonymous["checks"]["loki"], "failing", "{anonymous}");
    assert_eq!(anonymous["checks"]["store"], "ok", "{anonymous}");
    assert_eq!(anonymous["message"], "failing: loki", "{anonymous}");
    assert!(!anonymous.to_string().contains("127.0.0.1"), "{anonymous}");
    // The viewer sees why.
    let (status, detailed) = readiness_as_viewer(&server).await;
    assert_eq!(status, 200);
    let why = detailed["checks"]["loki"].as_str().unwrap();
    assert!(why.contains("401"), "{detailed}");
    assert!(server.metric(r#"observer_loki_push_failures_total{reason="unauthorized"}"#).await >= 1.0);

    // Loki takes them again: every record arrives, once; ready again.
    loki.refuse_with(None);
    for session in &sessions {
        let found = loki.wait_for(1, |e| e.metadata.get("session_id") == Some(session)).await;
        assert_eq!(found.len(), 1, "{session} delivered once");
    }
    wait_readiness(&server, "ready").await;
    assert_eq!(server.metric(r#"observer_records_undelivered_total{reason="rejected"}"#).await, 0.0);
    for headers in loki.request_headers() {
        let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(auth.as_deref(), Some(format!("Bearer {BEARER}").as_str()), "{headers:?}");
    }
    assert_absent(&all_output(&server, &loki), &[BEARER, VIEWER_TOKEN]);
}

#[tokio::test]
async fn readiness_hides_hosts_buckets_and_errors_from_anonymous_callers() {
    let bucket = "observer-hidden-bucket";
    let s3 = S3Server::start(bucket).await;
    let mut env: Vec<(&str, String)> = s3.env("hidden/");
    env.push(("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN.to_owned()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start(&env_refs).await;
    let endpoint = env.iter().find(|(k, _)| *k == "OBSERVER_S3_ENDPOINT").map(|(_, v)| v.clone()).unwrap();
    let host = endpoint.trim_start_matches("http://").to_owned();
    drop(s3);

    // S3 gone: chunks are spooled, so degraded, not unready.
    let anonymous = wait_readiness(&server, "degraded").await;
    assert_eq!(anonymous["checks"]["store"], "failing", "{anonymous}");
    assert_eq!(anonymous["message"], "failing: store", "{anonymous}");
    let (status, detailed) = readiness_as_viewer(&server).await;
    assert_eq!(status, 200);
    let why = detailed["checks"]["store"].as_str().unwrap().to_owned();
    assert_ne!(why, "failing", "{detailed}");
    assert_eq!(detailed["message"], format!("store: {why}"), "{detailed}");
    let text = anonymous.to_string();
    for hidden in [bucket, host.as_str(), "127.0.0.1", why.as_str()] {
        assert!(!text.contains(hidden), "{hidden:?} in {text}");
    }

    // Another token is refused (and braked), not quietly shown the anonymous view.
    let r = server.http.get(server.url("/readyz")).bearer_auth("not-the-viewer-token-0123").send().await.unwrap();
    assert_eq!(r.status(), 401);
}
