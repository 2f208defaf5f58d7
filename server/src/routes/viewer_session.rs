//! Viewer sign-in for the player pages (docs/replay-api.md, "Signing in").
//!
//! | method | path | access | answer |
//! |---|---|---|---|
//! | POST   | `/api/observer/viewer/session` | viewer token as `Authorization: Bearer` | 200 `SignInResponse` + `Set-Cookie` |
//! | DELETE | `/api/observer/viewer/session` | none | 204 + `Set-Cookie` that removes the cookie |
//!
//! - The cookie (`auth::viewer_session`): HttpOnly, `SameSite=Lax`,
//!   `Path=/`, `Max-Age` and `Expires` from `OBSERVER_VIEWER_SESSION_TTL`,
//!   `Secure` when the public URL is https or a trusted proxy says
//!   `X-Forwarded-Proto: https`.
//! - No token, a wrong one, a share token, or the token anywhere but the
//!   header: 401 `unauthorized` under the brute-force brake (429 past it).
//! - The request body is ignored. Both answers are `Cache-Control: no-store`.
//! - Cross-site pages cannot use either method: a form cannot set
//!   `Authorization` or send `DELETE`, and `fetch` would need a CORS
//!   preflight, which this route group never grants.

use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, post},
};
use serde::Serialize;

use crate::{
    auth::{
        SignInToken, ViewerAuth,
        viewer::unix_now,
        viewer_session::{clear_cookie, is_https},
    },
    config::Config,
    state::AppState,
};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub fn route() -> MethodRouter<AppState> {
    post(sign_in).delete(sign_out)
}

#[derive(Debug, Serialize)]
pub struct SignInResponse {
    /// When the sign-in ends, RFC 3339, UTC.
    pub expires_at: String,
}

fn secure(config: &Config, headers: &HeaderMap) -> bool {
    is_https(headers, &config.public_url, config.limits.trust_forwarded_for)
}

#[tracing::instrument(skip_all)]
async fn sign_in(
    State(auth): State<Arc<ViewerAuth>>,
    State(config): State<Arc<Config>>,
    SignInToken(token): SignInToken,
    headers: HeaderMap,
) -> Response {
    let sessions = &auth.sessions;
    let expires_at = sessions.expiry(unix_now());
    let cookie = sessions.set_cookie(sessions.sign(token.expose(), expires_at), expires_at, secure(&config, &headers));
    let expires_at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expires_at)).to_string();
    tracing::debug!("viewer signed in");
    ([(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, NO_STORE)], Json(SignInResponse { expires_at }))
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn sign_out(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    let cookie = clear_cookie(secure(&config, &headers));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, NO_STORE)]).into_response()
}
