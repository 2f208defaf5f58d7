//! Records a fresh rrweb session in Debian Chromium (npm `rrweb` +
//! `playwright-core`, via tests/recorder) and checks that every chunk the
//! real recorder produced is accepted and stored byte for byte. This keeps
//! the checked-in fixtures honest as rrweb and Chromium move.

use std::process::Command;

use crate::common::{TestServer, unique_id};

#[tokio::test]
async fn a_fresh_chromium_recording_is_accepted() {
    let out = tempfile::tempdir().unwrap();
    let recorder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/recorder/record.mjs");
    let status = Command::new("node")
        .arg(&recorder)
        .env("RECORDER_OUT_DIR", out.path())
        .status()
        .unwrap_or_else(|e| panic!("cannot run node ({e})"));
    assert!(status.success(), "the rrweb recorder failed (run scripts/setup for chromium and npm packages)");

    let mut chunks: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("session-chunk-"))
        .collect();
    chunks.sort();
    assert!(chunks.len() >= 3, "expected several chunks, got {chunks:?}");

    let server = TestServer::start(&[]).await;
    let session = unique_id("fresh");
    for (seq, path) in chunks.iter().enumerate() {
        let body = std::fs::read(path).unwrap();
        let r = server
            .http
            .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}")))
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}: {}", path.display(), r.text().await.unwrap());
        let stored =
            std::fs::read(server.data_dir.path().join(format!("replays/{session}/{seq:010}.json.gz"))).unwrap();
        assert_eq!(stored, body);
    }
    let started = server.wait_stdout_records(1, |r| r["session_id"] == session.as_str()).await;
    assert!(started[0]["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{:?}", started[0]);
}
