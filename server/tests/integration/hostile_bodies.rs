//! Bodies built to cost the server CPU: a megabyte of unknown fields, deep
//! nesting. Each is answered 400 quickly with at most 20 details, and
//! `/healthz` keeps answering while several are parsed at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::common::TestServer;

/// Listed problems in one answer; the rest are counted.
const MAX_DETAILS: usize = 20;

/// `{"message":"m","k000000":0,…}` just under the 1 MiB default body limit,
/// and how many unknown fields it holds.
fn unknown_fields_body(first: &str) -> (String, usize) {
    let mut body = format!("{{{first}");
    let mut count = 0;
    while body.len() < 1_040_000 {
        body.push_str(&format!(",\"k{count:06}\":0"));
        count += 1;
    }
    body.push('}');
    (body, count)
}

async fn post(server: &TestServer, path: &str, body: String) -> (u16, Value) {
    let response = server.post(path, "application/json", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_megabyte_of_unknown_fields_gets_twenty_details_and_a_count() {
    let server = TestServer::start(&[]).await;
    for (path, first) in
        [("/api/observer/errors", r#""message":"m""#), ("/api/observer/events", r#""type":"page_view""#)]
    {
        let (body, unknown) = unknown_fields_body(first);
        let started = Instant::now();
        let (status, answer) = post(&server, path, body).await;
        let elapsed = started.elapsed();
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"], "invalid_payload");
        let details = answer["details"].as_array().unwrap();
        assert_eq!(details.len(), MAX_DETAILS, "{answer}");
        assert_eq!(details[0]["field"], "k000000");
        assert!(details[0]["reason"].as_str().unwrap().starts_with("unknown field; allowed: "), "{answer}");
        assert_eq!(answer["details_truncated"].as_u64(), Some((unknown - MAX_DETAILS) as u64), "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(&format!("{unknown} problems")), "{answer}");
        // Was minutes when each unknown field re-parsed the object.
        assert!(elapsed < Duration::from_secs(5), "{path} took {elapsed:?}");
        println!("{path}: {unknown} unknown fields answered in {elapsed:?}");
    }
    // A short answer has no count.
    let (status, answer) = post(&server, "/api/observer/errors", r#"{"message":"m","x":1}"#.to_owned()).await;
    assert_eq!(status, 400);
    assert!(answer.get("details_truncated").is_none(), "{answer}");
}

#[tokio::test]
async fn healthz_answers_while_hostile_bodies_are_parsed() {
    let server = Arc::new(TestServer::start(&[("OBSERVER_RATE_LIMIT_PER_IP", "0")]).await);
    let (body, _) = unknown_fields_body(r#""message":"m""#);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (server, body, stop, answered) = (server.clone(), body.clone(), stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, answer) = post(&server, "/api/observer/errors", body.clone()).await;
                assert_eq!(status, 400, "{answer}");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let all eight bodies reach the server before probing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let response = probe.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    println!("slowest /healthz {slowest:?} while {answered} hostile bodies were answered");
    assert!(answered >= 8, "only {answered} hostile bodies were answered");
    // The issue's target is 100 ms on a release build; a debug build on a
    // shared machine gets room.
    assert!(slowest < Duration::from_secs(1), "slowest /healthz took {slowest:?}");
}

#[tokio::test]
async fn deep_nesting_is_refused_not_a_crash() {
    let server = TestServer::start(&[]).await;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let cases = [
        ("/api/observer/events", format!(r#"{{"type":"page_view","properties":{{"p":{deep}}}}}"#), "properties"),
        ("/api/observer/errors", format!(r#"{{"message":"m","context":{{"c":{deep}}}}}"#), "context"),
        ("/api/observer/errors", format!(r#"{{"message":"m","x":{deep}}}"#), "x"),
        ("/api/observer/errors", format!("[{deep}]"), "item"),
        ("/api/observer/errors", "[".repeat(100_000), "body"),
    ];
    for (path, body, field) in cases {
        let (status, answer) = post(&server, path, body).await;
        assert_eq!(status, 400, "{path} {field}: {answer}");
        let named = answer["details"][0]["field"].as_str().unwrap();
        assert!(named.starts_with(field) && named.chars().count() <= 129, "{field}: {answer}");
    }
    let health = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
