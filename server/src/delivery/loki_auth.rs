//! Who Observer is to Loki, and whether Loki agrees.
//!
//! [`loki_headers`] turns `config.loki.auth` and `tenant_id` into the
//! headers every request to Loki carries: record pushes, the readiness probe
//! and the server's own log shipping (`main`'s `telemetry`, through
//! tracing-loki's `http_header`). Basic auth and bearer tokens are built
//! here rather than with reqwest's per-request `basic_auth`, so the three
//! clients share one definition; `Authorization` is marked sensitive so a
//! `Debug` of a request never shows it.
//!
//! [`PushRefusal`] is what the delivery worker last heard from Loki about
//! access (401, 403, 404: credentials, tenant or URL wrong), shared with
//! [`LokiHealth`], the readiness probe: while Loki refuses our pushes the
//! instance is not ready, and the records wait and are retried.

use std::sync::{Arc, Mutex};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::{LokiAuth, LokiConfig};

/// Loki's (Cortex's) tenant header.
pub const TENANT_HEADER: HeaderName = HeaderName::from_static("x-scope-orgid");

/// The headers of every request to Loki. The configuration has already
/// checked the tenant and a bearer token are printable ASCII; a user name or
/// password is base64-encoded, so it cannot break a header either.
pub fn loki_headers(loki: &LokiConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let credentials = match &loki.auth {
        LokiAuth::None => None,
        LokiAuth::Basic { username, password } => {
            Some(format!("Basic {}", STANDARD.encode(format!("{username}:{}", password.expose()))))
        }
        LokiAuth::Bearer(token) => Some(format!("Bearer {}", token.expose())),
    };
    if let Some(credentials) = credentials {
        let mut value = HeaderValue::from_str(&credentials)
            .map_err(|_| "the Loki credentials cannot be sent in an HTTP header".to_owned())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    if let Some(tenant) = &loki.tenant_id {
        let value = HeaderValue::from_str(tenant).map_err(|_| "OBSERVER_LOKI_TENANT_ID cannot be sent".to_owned())?;
        headers.insert(TENANT_HEADER, value);
    }
    Ok(headers)
}

/// An HTTP client that sends [`loki_headers`] with every request. Fails
/// only if TLS cannot start or the headers cannot be built.
pub fn http_client(loki: &LokiConfig) -> Result<reqwest::Client, String> {
    let headers = loki_headers(loki)?;
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| format!("cannot create an HTTP client for Loki: {e}"))
}

/// Loki's last refusal of our access (see the module docs), until a push
/// succeeds. Cheap to clone; the worker writes, readiness reads.
#[derive(Debug, Clone, Default)]
pub struct PushRefusal(Arc<Mutex<Option<String>>>);

impl PushRefusal {
    pub(super) fn set(&self, why: String) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(why);
        }
    }

    pub(super) fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }

    pub fn current(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The readiness probe of one Loki: reachable (`/ready`, with our
/// credentials, since a gateway in front may demand them) and accepting our
/// pushes.
#[derive(Debug, Clone)]
pub struct LokiHealth {
    client: Result<reqwest::Client, String>,
    url: Url,
    refusal: PushRefusal,
}

impl LokiHealth {
    pub(super) fn new(loki: &LokiConfig, refusal: PushRefusal) -> LokiHealth {
        LokiHealth { client: http_client(loki), url: loki.url.clone(), refusal }
    }

    pub async fn check(&self) -> Result<(), String> {
        if let Some(why) = self.refusal.current() {
            return Err(format!("Loki refuses our pushes ({why}); records are kept and retried"));
        }
        match &self.client {
            Ok(client) => super::loki_push::check_loki(client, &self.url).await,
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Settings};

    fn loki(settings: Settings) -> LokiConfig {
        Config::from_settings(&settings).unwrap().loki.unwrap()
    }

    #[test]
    fn basic_auth_from_the_url_and_a_tenant() {
        let config = loki(Settings {
            loki_url: Some("http://us%40er:p%3Ass@loki:3100".into()),
            loki_tenant_id: Some("team-a".into()),
            ..Settings::default()
        });
        let headers = loki_headers(&config).unwrap();
        // printf 'us@er:p:ss' | base64
        assert_eq!(headers[AUTHORIZATION], "Basic dXNAZXI6cDpzcw==");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{headers:?}").contains("dXNAZXI6cDpzcw"), "Debug hides it");
        assert_eq!(headers[TENANT_HEADER], "team-a");
    }

    #[test]
    fn bearer_or_nothing() {
        let bearer = loki(Settings {
            loki_url: Some("http://loki:3100".into()),
            loki_bearer_token: Some("tok-123".into()),
            ..Settings::default()
        });
        assert_eq!(loki_headers(&bearer).unwrap()[AUTHORIZATION], "Bearer tok-123");
        let none = loki(Settings { loki_url: Some("http://loki:3100".into()), ..Settings::default() });
        assert!(loki_headers(&none).unwrap().is_empty());
    }

    #[test]
    fn refusal_is_shared_until_cleared() {
        let refusal = PushRefusal::default();
        let seen_by_readiness = refusal.clone();
        refusal.set("401 Unauthorized".into());
        assert_eq!(seen_by_readiness.current().as_deref(), Some("401 Unauthorized"));
        refusal.clear();
        assert_eq!(seen_by_readiness.current(), None);
    }
}
