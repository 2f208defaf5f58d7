//! Where error and event bodies are parsed: small ones inline, larger ones
//! on tokio's blocking threads, at most one per core at a time.
//!
//! A 1 MiB body takes milliseconds to parse and validate; on an async worker
//! thread that is milliseconds in which `/healthz` and every other request
//! on that thread wait. The semaphore keeps hostile bodies from taking every
//! blocking thread too: beyond one per core they wait (asynchronously, as
//! `observer_parse_waiting`), and past `PERMIT_WAIT` they are refused 503.

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;

use super::batch::{BatchItem, parse_batch};
use crate::error::ApiError;

/// Bodies up to this size parse in well under 100 µs even when hostile:
/// cheaper inline than a thread hop.
const INLINE_MAX_BYTES: usize = 8 * 1024;

/// How long a body waits for a parsing thread before it is refused.
const PERMIT_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ParsePool {
    permits: Arc<Semaphore>,
    permit_wait: Duration,
    waiting: Gauge,
}

impl ParsePool {
    /// One parsing thread per core.
    pub fn per_core(waiting: Gauge) -> ParsePool {
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        ParsePool { permits: Arc::new(Semaphore::new(cores)), permit_wait: PERMIT_WAIT, waiting }
    }

    /// `parse_batch`, off the async worker threads when `body` is large.
    pub async fn parse_batch<T: BatchItem + Send + 'static>(
        &self,
        body: Bytes,
        max_items: usize,
        received_ms: i64,
    ) -> Result<Vec<T>, ApiError> {
        if body.len() <= INLINE_MAX_BYTES {
            return parse_batch(&body, max_items, received_ms);
        }
        let permit = {
            let _waiting = GaugeGuard::inc(&self.waiting);
            tokio::time::timeout(self.permit_wait, self.permits.clone().acquire_owned()).await
        };
        let permit = permit
            .ok()
            .and_then(Result::ok)
            .ok_or(ApiError::Unavailable { what: "payload parsing", retry_after: Duration::from_secs(5) })?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(|| parse_batch(&body, max_items, received_ms))
        })
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?
    }
}

/// Keeps a gauge raised for as long as it lives, also when the request
/// is dropped while waiting.
struct GaugeGuard<'a>(&'a Gauge);

impl<'a> GaugeGuard<'a> {
    fn inc(gauge: &'a Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::AnalyticsEvent;

    fn pool(permits: usize) -> ParsePool {
        let permit_wait = Duration::from_millis(50);
        ParsePool { permits: Arc::new(Semaphore::new(permits)), permit_wait, waiting: Gauge::default() }
    }

    fn large_body() -> Bytes {
        let item = format!(r#"{{"type":"custom","name":"{}"}}"#, "n".repeat(200));
        Bytes::from(format!("[{}]", vec![item; 50].join(",")))
    }

    #[tokio::test]
    async fn large_bodies_are_parsed_on_a_blocking_thread() {
        let body = large_body();
        assert!(body.len() > INLINE_MAX_BYTES);
        let events = pool(1).parse_batch::<AnalyticsEvent>(body, 100, 0).await.unwrap();
        assert_eq!(events.len(), 50);
        let small = Bytes::from_static(br#"{"type":"page_view"}"#);
        assert_eq!(pool(0).parse_batch::<AnalyticsEvent>(small, 100, 0).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_body_waiting_too_long_for_a_thread_is_refused() {
        let pool = pool(0);
        let result = pool.parse_batch::<AnalyticsEvent>(large_body(), 100, 0).await;
        assert!(matches!(result, Err(ApiError::Unavailable { .. })), "{result:?}");
        assert_eq!(pool.waiting.get(), 0);
    }
}
