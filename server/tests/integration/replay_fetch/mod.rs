//! The replay fetch API (`/api/observer/replays…`) against the real binary,
//! with real rrweb recordings, on the local store and on S3 (moto):
//! listing, manifest, chunks (gzip pass-through, identity, ETag/304),
//! streamed session events, share links, limits. The auth rules are in
//! [`auth`], the generated viewer token and the CLI in [`tokens`].

mod auth;
mod listing;
mod tokens;

use reqwest::{Response, header};
use serde_json::{Value, json};

use crate::common::{S3Server, TestServer, fixture_bytes, gunzip, unique_id};
use crate::ingest_replay::{SESSION_CHUNKS, chunk_name};

pub const VIEWER_TOKEN: &str = "viewer-token-for-tests-0123456789";
pub const SHARE_SECRET: &str = "share-secret-for-tests-0123456789abcdef";

/// Settings every server here gets: a known viewer token and share secret.
pub fn viewer_env() -> Vec<(&'static str, String)> {
    vec![("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN.to_owned()), ("OBSERVER_SHARE_SECRET", SHARE_SECRET.to_owned())]
}

pub async fn start(extra: Vec<(&'static str, String)>) -> TestServer {
    let env: Vec<(&str, String)> = viewer_env().into_iter().chain(extra).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(&env).await
}

/// Posts the recorded session's chunks, in a shuffled order.
pub async fn record_session(server: &TestServer, session: &str) {
    for seq in [2, 0, 5, 1, 4, 3] {
        let r = server
            .http
            .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}&user_id=user-9")))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(fixture_bytes(&chunk_name(seq)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "seq {seq}");
    }
}

/// GET with the viewer token as a bearer.
pub async fn get(server: &TestServer, path: &str, extra: &[(&str, &str)]) -> Response {
    let mut request = server.http.get(server.url(path)).bearer_auth(VIEWER_TOKEN);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn events_of(seq: usize) -> Vec<Value> {
    serde_json::from_slice(&gunzip(&fixture_bytes(&chunk_name(seq)))).unwrap()
}

fn timestamps(events: &[Value]) -> (i64, i64) {
    let ts: Vec<i64> = events.iter().map(|e| e["timestamp"].as_f64().unwrap() as i64).collect();
    (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
}

pub async fn json_of(response: Response) -> Value {
    response.json().await.unwrap()
}

/// Every fetch route on one recorded session.
async fn exercise_routes(server: &TestServer) {
    let session = unique_id("fetch");
    record_session(server, &session).await;

    // Listing: newest first, with the first URL, user id and chunk count.
    let r = get(server, "/api/observer/replays?limit=200", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let listing = json_of(r).await;
    let item = listing["sessions"].as_array().unwrap().iter().find(|s| s["session_id"] == session.as_str()).unwrap();
    let first = events_of(0);
    let href = first.iter().find(|e| e["type"] == 4).unwrap()["data"]["href"].clone();
    let mut item = item.clone();
    // Accepted just now (listing.rs checks these in detail).
    assert_eq!(item["live"], true);
    assert!(item.as_object_mut().unwrap().remove("last_received_at").unwrap().is_i64());
    let all_events: Vec<Value> = (0..SESSION_CHUNKS).flat_map(events_of).collect();
    assert_eq!(
        item,
        json!({"session_id": session, "start": timestamps(&first).0, "url": href, "user_id": "user-9", "chunks": 6,
               "browser": null, "os": null, "duration_ms": timestamps(&all_events).1 - timestamps(&first).0,
               "pages": 4, "errors": 1, "live": true})
    );
    assert_eq!(listing["next_cursor"], Value::Null);

    // Manifest, ordered by seq.
    let manifest = json_of(get(server, &format!("/api/observer/replays/{session}"), &[]).await).await;
    let chunks = manifest["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), SESSION_CHUNKS);
    let mut all_events = Vec::new();
    for (seq, chunk) in chunks.iter().enumerate() {
        let events = events_of(seq);
        let (first_ts, last_ts) = timestamps(&events);
        let bytes = fixture_bytes(&chunk_name(seq)).len();
        let errors = usize::from(seq == 4);
        assert!(chunk["received_at"].is_i64(), "{chunk}");
        assert_eq!(
            chunk,
            &json!({"seq": seq, "first_timestamp": first_ts, "last_timestamp": last_ts, "events": events.len(),
                    "bytes": bytes, "errors": errors, "received_at": chunk["received_at"]})
        );
        all_events.extend(events);
    }
    let (first_ts, last_ts) = timestamps(&all_events);
    assert_eq!(manifest["session_id"], session.as_str());
    assert_eq!(
        (manifest["first_timestamp"].as_i64(), manifest["last_timestamp"].as_i64()),
        (Some(first_ts), Some(last_ts))
    );
    assert_eq!(manifest["duration_ms"], last_ts - first_ts);
    // All chunks are listed; the session's start, first URL and user id
    // come from its listing entry (for someone who opened a share link).
    assert_eq!(manifest["truncated"], false);
    assert_eq!(
        (&manifest["start"], &manifest["url"], &manifest["user_id"]),
        (&json!(timestamps(&first).0), &href, &json!("user-9"))
    );

    check_chunk_representations(server, &session).await;

    // The whole session as one array, in seq order.
    let r = get(server, &format!("/api/observer/replays/{session}/events"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().get("content-length").is_none(), "streamed, not assembled");
    assert_eq!(json_of(r).await, Value::Array(all_events));

    // Unknown session, unknown chunk, bad ids.
    let unknown = unique_id("never-recorded");
    for path in [
        format!("/api/observer/replays/{unknown}"),
        format!("/api/observer/replays/{unknown}/events"),
        format!("/api/observer/replays/{unknown}/chunks/0"),
        format!("/api/observer/replays/{session}/chunks/6"),
    ] {
        let r = get(server, &path, &[]).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(json_of(r).await["error"], "not_found");
    }
    for path in [
        "/api/observer/replays/short",
        "/api/observer/replays/short/events",
        "/api/observer/replays/bad.id.1234/chunks/0",
        &format!("/api/observer/replays/{session}/chunks/x1"),
        &format!("/api/observer/replays/{session}/chunks/+1"),
        &format!("/api/observer/replays/{session}/chunks/4294967296"),
    ] {
        let r = get(server, path, &[]).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(json_of(r).await["error"], "invalid_payload");
    }

    // A share link opens the session.
    let r = server
        .http
        .post(server.url(&format!("/api/observer/replays/{session}/share")))
        .bearer_auth(VIEWER_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"ttl_seconds": 3600}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = json_of(r).await;
    let url = link["url"].as_str().unwrap();
    let token = url.strip_prefix(&format!("/replay/{session}?token=")).unwrap();
    let r =
        server.http.get(server.url(&format!("/api/observer/replays/{session}?token={token}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let expires = humantime::parse_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires.duration_since(std::time::SystemTime::now()).unwrap().as_secs();
    assert!((3590..=3600).contains(&ttl), "{ttl}");
}

/// Gzip as stored vs. decompressed, ETag and 304, for chunk 3.
async fn check_chunk_representations(server: &TestServer, session: &str) {
    let path = format!("/api/observer/replays/{session}/chunks/3");
    let stored = fixture_bytes(&chunk_name(3));

    let r = get(server, &path, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "private, immutable, max-age=31536000");
    assert_eq!(h["vary"], "accept-encoding");
    // Recorded markup is never sniffed or rendered if opened directly.
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"].to_str().unwrap().contains("sandbox"));
    let gzip_etag = h[header::ETAG].to_str().unwrap().to_owned();
    assert!(gzip_etag.starts_with('"') && gzip_etag.ends_with('"') && gzip_etag.len() > 2, "strong: {gzip_etag}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), stored.as_slice(), "the stored bytes, not recompressed");

    let r = get(server, &path, &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["content-type"], "application/json");
    let identity_etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_ne!(identity_etag, gzip_etag, "each representation has its own tag");
    assert_eq!(r.json::<Value>().await.unwrap(), Value::Array(events_of(3)));

    for (encoding, etag) in [("gzip", &gzip_etag), ("identity", &identity_etag)] {
        let r = get(server, &path, &[("accept-encoding", encoding), ("if-none-match", etag)]).await;
        assert_eq!(r.status(), 304, "{encoding}");
        assert_eq!(r.headers()[header::ETAG].to_str().unwrap(), etag);
        assert_eq!(r.headers()["cache-control"], "private, immutable, max-age=31536000");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = get(server, &path, &[("accept-encoding", "gzip"), ("if-none-match", "\"other\"")]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn fetch_routes_on_the_local_store() {
    let server = start(vec![]).await;
    exercise_routes(&server).await;
}

#[tokio::test]
async fn fetch_routes_on_s3() {
    let s3 = S3Server::start("observer-fetch").await;
    let prefix = format!("{}/", unique_id("t"));
    let server = start(s3.env(&prefix)).await;
    exercise_routes(&server).await;
    let keys = s3.list(&format!("{prefix}sessions/")).await;
    assert_eq!(keys.len(), 1, "one listing entry: {keys:?}");
}

#[tokio::test]
async fn listing_pages_and_limits() {
    let server = start(vec![("OBSERVER_MAX_STREAM_CHUNKS", "5".to_owned())]).await;
    let sessions: Vec<String> = (0..3).map(|_| unique_id("page")).collect();
    for session in &sessions {
        record_session(&server, session).await;
    }
    // All three have the same start (same recording): ties sort by id.
    let mut expected = sessions.clone();
    expected.sort();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json_of(get(&server, &format!("/api/observer/replays?limit=2&cursor={cursor}"), &[]).await).await;
        seen.extend(page["sessions"].as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    for query in ["limit=0", "limit=201", "limit=x", "cursor=../../etc", "other=1"] {
        let r = get(&server, &format!("/api/observer/replays?{query}"), &[]).await;
        assert_eq!(r.status(), 400, "{query}");
    }

    // Six chunks, five allowed per manifest: the lowest seqs, truncated.
    let manifest = json_of(get(&server, &format!("/api/observer/replays/{}", sessions[0]), &[]).await).await;
    let seqs: Vec<u64> = manifest["chunks"].as_array().unwrap().iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!((seqs, &manifest["truncated"]), (vec![0, 1, 2, 3, 4], &json!(true)));
    assert_eq!(manifest["user_id"], "user-9");

    // Six chunks, five allowed per stream.
    let r = get(&server, &format!("/api/observer/replays/{}/events", sessions[0]), &[]).await;
    assert_eq!(r.status(), 413);
    let body = json_of(r).await;
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("OBSERVER_MAX_STREAM_CHUNKS"), "{body}");

    // Share TTLs and bodies.
    let share = |body: &'static str| {
        server
            .http
            .post(server.url(&format!("/api/observer/replays/{}/share", sessions[0])))
            .bearer_auth(VIEWER_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for bad in [
        r#"{"ttl_seconds": 59}"#,
        r#"{"ttl_seconds": 2592001}"#,
        r#"{"ttl_seconds": "1h"}"#,
        r#"{"ttl": 60}"#,
        "[",
        "{} x",
    ] {
        let r = share(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    for (body, ttl) in [("", 86_400), (r#"{"ttl_seconds": 60}"#, 60), (r#"{"ttl_seconds": 2592000}"#, 2_592_000)] {
        let link = json_of(share(body).await.unwrap()).await;
        let expires = humantime::parse_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
        let left = expires.duration_since(std::time::SystemTime::now()).unwrap().as_secs();
        assert!((ttl - 10..=ttl).contains(&left), "{body:?}: {left}");
    }
}
