//! Fetch-side memory bound (`OBSERVER_FETCH_CONCURRENCY`, default 32).
//!
//! A chunk read holds the stored chunk in memory until its answer is sent;
//! an `events` stream holds up to its prefetch of chunks for as long as the
//! client reads. Each takes one permit of `Fetch::permits` (`state.rs`) before
//! it reads the store and gives it back when its response body is dropped
//! (sent in full, or abandoned by the client). Without a free permit within
//! [`PERMIT_WAIT`] the request answers 503 `unavailable` with `Retry-After`.
//! Manifests, listings and 304s hold no chunk, so they take no permit.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How long a read waits for a permit before 503.
pub const PERMIT_WAIT: Duration = Duration::from_secs(10);

/// What a refused read is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A permit from `permits`, waiting at most `wait`.
pub async fn fetch_permit(permits: &Arc<Semaphore>, wait: Duration) -> Result<OwnedSemaphorePermit, ApiError> {
    tokio::time::timeout(wait, permits.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ApiError::Unavailable { what: "replay fetching", retry_after: RETRY_AFTER })
}

/// `body`, keeping `permit` until the body is dropped. Its size hint (so
/// `Content-Length`) is kept.
pub fn holding(body: Body, permit: OwnedSemaphorePermit) -> Body {
    Body::new(body.inspect_frame(move |_| {
        let _held = &permit;
    }))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_read_waits_for_a_permit_then_gives_up_with_503() {
        let permits = Arc::new(Semaphore::new(1));
        let first = fetch_permit(&permits, PERMIT_WAIT).await.unwrap();
        let refused = fetch_permit(&permits, Duration::from_millis(20)).await.unwrap_err();
        assert_eq!((refused.status().as_u16(), refused.code()), (503, "unavailable"));
        assert!(matches!(refused, ApiError::Unavailable { retry_after, .. } if retry_after == RETRY_AFTER));

        // A waiting read gets the permit as soon as it is given back.
        let waiting = tokio::spawn({
            let permits = permits.clone();
            async move { fetch_permit(&permits, PERMIT_WAIT).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn the_body_holds_the_permit_until_it_is_dropped() {
        let permits = Arc::new(Semaphore::new(1));
        let body = holding(Body::from("[1,2,3]"), fetch_permit(&permits, PERMIT_WAIT).await.unwrap());
        assert_eq!(axum::body::HttpBody::size_hint(&body).exact(), Some(7), "Content-Length is kept");
        assert_eq!(permits.available_permits(), 0);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "[1,2,3]");
        assert_eq!(permits.available_permits(), 1, "given back once sent");

        let stream = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let body = holding(Body::from_stream(stream), fetch_permit(&permits, PERMIT_WAIT).await.unwrap());
        assert_eq!(permits.available_permits(), 0, "held while a stream is open");
        drop(body);
        assert_eq!(permits.available_permits(), 1, "given back when the client goes away");
    }
}
