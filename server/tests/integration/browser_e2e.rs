//! The whole loop in a real browser (Debian chromium via npm playwright-core):
//! a page with the SDK records a session, Observer stores it and logs its
//! records to Loki, and the player shows it to someone with a share link —
//! and to nobody without one. The browser half is tests/e2e/run.mjs.

use std::{path::PathBuf, process::Command};

use axum::{Router, extract::Path, http::header, response::IntoResponse};
use serde_json::Value;

use crate::common::{LokiReceiver, TestServer};

const VIEWER_TOKEN: &str = "e2e-viewer-token-0123456789abcdef";
const SHARE_SECRET: &str = "e2e-share-secret-0123456789abcdef0123456789";

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

/// Serves tests/e2e/app with `__OBSERVER__` replaced by Observer's URL, on
/// its own origin (so the SDK posts cross-origin, as in production), and
/// `/api/stock`, which answers 503.
async fn start_app(observer: String) -> String {
    let app = Router::new()
        // The app's own API, down: the SDK reports the failed fetch as an HttpError.
        .route("/api/stock", axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .route(
            "/{file}",
            axum::routing::get(move |Path(file): Path<String>| {
                let observer = observer.clone();
                async move {
                    let path = e2e_dir().join("app").join(&file);
                    let Ok(text) = std::fs::read_to_string(&path) else {
                        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
                    };
                    let content_type =
                        if file.ends_with(".js") { "text/javascript" } else { "text/html; charset=utf-8" };
                    ([(header::CONTENT_TYPE, content_type)], text.replace("__OBSERVER__", &observer)).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Every stored chunk of a session, gunzipped and joined.
fn chunks_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".json.gz") {
            let bytes = std::fs::read(&path).unwrap();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
        }
    }
    text
}

async fn node(args: &[&str]) -> Value {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // Blocking process on a blocking thread: the runtime keeps serving the
    // app and the Loki receiver meanwhile.
    let command_args = args.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(e2e_dir().join("run.mjs")).args(&command_args).output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run node ({e}); scripts/setup installs what the e2e test needs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run.mjs {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("run.mjs printed no JSON ({e}): {stdout}\n{stderr}"))
}

fn share_token_via_cli(server: &TestServer, session_id: &str, ttl: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_observer"))
        .args(["share", session_id, "--ttl", ttl])
        .env("OBSERVER_SHARE_SECRET", SHARE_SECRET)
        .env("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN)
        .env("OBSERVER_DATA_DIR", server.data_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "observer share: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    url.trim().split("token=").nth(1).expect("the share URL carries a token").to_owned()
}

/// A correctly signed share token that expired a minute ago (the CLI and the
/// API refuse to make one), built as docs/replay-api.md describes.
fn expired_share_token(session_id: &str) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let expiry = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 60;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SHARE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{session_id}\n{expiry}").as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("v1.{expiry}.{signature}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_records_and_the_player_replays_in_chromium() {
    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[
        ("OBSERVER_LOKI_URL", &loki.url),
        ("OBSERVER_LOKI_BATCH_WAIT", "100ms"),
        ("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN),
        ("OBSERVER_SHARE_SECRET", SHARE_SECRET),
    ])
    .await;
    let app = start_app(server.base.clone()).await;

    // 1. Record: type, click, navigate with the History API, throw, reload.
    let recorded = node(&["record", &app]).await;
    let session = recorded["session_id"].as_str().unwrap().to_owned();

    // 2. Stored chunks (several seqs) and Loki records with that session id.
    let dir = server.data_dir.path().join("replays").join(&session);
    let chunks: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no chunks stored in {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json.gz"))
        .collect();
    assert!(chunks.len() >= 2, "several chunks expected: {chunks:?}");
    let of_session = |kind: &'static str| {
        let session = session.clone();
        move |e: &crate::common::loki::ReceivedEntry| {
            e.metadata.get("session_id") == Some(&session) && e.labels["kind"] == kind
        }
    };
    let errors = loki.wait_for(2, of_session("error")).await;
    let thrown = errors
        .iter()
        .find(|e| e.json["message"].as_str().unwrap_or("").contains("Cannot read properties of undefined"))
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(thrown.json["type"], "TypeError");
    assert_eq!(thrown.json["release"], "e2e-1.0.0");
    // The failed fetch is an error record too, its query values masked.
    let failed_fetch = errors.iter().find(|e| e.json["type"] == "HttpError").unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(failed_fetch.json["message"], format!("GET {app}/api/stock?sku=* failed: 503"));
    assert_eq!(failed_fetch.json["context"]["status"], 503);
    assert_eq!(failed_fetch.json["context"]["mechanism"], "fetch");
    assert_eq!(failed_fetch.labels["level"], "error");
    // ...and the request is in the replay as a network event, and Observer's own requests are not.
    let replay_text = chunks_text(&dir);
    assert!(
        replay_text.contains(&format!(r#""url":"{app}/api/stock?sku=*","status":503"#)),
        "no network event for the failed fetch"
    );
    assert!(
        !replay_text.contains(&format!(r#""url":"{}/api/observer/"#, server.base)),
        "Observer's own requests recorded"
    );
    let page_views = loki.wait_for(3, of_session("event")).await;
    assert!(page_views.iter().filter(|e| e.json["type"] == "page_view").count() >= 3, "{page_views:?}");
    assert!(page_views.iter().any(|e| e.json["url"].as_str().unwrap_or("").ends_with("/step-2")));
    loki.wait_for(1, of_session("replay")).await;

    // 3. The API refuses without access.
    let manifest_url = server.url(&format!("/api/observer/replays/{session}"));
    assert_eq!(server.http.get(&manifest_url).send().await.unwrap().status(), 401);

    // 4. A share link, an expired one and one for another session.
    let share: Value = server
        .http
        .post(server.url(&format!("/api/observer/replays/{session}/share")))
        .bearer_auth(VIEWER_TOKEN)
        .json(&serde_json::json!({"ttl_seconds": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let share_token = share["url"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    let expired = expired_share_token(&session);
    let foreign = share_token_via_cli(&server, "some-other-session-0001", "1h");
    let expired_answer: Value =
        server.http.get(format!("{manifest_url}?token={expired}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(expired_answer["error"], "token_expired");

    // 5. Watch it in the player.
    let screenshots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    let seen =
        node(&["watch", &server.base, &session, &share_token, &expired, &foreign, screenshots.to_str().unwrap()]).await;
    assert!(seen["intro"].as_str().unwrap().contains("Welcome to the order desk"), "{seen}");
    assert!(seen["table"].as_str().unwrap().contains("Widget Alpha"), "{seen}");
    let typed = seen["typed_name"].as_str().unwrap();
    assert!(!typed.is_empty() && typed.chars().all(|c| c == '*'), "inputs are masked by default: {typed:?}");
    assert!(seen["error_markers"].as_u64().unwrap() >= 1, "the error is marked on the timeline: {seen}");
    // The SDK's console and network recording, shown in the player's panels.
    let rows = |name: &str| -> Vec<String> {
        seen[name].as_array().unwrap().iter().map(|r| r.as_str().unwrap_or("").to_owned()).collect()
    };
    assert!(
        rows("network_rows").iter().any(|r| r.contains("/api/stock") && r.contains("503")),
        "the failed fetch in the Network panel: {seen}"
    );
    assert!(
        rows("console_rows").iter().any(|r| r.contains("stock unavailable")),
        "the console line in the Console panel: {seen}"
    );
    assert_eq!(seen["token_in_address_bar"], false);
    assert_eq!(seen["bare_prompt"], true);
    assert_eq!(seen["bare_iframes"], 0);
    assert!(seen["expired_reason"].as_str().unwrap().contains("expired"), "{seen}");
    assert_eq!(seen["expired_iframes"], 0);
    assert!(seen["foreign_reason"].as_str().unwrap().contains("not valid"), "{seen}");
    assert_eq!(seen["foreign_iframes"], 0);
    assert!(screenshots.join("replay.png").exists());
}
