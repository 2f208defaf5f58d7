//! Per-client limits on ingestion and the fetch API.
//!
//! - [`RateLimiter`] (here): the ingestion routes' request rate
//!   (`OBSERVER_RATE_LIMIT_PER_IP`), a GCRA limiter per client IP
//!   (`governor`) with a burst of twice the per-second rate.
//! - [`session`]: the same per `session_id` (`OBSERVER_RATE_LIMIT_PER_SESSION`).
//! - [`session_bytes`]: replay bytes stored per session
//!   (`OBSERVER_MAX_SESSION_BYTES`).
//! - [`auth_failures`]: the brute-force brake on viewer and share tokens
//!   (`OBSERVER_AUTH_FAILURES_PER_MINUTE`).
//!
//! Both key clients the same way ([`client_ip`]): the peer address, or the
//! right-most `X-Forwarded-For` entry when `OBSERVER_TRUST_FORWARDED_FOR`
//! says a load balancer in front sets it (otherwise any client could pick
//! its own key). The right-most entry is the one the proxy appended;
//! everything left of it is whatever the client sent. IPv6 clients are
//! keyed by their /64, the smallest block one subscriber usually gets.

pub mod auth_failures;
pub mod session;
pub mod session_bytes;

use std::{
    hash::Hash,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{Extensions, HeaderMap},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::error::{ApiError, RateScope};

pub use auth_failures::AuthFailureBrake;
pub use session::SessionRateLimiter;
pub use session_bytes::SessionBytes;

/// How often idle per-key entries are forgotten, so the table stays bounded
/// by the clients (or sessions) seen recently.
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
        forget_idle_clients(&limiter, || {});
        Some(RateLimiter { limiter, trust_forwarded_for })
    }

    /// `Err(retry_after)` when this client is over its rate.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        check_key(&self.limiter, ip)
    }
}

/// Takes a cell of `key`'s budget; `Err(wait)` when none is left, with the
/// time until the next one.
fn check_key<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: K) -> Result<(), Duration> {
    limiter
        .check_key(&key)
        .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
}

/// Whole seconds, rounded up and at least one, so a client that waits
/// `Retry-After` finds budget again.
fn retry_after(wait: Duration) -> Duration {
    Duration::from_secs((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
}

/// Every [`FORGET_IDLE_EVERY`], drops the entries of keys back at a full
/// budget (and runs `also`), until `limiter` is dropped.
fn forget_idle_clients<K>(limiter: &Arc<DefaultKeyedRateLimiter<K>>, also: impl Fn() + Send + 'static)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let weak = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(FORGET_IDLE_EVERY);
        loop {
            ticker.tick().await;
            let Some(limiter) = weak.upgrade() else { break };
            limiter.retain_recent();
            limiter.shrink_to_fit();
            also();
        }
    });
}

/// The rate key of the client that sent a request with these headers and
/// extensions (see the module docs); `None` without a peer address (a
/// router called without `ConnectInfo`, as in unit tests).
pub fn client_ip(headers: &HeaderMap, extensions: &Extensions, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers.get_all("x-forwarded-for").iter().next_back();
        let ip = forwarded.and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()?.trim().parse().ok());
        if let Some(ip) = ip {
            return Some(rate_key(ip));
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|info| rate_key(info.0.ip()))
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

/// Middleware for the ingestion routes (its state: the limiter, `None` when
/// rate limiting is off).
pub async fn limit_ingest_rate(State(limiter): State<Option<RateLimiter>>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &limiter
        && let Some(ip) = client_ip(request.headers(), request.extensions(), limiter.trust_forwarded_for)
        && let Err(wait) = limiter.check(ip)
    {
        return ApiError::OverRate { scope: RateScope::ClientIp, retry_after: retry_after(wait) }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn clients_are_keyed_by_address_or_ipv6_slash_64() {
        assert_eq!(rate_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("2001:db8:1:2::1")), rate_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(rate_key(ip("2001:db8:1:2::1")), rate_key(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 2001:db8::5"));
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        assert_eq!(client_ip(&headers, &extensions, false), Some(ip("10.0.0.1")));
        assert_eq!(client_ip(&headers, &extensions, true), Some(ip("2001:db8::")), "right-most entry, by its /64");
        assert_eq!(client_ip(&HeaderMap::new(), &extensions, true), Some(ip("10.0.0.1")));
        assert_eq!(client_ip(&headers, &Extensions::new(), false), None);
    }
}
