//! Observer: session replay, error and analytics ingestion for Loki,
//! Prometheus and S3.
//!
//! `serve` is the entry point `main` and the tests call.

// Public: what `main`, the benchmarks and the integration tests use. The
// rest is crate-private, so the compiler reports what nothing uses.
pub mod auth;
pub mod config;
mod connections;
// `delivery::loki_headers` is also what the binary's own log shipping sends.
pub mod delivery;
pub mod error;
pub(crate) mod health;
pub mod ingest;
pub mod memory;
pub(crate) mod metrics;
pub mod payload;
pub(crate) mod rate_limit;
pub(crate) mod routes;
pub(crate) mod spool;
pub(crate) mod state;
pub mod store;

use std::{future::Future, sync::Arc};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    connections::ConnectionSettings,
    health::Readiness,
    metrics::{DeliveryTarget, Metrics},
    spool::{ChunkIntake, Spool, SpooledStore},
    state::AppState,
};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server on `listener` until `shutdown` completes, then marks
/// itself not ready, stops accepting, lets in-flight requests finish and
/// flushes delivery, all within `config.shutdown_timeout` (at least 1 s is
/// left for delivery).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let backend = store::open(&config.store, metrics.clone()).await?;
    let spool = open_spool(&config, metrics.clone()).await?;
    // The fetch API reads chunks still in the spool too; the uploader moves
    // them to the backend (only S3 chunks are spooled, but whatever a run
    // left behind is moved to the backend configured now).
    let store: Arc<dyn store::ReplayStore> = Arc::new(SpooledStore::new(backend.clone(), spool.clone()));
    let s3 = matches!(config.store, config::StoreConfig::S3 { .. });
    let chunks = ChunkIntake::new(backend.clone(), s3.then(|| spool.clone()), Arc::new(spool.clone()), metrics.clone());
    let delivery = delivery::start(&config, spool.clone());
    let upload = spool::upload::spawn(spool.clone(), backend, config.spool.max_age);
    let retention = store::retention::start(&config.store, &config.retention, metrics.clone());
    let readiness =
        Readiness::start(store.clone(), delivery.loki_health(), spool.clone(), s3).with_retention(retention.status());
    tracing::info!(
        listen = %listener.local_addr()?,
        store = %store.describe(),
        logs = %config.loki.as_ref().map_or("stdout (JSON lines)".to_owned(), |l| format!("Loki at {}", l.url)),
        spool = %config.spool.dir.display(),
        ingest_keys = config.ingest_keys.len(),
        "observer started"
    );
    let connection_metrics = metrics.clone();
    let state = AppState::new(config.clone(), store, spool, chunks, metrics, Arc::new(registry), readiness.clone());
    let app = routes::router(state);

    // One deadline, set when the signal arrives, covers both finishing
    // in-flight requests and flushing delivery.
    let timeout = config.shutdown_timeout;
    let (deadline_tx, mut deadline_rx) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let signal_readiness = readiness.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal_readiness.begin_shutdown();
        retention.stop();
        let _ = deadline_tx.send(Some(tokio::time::Instant::now() + timeout));
    });
    let mut stop_rx = deadline_rx.clone();
    let server = connections::serve(listener, app, ConnectionSettings::new(&config), connection_metrics, async move {
        let _ = stop_rx.wait_for(Option::is_some).await;
        tracing::info!("shutdown: no longer accepting connections, finishing in-flight requests");
    });
    let mut server = tokio::spawn(server);
    let served = tokio::select! {
        result = &mut server => result.map_err(std::io::Error::other),
        () = async {
            let deadline = match deadline_rx.wait_for(Option::is_some).await {
                Ok(deadline) => deadline.unwrap_or_else(tokio::time::Instant::now),
                Err(_) => std::future::pending().await,
            };
            tokio::time::sleep_until(deadline).await;
        } => {
            tracing::warn!("shutdown: in-flight requests did not finish within {} s", timeout.as_secs());
            server.abort();
            Ok(())
        }
    };
    // Whatever happened to the listener, queued records get their chance.
    let deadline = *deadline_rx.borrow();
    let remaining = deadline.map_or(timeout, |d| d.saturating_duration_since(tokio::time::Instant::now()));
    let remaining = remaining.max(std::time::Duration::from_secs(1));
    tokio::join!(delivery.shutdown(remaining), upload.shutdown(remaining));
    served?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Opens the disk spool (blocking file I/O, off the async threads).
async fn open_spool(config: &Config, metrics: Arc<Metrics>) -> Result<Spool, spool::SpoolError> {
    let target = if config.loki.is_some() { DeliveryTarget::Loki } else { DeliveryTarget::Stdout };
    let (dir, max_bytes, sync) = (config.spool.dir.clone(), config.spool.max_bytes, config.spool.sync);
    tokio::task::spawn_blocking(move || Spool::open_with_sync(&dir, max_bytes, target, metrics, sync))
        .await
        .map_err(|e| spool::SpoolError::Storage(e.to_string()))?
}
