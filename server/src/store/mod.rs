//! Replay chunk storage: one trait, a local-directory and an S3 implementation.
//!
//! Key layout (both backends): `{prefix}replays/{session_id}/{seq:010}.json.gz`,
//! holding the gzip-compressed JSON array of rrweb events, with the chunk's
//! first/last event timestamp and event count as metadata.

pub mod local;
pub mod s3;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use local::LocalStore;
pub use s3::S3Store;

use crate::config::StoreConfig;
use crate::metrics::{Metrics, StoreOperation};
use crate::payload::SessionId;

/// Facts about a chunk, stored beside it (S3 object metadata, or a sidecar
/// file locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Milliseconds since the epoch of the first and last event.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub events: u32,
}

/// Whether a put wrote a new chunk or found it already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("replay store I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("S3 request failed: {0}")]
    S3(String),
    #[error("replay store is misconfigured: {0}")]
    Config(String),
}

/// The object key of a chunk, relative to the store's root or bucket.
pub fn chunk_key(prefix: &str, session_id: &SessionId, seq: u32) -> String {
    format!("{prefix}replays/{}/{seq:010}.json.gz", session_id.as_str())
}

#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Stores a chunk unless one with the same `(session_id, seq)` exists,
    /// in which case it is left as it is (idempotent re-send).
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        gzip_body: Bytes,
        meta: ChunkMeta,
    ) -> Result<PutOutcome, StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StoreError>;

    /// Human description for the start-up log (no secrets).
    fn describe(&self) -> String;
}

/// Builds the backend `config` names, wrapped in a [`TimedStore`]. S3
/// credentials come from the standard AWS chain; nothing is contacted until
/// the first operation or `check()`.
pub async fn open(config: &StoreConfig, metrics: Arc<Metrics>) -> Result<Arc<dyn ReplayStore>, StoreError> {
    let backend: Arc<dyn ReplayStore> = match config {
        StoreConfig::Local { data_dir } => {
            let data_dir = data_dir.clone();
            let store = tokio::task::spawn_blocking(move || LocalStore::new(data_dir))
                .await
                .map_err(|e| StoreError::Config(format!("opening the data directory failed: {e}")))??;
            Arc::new(store)
        }
        StoreConfig::S3 { endpoint, bucket, region, key_prefix } => {
            Arc::new(S3Store::new(endpoint.clone(), bucket.clone(), region.clone(), key_prefix.clone()).await?)
        }
    };
    Ok(Arc::new(TimedStore::new(backend, metrics)))
}

/// Wraps a store and records every operation's duration and failures in
/// `observer_store_operation_duration_seconds` / `observer_store_operation_failures_total`.
pub struct TimedStore {
    inner: Arc<dyn ReplayStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn new(inner: Arc<dyn ReplayStore>, metrics: Arc<Metrics>) -> TimedStore {
        TimedStore { inner, metrics }
    }
}

/// Records one operation; an operation dropped before it finished (a request
/// or probe timeout) counts as a failure.
struct OperationTimer<'a> {
    metrics: &'a Metrics,
    operation: StoreOperation,
    started: Instant,
    finished: bool,
}

impl<'a> OperationTimer<'a> {
    fn start(metrics: &'a Metrics, operation: StoreOperation) -> Self {
        OperationTimer { metrics, operation, started: Instant::now(), finished: false }
    }

    fn finish(mut self, ok: bool) {
        self.finished = true;
        self.metrics.store_observe(self.operation, self.started.elapsed().as_secs_f64(), ok);
    }
}

impl Drop for OperationTimer<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics.store_observe(self.operation, self.started.elapsed().as_secs_f64(), false);
        }
    }
}

#[async_trait::async_trait]
impl ReplayStore for TimedStore {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        gzip_body: Bytes,
        meta: ChunkMeta,
    ) -> Result<PutOutcome, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Put);
        let result = self.inner.put_chunk(session_id, seq, gzip_body, meta).await;
        timer.finish(result.is_ok());
        result
    }

    async fn check(&self) -> Result<(), StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Check);
        let result = self.inner.check().await;
        timer.finish(result.is_ok());
        result
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    #[tokio::test]
    async fn timed_store_records_operations() {
        let tmp = tempfile::tempdir().unwrap();
        let config = StoreConfig::Local { data_dir: tmp.path().join("data") };
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry));
        let store = open(&config, metrics).await.unwrap();
        assert!(store.describe().starts_with("local directory /"));

        let id = SessionId::parse("session-timed-1").unwrap();
        let meta = ChunkMeta { first_timestamp: 1, last_timestamp: 2, events: 3 };
        assert_eq!(store.put_chunk(&id, 0, Bytes::from_static(b"gz"), meta).await.unwrap(), PutOutcome::Created);
        store.check().await.unwrap();
        std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
        store.check().await.unwrap_err();

        let text = crate::metrics::render(&registry).unwrap();
        for line in [
            "observer_store_operation_duration_seconds_count{operation=\"put\"} 1",
            "observer_store_operation_duration_seconds_count{operation=\"check\"} 2",
            "observer_store_operation_failures_total{operation=\"check\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("observer_store_operation_failures_total{operation=\"put\"}"), "{text}");
    }

    /// A store whose check never answers.
    struct Hanging;

    #[async_trait::async_trait]
    impl ReplayStore for Hanging {
        async fn put_chunk(&self, _: &SessionId, _: u32, _: Bytes, _: ChunkMeta) -> Result<PutOutcome, StoreError> {
            std::future::pending().await
        }
        async fn check(&self) -> Result<(), StoreError> {
            std::future::pending().await
        }
        fn describe(&self) -> String {
            "hanging".to_owned()
        }
    }

    #[tokio::test]
    async fn timed_store_counts_abandoned_operations_as_failures() {
        let mut registry = Registry::default();
        let store = TimedStore::new(Arc::new(Hanging), Arc::new(Metrics::new(&mut registry)));
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), store.check()).await.unwrap_err();
        let text = crate::metrics::render(&registry).unwrap();
        assert!(text.contains("observer_store_operation_failures_total{operation=\"check\"} 1"), "{text}");
    }
}
