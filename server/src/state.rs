//! `AppState`: what every handler can reach. Cheap to clone (Arcs inside).

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::{
    auth::IngestKeys,
    config::Config,
    delivery::{RecordQueue, RecordSink},
    health::Readiness,
    ingest::user_agent::UserAgentParser,
    metrics::Metrics,
    rate_limit::RateLimiter,
    store::ReplayStore,
};

/// Distinct user agents whose parse result is kept.
const USER_AGENT_CACHE_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn ReplayStore>,
    /// Where accepted records go (the delivery queue, or a test fake).
    pub records: Arc<dyn RecordSink>,
    /// The delivery queue itself, for its fill level.
    pub queue: RecordQueue,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub user_agents: Arc<UserAgentParser>,
    pub ingest_keys: IngestKeys,
    pub readiness: Readiness,
    /// Bounds how many replay chunks are inflated at once (memory).
    pub replay_permits: Arc<tokio::sync::Semaphore>,
    /// `None` when rate limiting is off.
    pub rate_limiter: Option<RateLimiter>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn ReplayStore>,
        queue: RecordQueue,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        readiness: Readiness,
    ) -> AppState {
        AppState {
            ingest_keys: IngestKeys::new(&config.ingest_keys),
            replay_permits: Arc::new(tokio::sync::Semaphore::new(config.limits.replay_concurrency)),
            rate_limiter: RateLimiter::new(config.limits.rate_limit_per_ip, config.limits.trust_forwarded_for),
            user_agents: Arc::new(UserAgentParser::new(USER_AGENT_CACHE_ENTRIES)),
            records: Arc::new(queue.clone()),
            queue,
            config,
            store,
            metrics,
            registry,
            readiness,
        }
    }
}
