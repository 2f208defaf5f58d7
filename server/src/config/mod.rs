//! Configuration: defaults, then an optional TOML file (`--config`), then
//! `OBSERVER_*` environment variables / command-line flags.
//!
//! `Settings` is the raw, string-typed layer that clap and the TOML file fill
//! in; `Config::from_settings` turns it into typed values exactly once and
//! names the offending setting when something is wrong. Routes read limits
//! from `Config::limits` only — never from literals.

mod parse;
mod settings;
#[cfg(test)]
mod tests;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use axum::http::HeaderValue;
use url::Url;

pub use self::parse::MAX_RETENTION_DAYS;
use self::parse::{
    parse_bool, parse_count, parse_duration, parse_http_url, parse_ingest_keys, parse_label_value, parse_log_filter,
    parse_loki_url_and_auth, parse_origins, parse_public_url, parse_retention_days, parse_share_secret, parse_size,
    parse_store, parse_viewer_session_ttl, parse_viewer_tokens,
};
pub use self::settings::Settings;

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

/// How long replays are kept (see `store::retention`).
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Local store: sessions whose last chunk is older than this many days
    /// are deleted; `None`: kept forever. Unused with S3, where the
    /// bucket's lifecycle rule expires objects.
    pub days: Option<u32>,
    /// Time between two sweeps of the local store.
    pub sweep_interval: Duration,
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
    pub rate_limit_per_ip: u32,
    /// Failed viewer authentications per minute per client IP; 0 = no brake.
    pub auth_failures_per_minute: u32,
    pub trust_forwarded_for: bool,
    /// Most chunks one manifest lists and one session-events request streams.
    pub max_stream_chunks: usize,
    /// A session is live while its newest chunk was accepted this recently.
    pub live_window: Duration,
    /// Chunk and session-events reads of the fetch API served at once.
    pub fetch_concurrency: usize,
    /// Ingestion requests per second per `session_id`; 0 = no limit.
    pub rate_limit_per_session: u32,
    /// A replay chunk's `seq` must be below this.
    pub max_session_chunks: u32,
    /// Stored (compressed) replay bytes one session may hold.
    pub max_session_bytes: u64,
    /// Deepest JSON nesting accepted in a replay chunk.
    pub max_replay_depth: usize,
    /// How long a viewer sign-in (session cookie) lasts.
    pub viewer_session_ttl: Duration,
    /// Request body bytes all requests together may hold in memory.
    pub max_inflight_bytes: usize,
}

/// Connection-level limits, applied by the accept loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time to send a request's headers (from connect, or from the first
    /// byte of a next request on a keep-alive connection).
    pub header_read_timeout: Duration,
    /// Longest idle keep-alive connection.
    pub idle_timeout: Duration,
    /// Longest time a response may wait for the client to read it.
    pub send_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// How Observer authenticates to Loki.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LokiAuth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// How log records reach Loki.
#[derive(Debug, Clone)]
pub struct LokiConfig {
    /// Without user info: credentials given in the URL move to `auth`, so
    /// the URL can be logged.
    pub url: Url,
    pub auth: LokiAuth,
    /// Sent as `X-Scope-OrgID`.
    pub tenant_id: Option<String>,
    pub batch_records: usize,
    pub batch_bytes: usize,
    pub batch_wait: Duration,
}

/// The disk spool (see `crate::spool`).
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Most bytes of items waiting; past it ingestion answers 503.
    pub max_bytes: u64,
    /// Undelivered items older than this are dropped, counted and logged.
    pub max_age: Duration,
    pub sync: SpoolSync,
}

/// `OBSERVER_SPOOL_SYNC`: which failures an acknowledged item survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpoolSync {
    /// Process crash and `kill -9`, not a power cut (SQLite WAL, synchronous=NORMAL).
    Normal,
    /// Power cut too: every group commit is fsynced (synchronous=FULL).
    #[default]
    Full,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub spool: SpoolConfig,
    pub store: StoreConfig,
    pub retention: RetentionConfig,
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
    pub connections: ConnectionLimits,
    pub shutdown_timeout: Duration,
    pub log_filter: String,
}

/// Shortest viewer token accepted (a generated one has 43 characters).
pub const MIN_VIEWER_TOKEN_CHARS: usize = 16;
/// Shortest share secret accepted: HMAC-SHA256's block of entropy.
pub const MIN_SHARE_SECRET_BYTES: usize = 32;

/// Bytes in a MiB, for defaults.
const MIB: usize = 1024 * 1024;

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
        let retention = RetentionConfig {
            days: parse_retention_days(s.retention_days.as_deref())?,
            sweep_interval: parse_duration(
                "OBSERVER_RETENTION_SWEEP_INTERVAL",
                s.retention_sweep_interval.as_deref(),
                Duration::from_secs(3600),
            )?,
        };

        let loki = match s.loki_url.as_deref() {
            None => None,
            Some(raw) => Some({
                let (url, auth) = parse_loki_url_and_auth(
                    parse_http_url("OBSERVER_LOKI_URL", raw)?,
                    s.loki_username.as_deref(),
                    s.loki_password.as_deref(),
                    s.loki_bearer_token.as_deref(),
                )?;
                LokiConfig {
                    url,
                    auth,
                    tenant_id: s
                        .loki_tenant_id
                        .as_deref()
                        .map(|raw| parse_label_value("OBSERVER_LOKI_TENANT_ID", raw))
                        .transpose()?,
                    batch_records: parse_count(
                        "OBSERVER_LOKI_BATCH_RECORDS",
                        s.loki_batch_records.as_deref(),
                        1000,
                        1,
                    )?,
                    batch_bytes: parse_size("OBSERVER_LOKI_BATCH_BYTES", s.loki_batch_bytes.as_deref(), MIB)?,
                    batch_wait: parse_duration(
                        "OBSERVER_LOKI_BATCH_WAIT",
                        s.loki_batch_wait.as_deref(),
                        Duration::from_secs(1),
                    )?,
                }
            }),
        };
        if s.loki_url.is_none() {
            for (setting, value) in [
                ("OBSERVER_LOKI_USERNAME", &s.loki_username),
                ("OBSERVER_LOKI_PASSWORD", &s.loki_password),
                ("OBSERVER_LOKI_BEARER_TOKEN", &s.loki_bearer_token),
                ("OBSERVER_LOKI_TENANT_ID", &s.loki_tenant_id),
            ] {
                if value.is_some() {
                    return Err(invalid(setting, "needs OBSERVER_LOKI_URL"));
                }
            }
        }

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
            rate_limit_per_ip: parse_count("OBSERVER_RATE_LIMIT_PER_IP", s.rate_limit_per_ip.as_deref(), 100, 0)?
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
            live_window: parse_duration("OBSERVER_LIVE_WINDOW", s.live_window.as_deref(), Duration::from_secs(30))?,
            fetch_concurrency: parse_count("OBSERVER_FETCH_CONCURRENCY", s.fetch_concurrency.as_deref(), 32, 1)?,
            rate_limit_per_session: parse_count(
                "OBSERVER_RATE_LIMIT_PER_SESSION",
                s.rate_limit_per_session.as_deref(),
                20,
                0,
            )?
            .try_into()
            .map_err(|_| invalid("OBSERVER_RATE_LIMIT_PER_SESSION", "too large"))?,
            max_session_chunks: parse_count("OBSERVER_MAX_SESSION_CHUNKS", s.max_session_chunks.as_deref(), 720, 1)?
                .try_into()
                .map_err(|_| invalid("OBSERVER_MAX_SESSION_CHUNKS", "too large"))?,
            max_session_bytes: parse_size("OBSERVER_MAX_SESSION_BYTES", s.max_session_bytes.as_deref(), 200 * MIB)?
                as u64,
            max_replay_depth: parse_count("OBSERVER_MAX_REPLAY_DEPTH", s.max_replay_depth.as_deref(), 1000, 2)?,
            max_inflight_bytes: parse_size("OBSERVER_MAX_INFLIGHT_BYTES", s.max_inflight_bytes.as_deref(), 48 * MIB)?,
            viewer_session_ttl: parse_viewer_session_ttl(s.viewer_session_ttl.as_deref())?,
        };
        if limits.max_inflight_bytes < limits.max_replay_body.max(limits.max_json_body) {
            return Err(invalid(
                "OBSERVER_MAX_INFLIGHT_BYTES",
                "must be at least OBSERVER_MAX_REPLAY_BODY and OBSERVER_MAX_JSON_BODY (one request must fit)",
            ));
        }
        let connections = ConnectionLimits {
            header_read_timeout: parse_duration(
                "OBSERVER_HEADER_READ_TIMEOUT",
                s.header_read_timeout.as_deref(),
                Duration::from_secs(10),
            )?,
            idle_timeout: parse_duration("OBSERVER_IDLE_TIMEOUT", s.idle_timeout.as_deref(), Duration::from_secs(60))?,
            send_timeout: parse_duration("OBSERVER_SEND_TIMEOUT", s.send_timeout.as_deref(), Duration::from_secs(30))?,
            max_connections: parse_count("OBSERVER_MAX_CONNECTIONS", s.max_connections.as_deref(), 4096, 1)?,
        };
        if limits.max_replay_decompressed < limits.max_replay_body {
            return Err(invalid(
                "OBSERVER_MAX_REPLAY_DECOMPRESSED",
                "must be at least OBSERVER_MAX_REPLAY_BODY (a plain JSON chunk is as large decompressed as received)",
            ));
        }
        let spool = SpoolConfig {
            dir: s.spool_dir.as_deref().map_or_else(|| data_dir.join("spool"), PathBuf::from),
            max_bytes: parse_size("OBSERVER_SPOOL_MAX_BYTES", s.spool_max_bytes.as_deref(), 1024 * MIB)? as u64,
            max_age: parse_duration(
                "OBSERVER_SPOOL_MAX_AGE",
                s.spool_max_age.as_deref(),
                Duration::from_secs(24 * 3600),
            )?,
            sync: match s.spool_sync.as_deref().map(str::trim) {
                Some("normal") => SpoolSync::Normal,
                None | Some("full") => SpoolSync::Full,
                Some(_) => return Err(invalid("OBSERVER_SPOOL_SYNC", "must be normal or full")),
            },
        };
        if spool.dir.as_os_str().is_empty() {
            return Err(invalid("OBSERVER_SPOOL_DIR", "must not be empty"));
        }
        if spool.max_bytes < (limits.max_json_body.max(limits.max_replay_body) as u64) * 2 {
            return Err(invalid(
                "OBSERVER_SPOOL_MAX_BYTES",
                "must be at least twice OBSERVER_MAX_JSON_BODY and OBSERVER_MAX_REPLAY_BODY",
            ));
        }

        let service_name = parse_label_value("OBSERVER_SERVICE_NAME", s.service_name.as_deref().unwrap_or("observer"))?;
        let environment =
            s.environment.as_deref().map(|raw| parse_label_value("OBSERVER_ENVIRONMENT", raw)).transpose()?;

        Ok(Config {
            listen,
            data_dir,
            spool,
            store,
            retention,
            loki,
            service_name,
            environment,
            allowed_origins: parse_origins(s.allowed_origins.as_deref())?,
            ingest_keys: parse_ingest_keys(s.ingest_keys.as_deref())?,
            viewer_tokens: parse_viewer_tokens(s.viewer_tokens.as_deref())?,
            share_secret: parse_share_secret(s.share_secret.as_deref())?,
            public_url: parse_public_url(s.public_url.as_deref(), listen)?,
            limits,
            connections,
            shutdown_timeout: parse_duration(
                "OBSERVER_SHUTDOWN_TIMEOUT",
                s.shutdown_timeout.as_deref(),
                Duration::from_secs(15),
            )?,
            log_filter: parse_log_filter(s.log.as_deref())?,
        })
    }
}
