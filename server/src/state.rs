//! `AppState`: what every handler can reach. Cheap to clone (Arcs inside).

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::{
    auth::{IngestKeys, ShareSigner, ViewerSessions, ViewerTokens},
    config::{Config, Secret},
    delivery::RecordSink,
    health::Readiness,
    ingest::{inflight::InflightBudget, user_agent::UserAgentParser},
    metrics::Metrics,
    payload::ParsePool,
    rate_limit::{AuthFailureBrake, RateLimiter, SessionBytes, SessionRateLimiter},
    spool::{ChunkIntake, Spool},
    store::ReplayStore,
};

/// Distinct user agents whose parse result is kept.
const USER_AGENT_CACHE_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The replay store as the fetch API reads it (spooled chunks included).
    pub store: Arc<dyn ReplayStore>,
    /// Where accepted records go (the disk spool, or a test fake).
    pub records: Arc<dyn RecordSink>,
    /// Where the replay route stores chunks (directly, or via the spool).
    pub chunks: ChunkIntake,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub user_agents: Arc<UserAgentParser>,
    pub ingest_keys: IngestKeys,
    /// Viewer tokens for the replay fetch API.
    pub viewer_tokens: ViewerTokens,
    /// Signs and checks share links.
    pub share_signer: ShareSigner,
    /// Signs and checks viewer sign-in cookies (same secret, derived key).
    pub viewer_sessions: ViewerSessions,
    pub readiness: Readiness,
    /// Bounds the request body bytes held in memory by all requests.
    pub inflight: InflightBudget,
    /// Bounds how many replay chunks are read and inflated at once (memory).
    pub replay_permits: Arc<tokio::sync::Semaphore>,
    /// Bounds how many chunk and session-events reads of the fetch API
    /// are served at once (memory).
    pub fetch_permits: Arc<tokio::sync::Semaphore>,
    /// Where error and event bodies are parsed (off the async threads).
    pub parse_pool: ParsePool,
    /// `None` when rate limiting is off.
    pub rate_limiter: Option<RateLimiter>,
    /// Brute-force brake on fetch tokens; `None` when it is off.
    pub auth_brake: Option<AuthFailureBrake>,
    /// Ingestion requests per `session_id` (a no-op when off).
    pub session_rate_limiter: SessionRateLimiter,
    /// Replay bytes stored per session, against `OBSERVER_MAX_SESSION_BYTES`.
    pub session_bytes: Arc<SessionBytes>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn ReplayStore>,
        spool: Spool,
        chunks: ChunkIntake,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        readiness: Readiness,
    ) -> AppState {
        let share_secret = share_secret(&config);
        AppState {
            ingest_keys: IngestKeys::new(&config.ingest_keys),
            viewer_tokens: ViewerTokens::new(&config.viewer_tokens),
            share_signer: ShareSigner::new(&share_secret),
            viewer_sessions: ViewerSessions::new(&share_secret, config.limits.viewer_session_ttl),
            inflight: InflightBudget::new(config.limits.max_inflight_bytes, metrics.clone()),
            replay_permits: Arc::new(tokio::sync::Semaphore::new(config.limits.replay_concurrency)),
            fetch_permits: Arc::new(tokio::sync::Semaphore::new(config.limits.fetch_concurrency)),
            parse_pool: ParsePool::per_core(metrics.parse_waiting.clone()),
            rate_limiter: RateLimiter::new(config.limits.rate_limit_per_ip, config.limits.trust_forwarded_for),
            auth_brake: AuthFailureBrake::new(
                config.limits.auth_failures_per_minute,
                config.limits.trust_forwarded_for,
            ),
            session_rate_limiter: SessionRateLimiter::new(config.limits.rate_limit_per_session),
            session_bytes: Arc::new(SessionBytes::new(
                config.limits.max_session_bytes,
                config.limits.max_session_chunks,
            )),
            user_agents: Arc::new(UserAgentParser::new(USER_AGENT_CACHE_ENTRIES)),
            records: Arc::new(spool),
            chunks,
            config,
            store,
            metrics,
            registry,
            readiness,
        }
    }
}

/// The configured share secret. `main` always resolves one (see
/// `auth::resolve_secrets`); a server embedded without one gets a random
/// secret for this process, so its share links die with it.
fn share_secret(config: &Config) -> Secret {
    config.share_secret.clone().unwrap_or_else(|| {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            // Only without an OS random source; fastrand is not a CSPRNG,
            // but such a process has no better source to draw from.
            bytes = std::array::from_fn(|_| fastrand::u8(..));
        }
        tracing::warn!("no share secret configured: share links will stop working at restart");
        Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    })
}
