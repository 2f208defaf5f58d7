//! [`TimedStore`]: every store operation timed and its failures counted.

use std::sync::Arc;
use std::time::Instant;

use super::{
    ChunkListing, ChunkObject, NewChunk, PutOutcome, ReplayStore, SessionDetails, SessionPage, SessionQuery, StoreError,
};
use crate::metrics::{Metrics, StoreOperation};
use crate::payload::SessionId;

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
        chunk: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Put);
        let result = self.inner.put_chunk(session_id, seq, chunk, details).await;
        timer.finish(result.is_ok());
        result
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::List);
        let result = self.inner.list_sessions(query).await;
        timer.finish(result.is_ok());
        result
    }

    async fn list_chunks(&self, session_id: &SessionId, max_chunks: usize) -> Result<ChunkListing, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::List);
        let result = self.inner.list_chunks(session_id, max_chunks).await;
        timer.finish(result.is_ok());
        result
    }

    async fn stored_chunk_sizes(
        &self,
        session_id: &SessionId,
        max_chunks: usize,
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::List);
        let result = self.inner.stored_chunk_sizes(session_id, max_chunks).await;
        timer.finish(result.is_ok());
        result
    }

    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Get);
        let result = self.inner.get_session_details(session_id, start).await;
        timer.finish(result.is_ok());
        result
    }

    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Get);
        let result = self.inner.get_chunk(session_id, seq).await;
        timer.finish(result.is_ok());
        result
    }

    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        let timer = OperationTimer::start(&self.metrics, StoreOperation::Head);
        let result = self.inner.chunk_etag(session_id, seq).await;
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

    use bytes::Bytes;

    use super::*;
    use crate::config::StoreConfig;
    use crate::store::open;
    use crate::store::{ChunkMeta, memory::MemoryStore};

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
        let details = SessionDetails::default();
        let chunk = NewChunk { gzip: Bytes::from_static(b"gz"), meta, stats: Default::default(), content_hash: 1 };
        assert_eq!(store.put_chunk(&id, 0, chunk, &details).await.unwrap(), PutOutcome::Created);
        assert_eq!(store.list_chunks(&id, 10).await.unwrap().chunks.len(), 1);
        assert_eq!(store.list_sessions(&SessionQuery::page(10, None)).await.unwrap().sessions.len(), 1);
        assert_eq!(store.get_chunk(&id, 0).await.unwrap().unwrap().gzip, Bytes::from_static(b"gz"));
        assert!(store.chunk_etag(&id, 0).await.unwrap().is_some());
        assert!(store.get_session_details(&id, 1).await.unwrap().is_some());
        store.check().await.unwrap();
        std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
        store.check().await.unwrap_err();

        let text = crate::metrics::render(&registry).unwrap();
        for line in [
            "observer_store_operation_duration_seconds_count{operation=\"put\"} 1",
            "observer_store_operation_duration_seconds_count{operation=\"check\"} 2",
            "observer_store_operation_duration_seconds_count{operation=\"list\"} 2",
            "observer_store_operation_duration_seconds_count{operation=\"get\"} 2",
            "observer_store_operation_duration_seconds_count{operation=\"head\"} 1",
            "observer_store_operation_failures_total{operation=\"check\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // Failure series start at 0 (metrics.rs); no put failed.
        assert!(text.contains("observer_store_operation_failures_total{operation=\"put\"} 0\n"), "{text}");
    }

    #[tokio::test]
    async fn timed_store_counts_abandoned_operations_as_failures() {
        let mut registry = Registry::default();
        let store = TimedStore::new(Arc::new(MemoryStore::hanging()), Arc::new(Metrics::new(&mut registry)));
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), store.check()).await.unwrap_err();
        let text = crate::metrics::render(&registry).unwrap();
        assert!(text.contains("observer_store_operation_failures_total{operation=\"check\"} 1"), "{text}");
    }
}
