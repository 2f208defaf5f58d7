//! `observer healthcheck`: the container image's HEALTHCHECK (the image has
//! no curl). Exit 0 when /readyz answers 2xx, 1 when it answers otherwise or
//! nothing listens.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use crate::common::{TestServer, observer_command};

fn healthcheck(url: &str) -> std::process::Output {
    observer_command().args(["healthcheck", "--url", url]).output().expect("cannot run observer healthcheck")
}

#[tokio::test]
async fn exits_zero_when_ready() {
    let server = TestServer::start(&[]).await;
    let out = healthcheck(&server.url("/readyz"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn default_url_follows_the_listen_setting() {
    let server = TestServer::start(&[]).await;
    let listen = server.base.trim_start_matches("http://").to_owned();
    let out = observer_command().env("OBSERVER_LISTEN", &listen).arg("healthcheck").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn stays_healthy_while_loki_is_down_and_exits_one_once_the_spool_is_full() {
    // Loki unreachable: records are spooled, so /readyz answers 200
    // `degraded` naming `loki`, and the container stays healthy.
    let port = free_port();
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = observer_command()
        .env("OBSERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env("OBSERVER_DATA_DIR", data_dir.path())
        .env("OBSERVER_LOKI_URL", format!("http://127.0.0.1:{}", free_port()))
        .env("OBSERVER_SPOOL_MAX_BYTES", "256KiB")
        .env("OBSERVER_MAX_JSON_BODY", "64KiB")
        .env("OBSERVER_MAX_REPLAY_BODY", "64KiB")
        .env("OBSERVER_RATE_LIMIT_PER_IP", "0")
        .env("OBSERVER_RATE_LIMIT_PER_SESSION", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/readyz");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: Option<serde_json::Value> = match http.get(&url).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if body.as_ref().is_some_and(|b| b["status"] == "degraded") {
            assert_eq!(body.as_ref().unwrap()["checks"]["loki"], "failing");
            break;
        }
        assert!(Instant::now() < deadline, "never degraded: {body:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(healthcheck(&url).status.code(), Some(0), "degraded is healthy");

    // Fill the spool: past 90 % it is not ready (503 naming `spool`).
    let stack = "at f (https://example.test/app.js:1:1)\n".repeat(100);
    for i in 0..400 {
        let body =
            serde_json::json!({"message": format!("fill {i}"), "session_id": "healthcheck-fill", "stack": stack});
        let r = http.post(format!("{base}/api/observer/errors")).json(&body).send().await.unwrap();
        if r.status() == 503 {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = healthcheck(&url);
        if String::from_utf8_lossy(&out.stderr).contains("503") || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("503") && stderr.contains("spool"), "{stderr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn exits_one_when_nothing_listens() {
    let port = free_port();
    let out = healthcheck(&format!("http://127.0.0.1:{port}/readyz"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("observer healthcheck"));
}
