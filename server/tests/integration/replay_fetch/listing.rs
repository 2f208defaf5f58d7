//! The session listing's fields and filters, and the manifest's live
//! polling (`ETag`/304, `?after_seq=`), on the local store and on S3.

use std::time::Duration;

use serde_json::json;

use super::{get, json_of, start};
use crate::common::{S3Server, TestServer, fixture_bytes, now_ms, unique_id};
use crate::ingest_replay::chunk_name;

const CHROME_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const FIREFOX_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0";

async fn post_chunk(server: &TestServer, session: &str, seq: usize, user: &str, agent: &str, gzip: Vec<u8>) {
    let r = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq={seq}&user_id={user}")))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("user-agent", agent)
        .body(gzip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "seq {seq}: {}", r.text().await.unwrap());
}

/// Session ids of a listing answer.
async fn listed(server: &TestServer, query: &str) -> Vec<String> {
    let r = get(server, &format!("/api/observer/replays?{query}"), &[]).await;
    assert_eq!(r.status(), 200, "{query}");
    let page = json_of(r).await;
    page["sessions"].as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap().to_owned()).collect()
}

async fn exercise_listing(server: &TestServer) {
    // A: the recorded session (4 Meta events, 1 error in chunk 4), from Chrome on Linux.
    let recorded = unique_id("alice");
    for seq in 0..6 {
        post_chunk(server, &recorded, seq, "alice", CHROME_LINUX, fixture_bytes(&chunk_name(seq))).await;
    }
    // A re-sent chunk adds nothing.
    post_chunk(server, &recorded, 4, "alice", CHROME_LINUX, fixture_bytes(&chunk_name(4))).await;
    // B: a shop session started now, from Firefox on Windows, no errors.
    let shop = unique_id("bob");
    let start = now_ms();
    let events = json!([
        {"type": 4, "timestamp": start, "data": {"href": "https://shop.example/Cart?step=2", "width": 800, "height": 600}},
        {"type": 2, "timestamp": start + 1, "data": {"node": {"type": 0, "childNodes": []}}},
        {"type": 5, "timestamp": start + 2, "data": {"tag": "identify", "payload": {"user_id": "bob"}}},
    ]);
    post_chunk(server, &shop, 0, "bob", FIREFOX_WINDOWS, crate::common::gzip(events.to_string().as_bytes())).await;

    let page = json_of(get(server, "/api/observer/replays", &[]).await).await;
    assert_eq!((page["scanned"].as_u64(), page["live_window_ms"].as_u64()), (Some(2), Some(3000)));
    let sessions = page["sessions"].as_array().unwrap();
    assert_eq!(sessions[0]["session_id"], shop.as_str(), "newest first");
    let item = |id: &str| sessions.iter().find(|s| s["session_id"] == id).unwrap().clone();
    let a = item(&recorded);
    assert_eq!(
        (&a["browser"], &a["os"], &a["chunks"], &a["pages"], &a["errors"], &a["live"]),
        (&json!("Chrome"), &json!("Linux"), &json!(6), &json!(4), &json!(1), &json!(true))
    );
    let b = item(&shop);
    assert_eq!(
        (&b["browser"], &b["os"], &b["pages"], &b["errors"], &b["duration_ms"], &b["user_id"]),
        (&json!("Firefox"), &json!("Windows"), &json!(1), &json!(0), &json!(2), &json!("bob"))
    );
    let received = b["last_received_at"].as_i64().unwrap();
    assert!((start - 1000..=now_ms()).contains(&received), "the server's receive time: {received}");

    // Filters.
    assert_eq!(listed(server, "user_id=alice").await, [recorded.as_str()]);
    assert_eq!(listed(server, "user_id=ali").await, Vec::<String>::new(), "user ids match exactly");
    assert_eq!(listed(server, "url=SHOP.example%2Fcart").await, [shop.as_str()], "a substring of the first URL");
    assert_eq!(listed(server, "has_errors=true").await, [recorded.as_str()]);
    assert_eq!(listed(server, "has_errors=false").await, [shop.as_str()]);
    assert_eq!(listed(server, &format!("from={start}")).await, [shop.as_str()]);
    assert_eq!(listed(server, &format!("to={}", start - 1)).await, [recorded.as_str()]);
    assert_eq!(listed(server, "from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z").await, Vec::<String>::new());
    assert_eq!(listed(server, "user_id=bob&has_errors=false&url=cart&live=true").await, [shop.as_str()]);
    // Filters page like the plain listing.
    let first = json_of(get(server, "/api/observer/replays?limit=1&live=true", &[]).await).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let rest = listed(server, &format!("limit=1&live=true&cursor={cursor}")).await;
    assert_eq!(rest, [recorded.as_str()]);

    // Each bad value is named.
    for (query, fields) in [
        ("has_errors=yes&live=1", vec!["has_errors", "live"]),
        ("from=yesterday", vec!["from"]),
        ("from=2000&to=1000", vec!["to"]),
        (&format!("user_id={}", "u".repeat(257)), vec!["user_id"]),
        (&format!("url={}", "u".repeat(2049)), vec!["url"]),
        ("sort=start", vec!["sort"]),
        ("limit=1&limit=2", vec!["limit"]),
    ] {
        let r = get(server, &format!("/api/observer/replays?{query}"), &[]).await;
        assert_eq!(r.status(), 400, "{query}");
        let body = json_of(r).await;
        assert_eq!(body["error"], "invalid_payload");
        let named: Vec<&str> =
            body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(named, fields, "{query}");
    }

    // The manifest of a live session, polled: ETag → 304, ?after_seq= → only newer chunks.
    let path = format!("/api/observer/replays/{recorded}");
    let r = get(server, &path, &[]).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let manifest = json_of(r).await;
    assert_eq!((&manifest["live"], &manifest["errors"], &manifest["last_seq"]), (&json!(true), &json!(1), &json!(5)));
    assert_eq!((&manifest["browser"], &manifest["os"]), (&json!("Chrome"), &json!("Linux")));
    let r = get(server, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let newer = json_of(get(server, &format!("{path}?after_seq=3"), &[]).await).await;
    let seqs: Vec<u64> = newer["chunks"].as_array().unwrap().iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 5]);
    assert_eq!(newer["duration_ms"], manifest["duration_ms"], "the other fields cover the whole session");
    let none = json_of(get(server, &format!("{path}?after_seq=5"), &[]).await).await;
    assert_eq!((none["chunks"].as_array().unwrap().len(), &none["last_seq"]), (0, &json!(5)));
    let r = get(server, &format!("{path}?after_seq=x"), &[]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["details"][0]["field"], "after_seq");

    // Past the live window (3 s here) nothing is live, and the ETag changes.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(listed(server, "live=true").await, Vec::<String>::new());
    assert_eq!(listed(server, "live=false").await.len(), 2);
    let r = get(server, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["live"], false);
    // No token, no listing, filters or not.
    let r = server.http.get(server.url("/api/observer/replays?has_errors=true")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

fn live_window() -> Vec<(&'static str, String)> {
    vec![("OBSERVER_LIVE_WINDOW", "3s".to_owned())]
}

#[tokio::test]
async fn listing_fields_filters_and_live_on_the_local_store() {
    let server = start(live_window()).await;
    exercise_listing(&server).await;
}

#[tokio::test]
async fn listing_fields_filters_and_live_on_s3() {
    let s3 = S3Server::start("observer-listing").await;
    let prefix = format!("{}/", unique_id("t"));
    let server = start(s3.env(&prefix).into_iter().chain(live_window()).collect()).await;
    exercise_listing(&server).await;
}
