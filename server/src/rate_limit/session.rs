//! Ingestion request rate per `session_id` (`OBSERVER_RATE_LIMIT_PER_SESSION`,
//! default 20/s with a burst of 40; 0 = off).
//!
//! A real recorder sends a replay chunk every few seconds and a handful of
//! error or event batches; a client far above that is broken or hostile,
//! and the per-IP limit alone lets it pour everything into one session.
//! The session is known only after parsing (the query of a replay chunk,
//! each item of an error or event batch), so the handlers call
//! [`SessionRateLimiter::check`] once they have it. A batch costs each of
//! its distinct sessions one request, and is refused whole (429 with
//! `Retry-After`) if any of them is over its rate.
//!
//! Memory: one GCRA cell per session seen lately; sessions back at a full
//! budget are forgotten every minute (as for client IPs), and reaching this
//! check takes a request admitted by the per-IP limit.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota};

use super::{check_key, forget_idle_clients, retry_after};
use crate::error::{ApiError, RateScope};

/// A per-session limiter; does nothing when the limit is off.
#[derive(Clone)]
pub struct SessionRateLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl SessionRateLimiter {
    /// Off when `per_second` is 0.
    pub fn new(per_second: u32) -> SessionRateLimiter {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            let limiter = Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)));
            forget_idle_clients(&limiter, || {});
            limiter
        });
        SessionRateLimiter { limiter }
    }

    /// Counts one request against each distinct session in `sessions`;
    /// 429 when any of them is over its rate, with the longest wait.
    pub fn check<'a>(&self, sessions: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        let mut distinct: Vec<&str> = sessions.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut longest: Option<Duration> = None;
        for session in distinct {
            if let Err(wait) = check_key(limiter, session.to_owned()) {
                longest = longest.max(Some(wait));
            }
        }
        match longest {
            None => Ok(()),
            Some(wait) => Err(ApiError::OverRate { scope: RateScope::Session, retry_after: retry_after(wait) }),
        }
    }

    /// Sessions currently tracked (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_for(result: Result<(), ApiError>) -> Option<Duration> {
        match result {
            Ok(()) => None,
            Err(ApiError::OverRate { scope: RateScope::Session, retry_after }) => Some(retry_after),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn burst_of_twice_the_rate_then_429_per_session() {
        let limiter = SessionRateLimiter::new(5);
        for i in 0..10 {
            assert_eq!(refused_for(limiter.check(["session-a"])), None, "request {i} is within the burst");
        }
        let wait = refused_for(limiter.check(["session-a"])).expect("the 11th is over the rate");
        assert_eq!(wait, Duration::from_secs(1), "rounded up to whole seconds");
        assert_eq!(refused_for(limiter.check(["session-b"])), None, "another session has its own budget");
    }

    #[tokio::test]
    async fn a_batch_counts_each_distinct_session_once() {
        let limiter = SessionRateLimiter::new(1);
        // Burst 2: one batch naming session-a five times costs it one request.
        assert_eq!(refused_for(limiter.check(["session-a"; 5])), None);
        assert_eq!(refused_for(limiter.check(["session-a", "session-b", "session-a"])), None);
        assert!(refused_for(limiter.check(["session-b", "session-a"])).is_some(), "session-a is out of budget");
        assert_eq!(limiter.tracked(), 2);
    }

    #[tokio::test]
    async fn off_when_zero() {
        let limiter = SessionRateLimiter::new(0);
        for _ in 0..1000 {
            limiter.check(["session-a"]).unwrap();
        }
        assert_eq!(limiter.tracked(), 0);
        limiter.check(std::iter::empty()).unwrap();
    }
}
