//! The accept loop: HTTP/1.1 connections (hyper) with Observer's limits.
//!
//! `axum::serve` has no header-read, idle or send timeout and no connection
//! cap, and cannot be given them, so the loop is written here on hyper's
//! connection API, keeping what `axum::serve` did: graceful shutdown, the
//! peer address for handlers (`ConnectInfo<SocketAddr>`), and a pause
//! instead of a spin when `accept` fails (e.g. out of file descriptors).
//!
//! | limit                          | enforced by                              | close reason     |
//! |--------------------------------|------------------------------------------|------------------|
//! | `OBSERVER_MAX_CONNECTIONS`     | a semaphore taken on accept              | `over_limit`     |
//! | `OBSERVER_HEADER_READ_TIMEOUT` | [`activity`]'s watcher                   | `header_timeout` |
//! | `OBSERVER_IDLE_TIMEOUT`        | [`activity`]'s watcher                   | `idle_timeout`   |
//! | `OBSERVER_SEND_TIMEOUT`        | a write-stall timeout on the socket      | `send_timeout`   |
//! | `OBSERVER_REQUEST_TIMEOUT`     | `TimeoutLayer` in `routes` (unchanged)   |                  |
//!
//! An abandoned connection is dropped with everything its answer held (a
//! fetch permit, prefetched chunks). A finished one closes through
//! [`linger`], so refusals sent before the body was read stay readable.
//! HTTP/2 is not served: browsers only speak it over TLS, which a proxy in
//! front of Observer terminates.

mod activity;
mod linger;

use std::{
    convert::Infallible,
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::{Request, Response, body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

use self::activity::{Activity, GuardedBody, ReadTimeouts, TrackedStream};
use crate::{
    config::Config,
    metrics::{CloseReason, Metrics},
};

/// Pause after an `accept` error that is not about one connection (EMFILE,
/// ENFILE, ENOMEM): connections that close meanwhile free what it lacked.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Most bytes hyper buffers per connection (headers, read-ahead of a body).
const CONNECTION_READ_BUFFER: usize = 64 * 1024;

/// The connection limits, read once from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    read_timeouts: ReadTimeouts,
    send_timeout: Duration,
    max_connections: usize,
    linger_bytes: usize,
}

impl ConnectionSettings {
    pub fn new(config: &Config) -> ConnectionSettings {
        let c = &config.connections;
        ConnectionSettings {
            read_timeouts: ReadTimeouts { header: c.header_read_timeout, idle: c.idle_timeout },
            send_timeout: c.send_timeout,
            max_connections: c.max_connections,
            linger_bytes: linger::linger_bytes(&config.limits),
        }
    }
}

/// What every connection task shares.
struct Shared {
    router: Router,
    settings: ConnectionSettings,
    metrics: Arc<Metrics>,
}

/// Serves `router` on `listener` until `stop` completes, then stops
/// accepting, closes connections that wait between requests, lets requests
/// in flight finish, and returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared { router, settings, metrics });
    let slots = Arc::new(Semaphore::new(settings.max_connections.min(Semaphore::MAX_PERMITS)));
    // Each connection holds a receiver: `closed()` tells when all are gone.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        shared.metrics.connections_accepted.inc();
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Dropping the stream closes it: nothing is read or answered.
            shared.metrics.connection_closed(CloseReason::OverLimit);
            continue;
        };
        shared.metrics.connections_open.inc();
        tokio::spawn(run_connection(stream, remote, shared.clone(), stopping_rx.clone(), slot));
    }
    drop(listener);
    drop(stopping_rx);
    stopping_tx.send_replace(true);
    stopping_tx.closed().await;
}

async fn accept_failed(error: io::Error) {
    // The peer gave up before we accepted: nothing to wait for.
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; pausing before accepting again");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

async fn run_connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let reason = drive(stream, remote, &shared, stopping).await;
    shared.metrics.connection_closed(reason);
    shared.metrics.connections_open.dec();
}

/// Serves one connection until it ends, and says why it ended.
async fn drive(
    stream: TcpStream,
    remote: SocketAddr,
    shared: &Shared,
    mut stopping: watch::Receiver<bool>,
) -> CloseReason {
    let settings = &shared.settings;
    let activity = Activity::new();
    let mut io = TimeoutStream::new(TrackedStream::new(stream, activity.clone()));
    // A write that makes no progress for this long fails the connection
    // with `TimedOut`; each write that progresses starts the clock again.
    io.set_write_timeout(Some(settings.send_timeout));
    let service = ConnectionService { router: shared.router.clone(), remote, activity: activity.clone() };
    let mut conn = http1::Builder::new()
        // Replaced by `activity` (see there why).
        .header_read_timeout(None)
        // hyper reads ahead up to this much per connection (default ~400 KB):
        // with thousands of connections that read-ahead, not the handlers'
        // bounded buffers, would decide memory. Headers larger than it get 431.
        .max_buf_size(CONNECTION_READ_BUFFER)
        .serve_connection(TokioIo::new(Box::pin(io)), service);
    let mut expired = pin!(activity.expired(settings.read_timeouts));
    let mut draining = false;
    let served = loop {
        tokio::select! {
            served = poll_fn(|cx| conn.poll_without_shutdown(cx)) => break served,
            reason = &mut expired => return reason,
            _ = stopping.wait_for(|stopping| *stopping), if !draining => {
                if activity.between_requests() {
                    return CloseReason::Normal;
                }
                // Finish the request in flight, then close.
                draining = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    match served {
        Ok(()) => {
            let stream = conn.into_parts().io.into_inner();
            linger::linger(stream, settings.linger_bytes).await;
            CloseReason::Normal
        }
        Err(error) if caused_by_timeout(&error) => CloseReason::SendTimeout,
        Err(error) => {
            tracing::debug!(%error, "connection failed");
            CloseReason::Error
        }
    }
}

/// Only the write-stall timeout produces `TimedOut` (hyper's own header
/// timeout is off).
fn caused_by_timeout(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::TimedOut) {
            return true;
        }
        source = current.source();
    }
    false
}

/// Hands each request to the router with the peer address, and keeps the
/// connection busy until the answer's body is dropped.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    remote: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    // Boxed: hyper's `poll_without_shutdown` needs an `Unpin` future.
    type Future = Pin<Box<dyn Future<Output = Result<Response<GuardedBody>, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.request_started();
        // What `into_make_service_with_connect_info` provided: rate limits
        // and the auth brake key on it.
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let answer = self.router.clone().oneshot(request.map(axum::body::Body::new));
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| GuardedBody::new(body, guard)))
        })
    }
}
