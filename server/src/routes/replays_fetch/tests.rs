//! Route tests on the whole router (`oneshot`) with the in-memory store
//! (it counts its reads): the manifest cap and session details, 304s without a
//! download, permits held by streams, and the auth-failure brake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::{Config, Settings};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::store::{ChunkMeta, ReplayStore, SessionDetails, memory::MemoryStore};

const TOKEN: &str = "route-test-viewer-token-0123";
const SESSION: &str = "session-routes-1";

fn meta(seq: u32) -> ChunkMeta {
    let first = 1_700_000_000_000 + i64::from(seq) * 5000;
    ChunkMeta { first_timestamp: first, last_timestamp: first + 4000, events: 10 + seq }
}

fn gzip_json(value: &Value) -> Bytes {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(value.to_string().as_bytes()).unwrap();
    e.finish().unwrap().into()
}

/// `SESSION` with chunks `seqs` and, when given, its listing entry.
fn memory(seqs: &[u32], details: Option<SessionDetails>) -> Arc<MemoryStore> {
    let mut store = MemoryStore::default();
    for &seq in seqs {
        store = store.with_chunk(SESSION, seq, meta(seq), gzip_json(&json!([{"type": 3, "seq": seq}])));
    }
    if let Some(details) = details {
        store = store.with_entry(SESSION, meta(0).first_timestamp, details);
    }
    Arc::new(store)
}

fn state_with(store: Arc<MemoryStore>, settings: impl FnOnce(&mut Settings)) -> AppState {
    let mut s = Settings { viewer_tokens: Some(TOKEN.into()), ..Settings::default() };
    settings(&mut s);
    let config = Arc::new(Config::from_settings(&s).unwrap());
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let dir = tempfile::tempdir().unwrap().keep();
    let spool =
        crate::spool::Spool::open(&dir, 1 << 30, crate::metrics::DeliveryTarget::Stdout, metrics.clone()).unwrap();
    let store: Arc<dyn ReplayStore> = store;
    let chunks = crate::spool::ChunkIntake::new(store.clone(), None, Arc::new(spool.clone()), metrics.clone());
    let readiness = Readiness::start(store.clone(), None, spool.clone(), false);
    AppState::new(config, store, spool, chunks, metrics, Arc::new(registry), readiness)
}

/// GET `path` from 192.0.2.1 with `token` as a bearer and extra headers.
async fn get(state: &AppState, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 5000))));
    crate::routes::router(state.clone()).oneshot(request).await.unwrap()
}

async fn json_of(response: Response) -> Value {
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn manifest_is_capped_and_shows_the_session_entry() {
    let details = SessionDetails {
        url: Some("https://app.example/cart".into()),
        user_id: Some("user-9".into()),
        ..SessionDetails::default()
    };
    let store = memory(&[0, 1, 2, 5], Some(details));
    let state = state_with(store.clone(), |s| s.max_stream_chunks = Some("3".into()));
    let r = get(&state, &format!("/api/observer/replays/{SESSION}"), Some(TOKEN), &[]).await;
    assert_eq!(r.status(), 200);
    let manifest = json_of(r).await;
    let seqs: Vec<u64> = manifest["chunks"].as_array().unwrap().iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(manifest["truncated"], true);
    assert_eq!(manifest["start"], meta(0).first_timestamp);
    assert_eq!(manifest["url"], "https://app.example/cart");
    assert_eq!(manifest["user_id"], "user-9");
    assert_eq!(manifest["first_timestamp"], meta(0).first_timestamp);
    assert_eq!(manifest["last_timestamp"], meta(2).last_timestamp, "over the chunks listed");
    assert_eq!(store.entry_reads.load(Ordering::Relaxed), 1, "one small read");

    // Within the cap; and events past the cap are refused as before.
    let state = state_with(store.clone(), |s| s.max_stream_chunks = Some("4".into()));
    let manifest = json_of(get(&state, &format!("/api/observer/replays/{SESSION}"), Some(TOKEN), &[]).await).await;
    assert_eq!((manifest["chunks"].as_array().unwrap().len(), &manifest["truncated"]), (4, &json!(false)));
    let state = state_with(store, |s| s.max_stream_chunks = Some("3".into()));
    let r = get(&state, &format!("/api/observer/replays/{SESSION}/events"), Some(TOKEN), &[]).await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn without_chunk_0_or_entry_the_details_are_null() {
    for (seqs, details) in [(&[1u32, 2][..], Some(SessionDetails::default())), (&[0, 1][..], None)] {
        let store = memory(seqs, details);
        let state = state_with(store.clone(), |_| {});
        let manifest = json_of(get(&state, &format!("/api/observer/replays/{SESSION}"), Some(TOKEN), &[]).await).await;
        assert_eq!(
            (&manifest["start"], &manifest["url"], &manifest["user_id"], &manifest["truncated"]),
            (&Value::Null, &Value::Null, &Value::Null, &json!(false)),
            "{seqs:?}"
        );
        let reads = store.entry_reads.load(Ordering::Relaxed);
        assert_eq!(reads, usize::from(seqs[0] == 0), "the entry is only looked up with chunk 0");
    }
}

#[tokio::test]
async fn revalidation_answers_304_without_downloading() {
    let store = memory(&[0, 1], None);
    let state = state_with(store.clone(), |_| {});
    let path = format!("/api/observer/replays/{SESSION}/chunks/1");
    for (encoding, tag) in [("gzip", "\"tag-1\""), ("identity", "\"tag-1-identity\"")] {
        let r = get(&state, &path, Some(TOKEN), &[("accept-encoding", encoding), ("if-none-match", tag)]).await;
        assert_eq!(r.status(), 304, "{encoding}");
        assert_eq!(r.headers()["etag"], tag);
        assert_eq!(r.headers()["cache-control"], "private, immutable, max-age=31536000");
    }
    assert_eq!((store.tags.load(Ordering::Relaxed), store.gets.load(Ordering::Relaxed)), (2, 0), "no GET");

    // A stale tag: the chunk, with the same tag as a plain GET gives.
    let r = get(&state, &path, Some(TOKEN), &[("accept-encoding", "gzip"), ("if-none-match", "\"old\"")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"tag-1\"");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["content-length"], gzip_json(&json!([{"type": 3, "seq": 1}])).len().to_string().as_str());
    let r = get(&state, &path, Some(TOKEN), &[]).await;
    assert_eq!(r.headers()["etag"], "\"tag-1-identity\"");
    assert_eq!(json_of(r).await, json!([{"type": 3, "seq": 1}]));
    assert_eq!(store.gets.load(Ordering::Relaxed), 2);
    // Revalidating a chunk that is not stored.
    let r = get(&state, &format!("{path}7"), Some(TOKEN), &[("if-none-match", "\"tag-17\"")]).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn reads_hold_a_fetch_permit_until_their_body_is_gone() {
    let store = memory(&[0, 1], None);
    let state = state_with(store, |s| s.fetch_concurrency = Some("2".into()));
    assert_eq!(state.fetch.permits.available_permits(), 2);
    let events = get(&state, &format!("/api/observer/replays/{SESSION}/events"), Some(TOKEN), &[]).await;
    let chunk = get(&state, &format!("/api/observer/replays/{SESSION}/chunks/0"), Some(TOKEN), &[]).await;
    assert_eq!((events.status().as_u16(), chunk.status().as_u16()), (200, 200));
    assert_eq!(state.fetch.permits.available_permits(), 0, "both bodies not yet sent");
    assert_eq!(json_of(events).await, json!([{"type": 3, "seq": 0}, {"type": 3, "seq": 1}]));
    assert_eq!(state.fetch.permits.available_permits(), 1, "the stream gave its permit back");
    drop(chunk);
    assert_eq!(state.fetch.permits.available_permits(), 2);
    // Manifests and 304s take none.
    let manifest = get(&state, &format!("/api/observer/replays/{SESSION}"), Some(TOKEN), &[]).await;
    assert_eq!(manifest.status(), 200);
    assert_eq!(state.fetch.permits.available_permits(), 2);
}

#[tokio::test]
async fn failed_auth_brakes_the_client_on_every_fetch_route_but_never_a_valid_token() {
    let state = state_with(memory(&[0], None), |s| s.auth_failures_per_minute = Some("2".into()));
    let manifest = format!("/api/observer/replays/{SESSION}");
    assert_eq!(get(&state, &manifest, Some(TOKEN), &[]).await.status(), 200, "successes cost nothing");
    assert_eq!(get(&state, &manifest, None, &[]).await.status(), 401);
    assert_eq!(get(&state, "/api/observer/replays", Some("wrong-token-0123456789"), &[]).await.status(), 401);
    let r = get(&state, &format!("{manifest}?token=v1.1.forged"), None, &[]).await;
    assert_eq!(r.status(), 429, "the third failure");
    for path in
        [manifest.clone(), format!("{manifest}/chunks/0"), format!("{manifest}/events"), "/api/observer/replays".into()]
    {
        let r = get(&state, &path, Some("wrong-token-0123456789"), &[]).await;
        assert_eq!(r.status(), 429, "{path}: failures are braked");
        let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry_after), "{retry_after}");
        assert_eq!(json_of(r).await["error"], "rate_limited");
        // (The fake store has no listing: 503, past the access check.)
        let served = get(&state, &path, Some(TOKEN), &[]).await.status();
        assert!(served == 200 || served == 503, "{path}: a valid token is served, got {served}");
    }
}

#[tokio::test]
async fn viewer_token_in_the_query_is_refused_share_token_accepted() {
    let state = state_with(memory(&[0], None), |_| {});
    let manifest = format!("/api/observer/replays/{SESSION}");
    for path in [manifest.clone(), format!("{manifest}/chunks/0"), "/api/observer/replays".into()] {
        let r = get(&state, &format!("{path}?token={TOKEN}"), None, &[]).await;
        assert_eq!(r.status(), 401, "{path}");
        let body = json_of(r).await;
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    }
    let share = state.viewer.share_signer.sign(SESSION, crate::auth::viewer::unix_now() + 60);
    assert_eq!(get(&state, &format!("{manifest}?token={share}"), None, &[]).await.status(), 200);
}
