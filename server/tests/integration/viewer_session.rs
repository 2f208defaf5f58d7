//! Signing in once per browser (`/api/observer/viewer/session`): the viewer
//! token exchanged for a signed cookie that the fetch routes accept; what
//! the cookie may not do (mint share links), when it stops working
//! (expiry, tampering, a rotated token) and that it works on any replica.

use std::time::Duration;

use observer::auth::ViewerSessions;
use observer::config::Secret;
use reqwest::{Response, header};
use serde_json::Value;

use crate::common::{TestServer, unique_id};
use crate::replay_fetch::{SHARE_SECRET, VIEWER_TOKEN, record_session, start};

const SIGN_IN: &str = "/api/observer/viewer/session";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A cookie value made the way the server makes them (the lib's own type).
fn cookie_value(token: &str, expires_at: u64) -> String {
    ViewerSessions::new(&Secret::new(SHARE_SECRET), Duration::from_secs(12 * 3600)).sign(token, expires_at)
}

async fn sign_in(server: &TestServer, bearer: Option<&str>, headers: &[(&str, &str)]) -> Response {
    let mut request = server.http.post(server.url(SIGN_IN));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The `Set-Cookie` line of an answer.
fn set_cookie(r: &Response) -> String {
    let all: Vec<_> = r.headers().get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(all.len(), 1, "one Set-Cookie: {all:?}");
    all[0].to_str().unwrap().to_owned()
}

/// `observer_viewer=<value>` out of a `Set-Cookie` line.
fn cookie_pair(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap().trim().to_owned();
    assert!(pair.starts_with("observer_viewer=s1."), "{set_cookie}");
    pair
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie.split(';').skip(1).map(|a| a.trim().to_owned()).collect()
}

/// Status and `error` code of a GET with `cookie` (a `Cookie` header value)
/// and maybe a bearer.
async fn get(server: &TestServer, path: &str, cookie: Option<&str>, bearer: Option<&str>) -> (u16, Option<String>) {
    let mut request = server.http.get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let code = r.json::<Value>().await.ok().and_then(|b| b["error"].as_str().map(str::to_owned));
    (status, code)
}

async fn share(server: &TestServer, session: &str, cookie: Option<&str>, headers: &[(&str, &str)]) -> Response {
    let mut request = server.http.post(server.url(&format!("/api/observer/replays/{session}/share")));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn fetch_paths(session: &str) -> Vec<String> {
    vec![
        "/api/observer/replays".to_owned(),
        format!("/api/observer/replays/{session}"),
        format!("/api/observer/replays/{session}/chunks/0"),
        format!("/api/observer/replays/{session}/events"),
    ]
}

#[tokio::test]
async fn sign_in_once_then_fetch_with_the_cookie_and_sign_out() {
    let server = start(vec![("OBSERVER_LOG", "debug".to_owned())]).await;
    let session = unique_id("signin");
    record_session(&server, &session).await;

    let r = sign_in(&server, Some(VIEWER_TOKEN), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let line = set_cookie(&r);
    let attrs = attributes(&line);
    for expected in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(attrs.iter().any(|a| a == expected), "{expected} missing: {line}");
    }
    assert!(attrs.iter().any(|a| a.starts_with("Expires=")), "{line}");
    assert!(!attrs.iter().any(|a| a == "Secure" || a.starts_with("Domain")), "plain http, host-only: {line}");
    let body: Value = r.json().await.unwrap();
    let expires = humantime::parse_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let in_secs = expires.duration_since(std::time::SystemTime::now()).unwrap().as_secs();
    assert!((12 * 3600 - 60..=12 * 3600).contains(&in_secs), "{body}");
    let cookie = cookie_pair(&line);

    // Every fetch route, with the cookie alone.
    for path in fetch_paths(&session) {
        assert_eq!(get(&server, &path, Some(&cookie), None).await, (200, None), "{path}");
        assert_eq!(get(&server, &path, None, None).await.0, 401, "{path} without it");
    }
    // Among other cookies, as a browser sends them.
    let jar = format!("theme=dark; {cookie}; _ga=GA1.2.3");
    assert_eq!(get(&server, &format!("/api/observer/replays/{session}"), Some(&jar), None).await.0, 200);

    // New share links: the cookie alone is not enough (a cross-site form
    // would carry it), whatever else the request says; the token in the
    // header is.
    let origin = server.base.clone();
    for headers in [vec![], vec![("origin", origin.as_str()), ("x-requested-with", "XMLHttpRequest")]] {
        let r = share(&server, &session, Some(&cookie), &headers).await;
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    }
    let auth = format!("Bearer {VIEWER_TOKEN}");
    let r = share(&server, &session, None, &[("authorization", auth.as_str())]).await;
    assert_eq!(r.status(), 200);
    let link: Value = r.json().await.unwrap();
    let token = link["url"].as_str().unwrap().split("token=").nth(1).unwrap().to_owned();
    // Share links work without any sign-in, and beside someone else's.
    for path in fetch_paths(&session).into_iter().skip(1) {
        assert_eq!(get(&server, &format!("{path}?token={token}"), None, None).await.0, 200, "{path}");
        assert_eq!(get(&server, &format!("{path}?token={token}"), Some(&cookie), None).await.0, 200, "{path}");
    }

    // Signing out removes the cookie, with the attributes it was set with.
    let r = server.http.delete(server.url(SIGN_IN)).header(header::COOKIE, &cookie).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let line = set_cookie(&r);
    assert!(line.starts_with("observer_viewer=;"), "{line}");
    let attrs = attributes(&line);
    for expected in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=0"] {
        assert!(attrs.iter().any(|a| a == expected), "{expected} missing: {line}");
    }
    // Without a cookie too: signing out cannot fail.
    assert_eq!(server.http.delete(server.url(SIGN_IN)).send().await.unwrap().status(), 204);

    let logs = server.stderr_text();
    let value = cookie.trim_start_matches("observer_viewer=");
    for secret in [VIEWER_TOKEN, value, token.as_str(), SHARE_SECRET] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("observer_http_requests_total{route=\"viewer_session\",status=\"200\"}"), "{metrics}");
}

#[tokio::test]
async fn refused_sign_ins_and_cookies() {
    let server = start(vec![("OBSERVER_AUTH_FAILURES_PER_MINUTE", "0".to_owned())]).await;
    let session = unique_id("cookie-bad");
    record_session(&server, &session).await;
    let manifest = format!("/api/observer/replays/{session}");

    // Only the viewer token, only in the header.
    let share_token = observer::auth::ShareSigner::new(&Secret::new(SHARE_SECRET)).sign(&session, now() + 3600);
    for bearer in [None, Some("wrong-token-0123456789"), Some(share_token.as_str()), Some("")] {
        let r = sign_in(&server, bearer, &[]).await;
        assert_eq!(r.status(), 401, "{bearer:?}");
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"observer\"");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    }
    let r = server.http.post(server.url(&format!("{SIGN_IN}?token={VIEWER_TOKEN}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = server.http.post(server.url(SIGN_IN)).basic_auth("viewer", Some(VIEWER_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(server.http.get(server.url(SIGN_IN)).send().await.unwrap().status(), 405);

    let unauthorized = (401, Some("unauthorized".to_owned()));
    let good = cookie_value(VIEWER_TOKEN, now() + 3600);
    assert_eq!(get(&server, &manifest, Some(&format!("observer_viewer={good}")), None).await.0, 200);

    // Expired, tampered with, for a token that is not configured, longer
    // than the TTL allows, or not a cookie at all.
    let expired = cookie_value(VIEWER_TOKEN, now() - 1);
    let stretched = good.replacen(".", &format!(".{}", 9), 1);
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_token = cookie_value("some-other-viewer-token", now() + 3600);
    let too_long = cookie_value(VIEWER_TOKEN, now() + 3 * 24 * 3600);
    for bad in [expired.as_str(), stretched.as_str(), flipped.as_str(), other_token.as_str(), too_long.as_str()] {
        for path in fetch_paths(&session) {
            let got = get(&server, &path, Some(&format!("observer_viewer={bad}")), None).await;
            assert_eq!(got, unauthorized, "{bad} on {path}");
        }
    }
    for junk in ["observer_viewer=", "observer_viewer=s1", "observer_viewer=\"s1.1.x\"", "observer-viewer=x", ";;;="] {
        assert_eq!(get(&server, &manifest, Some(junk), None).await, unauthorized, "{junk}");
    }
    // An explicit credential decides: a wrong bearer or a bad `?token=`
    // beside a valid cookie is refused.
    let cookie = format!("observer_viewer={good}");
    assert_eq!(get(&server, &manifest, Some(&cookie), Some("wrong-token-0123456789")).await, unauthorized);
    assert_eq!(get(&server, &format!("{manifest}?token=nope"), Some(&cookie), None).await, unauthorized);
}

#[tokio::test]
async fn any_replica_accepts_the_cookie_until_the_token_is_rotated() {
    let first = start(vec![]).await;
    let cookie = cookie_pair(&set_cookie(&sign_in(&first, Some(VIEWER_TOKEN), &[]).await));
    let list = "/api/observer/replays";

    // Another replica with the same secret and tokens: no shared state needed.
    let replica = start(vec![]).await;
    assert_eq!(get(&replica, list, Some(&cookie), None).await.0, 200);
    // A token added beside it keeps existing sign-ins.
    let added = start(vec![("OBSERVER_VIEWER_TOKENS", format!("added-viewer-token-0123,{VIEWER_TOKEN}"))]).await;
    assert_eq!(get(&added, list, Some(&cookie), None).await.0, 200);
    // Rotated: the token the cookie was made from is gone, everyone signs in again.
    let rotated = start(vec![("OBSERVER_VIEWER_TOKENS", "rotated-viewer-token-0123".to_owned())]).await;
    assert_eq!(get(&rotated, list, Some(&cookie), None).await, (401, Some("unauthorized".to_owned())));
    // So does a new share secret.
    let resecret = start(vec![("OBSERVER_SHARE_SECRET", "another-share-secret-0123456789abcdef".to_owned())]).await;
    assert_eq!(get(&resecret, list, Some(&cookie), None).await.0, 401);
}

#[tokio::test]
async fn secure_when_reached_over_https() {
    let secure = |r: &Response| attributes(&set_cookie(r)).iter().any(|a| a == "Secure");

    let public_https = start(vec![("OBSERVER_PUBLIC_URL", "https://observer.example".to_owned())]).await;
    assert!(secure(&sign_in(&public_https, Some(VIEWER_TOKEN), &[]).await));
    assert!(secure(&public_https.http.delete(public_https.url(SIGN_IN)).send().await.unwrap()));

    // Behind a TLS proxy whose forwarded headers are trusted.
    let proxied = start(vec![("OBSERVER_TRUST_FORWARDED_FOR", "true".to_owned())]).await;
    assert!(secure(&sign_in(&proxied, Some(VIEWER_TOKEN), &[("x-forwarded-proto", "https")]).await));
    assert!(!secure(&sign_in(&proxied, Some(VIEWER_TOKEN), &[("x-forwarded-proto", "http")]).await));
    assert!(!secure(&sign_in(&proxied, Some(VIEWER_TOKEN), &[]).await));
    // Not trusted: a client cannot ask for it (nor against it).
    let direct = start(vec![]).await;
    assert!(!secure(&sign_in(&direct, Some(VIEWER_TOKEN), &[("x-forwarded-proto", "https")]).await));
}

#[tokio::test]
async fn ttl_setting_and_brake() {
    let server = start(vec![
        ("OBSERVER_VIEWER_SESSION_TTL", "15m".to_owned()),
        ("OBSERVER_AUTH_FAILURES_PER_MINUTE", "3".to_owned()),
        ("OBSERVER_TRUST_FORWARDED_FOR", "true".to_owned()),
    ])
    .await;
    let r = sign_in(&server, Some(VIEWER_TOKEN), &[]).await;
    assert!(attributes(&set_cookie(&r)).iter().any(|a| a == "Max-Age=900"));
    let cookie = cookie_pair(&set_cookie(&r));

    // Wrong sign-ins and bad cookies are failures like wrong tokens: past
    // the budget they answer 429, while valid credentials are still served.
    let client = [("x-forwarded-for", "198.51.100.7")];
    let list = server.url("/api/observer/replays");
    for _ in 0..2 {
        assert_eq!(sign_in(&server, Some("guess-0123456789abcdef"), &client).await.status(), 401);
    }
    let forged =
        server.http.get(&list).header(client[0].0, client[0].1).header(header::COOKIE, "observer_viewer=s1.9.AAAA");
    assert_eq!(forged.send().await.unwrap().status(), 401);
    assert_eq!(sign_in(&server, Some("guess-0123456789abcdef"), &client).await.status(), 429);
    assert_eq!(sign_in(&server, Some(VIEWER_TOKEN), &client).await.status(), 200);
    let valid = server.http.get(&list).header(client[0].0, client[0].1).header(header::COOKIE, &cookie);
    assert_eq!(valid.send().await.unwrap().status(), 200);
}
