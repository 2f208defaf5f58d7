//! `scripts/demo` (the compose `demo` profile, also run on the host) against
//! the real binary: every record kind the dashboards read reaches stdout,
//! every session's six replay chunks are stored, and the replay's first
//! event lines up with the error record's time.

use std::process::Command;

use serde_json::Value;

use crate::common::{TestServer, gunzip};

#[tokio::test]
async fn demo_posts_errors_events_and_replays_that_are_stored() {
    let server =
        TestServer::start(&[("OBSERVER_RATE_LIMIT_PER_IP", "100"), ("OBSERVER_RATE_LIMIT_PER_SESSION", "20")]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/demo");
    let base = server.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").args([script, "--url", &base, "--sessions", "4"]).output()
    })
    .await
    .unwrap()
    .expect("cannot run python3 scripts/demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("/replay/demo-"), "{stdout}");

    let kind = |k: &'static str| move |r: &Value| r["kind"] == k;
    let replays = server.wait_stdout_records(4, kind("replay")).await;
    let errors = server.wait_stdout_records(4, kind("error")).await;
    let events = server.wait_stdout_records(10, kind("event")).await;
    assert!(events.iter().any(|e| e["type"] == "page_view" && e["referrer"].is_string()));
    assert!(events.iter().any(|e| e["name"] == "plan_selected"));
    assert!(events.iter().any(|e| e["name"] == "signup_completed"));
    let browsers: std::collections::BTreeSet<_> = errors.iter().filter_map(|e| e["browser"].as_str()).collect();
    assert!(browsers.len() >= 3, "{browsers:?}");
    assert!(replays.iter().all(|r| r["url"] == "https://app.example.com/signup"), "{replays:?}");

    // The recorded Chromium error, with its stack, in every session.
    let recorded: Vec<&Value> =
        errors.iter().filter(|e| e["stack"].as_str().is_some_and(|s| s.contains("    at "))).collect();
    assert_eq!(recorded.len(), 4, "{errors:?}");
    let session = recorded[0]["session_id"].as_str().unwrap();
    let error_at = recorded[0]["timestamp"].as_i64().unwrap();

    // Six chunks per session, and the error time falls inside the replay.
    let files = server.stored_files();
    for replay in &replays {
        let id = replay["session_id"].as_str().unwrap();
        let chunks =
            files.iter().filter(|f| f.starts_with(&format!("replays/{id}/")) && f.ends_with(".json.gz")).count();
        assert_eq!(chunks, 6, "{id}: {files:?}");
    }
    let first: Value = serde_json::from_slice(&gunzip(
        &std::fs::read(server.data_dir.path().join(format!("replays/{session}/0000000000.json.gz"))).unwrap(),
    ))
    .unwrap();
    let last: Value = serde_json::from_slice(&gunzip(
        &std::fs::read(server.data_dir.path().join(format!("replays/{session}/0000000005.json.gz"))).unwrap(),
    ))
    .unwrap();
    let start = first[0]["timestamp"].as_i64().unwrap();
    let end = last.as_array().unwrap().last().unwrap()["timestamp"].as_i64().unwrap();
    assert!(start < error_at && error_at < end, "{start} < {error_at} < {end}");

    // The two deliberate refusals, counted by reason.
    assert_eq!(server.metric(r#"observer_payloads_rejected_total{route="errors",reason="invalid"}"#).await, 1.0);
    assert_eq!(
        server.metric(r#"observer_payloads_rejected_total{route="replay_events",reason="conflict"}"#).await,
        1.0
    );
}
