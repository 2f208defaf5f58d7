//! Hostile query strings, values and header blocks: each gets a defined,
//! small answer. A refusal quotes client input only up to 64 characters,
//! names the parameter or field at fault, and never grows with the input.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestServer, unique_id};
use crate::replay_fetch::{get, record_session, start};

/// A 60 KB parameter name: the query of an answer that once echoed it twice.
fn huge_name() -> String {
    "n".repeat(60_000)
}

/// The answer's status, its size, and the fields its details name.
async fn refusal(response: reqwest::Response) -> (u16, usize, Vec<String>, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let fields = body["details"]
        .as_array()
        .map(|d| d.iter().map(|d| d["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    (status, text.len(), fields, body)
}

#[tokio::test]
async fn query_parameters_are_named_and_echoed_cut() {
    let server = start(vec![]).await;
    let session = unique_id("hostile-query");
    record_session(&server, &session).await;
    let cut = format!("{}…", "n".repeat(64));
    let manifest = format!("/api/observer/replays/{session}");

    for (path, fields) in [
        // The listing: an unknown name is quoted cut, a repeated one named.
        (format!("/api/observer/replays?{}=1", huge_name()), vec![cut.clone()]),
        ("/api/observer/replays?limit=1&limit=2&sort=start".to_owned(), vec!["limit".to_owned(), "sort".to_owned()]),
        // The manifest refuses them too (it ignored them before).
        (format!("{manifest}?{}=1", huge_name()), vec![cut.clone()]),
        (format!("{manifest}?after=3"), vec!["after".to_owned()]),
        (format!("{manifest}?after_seq=1&after_seq=2"), vec!["after_seq".to_owned()]),
    ] {
        let (status, size, named, body) = refusal(get(&server, &path, &[]).await).await;
        assert_eq!(status, 400, "{}: {body}", &path[..path.len().min(80)]);
        assert_eq!(body["error"], "invalid_payload");
        assert_eq!(named, fields);
        assert!(size < 1_000, "{size} bytes for {}", &path[..path.len().min(80)]);
    }
    // What the player sends still works.
    let r = get(&server, &format!("{manifest}?after_seq=3"), &[]).await;
    assert_eq!(r.status(), 200);

    // The replay ingest query, likewise.
    let r = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=9&{}=1", huge_name())))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    let (status, size, named, _) = refusal(r).await;
    assert_eq!((status, named), (400, vec![cut]));
    assert!(size < 1_000, "{size}");
}

#[tokio::test]
async fn a_huge_bad_value_is_quoted_cut() {
    let server = TestServer::start(&[]).await;
    // serde quotes the value it refused ("unknown variant `…`").
    let body = json!({"type": "x".repeat(60_000)}).to_string();
    let (status, size, named, answer) =
        refusal(server.post("/api/observer/events", "application/json", body).await).await;
    assert_eq!((status, named), (400, vec!["type".to_owned()]), "{answer}");
    assert!(size < 2_000, "{size} bytes: {answer}");
    assert!(answer["details"][0]["reason"].as_str().unwrap().ends_with('…'), "{answer}");
}

#[tokio::test]
async fn web_vitals_refuse_negative_zero_and_control_characters() {
    let server = TestServer::start(&[]).await;
    let vital = |value: &str, navigation: &str| {
        format!(
            r#"{{"type":"web_vital","name":"LCP","value":{value},"rating":"good","navigation_type":{}}}"#,
            serde_json::to_string(navigation).unwrap()
        )
    };
    for (body, field) in [
        (vital("-0", "navigate"), "value"),
        (vital("-0.0", "navigate"), "value"),
        (vital("1", "navigate\u{0}"), "navigation_type"),
        (vital("1", "re\nload"), "navigation_type"),
        (vital("1", "\u{1b}[31m"), "navigation_type"),
    ] {
        let (status, _, named, answer) =
            refusal(server.post("/api/observer/events", "application/json", body).await).await;
        assert_eq!((status, named), (400, vec![field.to_owned()]), "{answer}");
    }
    let (status, ..) =
        refusal(server.post("/api/observer/events", "application/json", vital("0", "navigate")).await).await;
    assert_eq!(status, 202);
}

/// hyper answers an oversized head itself, before Observer's code runs: a
/// bare 431 (docs/security.md says why there is no JSON body), at once.
#[tokio::test]
async fn a_megabyte_of_headers_gets_a_bare_431() {
    let server = TestServer::start(&[]).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    // Written on the side: the server stops reading at its 64 KiB buffer.
    tokio::spawn(async move {
        let _ = write.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await;
        let line = format!("x-filler: {}\r\n", "f".repeat(8_000));
        for _ in 0..128 {
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = write.write_all(b"\r\n").await;
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 431"), "{answer}");
    assert!(answer.contains("content-length: 0") && answer.ends_with("\r\n\r\n"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // The server is unharmed.
    assert_eq!(server.http.get(server.url("/healthz")).send().await.unwrap().status(), 200);
}
