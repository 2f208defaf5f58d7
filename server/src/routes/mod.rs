//! The route table: the only place paths are written.
//!
//! | group  | paths                                   | layers                                  |
//! |--------|-----------------------------------------|-----------------------------------------|
//! | ingest | `/api/observer/{errors,events,replay-events}` | CORS, origin allow-list, ingest key, rate limit |
//! | fetch  | `/api/observer/replays…`, `/api/observer/viewer/session` | viewer auth (bearer / share token / sign-in cookie), auth-failure brake |
//! | player | `/replay/…`, `/observer.js`             | CSP, caching                            |
//! | ops    | `/healthz`, `/readyz`, `/metrics`       | none                                    |
//!
//! Every route gets: HTTP metrics (its `route` label is set next to its
//! path in the table), tracing without secrets, a request timeout and
//! panic → 500. Body limits are set in the table and enforced by the
//! handlers while streaming (see `ingest::decompress`), because
//! `DefaultBodyLimit` only guards `Bytes`-based extractors.

mod errors;
mod events;
pub mod extract;
mod negotiate;
mod ops;
mod player;
mod replay;
mod replays_fetch;
mod viewer_session;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::MethodRouter,
};
use extract::BatchLimits;
use replay::ReplayLimits;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};

use crate::{
    auth::{INGEST_KEY_HEADER, require_ingest_access},
    config::AllowedOrigins,
    error::ApiError,
    ingest::replay_chunk::ChunkLimits,
    metrics::{Metrics, RequestLabels, Route, RouteLabels},
    rate_limit::limit_ingest_rate,
    state::AppState,
};

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[rustfmt::skip]
pub(crate) fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    // Body limits are passed to the routes that enforce them (while
    // streaming); every group gets the request timeout.
    let batch = BatchLimits { max_body: limits.max_json_body, max_items: limits.max_batch_items };
    let replay = ReplayLimits {
        max_body: limits.max_replay_body,
        chunk: ChunkLimits { max_inflated: limits.max_replay_decompressed, max_depth: limits.max_replay_depth },
        max_chunks: limits.max_session_chunks,
    };
    let request_timeout = limits.request_timeout;
    // Each path is written here once, with its metrics `route` label.
    let mut labels = PathLabels::default();

    let ingest = Router::new()
        .route(labels.add("/api/observer/errors",        Route::Errors),       preflight(errors::route(batch)))
        .route(labels.add("/api/observer/events",        Route::Events),       preflight(events::route(batch)))
        .route(labels.add("/api/observer/replay-events", Route::ReplayEvents), preflight(replay::route(replay)))
        // Outermost first: CORS answers preflights before access checks run,
        // and also decorates 408s and 500s so browsers can read them. Each
        // middleware holds only its own substate (cloned per request).
        .layer(ServiceBuilder::new()
            .layer(cors(&state.config.allowed_origins))
            .layer(middleware::from_fn_with_state(state.ingest_access.clone(), require_ingest_access))
            .layer(middleware::from_fn_with_state(state.rate_limiter.clone(), limit_ingest_rate))
            .layer(catch_panic())
            .layer(timeout(request_timeout)))
        // The hottest routes run with their substate alone: axum clones a
        // router's state for every request it routes.
        .with_state(state.ingest.clone());

    let ops = Router::new()
        .route(labels.add("/healthz", Route::Healthz), ops::healthz())
        .route(labels.add("/readyz",  Route::Readyz),  ops::readyz())
        .route(labels.add("/metrics", Route::Metrics), ops::metrics())
        .layer(ServiceBuilder::new()
            .layer(catch_panic())
            .layer(timeout(request_timeout)));

    // Viewer-facing replay fetch API: viewer auth (bearer, share token or
    // sign-in cookie) in the handlers' extractor, which also applies the
    // per-IP brake on failed authentications (rate_limit::auth_failures); no
    // CORS (same-origin player only), so other sites' scripts cannot send
    // a bearer or a DELETE here (no preflight is ever granted). Chunk and
    // events reads are bounded by `OBSERVER_FETCH_CONCURRENCY`,
    // `OBSERVER_MAX_STREAM_CHUNKS` and `OBSERVER_MAX_REPLAY_DECOMPRESSED`
    // (the `Fetch` substate).
    let fetch = Router::new()
        .route(labels.add("/api/observer/replays",                           Route::ReplaysList),         replays_fetch::list_sessions())
        .route(labels.add("/api/observer/replays/{session_id}",              Route::ReplayManifest),      replays_fetch::get_manifest())
        .route(labels.add("/api/observer/replays/{session_id}/chunks/{seq}", Route::ReplayChunk),         replays_fetch::get_chunk())
        .route(labels.add("/api/observer/replays/{session_id}/events",       Route::ReplaySessionEvents), replays_fetch::stream_session_events())
        .route(labels.add("/api/observer/replays/{session_id}/share",        Route::ReplayShare),         replays_fetch::create_share_link(limits.max_json_body))
        .route(labels.add("/api/observer/viewer/session",                    Route::ViewerSession),       viewer_session::route())
        // Chunks hold recorded (client-crafted) markup: a browser opening an
        // API URL directly must never sniff or render it as a page.
        .layer(ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox; frame-ancestors 'none'"),
            ))
            .layer(catch_panic())
            .layer(timeout(request_timeout)));

    // Static pages and scripts, built from replay-player/ and sdk/.
    let player = Router::new()
        .route(labels.add("/replay",               Route::PlayerPage),  player::sessions_page())
        .route(labels.add("/replay/",              Route::PlayerPage),  player::sessions_page())
        .route(labels.add("/replay/{session_id}",  Route::PlayerPage),  player::player_page())
        .route(labels.add("/replay/assets/{file}", Route::PlayerAsset), player::asset())
        .route(labels.add("/observer.js",          Route::SdkScript),   player::sdk_script())
        .layer(ServiceBuilder::new()
            .layer(catch_panic())
            .layer(timeout(request_timeout)));

    let http_metrics = Arc::new(HttpMetrics { metrics: state.metrics.clone(), labels });
    Router::new()
        .merge(ingest)
        .merge(fetch)
        .merge(player)
        .merge(ops)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(http_metrics, record_http_metrics))
            // Before tracing, so tokens never reach the logs.
            .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE, INGEST_KEY_HEADER]))
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
            // 5xx are logged where they happen (`ApiError`: 500 at error
            // level, 503 refusals at debug); tower-http's default would log
            // every 503 at error level, a log flood under overload or attack.
            .layer(TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG))))
        .with_state(state)
}

/// A panic becomes a JSON 500 instead of a dropped connection.
fn catch_panic() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response())
}

/// No request, body included, may take longer than `OBSERVER_REQUEST_TIMEOUT`.
fn timeout(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limit)
}

/// Gives `OPTIONS` a handler so that it passes through the route's layers,
/// where the CORS layer answers real preflights; a bare `OPTIONS` (not a
/// preflight) then gets 405 like any other method.
fn preflight<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>) -> MethodRouter<S> {
    route.options(|| async { ApiError::MethodNotAllowed })
}

fn cors(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING, INGEST_KEY_HEADER])
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// A span with the method and the route template only: the query string
/// may hold an ingest key and the path may hold ids.
fn request_span(request: &Request) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}

/// The metrics `route` label of each path template, filled in by the route
/// table as it registers the paths.
#[derive(Default)]
struct PathLabels(HashMap<&'static str, Route>);

impl PathLabels {
    /// Records `label` for `path` and gives the path back to register.
    fn add(&mut self, path: &'static str, label: Route) -> &'static str {
        self.0.insert(path, label);
        path
    }

    fn label(&self, matched: Option<&MatchedPath>) -> Route {
        matched.and_then(|path| self.0.get(path.as_str()).copied()).unwrap_or(Route::Unmatched)
    }
}

/// The state of [`record_http_metrics`].
struct HttpMetrics {
    metrics: Arc<Metrics>,
    labels: PathLabels,
}

/// Counts every answer by route template and status, times it, and counts
/// refused ingestion payloads by reason.
async fn record_http_metrics(State(http): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = http.labels.label(request.extensions().get::<MatchedPath>());
    let response = next.run(request).await;
    let metrics = &http.metrics;
    metrics.http_requests.get_or_create(&RequestLabels { route, status: response.status().as_u16() }).inc();
    metrics.http_duration.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    if matches!(route, Route::Errors | Route::Events | Route::ReplayEvents) {
        if let Some(reason) = response.extensions().get::<crate::metrics::RejectReason>() {
            metrics.rejected(route, *reason);
        } else if response.status() == StatusCode::REQUEST_TIMEOUT {
            metrics.rejected(route, crate::metrics::RejectReason::Timeout);
        }
    }
    response
}
