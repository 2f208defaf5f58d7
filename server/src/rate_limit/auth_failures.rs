//! Brute-force brake on the replay fetch API's tokens
//! (`OBSERVER_AUTH_FAILURES_PER_MINUTE`, default 10; 0 = off).
//!
//! Each client IP (keyed as in [`super::client_ip`]) has a GCRA budget of
//! failed authentications (`governor`): a burst of N, refilled at N per
//! minute (one every 60/N s). A failure is any 401 of the access check:
//! no token, an unknown token, a share token that is malformed, tampered
//! with, expired or for another session. The failure that finds the budget
//! empty blocks the IP until the next failure would be allowed; while
//! blocked, its failures answer 429 `rate_limited` with `Retry-After`
//! instead of 401, and cost nothing more.
//!
//! A request whose token is valid is always served, blocked IP or not: one
//! guesser behind a NAT or a proxy (without `OBSERVER_TRUST_FORWARDED_FOR`)
//! must not lock out every real viewer sharing its address. So the token
//! check always runs, in constant time, before the brake is consulted, and
//! the brake only decides 401 or 429 for a request that has already failed:
//! "blocked" and "wrong" take the same path through the check, and both
//! tell a guesser only that the guess was wrong. What the brake buys is a
//! signal (429 + a warning in the log + `observer_http_requests_total`)
//! and a client that honours `Retry-After`; guessing itself is hopeless
//! against the token lengths enforced (16+ characters configured, 256-bit
//! generated, HMAC-SHA256 share tokens).
//!
//! [`braked`] wraps the access check itself, not the response: the check
//! and the failure's accounting run in one synchronous step, before the
//! handler awaits anything. A burst of concurrent guesses therefore meets
//! the budget one by one; had the failures been counted once their answers
//! were ready, every request sent at the same moment would have been
//! checked before the first one was counted.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::{StatusCode, request::Parts};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::{check_key, client_ip, forget_idle_clients};
use crate::error::ApiError;

#[derive(Clone)]
pub struct AuthFailureBrake {
    failures: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// IPs whose budget ran out, until when.
    blocked: Arc<Mutex<HashMap<IpAddr, Instant>>>,
    trust_forwarded_for: bool,
}

impl AuthFailureBrake {
    /// `None` when the brake is off (`per_minute` = 0).
    pub fn new(per_minute: u32, trust_forwarded_for: bool) -> Option<AuthFailureBrake> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(AuthFailureBrake::with_quota(Quota::per_minute(per_minute).allow_burst(per_minute), trust_forwarded_for))
    }

    fn with_quota(quota: Quota, trust_forwarded_for: bool) -> AuthFailureBrake {
        let failures = Arc::new(DefaultKeyedRateLimiter::keyed(quota));
        let blocked: Arc<Mutex<HashMap<IpAddr, Instant>>> = Arc::default();
        let expired = Arc::downgrade(&blocked);
        forget_idle_clients(&failures, move || {
            if let Some(blocked) = expired.upgrade()
                && let Ok(mut blocked) = blocked.lock()
            {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                blocked.shrink_to_fit();
            }
        });
        AuthFailureBrake { failures, blocked, trust_forwarded_for }
    }

    /// Counts a failure of `ip`: `Err(429)` while `ip` is blocked, and for
    /// the failure that finds its budget empty, which blocks `ip` until the
    /// next failure would be allowed.
    fn record_failure(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Ok(mut blocked) = self.blocked.lock() else { return Ok(()) };
        let now = Instant::now();
        if let Some(until) = blocked.get(&ip) {
            let wait = until.saturating_duration_since(now);
            if !wait.is_zero() {
                return Err(rate_limited(wait));
            }
            blocked.remove(&ip);
        }
        let Err(wait) = check_key(&self.failures, ip) else { return Ok(()) };
        blocked.insert(ip, now + wait);
        tracing::warn!(client = %ip, "too many failed viewer authentications; this client's failures are answered 429 for a while");
        Err(rate_limited(wait))
    }
}

/// Whole seconds, rounded up, so a client that waits `Retry-After` finds
/// the budget refilled.
fn rate_limited(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited { retry_after: Duration::from_secs(secs.max(1)) }
}

/// Runs the access `check` of a fetch request under the brake (see the
/// module docs): always the check first, so a valid token is served whatever
/// the client's record; then a 401 is counted and becomes a 429 while the
/// client is blocked. Without a brake or a client IP, just the check.
pub fn braked<T>(
    brake: Option<&AuthFailureBrake>,
    parts: &Parts,
    check: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let result = check();
    if let Err(e) = &result
        && e.status() == StatusCode::UNAUTHORIZED
        && let Some(brake) = brake
        && let Some(ip) = client_ip(&parts.headers, &parts.extensions, brake.trust_forwarded_for)
    {
        brake.record_failure(ip)?;
    }
    result
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::{extract::ConnectInfo, http::Request};

    use super::*;
    use crate::error::Credential;

    fn parts(peer: [u8; 4], forwarded_for: Option<&'static str>) -> Parts {
        let mut request = Request::builder().uri("/api/observer/replays/x");
        if let Some(value) = forwarded_for {
            request = request.header("x-forwarded-for", value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(SocketAddr::from((peer, 4000))));
        parts
    }

    fn denied() -> Result<(), ApiError> {
        Err(ApiError::Unauthorized(Credential::ViewerToken))
    }

    fn code(result: Result<(), ApiError>) -> &'static str {
        result.map_or_else(|e| e.code(), |()| "ok")
    }

    /// A burst of three failures, then one a second.
    fn brake() -> AuthFailureBrake {
        let quota = Quota::with_period(Duration::from_secs(1)).unwrap().allow_burst(NonZeroU32::new(3).unwrap());
        AuthFailureBrake::with_quota(quota, true)
    }

    #[tokio::test]
    async fn failures_past_the_burst_are_braked_but_a_valid_token_is_served() {
        let brake = brake();
        let client = parts([192, 0, 2, 1], None);
        for _ in 0..3 {
            assert_eq!(code(braked(Some(&brake), &client, denied)), "unauthorized");
        }
        // The fourth failure finds the budget empty: 429, not 401.
        let Err(e) = braked(Some(&brake), &client, denied) else { panic!("not braked") };
        assert_eq!(e.code(), "rate_limited");
        assert!(matches!(e, ApiError::RateLimited { retry_after } if retry_after == Duration::from_secs(1)), "{e:?}");
        // While blocked, failures stay 429 and a valid token is checked and served.
        for _ in 0..5 {
            let mut checked = false;
            let result = braked(Some(&brake), &client, || {
                checked = true;
                Ok(())
            });
            assert_eq!(code(result), "ok");
            assert!(checked, "the token is always checked");
            assert_eq!(code(braked(Some(&brake), &client, denied)), "rate_limited");
        }
        // Other clients, and other errors, are not affected.
        assert_eq!(code(braked(Some(&brake), &parts([192, 0, 2, 2], None), denied)), "unauthorized");
        let not_found = braked(Some(&brake), &client, || Err::<(), _>(ApiError::NotFound));
        assert_eq!(code(not_found), "not_found");

        // Once a failure would be allowed again, it is answered as such.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(code(braked(Some(&brake), &client, denied)), "unauthorized");
        assert_eq!(code(braked(Some(&brake), &client, denied)), "rate_limited");
    }

    #[tokio::test]
    async fn successes_cost_nothing() {
        let brake = brake();
        let client = parts([192, 0, 2, 9], None);
        for _ in 0..50 {
            assert_eq!(code(braked(Some(&brake), &client, || Ok(()))), "ok");
        }
        for _ in 0..3 {
            assert_eq!(code(braked(Some(&brake), &client, denied)), "unauthorized");
        }
    }

    #[tokio::test]
    async fn ipv6_clients_share_their_slash_64_behind_a_trusted_proxy() {
        let brake = brake();
        for host in ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff::3"] {
            assert_eq!(code(braked(Some(&brake), &parts([10, 0, 0, 1], Some(host)), denied)), "unauthorized");
        }
        assert_eq!(code(braked(Some(&brake), &parts([10, 0, 0, 1], Some("2001:db8:7:7::4")), denied)), "rate_limited");
        assert_eq!(code(braked(Some(&brake), &parts([10, 0, 0, 1], Some("2001:db8:7:8::1")), denied)), "unauthorized");
        // The proxy itself (no header) is its own client.
        assert_eq!(code(braked(Some(&brake), &parts([10, 0, 0, 1], None), || Ok(()))), "ok");
    }

    #[test]
    fn off_or_without_a_peer_address_it_only_checks() {
        assert!(AuthFailureBrake::new(0, false).is_none());
        for _ in 0..20 {
            assert_eq!(code(braked(None, &parts([192, 0, 2, 1], None), denied)), "unauthorized");
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let secs = |d| match rate_limited(d) {
            ApiError::RateLimited { retry_after } => retry_after.as_secs(),
            _ => unreachable!(),
        };
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_millis(5_999)), 6);
        assert_eq!(secs(Duration::from_secs(6)), 6);
    }
}
