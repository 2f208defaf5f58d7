//! Fault tests of the disk spool: what Observer acknowledged reaches Loki
//! (at least once) and S3 (exactly once) through output outages, SIGKILL
//! and a full spool. The spool is in the data directory (its default), as
//! in a newcomer's first run.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::common::{LokiReceiver, S3Outage, S3Server, TestServer, fixture_bytes, free_port, gunzip, gzip, unique_id};

const VIEWER_TOKEN: &str = "viewer-token-for-spool-tests-0123";

/// Posts `requests` error batches of `per_request`; returns the messages of
/// the acknowledged ones (202) and how many were refused (503).
async fn post_errors(server: &TestServer, session: &str, requests: usize, per_request: usize) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for r in 0..requests {
        let messages: Vec<String> = (0..per_request).map(|i| format!("{session} error {r}-{i}")).collect();
        let batch: Vec<Value> = messages.iter().map(|m| json!({"message": m, "session_id": session})).collect();
        let response = server.post_json("/api/observer/errors", &json!(batch)).await;
        match response.status().as_u16() {
            202 => acknowledged.extend(messages),
            503 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (acknowledged, refused)
}

/// Waits until Loki holds every message of `expected`; returns how many
/// entries carry each (duplicates show as counts above 1).
async fn wait_in_loki(loki: &LokiReceiver, session: &str, expected: &[String]) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = BTreeMap::new();
        for entry in
            loki.entries().into_iter().filter(|e| e.metadata.get("session_id").map(String::as_str) == Some(session))
        {
            if let Some(message) = entry.json["message"].as_str() {
                *seen.entry(message.to_owned()).or_insert(0) += 1;
            }
        }
        if expected.iter().all(|m| seen.contains_key(m)) {
            return seen;
        }
        let missing = expected.iter().filter(|m| !seen.contains_key(*m)).count();
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged records never reached Loki", expected.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn loki_down_then_up_every_accepted_record_arrives_in_order() {
    let port = free_port();
    let loki_url = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_alive_in(
        tempfile::tempdir().unwrap(),
        &[("OBSERVER_LOKI_URL", &loki_url), ("OBSERVER_LOKI_BATCH_WAIT", "50ms")],
    )
    .await;
    let session = unique_id("loki-down");
    let (acknowledged, refused) = post_errors(&server, &session, 40, 10).await;
    assert_eq!((acknowledged.len(), refused), (400, 0));
    assert!(server.metric(r#"observer_spool_items{target="loki"}"#).await >= 400.0);

    let loki = LokiReceiver::start_on(port).await;
    let seen = wait_in_loki(&loki, &session, &acknowledged).await;
    assert!(seen.values().all(|n| *n == 1), "no crash, no duplicates");
    // One stream: delivered oldest first, so its timestamps never go back.
    let stamps: Vec<i128> = loki
        .entries()
        .into_iter()
        .filter(|e| e.metadata.get("session_id") == Some(&session))
        .map(|e| e.timestamp_nanos)
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "the backlog arrives in order");
    assert!(server.metric(r#"observer_delivery_failures_total{target="loki",reason="transport"}"#).await >= 1.0);
}

#[tokio::test]
async fn sigkill_while_loki_is_down_loses_nothing_acknowledged() {
    let port = free_port();
    let loki_url = format!("http://127.0.0.1:{port}");
    let env = [("OBSERVER_LOKI_URL", loki_url.as_str()), ("OBSERVER_LOKI_BATCH_WAIT", "50ms")];
    let mut server = TestServer::start_alive_in(tempfile::tempdir().unwrap(), &env).await;
    let session = unique_id("kill-loki");
    let (acknowledged, _) = post_errors(&server, &session, 30, 10).await;
    server.kill().await;

    let loki = LokiReceiver::start_on(port).await;
    let restarted = TestServer::start_in(server.take_data_dir(), &env).await;
    let seen = wait_in_loki(&loki, &session, &acknowledged).await;
    assert!(seen.values().all(|n| *n == 1), "nothing was pushed before the kill: no duplicates");
    drop(restarted);
}

#[tokio::test]
async fn sigkill_mid_run_with_the_embedded_default_loses_nothing_acknowledged() {
    // Stdout records, local store: the newcomer's first run.
    let mut server = TestServer::start(&[]).await;
    let session = unique_id("kill-stdout");
    let poster = {
        let (http, url) = (server.http.clone(), server.url("/api/observer/errors"));
        let session = session.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for r in 0.. {
                let messages: Vec<String> = (0..5).map(|i| format!("{session} error {r}-{i}")).collect();
                let batch: Vec<Value> = messages.iter().map(|m| json!({"message": m, "session_id": session})).collect();
                match http.post(&url).json(&batch).send().await {
                    Ok(response) if response.status() == 202 => acknowledged.extend(messages),
                    _ => return acknowledged,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    let acknowledged = poster.await.unwrap();
    assert!(acknowledged.len() > 50, "the run acknowledged {} records", acknowledged.len());

    let mut delivered: BTreeSet<String> = messages_on_stdout(&server, &session);
    let restarted = TestServer::start_in(server.take_data_dir(), &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        delivered.extend(messages_on_stdout(&restarted, &session));
        let missing = acknowledged.iter().filter(|m| !delivered.contains(*m)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} acknowledged records were lost");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn messages_on_stdout(server: &TestServer, session: &str) -> BTreeSet<String> {
    server
        .stdout_records()
        .into_iter()
        .filter(|r| r["session_id"] == session)
        .filter_map(|r| r["message"].as_str().map(str::to_owned))
        .collect()
}

/// A real recording, re-stamped so it is a chunk of this test's own.
fn chunk_body(seq: u32) -> Vec<u8> {
    let mut events: Vec<Value> = serde_json::from_slice(&gunzip(&fixture_bytes("session-chunk-000.json.gz"))).unwrap();
    events.truncate(3 + seq as usize % 3);
    gzip(serde_json::to_string(&events).unwrap().as_bytes())
}

async fn post_chunk(server: &TestServer, session: &str, seq: u32) -> u16 {
    let url = server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}"));
    let response = server
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(chunk_body(seq))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn manifest_seqs(server: &TestServer, session: &str) -> Vec<u64> {
    let response = server
        .http
        .get(server.url(&format!("/api/observer/replays/{session}")))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "manifest of {session}");
    let body: Value = response.json().await.unwrap();
    body["chunks"].as_array().unwrap().iter().map(|c| c["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn s3_down_and_sigkill_every_acknowledged_chunk_is_stored_once() {
    let s3 = S3Server::start("spool-faults").await;
    let relay = S3Outage::start(&s3).await;
    let loki = LokiReceiver::start().await;
    let prefix = format!("{}/", unique_id("run"));
    let mut env: Vec<(&str, String)> = relay.env(&s3, &prefix);
    env.push(("OBSERVER_LOKI_URL", loki.url.clone()));
    env.push(("OBSERVER_LOKI_BATCH_WAIT", "50ms".into()));
    env.push(("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN.into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = TestServer::start_in(tempfile::tempdir().unwrap(), &env_refs).await;

    let sessions = [unique_id("s3-a"), unique_id("s3-b")];
    let mut acknowledged = BTreeSet::new();
    for seq in 0..3 {
        for session in &sessions {
            assert_eq!(post_chunk(&server, session, seq).await, 202);
            acknowledged.insert((session.clone(), seq));
        }
    }
    relay.down().await;
    for seq in 3..8 {
        for session in &sessions {
            assert_eq!(post_chunk(&server, session, seq).await, 202, "acknowledged from the spool");
            acknowledged.insert((session.clone(), seq));
        }
    }
    // A session that starts during the outage is acknowledged too.
    let late = unique_id("s3-late");
    for seq in 0..2 {
        assert_eq!(post_chunk(&server, &late, seq).await, 202, "a new session during the outage");
        acknowledged.insert((late.clone(), seq));
    }
    assert!(server.metric(r#"observer_spool_items{target="s3"}"#).await >= 1.0);
    // A re-send of a spooled chunk is an idempotent 202, not a second copy.
    assert_eq!(post_chunk(&server, &sessions[0], 5).await, 202);
    // The fetch API finds the spooled chunks (and S3's are unreachable).
    let seqs = manifest_seqs(&server, &sessions[0]).await;
    assert!((3..8).all(|seq| seqs.contains(&seq)), "spooled chunks are listed: {seqs:?}");
    let chunk = server
        .http
        .get(server.url(&format!("/api/observer/replays/{}/chunks/6", sessions[0])))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(chunk.status(), 200, "a spooled chunk is served");

    server.kill().await;
    relay.up().await;
    let restarted = TestServer::start_in(server.take_data_dir(), &env_refs).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let keys = s3.list(&format!("{prefix}replays/")).await;
        let chunks: Vec<String> = keys.into_iter().filter(|k| k.ends_with(".json.gz")).collect();
        if chunks.len() >= acknowledged.len() {
            break chunks;
        }
        assert!(Instant::now() < deadline, "{} of {} chunks in S3", chunks.len(), acknowledged.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let expected: Vec<String> = acknowledged
        .iter()
        .map(|(session, seq)| format!("{prefix}replays/{session}/{seq:010}.json.gz"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(stored, expected, "every acknowledged chunk, once");
    for (session, seq) in &acknowledged {
        let (body, _, _) = s3.get(&format!("{prefix}replays/{session}/{seq:010}.json.gz")).await;
        assert_eq!(body, chunk_body(*seq), "{session} {seq} stored as sent");
    }
    // Each session's start was logged.
    for session in &sessions {
        let started =
            loki.wait_for(1, |e| e.json["event"] == "replay_started" && e.json["session_id"] == session.as_str());
        assert!(!started.await.is_empty());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while restarted.metric(r#"observer_spool_items{target="s3"}"#).await > 0.0 {
        assert!(Instant::now() < deadline, "the spool never emptied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn full_spool_answers_503_with_retry_after_and_recovers_once_loki_drains_it() {
    let port = free_port();
    let loki_url = format!("http://127.0.0.1:{port}");
    let env = [
        ("OBSERVER_LOKI_URL", loki_url.as_str()),
        ("OBSERVER_LOKI_BATCH_WAIT", "50ms"),
        ("OBSERVER_MAX_JSON_BODY", "64KiB"),
        ("OBSERVER_MAX_REPLAY_BODY", "64KiB"),
        ("OBSERVER_SPOOL_MAX_BYTES", "256KiB"),
    ];
    let server = TestServer::start_alive_in(tempfile::tempdir().unwrap(), &env).await;
    let session = unique_id("full");
    let stack = "at f (https://example.test/app.js:1:1)\n".repeat(100);
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for i in 0..200 {
        let message = format!("{session} error {i}");
        let body = json!({"message": message, "session_id": session, "stack": stack});
        let response = server.post_json("/api/observer/errors", &body).await;
        if response.status() == 503 {
            refusal = Some(response);
            break;
        }
        assert_eq!(response.status(), 202);
        acknowledged.push(message);
    }
    let refusal = refusal.expect("the spool never filled");
    let retry_after: u64 = refusal.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body: Value = refusal.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    assert!(server.metric(r#"observer_delivery_queue_full_total{kind="error"}"#).await >= 1.0);

    let loki = LokiReceiver::start_on(port).await;
    wait_in_loki(&loki, &session, &acknowledged).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = json!({"message": format!("{session} after"), "session_id": session, "stack": stack});
        if server.post_json("/api/observer/errors", &body).await.status() == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "ingestion never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
