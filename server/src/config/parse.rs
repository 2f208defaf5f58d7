//! The small `parse_*` helpers `Config::from_settings` builds typed values
//! with. Each names its setting in the error it returns.

use std::{net::SocketAddr, time::Duration};

use axum::http::HeaderValue;
use url::Url;

use super::{
    AllowedOrigins, ConfigError, LokiAuth, MIN_SHARE_SECRET_BYTES, MIN_VIEWER_TOKEN_CHARS, Secret, Settings,
    StoreConfig, invalid,
};

pub(super) fn parse_size(setting: &'static str, raw: Option<&str>, default: usize) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let size: bytesize::ByteSize =
        raw.trim().parse().map_err(|e| invalid(setting, format!("{raw:?} is not a size like 5MiB: {e}")))?;
    let bytes = usize::try_from(size.as_u64()).map_err(|_| invalid(setting, "too large"))?;
    if bytes == 0 {
        return Err(invalid(setting, "must be greater than zero"));
    }
    Ok(bytes)
}

pub(super) fn parse_count(
    setting: &'static str,
    raw: Option<&str>,
    default: usize,
    min: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let n: usize = raw.trim().parse().map_err(|_| invalid(setting, format!("{raw:?} is not a whole number")))?;
    if n < min {
        return Err(invalid(setting, format!("must be at least {min}")));
    }
    Ok(n)
}

pub(super) fn parse_duration(
    setting: &'static str,
    raw: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| invalid(setting, format!("{raw:?} is not a duration like 30s: {e}")))?;
    if d.is_zero() {
        return Err(invalid(setting, "must be greater than zero"));
    }
    Ok(d)
}

/// Longest retention accepted, in days (ten years): anything longer is a
/// typo, and S3 servers refuse some large values.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// Days of retention: `None` for `0` or `off`; 30 when unset.
pub(super) fn parse_retention_days(raw: Option<&str>) -> Result<Option<u32>, ConfigError> {
    const SETTING: &str = "OBSERVER_RETENTION_DAYS";
    let Some(raw) = raw.map(str::trim) else { return Ok(Some(30)) };
    if raw.eq_ignore_ascii_case("off") || raw == "0" {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(days @ 1..=MAX_RETENTION_DAYS) => Ok(Some(days)),
        _ => {
            Err(invalid(SETTING, format!("{raw:?} must be a number of days from 1 to {MAX_RETENTION_DAYS}, or 0/off")))
        }
    }
}

pub(super) fn parse_log_filter(raw: Option<&str>) -> Result<String, ConfigError> {
    let filter = raw.unwrap_or("info").trim().to_owned();
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| invalid("OBSERVER_LOG", format!("{filter:?} is not a log filter: {e}")))?;
    Ok(filter)
}

pub(super) fn parse_bool(setting: &'static str, raw: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(invalid(setting, format!("{other:?} is not true or false"))),
    }
}

pub(super) fn parse_http_url(setting: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let shown = without_userinfo(raw);
    let url = Url::parse(raw.trim()).map_err(|e| invalid(setting, format!("{shown:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(setting, format!("{shown:?} must be an http:// or https:// URL")));
    }
    Ok(url)
}

/// `raw` for an error message, with anything before an `@` (credentials,
/// `user:password@`) masked: a refused URL may still hold a secret.
fn without_userinfo(raw: &str) -> String {
    let Some(at) = raw.rfind('@') else { return raw.to_owned() };
    let start = raw.find("://").map_or(0, |i| i + 3).min(at);
    format!("{}***{}", &raw[..start], &raw[at..])
}

/// Loki label values stay short and printable; anything else is a mistake.
pub(super) fn parse_label_value(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    if value.is_empty() || value.len() > 64 {
        return Err(invalid(setting, "must be 1 to 64 characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(invalid(setting, "may only contain letters, digits, '-', '_' and '.'"));
    }
    Ok(value.to_owned())
}

fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn parse_origins(raw: Option<&str>) -> Result<AllowedOrigins, ConfigError> {
    const SETTING: &str = "OBSERVER_ALLOWED_ORIGINS";
    let Some(raw) = raw else { return Ok(AllowedOrigins::Any) };
    if raw.trim() == "*" {
        return Ok(AllowedOrigins::Any);
    }
    let mut origins = Vec::new();
    for item in split_list(raw) {
        let url = Url::parse(item).map_err(|e| invalid(SETTING, format!("{item:?} is not an origin: {e}")))?;
        let origin = url.origin();
        if !origin.is_tuple() || url.path() != "/" || url.query().is_some() {
            return Err(invalid(SETTING, format!("{item:?} must be scheme://host[:port] without a path")));
        }
        let text = origin.ascii_serialization();
        let value = HeaderValue::from_str(&text).map_err(|e| invalid(SETTING, e.to_string()))?;
        origins.push(value);
    }
    if origins.is_empty() {
        return Err(invalid(SETTING, "lists no origin; use * to allow any"));
    }
    Ok(AllowedOrigins::List(origins))
}

pub(super) fn parse_ingest_keys(raw: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let keys: Vec<Secret> = split_list(raw).map(Secret::new).collect();
    if keys.is_empty() {
        return Err(invalid("OBSERVER_INGEST_KEYS", "is set but lists no key"));
    }
    if keys.iter().any(|k| k.expose().len() < 8 || !k.expose().is_ascii()) {
        return Err(invalid("OBSERVER_INGEST_KEYS", "every key must be at least 8 ASCII characters"));
    }
    Ok(keys)
}

pub(super) fn parse_viewer_tokens(raw: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
    const SETTING: &str = "OBSERVER_VIEWER_TOKENS";
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let tokens: Vec<Secret> = split_list(raw).map(Secret::new).collect();
    if tokens.is_empty() {
        return Err(invalid(SETTING, "is set but lists no token"));
    }
    // Printable ASCII without spaces, so a token survives headers and URLs.
    let usable =
        |t: &Secret| t.expose().len() >= MIN_VIEWER_TOKEN_CHARS && t.expose().bytes().all(|b| b.is_ascii_graphic());
    if !tokens.iter().all(usable) {
        return Err(invalid(
            SETTING,
            format!("every token must be at least {MIN_VIEWER_TOKEN_CHARS} printable ASCII characters"),
        ));
    }
    Ok(tokens)
}

pub(super) fn parse_share_secret(raw: Option<&str>) -> Result<Option<Secret>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let secret = raw.trim();
    if secret.len() < MIN_SHARE_SECRET_BYTES {
        return Err(invalid("OBSERVER_SHARE_SECRET", format!("must be at least {MIN_SHARE_SECRET_BYTES} bytes")));
    }
    Ok(Some(Secret::new(secret)))
}

/// Bounds of `OBSERVER_VIEWER_SESSION_TTL`: long enough to be worth signing
/// in, short enough that a cookie left on a shared machine dies.
pub const MIN_VIEWER_SESSION_TTL: Duration = Duration::from_secs(60);
pub const MAX_VIEWER_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub(super) fn parse_viewer_session_ttl(raw: Option<&str>) -> Result<Duration, ConfigError> {
    const SETTING: &str = "OBSERVER_VIEWER_SESSION_TTL";
    let ttl = parse_duration(SETTING, raw, Duration::from_secs(12 * 3600))?;
    if !(MIN_VIEWER_SESSION_TTL..=MAX_VIEWER_SESSION_TTL).contains(&ttl) {
        return Err(invalid(SETTING, "must be from 1m to 30d"));
    }
    Ok(ttl)
}

/// Without a setting, links point at this machine on the port listened on.
pub(super) fn parse_public_url(raw: Option<&str>, listen: SocketAddr) -> Result<String, ConfigError> {
    const SETTING: &str = "OBSERVER_PUBLIC_URL";
    let default = format!("http://localhost:{}", listen.port());
    let url = parse_http_url(SETTING, raw.unwrap_or(&default))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(SETTING, "must be scheme://host[:port][/path] without credentials, query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(super) fn parse_store(s: &Settings, data_dir: &std::path::Path) -> Result<StoreConfig, ConfigError> {
    let endpoint = s.s3_endpoint.as_deref().map(|raw| parse_http_url("OBSERVER_S3_ENDPOINT", raw)).transpose()?;
    let Some(bucket) = s.s3_bucket.as_deref().map(str::trim) else {
        if endpoint.is_some() {
            return Err(invalid("OBSERVER_S3_BUCKET", "must be set when OBSERVER_S3_ENDPOINT is set"));
        }
        return Ok(StoreConfig::Local { data_dir: data_dir.to_owned() });
    };
    // S3 bucket naming rules, checked here so a typo fails at start-up.
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if !valid_bucket {
        return Err(invalid("OBSERVER_S3_BUCKET", format!("{bucket:?} is not a valid bucket name")));
    }
    let region = match (&s.s3_region, &endpoint) {
        (Some(region), _) if !region.trim().is_empty() => region.trim().to_owned(),
        (_, Some(_)) => "us-east-1".to_owned(),
        _ => {
            return Err(invalid(
                "OBSERVER_S3_REGION",
                "must be set when OBSERVER_S3_BUCKET is set without OBSERVER_S3_ENDPOINT",
            ));
        }
    };
    let key_prefix = s.s3_key_prefix.as_deref().unwrap_or("").trim().to_owned();
    if key_prefix.starts_with('/') || key_prefix.split('/').any(|part| part == ".." || part == ".") {
        return Err(invalid("OBSERVER_S3_KEY_PREFIX", "must be relative and must not contain '.' or '..' segments"));
    }
    Ok(StoreConfig::S3 { endpoint, bucket: bucket.to_owned(), region, key_prefix })
}

/// Takes credentials out of the Loki URL (`http://user:pass@loki:3100`)
/// into `LokiAuth`, so that the URL itself never holds a secret and can be
/// logged; explicit settings and URL credentials must not both be given.
pub(super) fn parse_loki_url_and_auth(
    mut url: Url,
    username: Option<&str>,
    password: Option<&str>,
    bearer_token: Option<&str>,
) -> Result<(Url, LokiAuth), ConfigError> {
    let in_url = (!url.username().is_empty() || url.password().is_some()).then(|| {
        let decode = |s: &str| percent_decode(s);
        (decode(url.username()), decode(url.password().unwrap_or("")))
    });
    if in_url.is_some() {
        // Cannot fail for http(s) URLs with a host (parse_http_url checked).
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    let explicit_basic = username.is_some() || password.is_some();
    let auth = match (in_url, explicit_basic, bearer_token) {
        (Some(_), true, _) | (Some(_), _, Some(_)) => {
            return Err(invalid(
                "OBSERVER_LOKI_URL",
                "holds credentials and OBSERVER_LOKI_USERNAME/PASSWORD/BEARER_TOKEN are set too; give them once",
            ));
        }
        (_, true, Some(_)) => {
            return Err(invalid(
                "OBSERVER_LOKI_BEARER_TOKEN",
                "cannot be combined with OBSERVER_LOKI_USERNAME/PASSWORD",
            ));
        }
        (Some((username, password)), false, None) => LokiAuth::Basic { username, password: Secret::new(password) },
        (None, true, None) => {
            let username = username.map(str::trim).unwrap_or("");
            if username.is_empty() {
                return Err(invalid("OBSERVER_LOKI_USERNAME", "is required with OBSERVER_LOKI_PASSWORD"));
            }
            LokiAuth::Basic { username: username.to_owned(), password: Secret::new(password.unwrap_or("")) }
        }
        (None, false, Some(token)) => {
            let token = token.trim();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid("OBSERVER_LOKI_BEARER_TOKEN", "must be printable ASCII without spaces"));
            }
            LokiAuth::Bearer(Secret::new(token))
        }
        (None, false, None) => LokiAuth::None,
    };
    Ok((url, auth))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
