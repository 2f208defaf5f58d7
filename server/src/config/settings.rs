//! The raw, string-typed settings layer: clap flags and `OBSERVER_*`
//! environment variables, the TOML file, and how the two are merged.

use clap::Args;
use serde::Deserialize;

use super::ConfigError;

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

    /// Local directory store: sessions whose last chunk is older than this
    /// many days are deleted whole by an hourly sweep; 0 or `off` keeps
    /// everything. With S3 the bucket's lifecycle rule expires objects
    /// instead (`observer storage lifecycle --days N`). [default: 30]
    #[arg(long, env = "OBSERVER_RETENTION_DAYS", value_name = "DAYS")]
    #[serde(deserialize_with = "scalar")]
    pub retention_days: Option<String>,

    /// Time between two retention sweeps of the local directory store (the
    /// first runs shortly after start-up). [default: 1h]
    #[arg(long, env = "OBSERVER_RETENTION_SWEEP_INTERVAL", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub retention_sweep_interval: Option<String>,

    /// Loki base URL, e.g. http://loki:3100. When unset, records are written
    /// as JSON lines on stdout.
    // Its value may hold credentials (`http://user:pass@…`): not in --help.
    #[arg(long, env = "OBSERVER_LOKI_URL", value_name = "URL", hide_env_values = true)]
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

    /// How long a viewer stays signed in to the player in one browser
    /// (`POST /api/observer/viewer/session`), from 1m to 30d. [default: 12h]
    #[arg(long, env = "OBSERVER_VIEWER_SESSION_TTL", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub viewer_session_ttl: Option<String>,

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

    /// A session counts as live (still recording: the listing marks it, the
    /// player follows it) while its newest replay chunk was accepted within
    /// this time. The SDK sends a chunk about every 5 s while the page
    /// records anything. [default: 30s]
    #[arg(long, env = "OBSERVER_LIVE_WINDOW", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub live_window: Option<String>,

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

    /// Directory of the disk spool, where acknowledged records (and replay
    /// chunks S3 could not take) wait for delivery.
    /// [default: OBSERVER_DATA_DIR/spool]
    #[arg(long, env = "OBSERVER_SPOOL_DIR", value_name = "DIR")]
    #[serde(deserialize_with = "scalar")]
    pub spool_dir: Option<String>,

    /// Most bytes waiting in the disk spool; when reached, ingestion
    /// answers 503 with Retry-After. [default: 1GiB]
    #[arg(long, env = "OBSERVER_SPOOL_MAX_BYTES", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub spool_max_bytes: Option<String>,

    /// Items older than this that could not be delivered are dropped from
    /// the spool, counted and logged. [default: 24h]
    #[arg(long, env = "OBSERVER_SPOOL_MAX_AGE", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub spool_max_age: Option<String>,

    /// When a spool commit reaches the disk: `full` (every group commit is
    /// fsynced: what was acknowledged survives a crash, `kill -9` and a power
    /// cut) or `normal` (SQLite WAL with synchronous=NORMAL: survives the
    /// process being killed or crashing; a power cut or kernel crash can
    /// lose the last moments' commits). [default: full]
    #[arg(long, env = "OBSERVER_SPOOL_SYNC", value_name = "normal|full")]
    #[serde(deserialize_with = "scalar")]
    pub spool_sync: Option<String>,

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
    /// (burst: twice that); 0 turns rate limiting off. [default: 100]
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

    /// Requests per second allowed per `session_id` on ingestion routes
    /// (burst: twice that); 0 turns it off. [default: 20]
    #[arg(long, env = "OBSERVER_RATE_LIMIT_PER_SESSION", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub rate_limit_per_session: Option<String>,

    /// Most replay chunks one session may store: chunk `seq` must be below
    /// it. [default: 720]
    #[arg(long, env = "OBSERVER_MAX_SESSION_CHUNKS", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub max_session_chunks: Option<String>,

    /// Most replay bytes (as stored, compressed) one session may store.
    /// [default: 200MiB]
    #[arg(long, env = "OBSERVER_MAX_SESSION_BYTES", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub max_session_bytes: Option<String>,

    /// Deepest JSON nesting accepted in a replay chunk. [default: 1000]
    #[arg(long, env = "OBSERVER_MAX_REPLAY_DEPTH", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub max_replay_depth: Option<String>,

    /// Request bodies held in memory by all requests together; past it,
    /// ingestion answers 503 with `Retry-After`. [default: 48MiB]
    #[arg(long, env = "OBSERVER_MAX_INFLIGHT_BYTES", value_name = "SIZE")]
    #[serde(deserialize_with = "scalar")]
    pub max_inflight_bytes: Option<String>,

    /// Time a client has to send a request's headers, from the connection's
    /// start or, on a keep-alive connection, from the first byte of its next
    /// request. [default: 10s]
    #[arg(long, env = "OBSERVER_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub header_read_timeout: Option<String>,

    /// How long a keep-alive connection may wait, after an answer, before
    /// sending the first byte of its next request. [default: 60s]
    #[arg(long, env = "OBSERVER_IDLE_TIMEOUT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub idle_timeout: Option<String>,

    /// How long a response may wait for a client that stops reading it
    /// before the connection is dropped. [default: 30s]
    #[arg(long, env = "OBSERVER_SEND_TIMEOUT", value_name = "DURATION")]
    #[serde(deserialize_with = "scalar")]
    pub send_timeout: Option<String>,

    /// Most client connections open at once; more are closed on accept.
    /// [default: 4096]
    #[arg(long, env = "OBSERVER_MAX_CONNECTIONS", value_name = "N")]
    #[serde(deserialize_with = "scalar")]
    pub max_connections: Option<String>,

    /// User name for HTTP basic authentication to Loki (with
    /// OBSERVER_LOKI_PASSWORD). [default: none]
    #[arg(long, env = "OBSERVER_LOKI_USERNAME", value_name = "USER")]
    #[serde(deserialize_with = "scalar")]
    pub loki_username: Option<String>,

    /// Password for HTTP basic authentication to Loki. [default: none]
    #[arg(long, env = "OBSERVER_LOKI_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub loki_password: Option<String>,

    /// Bearer token sent to Loki (instead of basic authentication).
    /// [default: none]
    #[arg(long, env = "OBSERVER_LOKI_BEARER_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    #[serde(deserialize_with = "scalar")]
    pub loki_bearer_token: Option<String>,

    /// Loki tenant, sent as `X-Scope-OrgID` (multi-tenant Loki).
    /// [default: none]
    #[arg(long, env = "OBSERVER_LOKI_TENANT_ID", value_name = "TENANT")]
    #[serde(deserialize_with = "scalar")]
    pub loki_tenant_id: Option<String>,

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
            retention_days,
            retention_sweep_interval,
            loki_url,
            service_name,
            environment,
            allowed_origins,
            ingest_keys,
            viewer_tokens,
            share_secret,
            viewer_session_ttl,
            public_url,
            max_stream_chunks,
            live_window,
            max_json_body,
            max_replay_body,
            max_replay_decompressed,
            replay_concurrency,
            fetch_concurrency,
            max_batch_items,
            request_timeout,
            spool_dir,
            spool_max_bytes,
            spool_max_age,
            spool_sync,
            loki_batch_records,
            loki_batch_bytes,
            loki_batch_wait,
            rate_limit_per_ip,
            auth_failures_per_minute,
            trust_forwarded_for,
            rate_limit_per_session,
            max_session_chunks,
            max_session_bytes,
            max_replay_depth,
            max_inflight_bytes,
            header_read_timeout,
            idle_timeout,
            send_timeout,
            max_connections,
            loki_username,
            loki_password,
            loki_bearer_token,
            loki_tenant_id,
            shutdown_timeout,
            log,
        )
    }
}
