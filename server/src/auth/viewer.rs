//! Viewer access to the replay fetch API.
//!
//! A request carries one token, normally in `Authorization: Bearer <token>`:
//! - a **viewer token** from `OBSERVER_VIEWER_TOKENS` (or the generated
//!   one): every session, the listing and share links. In the header only:
//!   a token in a URL ends up in proxy logs, browser history and `Referer`,
//!   and this one opens everything, for as long as it is configured.
//! - a **share token** (`v1.…`, see [`super::share`]): one session, until it
//!   expires; never the listing or new share links. Also accepted as
//!   `?token=` (without an `Authorization` header), since a share link is a
//!   URL by design and scripts fetch with what the link holds.
//!
//! - the **sign-in cookie** (see [`super::viewer_session`]), only when the
//!   request has neither an `Authorization` header nor `?token=`: what it
//!   opens is what the viewer token opens, except new share links, which
//!   need the token itself in the header (CSRF: a cookie rides along on
//!   requests other sites make; a header does not).
//!
//! The pages a person opens from a link (`/replay/?token=…`,
//! `/replay/{id}?token=…`) are static: their script takes the token out of
//! the address bar and sends it as a bearer (a share token) or signs in
//! with it (a viewer token).
//!
//! Both extractors run before the handler touches the store, so a refused
//! request learns nothing about whether a session exists: 401
//! `unauthorized` without a usable token, `token_expired` / `token_invalid`
//! for a share token that is out of date / not genuine for this session.
//! They check under the brute-force brake (`rate_limit::auth_failures`):
//! the check always runs, and a client with too many recent 401s gets 429
//! instead of 401 for its failures, while a valid token is still served.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{FromRef, FromRequestParts, RawPathParams},
    http::{HeaderMap, header, request::Parts},
};

use super::{SecretDigests, ShareSigner, ViewerSessions, query_param, share::ShareError, share::is_share_token};
use crate::{
    config::Secret,
    error::{ApiError, Credential, FieldError},
    payload::{ID_RULE, SessionId},
    rate_limit::{AuthFailureBrake, auth_failures::braked},
};

/// What the viewer extractors check a request against (a substate of
/// `AppState`, taken through `FromRef`).
pub struct ViewerAuth {
    pub tokens: ViewerTokens,
    /// Signs and checks share links.
    pub share_signer: ShareSigner,
    /// Signs and checks viewer sign-in cookies (same secret, derived key).
    pub sessions: ViewerSessions,
    /// Brute-force brake on fetch tokens; `None` when it is off.
    pub brake: Option<AuthFailureBrake>,
}

/// The configured (or generated) viewer tokens.
#[derive(Clone, Default)]
pub struct ViewerTokens {
    digests: SecretDigests,
}

impl ViewerTokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Self { digests: SecretDigests::new(tokens) }
    }

    /// Constant-time check against every token.
    pub fn accepts(&self, candidate: &str) -> bool {
        self.digests.contains(candidate)
    }

    /// The SHA-256 digest of each token (what a sign-in cookie is bound to).
    pub fn digests(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.digests.iter()
    }
}

/// What the request's token grants, before any session is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerAccess {
    /// A viewer token (from the `Authorization` header): everything.
    Viewer,
    /// A valid sign-in cookie: what a viewer token opens, but no new share
    /// links (see [`ViewerAccess::require_viewer_token`]).
    SignedIn,
    /// Something shaped like a share token, not yet checked: its MAC binds it
    /// to a session, which only the route knows (see [`SessionAccess`]).
    Share(String),
}

impl ViewerAccess {
    /// For the listing: a share token is not enough.
    pub fn require_viewer(&self) -> Result<(), ApiError> {
        match self {
            ViewerAccess::Viewer | ViewerAccess::SignedIn => Ok(()),
            ViewerAccess::Share(_) => Err(ApiError::Unauthorized(Credential::ViewerTokenOnly)),
        }
    }

    /// For new share links: the viewer token itself, from the header. A
    /// cookie is sent with requests other sites trigger; an
    /// `Authorization` header never is, so this route needs no other CSRF
    /// defence.
    pub fn require_viewer_token(&self) -> Result<(), ApiError> {
        match self {
            ViewerAccess::Viewer => Ok(()),
            ViewerAccess::SignedIn => Err(ApiError::Unauthorized(Credential::ViewerTokenHeader)),
            ViewerAccess::Share(_) => Err(ApiError::Unauthorized(Credential::ViewerTokenOnly)),
        }
    }

    /// The credential of the request (see the module docs): the header,
    /// else `?token=`, else the cookie. The viewer tokens are compared (in
    /// constant time) with whatever the header holds; a `?token=` is only
    /// ever a share token, so it is not.
    fn from_parts(parts: &Parts, auth: &ViewerAuth) -> Result<ViewerAccess, ApiError> {
        let unauthorized = ApiError::Unauthorized(Credential::ViewerToken);
        match bearer(&parts.headers) {
            Some(Some(token)) if !token.is_empty() => {
                if auth.tokens.accepts(&token) {
                    Ok(ViewerAccess::Viewer)
                } else if is_share_token(&token) {
                    Ok(ViewerAccess::Share(token))
                } else {
                    Err(unauthorized)
                }
            }
            Some(_) => Err(unauthorized),
            None => match query_param(parts.uri.query(), "token") {
                Some(token) if is_share_token(&token) => Ok(ViewerAccess::Share(token)),
                Some(_) => Err(unauthorized),
                None if auth.sessions.signed_in(&parts.headers, &auth.tokens, unix_now()) => Ok(ViewerAccess::SignedIn),
                None => Err(unauthorized),
            },
        }
    }
}

/// The token of `Authorization: Bearer <token>`. Any other scheme counts as
/// no token, so the query string is not consulted behind its back.
pub(super) fn bearer(headers: &HeaderMap) -> Option<Option<String>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value.to_str().ok().and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
    });
    Some(token)
}

impl<S> FromRequestParts<S> for ViewerAccess
where
    Arc<ViewerAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<ViewerAuth>::from_ref(state);
        braked(auth.brake.as_ref(), parts, || ViewerAccess::from_parts(parts, &auth))
    }
}

/// Whether an otherwise anonymous request (`/readyz`) comes from a viewer:
/// `true` with the viewer token as a bearer, `false` without an
/// `Authorization` header. Any other token is a 401 under the brake, so
/// such routes cannot be used to guess tokens past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalViewer(pub bool);

impl<S> FromRequestParts<S> for OptionalViewer
where
    Arc<ViewerAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(OptionalViewer(false));
        }
        let auth = Arc::<ViewerAuth>::from_ref(state);
        braked(auth.brake.as_ref(), parts, || {
            ViewerAccess::from_parts(parts, &auth)?.require_viewer()?;
            Ok(OptionalViewer(true))
        })
    }
}

/// Access to the session named by the route's `{session_id}`, checked, then
/// the id validated (a bad id is a 400, but only for someone with access).
#[derive(Debug, Clone)]
pub struct SessionAccess {
    pub session_id: SessionId,
}

impl<S> FromRequestParts<S> for SessionAccess
where
    Arc<ViewerAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Read first, but a path that cannot be read only matters with access.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_fields(vec![FieldError::new(None, "path", e.body_text())]));
        let auth = Arc::<ViewerAuth>::from_ref(state);
        braked(auth.brake.as_ref(), parts, || {
            let access = ViewerAccess::from_parts(parts, &auth)?;
            let params = params?;
            let raw = params
                .iter()
                .find_map(|(name, value)| (name == "session_id").then_some(value))
                .ok_or_else(|| ApiError::Internal("route has no {session_id}".into()))?;
            if let ViewerAccess::Share(token) = &access {
                auth.share_signer.verify(token, raw, unix_now()).map_err(|e| match e {
                    ShareError::Expired => ApiError::TokenExpired,
                    ShareError::Invalid => ApiError::TokenInvalid,
                })?;
            }
            let session_id = SessionId::parse(raw)
                .ok_or_else(|| ApiError::invalid_fields(vec![FieldError::new(None, "session_id", ID_RULE)]))?;
            Ok(SessionAccess { session_id })
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def"));
        assert_eq!(bearer(&headers), Some(Some("abc.def".to_owned())));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer   xyz "));
        assert_eq!(bearer(&headers), Some(Some("xyz".to_owned())));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
        assert_eq!(bearer(&headers), Some(None));
    }

    #[test]
    fn viewer_tokens() {
        let tokens = ViewerTokens::new(&[Secret::new("a-viewer-token-of-16")]);
        assert!(tokens.accepts("a-viewer-token-of-16"));
        assert!(!tokens.accepts("a-viewer-token-of-1"));
        assert!(!ViewerTokens::default().accepts(""));
    }
}
