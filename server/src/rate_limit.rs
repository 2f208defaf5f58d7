//! Per-client rate limiting of the ingestion routes (`OBSERVER_RATE_LIMIT_PER_IP`).
//!
//! A GCRA limiter per client IP (`governor`), with a burst of twice the
//! per-second rate. The client IP is the peer address, or the left-most
//! `X-Forwarded-For` entry when `OBSERVER_TRUST_FORWARDED_FOR` says a load
//! balancer in front sets it (otherwise any client could pick its own key).
//! The right-most entry is the one the proxy appended; everything left of
//! it is whatever the client sent. IPv6 clients are keyed by their /64, the
//! smallest block one subscriber usually gets.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::{error::ApiError, state::AppState};

/// How often idle per-IP entries are forgotten, so the table stays bounded
/// by the clients seen recently.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct RateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
}

impl RateLimiter {
    /// `None` when rate limiting is off (`per_second` = 0).
    pub fn new(per_second: u32, trust_forwarded_for: bool) -> Option<RateLimiter> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(NonZeroU32::new(2)?);
        let limiter = Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FORGET_IDLE_EVERY);
            loop {
                ticker.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
        Some(RateLimiter { limiter, trust_forwarded_for })
    }

    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = request.headers().get_all("x-forwarded-for").iter().next_back();
            let ip = forwarded.and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()?.trim().parse().ok());
            if let Some(ip) = ip {
                return Some(rate_key(ip));
            }
        }
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| rate_key(info.0.ip()))
    }

    /// `Err(retry_after)` when this client is over its rate.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }
}

/// IPv4 addresses as they are, IPv6 addresses by their /64 prefix.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Middleware for the ingestion routes.
pub async fn limit_ingest_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &state.rate_limiter
        && let Some(ip) = limiter.client_ip(&request)
        && let Err(wait) = limiter.check(ip)
    {
        let retry_after = wait.max(Duration::from_secs(1));
        return ApiError::RateLimited { retry_after }.into_response();
    }
    next.run(request).await
}
