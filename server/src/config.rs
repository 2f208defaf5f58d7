//! Configuration: defaults, then an optional TOML file (`--config`), then
//! `OBSERVER_*` environment variables / command-line flags.
//!
//! `Settings` is the raw, string-typed layer that clap and the TOML file fill
//! in; `Config::from_settings` turns it into typed values exactly once and
//! names the offending setting when something is wrong. Routes read limits
//! from `Config::limits` only — never from literals.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use axum::http::HeaderValue;
use clap::Args;
use serde::Deserialize;
use url::Url;

/// Errors that stop start-up. Each names the setting (environment variable)
/// or file that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {reason}")]
    ParseFile { path: PathBuf, reason: String },
    #[error("invalid setting {setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

/// A secret value whose `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Raw settings as given on the command line, in the environment or in the
/// TOML file (same names in `snake_case`). Every value is optional here; the
/// defaults live in `Config::from_settings` and are shown in `--help`.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on. [default: 0.0.0.0:8006]
    #[arg(long, env = "OBSERVER_LISTEN", value_name = "ADDR")]
    #[serde(deserialize_with = "scalar")]
    pub listen: Option<String>,

    /// Directory for replay chunks when no S3 bucket is configured.
    /// [default: ./observer-data]
    #[arg(long, env = "OBSERVER_DATA_DIR", value_name = "DIR")]
    #[serde(deserialize_with = "scalar")]
    pub data_dir: Option<String>,

    /// S3 endpoint URL (MinIO, s3s, …). Path-style addressing is used.
    /// Leave unset with OBSERVER_S3_REGION set to use AWS S3.
    #[arg(long, env = "OBSERVER_S3_ENDPOINT", value_name = "URL")]
    #[serde(deserialize_with = "scalar")]
    pub s3_endpoint: Option<String>,

    /// Bucket for replay chunks. Setting it switches replay storage to S3;
    /// credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "OBSERVER_S3_BUCKET", value_name = "BUCKET")]
    #[serde(deserialize_with = "scalar")]
    pub s3_bucket: Option<String>,

    /// S3 region. [default: us-east-1 with an endpoint]
    #[arg(long, env = "OBSERVER_S3_REGION", value_name = "REGION")]
    #[serde(deserialize_with = "scalar")]
    pub s3_region: Option<String>,

    /// Prefix put before every object key, e.g. `observer/`. [default: none]
    #[arg(long, env = "OBSERVER_S3_KEY_PREFIX", value_name = "PREFIX")]
    #[serde(deserialize_with = "scalar")]
    pub s3_key_prefix: Option<String>,

    /// Loki base URL, e.g. http://loki:3100. When unset, records are written
    /// as JSON lines on stdout.
    #[arg(long, env = "OBSERVER_LOKI_URL", value_name = "URL")]
    #[serde(deserialize_with = "scalar")]
    pub loki_url: Option<String>,

    /// Value of the `service_name` Loki label. [default: observer]
    #[arg(long, env = "OBSERVER_SERVICE_NAME", value_name = "NAME")]
    #[serde(deserialize_with = "scalar")]
    pub service_name: Option<String>,

    /// Value of the `environment` Loki label (e.g. production). [default: none]
    #[arg(long, env = "OBSERVER_ENVIRONMENT", value_name = "NAME")]
    #[serde(deserialize_with = "scalar")]
    pub environment: Option<String>,

    /// Comma-separated origins allowed to post from browsers
    /// (e.g. https://app.example.com), or `*` for any. [default: *]
    #[arg(long, env = "OBSERVER_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    #[serde(deserialize_with = "scalar")]
    pub allowed_origins: Option<String>,

    /// Comma-separated ingest keys. When set, ingestion requires one of them
    /// in `X-Observer-Key` or `?key=`. [default: none, ingestion is open]
    #[arg(long, env = "OBSERVER_INGEST_KEYS", value_name = "KEYS", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub ingest_keys: Option<String>,

    /// Comma-separated viewer tokens (at least 16 characters each) for the
    /// replay fetch API and player, sent as `Authorization: Bearer` or
    /// `?token=`. [default: one generated into OBSERVER_DATA_DIR/viewer-token]
    #[arg(long, env = "OBSERVER_VIEWER_TOKENS", value_name = "TOKENS", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub viewer_tokens: Option<String>,

    /// Secret (at least 32 bytes) that signs share links. Set it explicitly
    /// when several replicas serve the same store.
    /// [default: one generated into OBSERVER_DATA_DIR/share-secret]
    #[arg(long, env = "OBSERVER_SHARE_SECRET", value_name = "SECRET", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub share_secret: Option<String>,

    /// Base URL people reach Observer at, for printed links (start-up
    /// viewer link, `observer share`). [default: http://localhost:8006]
    #[arg(long, env = "OBSERVER_PUBLIC_URL", value_name = "URL")]
    #[serde(deserialize_with = "scalar")]
    pub public_url: Option<String>,

    /// Most replay chunks one manifest (`GET /api/observer/replays/{id}`)
    /// lists, lowest seqs first (`"truncated": true` beyond), and one
    /// `GET /api/observer/replays/{id}/events` request streams (longer
    /// sessions answer 413). [default: 2000]
    #[arg(long, env = "OBSERVER_MAX_STREAM_CHUNKS", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub max_stream_chunks: Option<String>,

    /// Largest error/event request body, as received and decompressed.
    /// [default: 1MiB]
    #[arg(long, env = "OBSERVER_MAX_JSON_BODY", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub max_json_body: Option<String>,

    /// Largest replay chunk as received (compressed). [default: 5MiB]
    #[arg(long, env = "OBSERVER_MAX_REPLAY_BODY", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub max_replay_body: Option<String>,

    /// Largest replay chunk after decompression. [default: 50MiB]
    #[arg(long, env = "OBSERVER_MAX_REPLAY_DECOMPRESSED", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub max_replay_decompressed: Option<String>,

    /// Replay chunks decompressed and validated at the same time; each may
    /// hold up to OBSERVER_MAX_REPLAY_DECOMPRESSED of memory. Others wait
    /// (up to 10 s, then 503). [default: twice the CPU count]
    #[arg(long, env = "OBSERVER_REPLAY_CONCURRENCY", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub replay_concurrency: Option<String>,

    /// Replay chunk and session-events reads served at the same time by
    /// the replay fetch API (each holds up to a few stored chunks in memory
    /// until its answer is sent). Others wait (up to 10 s, then 503).
    /// [default: 32]
    #[arg(long, env = "OBSERVER_FETCH_CONCURRENCY", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub fetch_concurrency: Option<String>,

    /// Most errors or events in one batch request. [default: 100]
    #[arg(long, env = "OBSERVER_MAX_BATCH_ITEMS", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub max_batch_items: Option<String>,

    /// Time limit for one request, body included. [default: 30s]
    #[arg(long, env = "OBSERVER_REQUEST_TIMEOUT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub request_timeout: Option<String>,

    /// Records (errors, events, replay starts) that may wait for delivery
    /// to Loki/stdout. When full, ingestion answers 503. [default: 50000]
    #[arg(long, env = "OBSERVER_QUEUE_CAPACITY", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub queue_capacity: Option<String>,

    /// Most bytes of log lines that may wait for delivery; when reached,
    /// ingestion answers 503. [default: 256MiB]
    #[arg(long, env = "OBSERVER_QUEUE_BYTES", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub queue_bytes: Option<String>,

    /// Most records in one Loki push. [default: 1000]
    #[arg(long, env = "OBSERVER_LOKI_BATCH_RECORDS", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub loki_batch_records: Option<String>,

    /// Largest uncompressed size of log lines in one Loki push. [default: 1MiB]
    #[arg(long, env = "OBSERVER_LOKI_BATCH_BYTES", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub loki_batch_bytes: Option<String>,

    /// How long a batch may wait for more records before it is pushed.
    /// [default: 1s]
    #[arg(long, env = "OBSERVER_LOKI_BATCH_WAIT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub loki_batch_wait: Option<String>,

    /// Requests per second allowed per client IP on ingestion routes
    /// (burst: twice that); 0 turns rate limiting off. [default: 0]
    #[arg(long, env = "OBSERVER_RATE_LIMIT_PER_IP", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub rate_limit_per_ip: Option<String>,

    /// Failed viewer authentications (401) allowed per minute per client IP
    /// on the replay fetch API, as a burst; past it, every fetch request
    /// from that IP answers 429 until the next failure would be allowed.
    /// 0 turns the brake off. [default: 10]
    #[arg(long, env = "OBSERVER_AUTH_FAILURES_PER_MINUTE", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub auth_failures_per_minute: Option<String>,

    /// Take the client IP for rate limiting and the auth-failure brake from
    /// the right-most `X-Forwarded-For` entry (the one the proxy appended).
    /// Only enable behind a proxy that sets it.
    /// [default: false]
    #[arg(long, env = "OBSERVER_TRUST_FORWARDED_FOR", value_name = "BOOL")]
    #[serde(deserialize_with = "scalar")]
    pub trust_forwarded_for: Option<String>,

    /// How long shutdown waits for in-flight requests and log delivery.
    /// [default: 15s]
    #[arg(long, env = "OBSERVER_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub shutdown_timeout: Option<String>,

    /// Filter for the server's own logs (tracing `EnvFilter` syntax).
    /// [default: info]
    #[arg(long, env = "OBSERVER_LOG", value_name = "FILTER")]
    #[serde(deserialize_with = "scalar")]
    pub log: Option<String>,
}

/// Accepts a TOML string, integer, float or boolean as the setting's text,
/// so `max_batch_items = 100` and `max_batch_items = "100"` both work.
fn scalar<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Some(match Scalar::deserialize(de)? {
        Scalar::Text(s) => s,
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

impl Settings {
    /// Reads a TOML file into settings.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::ParseFile { path: path.to_owned(), reason: e.to_string() })
    }

    /// Values set in `self` win over those in `base`.
    pub fn over(self, base: Settings) -> Settings {
        macro_rules! pick {
            ($($field:ident),* $(,)?) => { Settings { $($field: self.$field.or(base.$field)),* } };
        }
        pick!(
            listen,
            data_dir,
            s3_endpoint,
            s3_bucket,
            s3_region,
            s3_key_prefix,
            loki_url,
            service_name,
            environment,
            allowed_origins,
            ingest_keys,
            viewer_tokens,
            share_secret,
            public_url,
            max_stream_chunks,
            max_json_body,
            max_replay_body,
            max_replay_decompressed,
            replay_concurrency,
            fetch_concurrency,
            max_batch_items,
            request_timeout,
            queue_capacity,
            queue_bytes,
            loki_batch_records,
            loki_batch_bytes,
            loki_batch_wait,
            rate_limit_per_ip,
            auth_failures_per_minute,
            trust_forwarded_for,
            shutdown_timeout,
            log,
        )
    }
}

/// Which origins may post from a browser.
#[derive(Debug, Clone)]
pub enum AllowedOrigins {
    Any,
    List(Vec<HeaderValue>),
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|allowed| allowed == origin),
        }
    }
}

/// Where replay chunks are stored.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Local { data_dir: PathBuf },
    S3 { endpoint: Option<Url>, bucket: String, region: String, key_prefix: String },
}

/// Every size, count and time limit the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_json_body: usize,
    pub max_replay_body: usize,
    pub max_replay_decompressed: usize,
    pub replay_concurrency: usize,
    pub max_batch_items: usize,
    pub request_timeout: Duration,
    pub queue_capacity: usize,
    pub queue_bytes: usize,
    pub rate_limit_per_ip: u32,
    /// Failed viewer authentications per minute per client IP; 0 = no brake.
    pub auth_failures_per_minute: u32,
    pub trust_forwarded_for: bool,
    /// Most chunks one manifest lists and one session-events request streams.
    pub max_stream_chunks: usize,
    /// Chunk and session-events reads of the fetch API served at once.
    pub fetch_concurrency: usize,
}

/// How log records reach Loki.
#[derive(Debug, Clone)]
pub struct LokiConfig {
    pub url: Url,
    pub batch_records: usize,
    pub batch_bytes: usize,
    pub batch_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub loki: Option<LokiConfig>,
    pub service_name: String,
    pub environment: Option<String>,
    pub allowed_origins: AllowedOrigins,
    pub ingest_keys: Vec<Secret>,
    /// Empty until `auth::resolve_secrets` fills in the generated one.
    pub viewer_tokens: Vec<Secret>,
    /// `None` until `auth::resolve_secrets` fills in the generated one.
    pub share_secret: Option<Secret>,
    /// Base of printed links, without a trailing `/`.
    pub public_url: String,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
    pub log_filter: String,
}

/// Shortest viewer token accepted (a generated one has 43 characters).
pub const MIN_VIEWER_TOKEN_CHARS: usize = 16;
/// Shortest share secret accepted: HMAC-SHA256's block of entropy.
pub const MIN_SHARE_SECRET_BYTES: usize = 32;

/// Upper bound for the record queue (tokio's channel panics far above it).
const MAX_QUEUE_CAPACITY: usize = 10_000_000;

/// Bytes in a MiB, for defaults.
const MIB: usize = 1024 * 1024;

fn parse_size(setting: &'static str, raw: Option<&str>, default: usize) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let size: bytesize::ByteSize =
        raw.trim().parse().map_err(|e| invalid(setting, format!("{raw:?} is not a size like 5MiB: {e}")))?;
    let bytes = usize::try_from(size.as_u64()).map_err(|_| invalid(setting, "too large"))?;
    if bytes == 0 {
        return Err(invalid(setting, "must be greater than zero"));
    }
    Ok(bytes)
}

fn parse_count(setting: &'static str, raw: Option<&str>, default: usize, min: usize) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let n: usize = raw.trim().parse().map_err(|_| invalid(setting, format!("{raw:?} is not a whole number")))?;
    if n < min {
        return Err(invalid(setting, format!("must be at least {min}")));
    }
    Ok(n)
}

fn parse_duration(setting: &'static str, raw: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| invalid(setting, format!("{raw:?} is not a duration like 30s: {e}")))?;
    if d.is_zero() {
        return Err(invalid(setting, "must be greater than zero"));
    }
    Ok(d)
}

fn parse_log_filter(raw: Option<&str>) -> Result<String, ConfigError> {
    let filter = raw.unwrap_or("info").trim().to_owned();
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| invalid("OBSERVER_LOG", format!("{filter:?} is not a log filter: {e}")))?;
    Ok(filter)
}

fn parse_bool(setting: &'static str, raw: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(invalid(setting, format!("{other:?} is not true or false"))),
    }
}

fn parse_http_url(setting: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| invalid(setting, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(setting, format!("{raw:?} must be an http:// or https:// URL")));
    }
    Ok(url)
}

/// Loki label values stay short and printable; anything else is a mistake.
fn parse_label_value(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
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

fn parse_origins(raw: Option<&str>) -> Result<AllowedOrigins, ConfigError> {
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

fn parse_ingest_keys(raw: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
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

fn parse_viewer_tokens(raw: Option<&str>) -> Result<Vec<Secret>, ConfigError> {
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

fn parse_share_secret(raw: Option<&str>) -> Result<Option<Secret>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let secret = raw.trim();
    if secret.len() < MIN_SHARE_SECRET_BYTES {
        return Err(invalid("OBSERVER_SHARE_SECRET", format!("must be at least {MIN_SHARE_SECRET_BYTES} bytes")));
    }
    Ok(Some(Secret::new(secret)))
}

/// Without a setting, links point at this machine on the port listened on.
fn parse_public_url(raw: Option<&str>, listen: SocketAddr) -> Result<String, ConfigError> {
    const SETTING: &str = "OBSERVER_PUBLIC_URL";
    let default = format!("http://localhost:{}", listen.port());
    let url = parse_http_url(SETTING, raw.unwrap_or(&default))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(SETTING, "must be scheme://host[:port][/path] without credentials, query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_store(s: &Settings, data_dir: &std::path::Path) -> Result<StoreConfig, ConfigError> {
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

impl Config {
    /// Turns raw settings into a validated configuration.
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let listen = s
            .listen
            .as_deref()
            .unwrap_or("0.0.0.0:8006")
            .trim()
            .parse()
            .map_err(|e| invalid("OBSERVER_LISTEN", format!("expected ADDRESS:PORT: {e}")))?;
        let data_dir = PathBuf::from(s.data_dir.as_deref().unwrap_or("./observer-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("OBSERVER_DATA_DIR", "must not be empty"));
        }
        let store = parse_store(s, &data_dir)?;

        let loki = match s.loki_url.as_deref() {
            None => None,
            Some(raw) => Some(LokiConfig {
                url: parse_http_url("OBSERVER_LOKI_URL", raw)?,
                batch_records: parse_count("OBSERVER_LOKI_BATCH_RECORDS", s.loki_batch_records.as_deref(), 1000, 1)?,
                batch_bytes: parse_size("OBSERVER_LOKI_BATCH_BYTES", s.loki_batch_bytes.as_deref(), MIB)?,
                batch_wait: parse_duration(
                    "OBSERVER_LOKI_BATCH_WAIT",
                    s.loki_batch_wait.as_deref(),
                    Duration::from_secs(1),
                )?,
            }),
        };

        let limits = Limits {
            max_json_body: parse_size("OBSERVER_MAX_JSON_BODY", s.max_json_body.as_deref(), MIB)?,
            max_replay_body: parse_size("OBSERVER_MAX_REPLAY_BODY", s.max_replay_body.as_deref(), 5 * MIB)?,
            max_replay_decompressed: parse_size(
                "OBSERVER_MAX_REPLAY_DECOMPRESSED",
                s.max_replay_decompressed.as_deref(),
                50 * MIB,
            )?,
            replay_concurrency: parse_count(
                "OBSERVER_REPLAY_CONCURRENCY",
                s.replay_concurrency.as_deref(),
                2 * std::thread::available_parallelism().map_or(1, usize::from),
                1,
            )?,
            max_batch_items: parse_count("OBSERVER_MAX_BATCH_ITEMS", s.max_batch_items.as_deref(), 100, 1)?,
            request_timeout: parse_duration(
                "OBSERVER_REQUEST_TIMEOUT",
                s.request_timeout.as_deref(),
                Duration::from_secs(30),
            )?,
            queue_capacity: parse_count("OBSERVER_QUEUE_CAPACITY", s.queue_capacity.as_deref(), 50_000, 1)?,
            queue_bytes: parse_size("OBSERVER_QUEUE_BYTES", s.queue_bytes.as_deref(), 256 * MIB)?,
            rate_limit_per_ip: parse_count("OBSERVER_RATE_LIMIT_PER_IP", s.rate_limit_per_ip.as_deref(), 0, 0)?
                .try_into()
                .map_err(|_| invalid("OBSERVER_RATE_LIMIT_PER_IP", "too large"))?,
            auth_failures_per_minute: parse_count(
                "OBSERVER_AUTH_FAILURES_PER_MINUTE",
                s.auth_failures_per_minute.as_deref(),
                10,
                0,
            )?
            .try_into()
            .map_err(|_| invalid("OBSERVER_AUTH_FAILURES_PER_MINUTE", "too large"))?,
            trust_forwarded_for: parse_bool("OBSERVER_TRUST_FORWARDED_FOR", s.trust_forwarded_for.as_deref(), false)?,
            max_stream_chunks: parse_count("OBSERVER_MAX_STREAM_CHUNKS", s.max_stream_chunks.as_deref(), 2000, 1)?,
            fetch_concurrency: parse_count("OBSERVER_FETCH_CONCURRENCY", s.fetch_concurrency.as_deref(), 32, 1)?,
        };
        if limits.max_replay_decompressed < limits.max_replay_body {
            return Err(invalid(
                "OBSERVER_MAX_REPLAY_DECOMPRESSED",
                "must be at least OBSERVER_MAX_REPLAY_BODY (a plain JSON chunk is as large decompressed as received)",
            ));
        }
        if limits.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(invalid("OBSERVER_QUEUE_CAPACITY", format!("must be at most {MAX_QUEUE_CAPACITY}")));
        }
        if limits.queue_bytes < limits.max_json_body {
            return Err(invalid("OBSERVER_QUEUE_BYTES", "must be at least OBSERVER_MAX_JSON_BODY"));
        }
        if limits.queue_capacity < limits.max_batch_items {
            return Err(invalid("OBSERVER_QUEUE_CAPACITY", "must be at least OBSERVER_MAX_BATCH_ITEMS"));
        }

        let service_name = parse_label_value("OBSERVER_SERVICE_NAME", s.service_name.as_deref().unwrap_or("observer"))?;
        let environment =
            s.environment.as_deref().map(|raw| parse_label_value("OBSERVER_ENVIRONMENT", raw)).transpose()?;

        Ok(Config {
            listen,
            data_dir,
            store,
            loki,
            service_name,
            environment,
            allowed_origins: parse_origins(s.allowed_origins.as_deref())?,
            ingest_keys: parse_ingest_keys(s.ingest_keys.as_deref())?,
            viewer_tokens: parse_viewer_tokens(s.viewer_tokens.as_deref())?,
            share_secret: parse_share_secret(s.share_secret.as_deref())?,
            public_url: parse_public_url(s.public_url.as_deref(), listen)?,
            limits,
            shutdown_timeout: parse_duration(
                "OBSERVER_SHUTDOWN_TIMEOUT",
                s.shutdown_timeout.as_deref(),
                Duration::from_secs(15),
            )?,
            log_filter: parse_log_filter(s.log.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = Settings::default();
        f(&mut s);
        s
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let c = Config::from_settings(&Settings::default()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8006");
        assert!(matches!(c.store, StoreConfig::Local { .. }));
        assert!(c.loki.is_none());
        assert_eq!(c.limits.max_replay_body, 5 * MIB);
        assert_eq!(c.limits.max_replay_decompressed, 50 * MIB);
        assert!(matches!(c.allowed_origins, AllowedOrigins::Any));
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: Vec<(Settings, &str)> = vec![
            (settings(|s| s.listen = Some("nope".into())), "OBSERVER_LISTEN"),
            (settings(|s| s.max_replay_body = Some("lots".into())), "OBSERVER_MAX_REPLAY_BODY"),
            (settings(|s| s.loki_url = Some("ftp://x".into())), "OBSERVER_LOKI_URL"),
            (settings(|s| s.s3_endpoint = Some("http://minio:9000".into())), "OBSERVER_S3_BUCKET"),
            (settings(|s| s.allowed_origins = Some("https://a.example/path".into())), "OBSERVER_ALLOWED_ORIGINS"),
            (settings(|s| s.ingest_keys = Some(" , ".into())), "OBSERVER_INGEST_KEYS"),
            (settings(|s| s.service_name = Some("bad label".into())), "OBSERVER_SERVICE_NAME"),
            (settings(|s| s.request_timeout = Some("0s".into())), "OBSERVER_REQUEST_TIMEOUT"),
            (settings(|s| s.viewer_tokens = Some("short".into())), "OBSERVER_VIEWER_TOKENS"),
            (
                settings(|s| s.viewer_tokens = Some("sixteen-chars-ok, has space inside!".into())),
                "OBSERVER_VIEWER_TOKENS",
            ),
            (settings(|s| s.share_secret = Some("too short for hmac".into())), "OBSERVER_SHARE_SECRET"),
            (settings(|s| s.public_url = Some("localhost:8006".into())), "OBSERVER_PUBLIC_URL"),
            (settings(|s| s.public_url = Some("http://h.example/?x=1".into())), "OBSERVER_PUBLIC_URL"),
            (settings(|s| s.max_stream_chunks = Some("0".into())), "OBSERVER_MAX_STREAM_CHUNKS"),
            (settings(|s| s.fetch_concurrency = Some("0".into())), "OBSERVER_FETCH_CONCURRENCY"),
            (settings(|s| s.auth_failures_per_minute = Some("-1".into())), "OBSERVER_AUTH_FAILURES_PER_MINUTE"),
            (
                settings(|s| s.auth_failures_per_minute = Some("99999999999".into())),
                "OBSERVER_AUTH_FAILURES_PER_MINUTE",
            ),
        ];
        for (s, setting) in cases {
            let err = Config::from_settings(&s).unwrap_err().to_string();
            assert!(err.contains(setting), "{err} should name {setting}");
        }
    }

    #[test]
    fn env_wins_over_file() {
        let file: Settings =
            toml::from_str("listen = \"127.0.0.1:1\"\nmax_batch_items = 5\nqueue_capacity = 10").unwrap();
        let cli = settings(|s| s.listen = Some("127.0.0.1:2".into()));
        let c = Config::from_settings(&cli.over(file)).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.limits.max_batch_items, 5);
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_settings(&settings(|s| {
            s.ingest_keys = Some("supersecretkey".into());
            s.viewer_tokens = Some("superviewertoken-1,superviewertoken-2".into());
            s.share_secret = Some("supershare-0123456789abcdef0123456789".into());
        }))
        .unwrap();
        assert_eq!(c.viewer_tokens.len(), 2);
        assert!(!format!("{c:?}").contains("super"), "{c:?}");
    }

    #[test]
    fn viewer_defaults() {
        let c = Config::from_settings(&Settings::default()).unwrap();
        assert!(c.viewer_tokens.is_empty() && c.share_secret.is_none());
        assert_eq!(c.public_url, "http://localhost:8006");
        assert_eq!(c.limits.max_stream_chunks, 2000);
        assert_eq!(c.limits.fetch_concurrency, 32);
        assert_eq!(c.limits.auth_failures_per_minute, 10);
        let c = Config::from_settings(&settings(|s| s.auth_failures_per_minute = Some("0".into()))).unwrap();
        assert_eq!(c.limits.auth_failures_per_minute, 0, "0 turns the brake off");
        let c = Config::from_settings(&settings(|s| s.public_url = Some("https://obs.example/base/".into()))).unwrap();
        assert_eq!(c.public_url, "https://obs.example/base");
    }
}
