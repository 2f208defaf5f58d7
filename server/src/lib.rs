//! Observer: session replay, error and analytics ingestion for Loki,
//! Prometheus and S3.
//!
//! `serve` is the entry point `main` and the tests call.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod payload;
pub mod routes;
pub mod state;
pub mod store;

use std::{future::Future, net::SocketAddr, sync::Arc};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{config::Config, health::Readiness, metrics::Metrics, state::AppState};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish and flushes delivery, all
/// within `config.shutdown_timeout`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let store = store::open(&config.store, metrics.clone()).await?;
    let (queue, delivery) = delivery::start(&config, metrics.clone());
    let readiness = Readiness::start(store.clone(), config.loki.as_ref().map(|l| l.url.clone()), queue.clone());
    tracing::info!(
        listen = %listener.local_addr()?,
        store = %store.describe(),
        logs = %config.loki.as_ref().map_or("stdout (JSON lines)".to_owned(), |l| format!("Loki at {}", l.url)),
        ingest_keys = config.ingest_keys.len(),
        "observer started"
    );
    let state = AppState::new(config.clone(), store, queue, metrics, Arc::new(registry), readiness.clone());
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_readiness = readiness.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal_readiness.begin_shutdown();
        let _ = stop_tx.send(());
    });
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
        tracing::info!("shutdown: no longer accepting connections, finishing in-flight requests");
        let _ = stopping_tx.send(true);
    });
    let server = tokio::spawn(async move { server.await });
    // In-flight requests get the shutdown timeout, then are abandoned.
    let timeout = config.shutdown_timeout;
    let mut server = server;
    tokio::select! {
        result = &mut server => result.map_err(std::io::Error::other)??,
        () = async {
            let _ = stopping_rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(timeout).await;
        } => {
            tracing::warn!("shutdown: in-flight requests did not finish within {} s", timeout.as_secs());
            server.abort();
        }
    }
    delivery.shutdown(timeout).await;
    tracing::info!("shutdown complete");
    Ok(())
}
