//! Who may fetch what: viewer tokens, share tokens (one session, until they
//! expire), and nothing about a session for anyone else.

use observer::auth::ShareSigner;
use observer::config::Secret;
use serde_json::Value;

use super::{SHARE_SECRET, VIEWER_TOKEN, record_session, start};
use crate::common::{TestServer, unique_id};

fn signer() -> ShareSigner {
    ShareSigner::new(&Secret::new(SHARE_SECRET))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The session-scoped GET routes of `session`.
fn session_paths(session: &str) -> Vec<String> {
    vec![
        format!("/api/observer/replays/{session}"),
        format!("/api/observer/replays/{session}/chunks/0"),
        format!("/api/observer/replays/{session}/events"),
    ]
}

/// Status and `error` code of a GET of `path` (plus `query`) with `bearer`.
async fn fetch(server: &TestServer, path: &str, query: &str, bearer: Option<&str>) -> (u16, Option<String>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let url = if query.is_empty() { server.url(path) } else { server.url(&format!("{path}{separator}{query}")) };
    let mut request = server.http.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    if status == 401 {
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"observer\"");
    }
    let code = r.json::<Value>().await.ok().and_then(|b| b["error"].as_str().map(str::to_owned));
    (status, code)
}

async fn share(server: &TestServer, session: &str, bearer: Option<&str>, query: &str) -> (u16, Value) {
    let mut request = server.http.post(server.url(&format!("/api/observer/replays/{session}/share{query}")));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn auth_rules() {
    // Dozens of deliberate 401s from one client: without the brake (tested
    // in `auth_failures_are_braked_per_client`), every answer is the rule's.
    let server = start(vec![("OBSERVER_AUTH_FAILURES_PER_MINUTE", "0".to_owned())]).await;
    let (a, b) = (unique_id("auth-a"), unique_id("auth-b"));
    record_session(&server, &a).await;
    record_session(&server, &b).await;
    let missing = unique_id("auth-missing");
    let unauthorized = (401, Some("unauthorized".to_owned()));

    // No token, a wrong one, or a non-Bearer scheme: the same 401 whether the
    // session exists, does not, or its id is not even valid.
    for session in [a.as_str(), missing.as_str(), "bad!"] {
        for path in session_paths(session) {
            assert_eq!(fetch(&server, &path, "", None).await, unauthorized, "{path}");
            assert_eq!(fetch(&server, &path, "", Some("wrong-token-0123456789")).await, unauthorized, "{path}");
            assert_eq!(fetch(&server, &path, "token=wrong-token-0123456789", None).await, unauthorized, "{path}");
        }
        assert_eq!(share(&server, session, None, "").await.0, 401);
    }
    let basic = server.http.get(server.url(&format!("/api/observer/replays/{a}"))).basic_auth("u", Some(VIEWER_TOKEN));
    assert_eq!(basic.send().await.unwrap().status(), 401);
    assert_eq!(fetch(&server, "/api/observer/replays", "", None).await, unauthorized);

    // The viewer token opens everything, as a bearer; never in the query,
    // where it would land in proxy logs and browser history.
    for path in session_paths(&a).into_iter().chain(["/api/observer/replays".to_owned()]) {
        assert_eq!(fetch(&server, &path, "", Some(VIEWER_TOKEN)).await.0, 200, "{path}");
        assert_eq!(fetch(&server, &path, &format!("token={VIEWER_TOKEN}"), None).await, unauthorized, "{path}");
    }
    assert_eq!(fetch(&server, &format!("/api/observer/replays/{missing}"), "", Some(VIEWER_TOKEN)).await.0, 404);

    // A share token for A opens A only.
    let token_a = signer().sign(&a, now() + 3600);
    for path in session_paths(&a) {
        assert_eq!(fetch(&server, &path, &format!("token={token_a}"), None).await.0, 200, "{path}");
        assert_eq!(fetch(&server, &path, "", Some(&token_a)).await.0, 200, "as a bearer too: {path}");
    }
    let invalid = (401, Some("token_invalid".to_owned()));
    for session in [b.as_str(), missing.as_str()] {
        for path in session_paths(session) {
            assert_eq!(fetch(&server, &path, &format!("token={token_a}"), None).await, invalid, "{path}");
        }
    }
    // Nor the listing or new share links.
    assert_eq!(fetch(&server, "/api/observer/replays", &format!("token={token_a}"), None).await, unauthorized);
    assert_eq!(share(&server, &a, Some(&token_a), "").await.0, 401);
    assert_eq!(share(&server, &a, None, &format!("?token={token_a}")).await.0, 401);
    // A share link is minted with the viewer token in the header only.
    let (status, body) = share(&server, &a, None, &format!("?token={VIEWER_TOKEN}")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));

    // Expired (genuine) vs. tampered, malformed or signed with another secret.
    // One expiry for both: `now()` read twice could straddle a second, and
    // then nothing would be replaced and "stretched" would stay "expired".
    let expired_at = now() - 1;
    let expired = signer().sign(&a, expired_at);
    assert_eq!(
        fetch(&server, &format!("/api/observer/replays/{a}"), &format!("token={expired}"), None).await,
        (401, Some("token_expired".to_owned()))
    );
    let stretched = expired.replacen(&format!("v1.{expired_at}"), &format!("v1.{}", expired_at + 3601), 1);
    assert_ne!(stretched, expired);
    let other_secret = ShareSigner::new(&Secret::new("another-secret-0123456789abcdef-xyz")).sign(&a, now() + 3600);
    let mut flipped = token_a.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [stretched.as_str(), other_secret.as_str(), flipped.as_str(), "v1.123", "v1.x.y", "v1..."] {
        let got = fetch(&server, &format!("/api/observer/replays/{a}"), &format!("token={bad}"), None).await;
        assert_eq!(got, invalid, "{bad}");
    }
    // An expired token for another session is invalid, not expired.
    let expired_b = signer().sign(&b, now() - 1);
    assert_eq!(
        fetch(&server, &format!("/api/observer/replays/{a}"), &format!("token={expired_b}"), None).await,
        invalid
    );

    // A share token for a bad id is refused before the id is looked at.
    assert_eq!(fetch(&server, "/api/observer/replays/bad.", &format!("token={token_a}"), None).await, invalid);

    // No token reached the logs.
    let logs = server.stderr_text();
    for secret in [VIEWER_TOKEN, &token_a, &expired, SHARE_SECRET] {
        assert!(!logs.contains(secret), "a token leaked into the logs:\n{logs}");
    }
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("observer_http_requests_total{route=\"replay_manifest\",status=\"401\"}"), "{metrics}");
}

/// GET `path` as the client `forwarded_for` (the server trusts the header).
async fn fetch_as(server: &TestServer, forwarded_for: &str, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(server.url(path)).header("x-forwarded-for", forwarded_for);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn auth_failures_are_braked_per_client() {
    let server = start(vec![
        ("OBSERVER_AUTH_FAILURES_PER_MINUTE", "3".to_owned()),
        ("OBSERVER_TRUST_FORWARDED_FOR", "true".to_owned()),
    ])
    .await;
    let session = unique_id("brake");
    record_session(&server, &session).await;
    let manifest = format!("/api/observer/replays/{session}");
    let attacker = "203.0.113.50";

    // Successes cost nothing; three failures are answered as such.
    for _ in 0..5 {
        assert_eq!(fetch_as(&server, attacker, &manifest, Some(VIEWER_TOKEN)).await.status(), 200);
    }
    for path in [manifest.clone(), format!("{manifest}/chunks/0"), "/api/observer/replays".to_owned()] {
        assert_eq!(fetch_as(&server, attacker, &path, Some("guess-0123456789abcdef")).await.status(), 401, "{path}");
    }
    // The fourth failure, and every failure after it for a while, is 429
    // with Retry-After (one failure per 20 s); a valid token from the same
    // client is served all along.
    let forged = signer().sign(&session, now() + 3600).replace("v1.", "v1.9");
    let r = fetch_as(&server, attacker, &format!("{manifest}?token={forged}"), None).await;
    assert_eq!(r.status(), 429);
    for path in [manifest.clone(), format!("{manifest}/events"), "/api/observer/replays".to_owned()] {
        let r = fetch_as(&server, attacker, &path, Some("guess-0123456789abcdef")).await;
        assert_eq!(r.status(), 429, "{path}");
        let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=20).contains(&retry_after), "{retry_after}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
        assert_eq!(fetch_as(&server, attacker, &path, Some(VIEWER_TOKEN)).await.status(), 200, "{path}");
    }

    // Another client is not affected; an IPv6 client is braked by its /64.
    assert_eq!(fetch_as(&server, "203.0.113.51", &manifest, Some(VIEWER_TOKEN)).await.status(), 200);
    for host in 1..=3 {
        let r = fetch_as(&server, &format!("2001:db8:5:6::{host}"), &manifest, Some("guess-0123456789abcdef")).await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(fetch_as(&server, "2001:db8:5:6:ffff::9", &manifest, Some(VIEWER_TOKEN)).await.status(), 200);
    assert_eq!(
        fetch_as(&server, "2001:db8:5:6:ffff::9", &manifest, Some("guess-0123456789abcdef")).await.status(),
        429
    );
    assert_eq!(fetch_as(&server, "2001:db8:5:6::1", &manifest, Some("guess-0123456789abcdef")).await.status(), 429);
    assert_eq!(fetch_as(&server, "2001:db8:5:6::1", &manifest, Some(VIEWER_TOKEN)).await.status(), 200);
    assert_eq!(fetch_as(&server, "2001:db8:5:7::1", &manifest, Some(VIEWER_TOKEN)).await.status(), 200);

    let metrics = server.metrics_text().await;
    assert!(metrics.contains("observer_http_requests_total{route=\"replay_manifest\",status=\"429\"}"), "{metrics}");
}

/// The scenario: one bad guess a second from the address real
/// viewers share (a NAT; forwarded addresses not trusted), three failures
/// a minute allowed. Every valid request is served; the guesses are braked.
#[tokio::test]
async fn valid_token_is_served_while_the_same_ip_fails_repeatedly() {
    let server = start(vec![("OBSERVER_AUTH_FAILURES_PER_MINUTE", "3".to_owned())]).await;
    let session = unique_id("nat");
    record_session(&server, &session).await;
    let manifest = format!("/api/observer/replays/{session}");
    let (mut refused, mut braked) = (0, 0);
    for round in 0..15 {
        let guess = fetch(&server, &manifest, "", Some(&format!("guess-{round}-0123456789abcdef"))).await;
        match guess.0 {
            401 => refused += 1,
            429 => braked += 1,
            other => panic!("a guess got {other}"),
        }
        for path in session_paths(&session) {
            assert_eq!(fetch(&server, &path, "", Some(VIEWER_TOKEN)).await.0, 200, "round {round}: {path}");
        }
        let token = signer().sign(&session, now() + 60);
        assert_eq!(
            fetch(&server, &manifest, &format!("token={token}"), None).await.0,
            200,
            "share link, round {round}"
        );
    }
    assert!(refused >= 3 && braked >= 10, "{refused} × 401, {braked} × 429");
}
