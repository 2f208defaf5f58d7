//! `AppState`: what the routes can reach, split into substates that
//! handlers, extractors and middleware take through axum's `FromRef`
//! (`State<Arc<Ingest>>`, `State<Arc<Metrics>>`, …). Each substate is one
//! `Arc` (or a handle of a few), so taking one costs an atomic increment,
//! never a copy of the rest (the key digests are `Vec`s).

use std::sync::Arc;

use axum::extract::FromRef;
use prometheus_client::registry::Registry;

use crate::{
    auth::{IngestAccess, ShareSigner, ViewerAuth, ViewerSessions, ViewerTokens},
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

/// The router's state. `#[derive(FromRef)]` makes every field a substate.
#[derive(Clone, FromRef)]
pub(crate) struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// The ingestion routes (their router runs with this state alone).
    pub ingest: Arc<Ingest>,
    /// The ingestion routes' origin allow-list and ingest keys.
    pub ingest_access: Arc<IngestAccess>,
    /// The ingestion routes' per-IP rate; `None` when it is off.
    pub rate_limiter: Option<RateLimiter>,
    /// Viewer tokens, share links, sign-in cookies and the brake on failures.
    pub viewer: Arc<ViewerAuth>,
    /// The replay fetch API.
    pub fetch: Arc<Fetch>,
    pub readiness: Readiness,
    pub registry: Arc<Registry>,
}

/// What the ingestion handlers use (their limits come from the route table).
pub(crate) struct Ingest {
    /// The replay store (for the per-session byte budget's first count).
    pub store: Arc<dyn ReplayStore>,
    /// Where accepted records go (the disk spool, or a test fake).
    pub records: Arc<dyn RecordSink>,
    /// Where the replay route stores chunks (directly, or via the spool).
    pub chunks: ChunkIntake,
    pub metrics: Arc<Metrics>,
    pub user_agents: UserAgentParser,
    /// Bounds the request body bytes held in memory by all requests.
    pub inflight: InflightBudget,
    /// Bounds how many replay chunks are read and inflated at once (memory).
    pub replay_permits: Arc<tokio::sync::Semaphore>,
    /// Where error and event bodies are parsed (off the async threads).
    pub parse_pool: ParsePool,
    /// Ingestion requests per `session_id` (a no-op when off).
    pub session_rate_limiter: SessionRateLimiter,
    /// Replay bytes stored per session, against `OBSERVER_MAX_SESSION_BYTES`.
    pub session_bytes: SessionBytes,
}

/// What the replay fetch handlers use besides viewer access.
pub(crate) struct Fetch {
    pub config: Arc<Config>,
    /// The replay store as the fetch API reads it (spooled chunks included).
    pub store: Arc<dyn ReplayStore>,
    /// Share request bodies count against the same budget as ingestion's.
    pub inflight: InflightBudget,
    /// Bounds how many chunk and session-events reads are served at once
    /// (memory).
    pub permits: Arc<tokio::sync::Semaphore>,
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
        let limits = &config.limits;
        let share_secret = share_secret(&config);
        let inflight = InflightBudget::new(limits.max_inflight_bytes, metrics.clone());
        let ingest = Ingest {
            store: store.clone(),
            records: Arc::new(spool),
            chunks,
            metrics: metrics.clone(),
            user_agents: UserAgentParser::new(USER_AGENT_CACHE_ENTRIES),
            inflight: inflight.clone(),
            replay_permits: Arc::new(tokio::sync::Semaphore::new(limits.replay_concurrency)),
            parse_pool: ParsePool::per_core(metrics.parse_waiting.clone()),
            session_rate_limiter: SessionRateLimiter::new(limits.rate_limit_per_session),
            session_bytes: SessionBytes::new(limits.max_session_bytes, limits.max_session_chunks),
        };
        let viewer = ViewerAuth {
            tokens: ViewerTokens::new(&config.viewer_tokens),
            share_signer: ShareSigner::new(&share_secret),
            sessions: ViewerSessions::new(&share_secret, limits.viewer_session_ttl),
            brake: AuthFailureBrake::new(limits.auth_failures_per_minute, limits.trust_forwarded_for),
        };
        let fetch = Fetch {
            config: config.clone(),
            store,
            inflight,
            permits: Arc::new(tokio::sync::Semaphore::new(limits.fetch_concurrency)),
        };
        AppState {
            ingest_access: Arc::new(IngestAccess::new(&config)),
            rate_limiter: RateLimiter::new(limits.rate_limit_per_ip, limits.trust_forwarded_for),
            ingest: Arc::new(ingest),
            viewer: Arc::new(viewer),
            fetch: Arc::new(fetch),
            config,
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
