//! What one connection is doing, and which read deadline that puts on it.
//!
//! hyper's own `header_read_timeout` starts when the previous answer ends,
//! so on a keep-alive connection it is also the idle timeout and
//! `OBSERVER_IDLE_TIMEOUT` could never be longer. Like nginx
//! (`keepalive_timeout` then `client_header_timeout`), Observer gives:
//!
//! | phase                                   | deadline                                 |
//! |-----------------------------------------|------------------------------------------|
//! | accepted, first request's headers       | accept + `OBSERVER_HEADER_READ_TIMEOUT`  |
//! | an answer is being produced or sent     | none here (request and send timeouts)    |
//! | keep-alive, no byte of a next request   | end of answer + `OBSERVER_IDLE_TIMEOUT`  |
//! | a next request's first byte arrived     | that byte + `OBSERVER_HEADER_READ_TIMEOUT` |
//!
//! Two parties move the phase: [`TrackedStream`] (a byte arrives) and
//! [`RequestGuard`] (taken when a request starts, dropped with its answer's
//! body); [`Activity::expired`] watches it.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper::body::{Body, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::watch,
    time::Instant,
};

use crate::metrics::CloseReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first request's headers since accept.
    FirstRequest { since: Instant },
    /// A request is being answered.
    Busy,
    /// Keep-alive: the previous answer ended at `since`.
    Idle { since: Instant },
    /// The first byte of a next request arrived at `since`.
    NextRequest { since: Instant },
}

/// The two read deadlines, from `config.connections`.
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// One connection's phase, shared by its stream, its requests and its watcher.
#[derive(Debug)]
pub struct Activity {
    phase: watch::Sender<Phase>,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity { phase: watch::Sender::new(Phase::FirstRequest { since: Instant::now() }) })
    }

    /// Marks a request as started; the returned guard ends it when dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.phase.send_replace(Phase::Busy);
        RequestGuard { activity: self.clone() }
    }

    /// True when no request is being answered, so closing loses nothing.
    pub fn between_requests(&self) -> bool {
        *self.phase.borrow() != Phase::Busy
    }

    fn bytes_arrived(&self) {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Idle { .. } => {
                *phase = Phase::NextRequest { since: Instant::now() };
                true
            }
            _ => false,
        });
    }

    /// Resolves when the connection has waited too long for a request.
    pub async fn expired(&self, timeouts: ReadTimeouts) -> CloseReason {
        let mut phase = self.phase.subscribe();
        loop {
            let deadline = match *phase.borrow_and_update() {
                Phase::FirstRequest { since } | Phase::NextRequest { since } => {
                    Some((since + timeouts.header, CloseReason::HeaderTimeout))
                }
                Phase::Idle { since } => Some((since + timeouts.idle, CloseReason::IdleTimeout)),
                Phase::Busy => None,
            };
            let Some((at, reason)) = deadline else {
                // The sender lives as long as `self`: `changed` cannot fail.
                let _ = phase.changed().await;
                continue;
            };
            tokio::select! {
                _ = phase.changed() => {}
                () = tokio::time::sleep_until(at) => return reason,
            }
        }
    }
}

/// Held by a request and then by its answer's body: dropping it (answer
/// produced and handed to hyper, or abandoned) makes the connection idle.
#[derive(Debug)]
pub struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.activity.phase.send_replace(Phase::Idle { since: Instant::now() });
    }
}

/// A response body that keeps its request's [`RequestGuard`].
pub struct GuardedBody {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    pub fn new(inner: axum::body::Body, guard: RequestGuard) -> GuardedBody {
        GuardedBody { inner, _guard: guard }
    }
}

impl Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's stream, reporting each arrival of bytes to [`Activity`].
pub struct TrackedStream<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackedStream<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> TrackedStream<S> {
        TrackedStream { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: ReadTimeouts = ReadTimeouts { header: Duration::from_secs(10), idle: Duration::from_secs(60) };

    async fn expires_after(activity: &Activity) -> (CloseReason, Duration) {
        let started = Instant::now();
        let reason = activity.expired(TIMEOUTS).await;
        (reason, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_request_gets_the_header_timeout_from_accept() {
        let activity = Activity::new();
        assert_eq!(expires_after(&activity).await, (CloseReason::HeaderTimeout, TIMEOUTS.header));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_being_answered_never_expires_here() {
        let activity = Activity::new();
        let guard = activity.request_started();
        let watcher = tokio::time::timeout(Duration::from_secs(3600), activity.expired(TIMEOUTS));
        assert!(watcher.await.is_err());
        assert!(!activity.between_requests());
        drop(guard);
        assert!(activity.between_requests());
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_waits_the_idle_timeout_then_the_header_timeout_from_the_first_byte() {
        let activity = Activity::new();
        drop(activity.request_started());
        assert_eq!(expires_after(&activity).await, (CloseReason::IdleTimeout, TIMEOUTS.idle));

        drop(activity.request_started());
        tokio::time::advance(Duration::from_secs(30)).await;
        activity.bytes_arrived();
        assert_eq!(expires_after(&activity).await, (CloseReason::HeaderTimeout, TIMEOUTS.header));
    }
}
