//! `ApiError`: every way a request can fail, and the one place that decides
//! its status code, JSON body and metrics reason.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::metrics::RejectReason;

/// One problem with one field of one item of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position in a batch; absent for single objects and query parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub reason: String,
}

/// Longest field name or path in a detail, and longest reason: both can carry client input (unknown names, serde's
/// quote of a bad value), and a refusal must stay small whatever was sent.
pub const MAX_FIELD_CHARS: usize = 128;
pub const MAX_REASON_CHARS: usize = 512;

impl FieldError {
    pub fn new(index: Option<usize>, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            index,
            field: cap_chars(field.into(), MAX_FIELD_CHARS),
            reason: cap_chars(reason.into(), MAX_REASON_CHARS),
        }
    }
}

/// `text` cut to `max` characters, with "…" when cut.
pub fn cap_chars(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Which configured limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    JsonBody,
    ReplayBody,
    ReplayDecompressed,
    BatchItems,
    StreamChunks,
    SessionChunks,
    SessionBytes,
}

impl LimitName {
    /// The setting that raises this limit, so the message tells an operator what to change.
    pub fn setting(self) -> &'static str {
        match self {
            LimitName::JsonBody => "OBSERVER_MAX_JSON_BODY",
            LimitName::ReplayBody => "OBSERVER_MAX_REPLAY_BODY",
            LimitName::ReplayDecompressed => "OBSERVER_MAX_REPLAY_DECOMPRESSED",
            LimitName::BatchItems => "OBSERVER_MAX_BATCH_ITEMS",
            LimitName::StreamChunks => "OBSERVER_MAX_STREAM_CHUNKS",
            LimitName::SessionChunks => "OBSERVER_MAX_SESSION_CHUNKS",
            LimitName::SessionBytes => "OBSERVER_MAX_SESSION_BYTES",
        }
    }
}

/// What an ingestion rate limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    /// `OBSERVER_RATE_LIMIT_PER_IP`.
    ClientIp,
    /// `OBSERVER_RATE_LIMIT_PER_SESSION`.
    Session,
}

impl RateScope {
    fn describe(self) -> &'static str {
        match self {
            RateScope::ClientIp => "from this client",
            RateScope::Session => "for this session_id",
        }
    }
}

/// Which credential a 401 is about, so its message says what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Ingestion: `X-Observer-Key` or `?key=`.
    IngestKey,
    /// Replay fetch: a viewer token or a share token.
    ViewerToken,
    /// Listing: a viewer token only (a share token was sent).
    ViewerTokenOnly,
    /// Signing in and new share links: the viewer token itself, in the
    /// `Authorization` header (not a share token, not the sign-in cookie).
    ViewerTokenHeader,
}

impl Credential {
    fn hint(self) -> &'static str {
        match self {
            Credential::IngestKey => "missing or invalid ingest key; send it in X-Observer-Key or ?key=",
            Credential::ViewerToken => {
                "missing or invalid token; send it as `Authorization: Bearer <token>` (?token= takes share tokens only)"
            }
            Credential::ViewerTokenOnly => "this route needs a viewer token; a share token only opens its own replay",
            Credential::ViewerTokenHeader => {
                "this route needs the viewer token itself as `Authorization: Bearer <token>` (a share token or the sign-in cookie is not enough)"
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid {
        message: String,
        /// At most `MAX_DETAILS` problems, so that answering costs little
        /// whatever a body holds.
        details: Vec<FieldError>,
        /// Problems found beyond those listed in `details`.
        details_truncated: usize,
    },
    #[error("{what} exceeds the limit of {max} ({setting})", setting = limit.setting())]
    TooLarge { limit: LimitName, what: &'static str, max: usize },
    #[error("unsupported Content-Type {got:?}; send {expected}")]
    UnsupportedMediaType { got: String, expected: &'static str },
    #[error("unsupported Content-Encoding {got:?}; send gzip or no encoding")]
    UnsupportedEncoding { got: String },
    #[error("{}", .0.hint())]
    Unauthorized(Credential),
    #[error("the share token has expired; ask for a new link")]
    TokenExpired,
    #[error("the share token is not valid for this replay")]
    TokenInvalid,
    #[error("origin {origin:?} is not allowed to send data")]
    OriginNotAllowed { origin: String },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many requests; retry after {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// An ingestion rate limit (per client IP or per session); the same
    /// wire code as `RateLimited`, its own metrics reason.
    #[error("too many requests {}; retry after {} s", scope.describe(), retry_after.as_secs().max(1))]
    OverRate { scope: RateScope, retry_after: Duration },
    /// The request names something that already exists with other content.
    #[error("{message}")]
    Conflict { message: String },
    #[error("{what} cannot take data right now; retry after {} s", retry_after.as_secs())]
    Unavailable { what: &'static str, retry_after: Duration },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 about the payload as a whole (not one field).
    pub fn invalid_body(reason: impl Into<String>) -> Self {
        let detail = FieldError::new(None, "body", reason);
        ApiError::Invalid {
            message: format!("invalid body: {}", detail.reason),
            details: vec![detail],
            details_truncated: 0,
        }
    }

    /// A 400 listing field problems.
    pub fn invalid_fields(details: Vec<FieldError>) -> Self {
        Self::invalid_fields_truncated(details, 0)
    }

    /// A 400 listing the first field problems, and how many more were found.
    pub fn invalid_fields_truncated(details: Vec<FieldError>, details_truncated: usize) -> Self {
        let message = match (details.len(), details_truncated) {
            (1, 0) => format!("invalid field {:?}: {}", details[0].field, details[0].reason),
            (n, 0) => format!("{n} invalid fields"),
            (n, more) => format!("{} problems; the first {n} are listed in details", n + more),
        };
        ApiError::Invalid { message, details, details_truncated }
    }

    /// Stable snake_case code, used as `error` in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid_payload",
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::UnsupportedEncoding { .. } => "unsupported_encoding",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TokenExpired => "token_expired",
            ApiError::TokenInvalid => "token_invalid",
            ApiError::OriginNotAllowed { .. } => "origin_not_allowed",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } | ApiError::OverRate { .. } => "rate_limited",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } | ApiError::UnsupportedEncoding { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Unauthorized(_) | ApiError::TokenExpired | ApiError::TokenInvalid => StatusCode::UNAUTHORIZED,
            ApiError::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } | ApiError::OverRate { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reject_reason(&self) -> RejectReason {
        match self {
            ApiError::Invalid { .. } | ApiError::NotFound | ApiError::MethodNotAllowed => RejectReason::Invalid,
            ApiError::TooLarge { .. } => RejectReason::TooLarge,
            ApiError::UnsupportedMediaType { .. } | ApiError::UnsupportedEncoding { .. } => RejectReason::Unsupported,
            ApiError::Unauthorized(_) | ApiError::TokenExpired | ApiError::TokenInvalid => RejectReason::Unauthorized,
            ApiError::OriginNotAllowed { .. } => RejectReason::ForbiddenOrigin,
            ApiError::RateLimited { .. } => RejectReason::RateLimited,
            ApiError::OverRate { scope: RateScope::ClientIp, .. } => RejectReason::RateLimitedIp,
            ApiError::OverRate { scope: RateScope::Session, .. } => RejectReason::RateLimitedSession,
            ApiError::Conflict { .. } => RejectReason::Conflict,
            ApiError::Unavailable { .. } => RejectReason::Unavailable,
            ApiError::Internal(_) => RejectReason::Internal,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after }
            | ApiError::OverRate { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    details: &'a [FieldError],
    /// Problems found beyond those in `details` (absent when none).
    #[serde(skip_serializing_if = "is_zero")]
    details_truncated: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal causes are logged here and never sent to the client.
        // 503s are counted in metrics and logged at debug only: during an
        // outage every request would otherwise add a log line.
        match &self {
            ApiError::Internal(source) => tracing::error!(error = %source, "request failed"),
            ApiError::Unavailable { .. } => tracing::debug!(error = %self, "request refused"),
            _ => {}
        }
        let (details, details_truncated): (&[FieldError], usize) = match &self {
            ApiError::Invalid { details, details_truncated, .. } => (details, *details_truncated),
            _ => (&[], 0),
        };
        let body = ErrorBody { error: self.code(), message: self.to_string(), details, details_truncated };
        let mut response = (status, Json(body)).into_response();
        if let Some(retry_after) = self.retry_after() {
            let secs = retry_after.as_secs().max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // RFC 6750: a 401 names the scheme the fetch API expects.
        if matches!(
            self,
            ApiError::Unauthorized(
                Credential::ViewerToken | Credential::ViewerTokenOnly | Credential::ViewerTokenHeader
            ) | ApiError::TokenExpired
                | ApiError::TokenInvalid
        ) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"observer\""));
        }
        // Lets the metrics middleware label the rejection without re-deciding it.
        response.extensions_mut().insert(self.reject_reason());
        response
    }
}

impl From<crate::delivery::DeliveryError> for ApiError {
    fn from(e: crate::delivery::DeliveryError) -> Self {
        match e {
            crate::delivery::DeliveryError::QueueFull { retry_after } => {
                ApiError::Unavailable { what: "the disk spool", retry_after }
            }
            crate::delivery::DeliveryError::Storage(why) => {
                tracing::error!(error = %why, "the disk spool failed");
                ApiError::Unavailable { what: "the disk spool", retry_after: Duration::from_secs(10) }
            }
            crate::delivery::DeliveryError::Closed => {
                ApiError::Unavailable { what: "the server is shutting down and", retry_after: Duration::from_secs(5) }
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        // The cause is logged here; the client only learns to retry.
        tracing::warn!(error = %e, "replay store failed");
        ApiError::Unavailable { what: "the replay store", retry_after: Duration::from_secs(10) }
    }
}
