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
async fn exits_one_naming_the_failing_probe_when_not_ready() {
    // Loki unreachable: Observer is alive, /readyz answers 503 naming `loki`.
    let port = free_port();
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = observer_command()
        .env("OBSERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env("OBSERVER_DATA_DIR", data_dir.path())
        .env("OBSERVER_LOKI_URL", format!("http://127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
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
    assert!(stderr.contains("503") && stderr.contains("loki"), "{stderr}");
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
