//! A real SolidJS app (tests/solid-app: solid-js, @solidjs/router, Vite) using
//! `@observer/browser/solid` in Debian chromium against the real binary: route
//! changes arrive as page views (once each, with or without the SDK's own
//! History API autotrack), and a render error caught by Solid's
//! `<ErrorBoundary>` — which never reaches `window.onerror` — arrives as an
//! error record and as an error marker in the session's stored replay, while
//! the app shows its fallback; `reportBoundaryError` does the same from a
//! plain `<ErrorBoundary>`'s fallback. The browser half is
//! tests/solid-app/run.mjs.

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::Value;

use crate::common::{LokiReceiver, TestServer, loki::ReceivedEntry};

const VIEWER_TOKEN: &str = "solid-viewer-token-0123456789abcdef";

fn app_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/solid-app")
}

/// Runs `node run.mjs <args>` on a blocking thread (the runtime keeps
/// serving Observer and the Loki receiver meanwhile); its last stdout line.
async fn run_mjs(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let shown = args.clone();
    let out =
        tokio::task::spawn_blocking(move || Command::new("node").arg(app_dir().join("run.mjs")).args(&args).output())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot run node ({e}); scripts/setup installs what this test needs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run.mjs {shown:?} failed\nstdout: {stdout}\nstderr: {stderr}");
    stdout.lines().last().unwrap_or_default().to_owned()
}

fn of_session(session: &str, kind: &'static str) -> impl Fn(&ReceivedEntry) -> bool + use<> {
    let session = session.to_owned();
    move |e| e.metadata.get("session_id") == Some(&session) && e.labels["kind"] == kind
}

/// The `page_view` URLs of a session, in the order the browser sent them.
fn page_view_paths(loki: &LokiReceiver, session: &str) -> Vec<String> {
    let filter = of_session(session, "event");
    let mut views: Vec<ReceivedEntry> =
        loki.entries().into_iter().filter(|e| filter(e) && e.json["type"] == "page_view").collect();
    views.sort_by_key(|e| e.json["timestamp"].as_i64());
    views
        .iter()
        .map(|e| {
            let url = url::Url::parse(e.json["url"].as_str().unwrap()).unwrap();
            format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solid_boundary_errors_and_router_page_views_reach_observer() {
    for (path, hint) in [
        ("node_modules/solid-js", "scripts/setup runs npm ci in tests/solid-app"),
        ("node_modules/playwright-core", "scripts/setup runs npm ci in tests/solid-app"),
        ("../../sdk/dist/solid.esm.js", "scripts/build-assets builds the SDK"),
    ] {
        assert!(app_dir().join(path).exists(), "tests/solid-app/{path} is missing: {hint}");
    }
    run_mjs(&["build"]).await;

    let loki = LokiReceiver::start().await;
    let server = TestServer::start(&[
        ("OBSERVER_LOKI_URL", &loki.url),
        ("OBSERVER_LOKI_BATCH_WAIT", "100ms"),
        ("OBSERVER_VIEWER_TOKENS", VIEWER_TOKEN),
    ])
    .await;
    let recorded: Value = serde_json::from_str(&run_mjs(&["record", &server.base]).await).unwrap();
    let session = recorded["session_id"].as_str().unwrap().to_owned();
    let router_only = recorded["router_only_session_id"].as_str().unwrap().to_owned();

    // The fallback rendered with the error.
    assert_eq!(recorded["fallback"], "Something went wrong: PriceTag exploded while rendering the price");

    // The error record: message, type, stack, and the boundary it came through.
    let errors = loki.wait_for(1, of_session(&session, "error")).await;
    let error = &errors[0].json;
    assert_eq!(error["message"], "PriceTag exploded while rendering the price", "{error}");
    assert_eq!(error["type"], "TypeError");
    // The app is minified (function names are gone): the stack points into its bundle.
    let in_bundle =
        |stack: &Value| stack.as_str().is_some_and(|s| s.contains("/assets/index-") && s.lines().count() > 2);
    assert!(in_bundle(&error["stack"]), "a stack through the app's bundle: {error}");
    assert_eq!(error["context"]["mechanism"], "solid.error_boundary", "{error}");
    assert_eq!(error["context"]["boundary"], "price-panel", "{error}");
    assert_eq!(error["context"]["service"], "solid-shop", "{error}");
    assert_eq!(error["release"], "solid-1.0.0");

    // Page views: one per route visited, none twice though autotrack and the
    // router hook both saw each navigation.
    loki.wait_for(3, |e| of_session(&session, "event")(e) && e.json["type"] == "page_view").await;
    loki.wait_for(2, |e| of_session(&router_only, "event")(e) && e.json["type"] == "page_view").await;
    let custom = loki.with_field("name", "signup_clicked");
    assert!(custom.iter().any(|e| e.json["user_id"] == "solid-user-7"), "useObserver().track/identify: {custom:?}");
    // Anything duplicated would have been flushed with the rest: give it time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(page_view_paths(&loki, &session), ["/", "/orders", "/"]);
    assert_eq!(page_view_paths(&loki, &router_only), ["/?autotrack=off", "/orders"], "the router hook alone");

    // reportBoundaryError from a plain Solid <ErrorBoundary>'s fallback.
    let errors = loki.wait_for(1, of_session(&router_only, "error")).await;
    assert_eq!(errors[0].json["message"], "Order total is negative");
    assert_eq!(errors[0].json["type"], "RangeError");
    assert_eq!(errors[0].json["context"]["mechanism"], "solid.error_boundary");
    assert_eq!(errors[0].json["context"]["boundary"], "order-total");

    // The stored replay carries the error as a marker (rrweb custom event, tag "error").
    let events: Vec<Value> = server
        .http
        .get(server.url(&format!("/api/observer/replays/{session}/events")))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let markers: Vec<&Value> = events.iter().filter(|e| e["type"] == 5 && e["data"]["tag"] == "error").collect();
    assert_eq!(markers.len(), 1, "one error marker in the replay: {markers:?}");
    let marker = &markers[0]["data"]["payload"];
    assert_eq!(marker["message"], "PriceTag exploded while rendering the price");
    assert_eq!(marker["type"], "TypeError");
    assert!(in_bundle(&marker["stack"]), "{marker}");
}
