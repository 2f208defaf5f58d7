//! Ingest access: the ingest key (`X-Observer-Key` header or `?key=`) and
//! the browser `Origin` allow-list.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderName, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::SecretDigests;
use crate::{
    config::{AllowedOrigins, Config, Secret},
    error::{ApiError, Credential},
};

pub const INGEST_KEY_HEADER: HeaderName = HeaderName::from_static("x-observer-key");

/// Configured ingest keys, compared in constant time (see [`SecretDigests`]).
#[derive(Clone, Default)]
pub struct IngestKeys {
    digests: SecretDigests,
}

impl IngestKeys {
    pub fn new(keys: &[Secret]) -> Self {
        Self { digests: SecretDigests::new(keys) }
    }

    pub fn required(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Constant-time check against every key (no early exit on a match).
    pub fn accepts(&self, candidate: &str) -> bool {
        self.digests.contains(candidate)
    }
}

/// What [`require_ingest_access`] checks.
pub struct IngestAccess {
    allowed_origins: AllowedOrigins,
    keys: IngestKeys,
}

impl IngestAccess {
    pub fn new(config: &Config) -> Self {
        Self { allowed_origins: config.allowed_origins.clone(), keys: IngestKeys::new(&config.ingest_keys) }
    }
}

/// Middleware for the ingestion routes: refuses disallowed browser origins
/// (403) and, when keys are configured, requests without a valid key (401).
pub async fn require_ingest_access(State(access): State<Arc<IngestAccess>>, request: Request, next: Next) -> Response {
    // Preflights are answered by the CORS layer outside this one.
    if request.method() != Method::OPTIONS {
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !access.allowed_origins.allows(origin)
        {
            let origin = String::from_utf8_lossy(origin.as_bytes()).chars().take(200).collect();
            return ApiError::OriginNotAllowed { origin }.into_response();
        }
        if access.keys.required() {
            let header_key = request.headers().get(&INGEST_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let key = header_key.or_else(|| super::query_param(request.uri().query(), "key"));
            if !key.is_some_and(|key| access.keys.accepts(&key)) {
                return ApiError::Unauthorized(Credential::IngestKey).into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let keys = IngestKeys::new(&[Secret::new("first-key-123"), Secret::new("second-key-456")]);
        assert!(keys.required());
        assert!(keys.accepts("first-key-123"));
        assert!(keys.accepts("second-key-456"));
        assert!(!keys.accepts("first-key-12"));
        assert!(!keys.accepts(""));
        assert!(!IngestKeys::default().required());
    }
}
