//! The disk spool: what Observer acknowledged and has not delivered yet.
//!
//! A request is answered 2xx only once its records (and, when S3 cannot
//! take it at once, its replay chunk) are committed to a SQLite file in WAL
//! mode in `OBSERVER_SPOOL_DIR`. Workers deliver from it oldest first and
//! delete an item only once Loki, stdout or S3 confirmed it (`delivery`,
//! [`upload`]). See `docs/architecture.md` for the guarantees.
//!
//! - [`db`]: the schema and statements; [`writer`]: the one thread that
//!   owns the connection and commits groups of requests together;
//! - [`Spool`]: the cloneable async handle, and the routes' `RecordSink`;
//! - [`chunks`]: the replay store seen through the spool (spooled chunks
//!   are found by the fetch API) and the chunk intake of the replay route;
//! - [`upload`]: the worker moving spooled chunks to S3.

pub mod chunks;
pub mod db;
mod recent;
pub mod upload;
mod writer;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use tokio::sync::{Notify, mpsc, oneshot};

pub use chunks::{ChunkIntake, SpooledStore};
pub use db::SpooledChunk;
use writer::{Command, Reply};

use crate::{
    config::SpoolSync,
    delivery::{DeliveryError, LogRecord, RecordSink},
    metrics::{DeliveryTarget, KindLabels, Metrics, RecordKind, TargetLabels},
    store::{ChunkInfo, ChunkMeta},
};

/// Commands waiting for the writer; a request waits for room rather than
/// piling up memory (each carries at most one request's records).
const COMMAND_QUEUE: usize = 4096;
/// What a client is told to wait when the spool is full.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often the oldest-item gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("the disk spool is full (OBSERVER_SPOOL_MAX_BYTES)")]
    Full,
    #[error("the disk spool has shut down")]
    Closed,
    #[error("the disk spool failed: {0}")]
    Storage(String),
}

impl From<SpoolError> for DeliveryError {
    fn from(error: SpoolError) -> DeliveryError {
        match error {
            SpoolError::Full => DeliveryError::QueueFull { retry_after: RETRY_AFTER },
            SpoolError::Closed => DeliveryError::Closed,
            SpoolError::Storage(why) => DeliveryError::Storage(why),
        }
    }
}

/// State the writer and the handles share.
pub(crate) struct Shared {
    bytes: AtomicU64,
    records: AtomicU64,
    chunks: AtomicU64,
    max_bytes: u64,
    /// Woken after a commit that added records / chunks.
    records_added: Notify,
    chunks_added: Notify,
    metrics: Arc<Metrics>,
    records_target: DeliveryTarget,
}

impl Shared {
    fn has_room(&self, pending: i64, more: u64) -> bool {
        let now = self.bytes.load(Ordering::Acquire) as i64 + pending;
        now.saturating_add(more as i64) <= self.max_bytes as i64
    }

    fn apply(&self, bytes: i64, records: i64, chunks: i64) {
        let add = |counter: &AtomicU64, delta: i64| {
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_add_signed(delta)));
        };
        add(&self.bytes, bytes);
        add(&self.records, records);
        add(&self.chunks, chunks);
        if records > 0 {
            self.records_added.notify_one();
        }
        if chunks > 0 {
            self.chunks_added.notify_one();
        }
        self.publish();
    }

    fn publish(&self) {
        let m = &self.metrics;
        m.spool_bytes.set(gauge(self.bytes.load(Ordering::Acquire)));
        m.spool_items.get_or_create(&TargetLabels { target: self.records_target }).set(gauge(self.records()));
        m.spool_items.get_or_create(&TargetLabels { target: DeliveryTarget::S3 }).set(gauge(self.chunks()));
        m.queue_records.set(gauge(self.records()));
    }

    fn set_oldest(&self, records: Option<SystemTime>, chunks: Option<SystemTime>) {
        let age = |t: Option<SystemTime>| t.and_then(|t| t.elapsed().ok()).map_or(0.0, |d| d.as_secs_f64());
        let m = &self.metrics;
        m.spool_oldest_age.get_or_create(&TargetLabels { target: self.records_target }).set(age(records));
        m.spool_oldest_age.get_or_create(&TargetLabels { target: DeliveryTarget::S3 }).set(age(chunks));
    }

    fn records(&self) -> u64 {
        self.records.load(Ordering::Acquire)
    }

    fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Acquire)
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Cloneable handle to the spool; every call is answered by the writer
/// thread (after the commit, for writes).
#[derive(Clone)]
pub struct Spool {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("bytes", &self.shared.bytes).finish()
    }
}

impl Spool {
    /// [`Spool::open_with_sync`] with the default durability (tests).
    #[cfg(test)]
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        records_target: DeliveryTarget,
        metrics: Arc<Metrics>,
    ) -> Result<Spool, SpoolError> {
        Self::open_with_sync(dir, max_bytes, records_target, metrics, SpoolSync::default())
    }

    /// Opens (or creates) the spool in `dir` with the durability of commits
    /// chosen (`OBSERVER_SPOOL_SYNC`) and starts its writer thread. What a
    /// previous run left is counted and delivered by the workers.
    pub fn open_with_sync(
        dir: &Path,
        max_bytes: u64,
        records_target: DeliveryTarget,
        metrics: Arc<Metrics>,
        sync: SpoolSync,
    ) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SpoolError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let conn =
            db::open(dir, sync).map_err(|e| SpoolError::Storage(format!("cannot open {}: {e}", dir.display())))?;
        let (records, chunks, bytes) = db::totals(&conn).map_err(|e| SpoolError::Storage(e.to_string()))?;
        if records + chunks > 0 {
            tracing::info!(records, chunks, bytes, "spool: delivering what the previous run acknowledged");
        }
        let shared = Arc::new(Shared {
            bytes: AtomicU64::new(bytes),
            records: AtomicU64::new(records),
            chunks: AtomicU64::new(chunks),
            max_bytes,
            records_added: Notify::new(),
            chunks_added: Notify::new(),
            metrics,
            records_target,
        });
        shared.metrics.spool_max_bytes.set(gauge(max_bytes));
        shared.publish();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("observer-spool".to_owned())
            .spawn(move || writer::run(conn, rx, writer_shared))
            .map_err(|e| SpoolError::Storage(format!("cannot start the spool writer: {e}")))?;
        let spool = Spool { tx, shared };
        let stats = spool.tx.downgrade();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(STATS_INTERVAL);
            loop {
                ticker.tick().await;
                let Some(tx) = stats.upgrade() else { return };
                if tx.send(Command::Stats).await.is_err() {
                    return;
                }
            }
        });
        Ok(spool)
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(command(reply)).await.map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// Share of `OBSERVER_SPOOL_MAX_BYTES` in use, 0.0 to 1.0.
    pub fn fill_ratio(&self) -> f64 {
        (self.shared.bytes.load(Ordering::Acquire) as f64 / self.shared.max_bytes.max(1) as f64).min(1.0)
    }

    /// Chunks waiting for S3.
    pub fn chunk_backlog(&self) -> u64 {
        self.shared.chunks()
    }

    /// Records waiting for delivery.
    pub fn record_backlog(&self) -> u64 {
        self.shared.records()
    }

    /// Stores `records` durably; all or none.
    pub async fn put_records(&self, records: Vec<LogRecord>) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        self.call(|reply| Command::PutRecords { records, reply }).await
    }

    /// Stores a chunk (and its `replay_started` record) unless this
    /// `(session_id, seq)` is spooled; then returns what is spooled there.
    pub async fn put_chunk(
        &self,
        chunk: SpooledChunk,
        record: Option<LogRecord>,
    ) -> Result<Option<(ChunkMeta, u64)>, SpoolError> {
        self.call(|reply| Command::PutChunk { chunk: Box::new(chunk), record, reply }).await
    }

    pub async fn oldest_records(&self, max: usize, max_bytes: u64) -> Result<Vec<db::SpooledRecord>, SpoolError> {
        self.records_after(0, max, max_bytes, true).await
    }

    /// The oldest records with an id above `after`, at most `max` and
    /// `max_bytes` (the first one whatever its size if `first_always`).
    pub async fn records_after(
        &self,
        after: i64,
        max: usize,
        max_bytes: u64,
        first_always: bool,
    ) -> Result<Vec<db::SpooledRecord>, SpoolError> {
        self.call(|reply| Command::ReadRecords { after, max, max_bytes, first_always, reply }).await
    }

    /// Deletes the records `first..=last` once they are delivered.
    pub async fn delete_records(&self, first: i64, last: i64) -> Result<(), SpoolError> {
        self.call(|reply| Command::DeleteRecords { first, last, reply }).await
    }

    pub async fn oldest_chunk(&self) -> Result<Option<(i64, SpooledChunk)>, SpoolError> {
        self.call(|reply| Command::OldestChunk { reply }).await
    }

    pub async fn delete_chunk(&self, id: i64) -> Result<(), SpoolError> {
        self.call(|reply| Command::DeleteChunk { id, reply }).await
    }

    pub async fn chunk_meta(&self, session_id: &str, seq: u32) -> Result<Option<db::ChunkRow>, SpoolError> {
        let session_id = session_id.to_owned();
        self.call(|reply| Command::ChunkMeta { session_id, seq, reply }).await
    }

    pub async fn chunk(&self, session_id: &str, seq: u32) -> Result<Option<SpooledChunk>, SpoolError> {
        let session_id = session_id.to_owned();
        self.call(|reply| Command::Chunk { session_id, seq, reply }).await
    }

    pub async fn session_chunks(&self, session_id: &str) -> Result<Vec<ChunkInfo>, SpoolError> {
        let session_id = session_id.to_owned();
        self.call(|reply| Command::SessionChunks { session_id, reply }).await
    }

    /// Drops records received before `cutoff`, counting and logging them.
    pub async fn expire_records(&self, cutoff: SystemTime) -> Result<u64, SpoolError> {
        let expired = self.call(|reply| Command::ExpireRecords { cutoff, reply }).await?;
        if expired.records > 0 {
            let target = self.shared.records_target;
            self.shared.metrics.spool_expired.get_or_create(&TargetLabels { target }).inc_by(expired.records);
            tracing::error!(
                records = expired.records,
                target = target.as_str(),
                "spool: dropped records older than OBSERVER_SPOOL_MAX_AGE that could not be delivered"
            );
        }
        Ok(expired.records)
    }

    /// Drops chunks received before `cutoff`, counting and logging each.
    pub async fn expire_chunks(&self, cutoff: SystemTime) -> Result<usize, SpoolError> {
        let expired = self.call(|reply| Command::ExpireChunks { cutoff, reply }).await?;
        for (session_id, seq) in &expired.chunks {
            tracing::error!(
                session_id,
                seq,
                "spool: dropped a replay chunk older than OBSERVER_SPOOL_MAX_AGE that could not be uploaded"
            );
        }
        let n = expired.chunks.len();
        self.shared.metrics.spool_expired.get_or_create(&TargetLabels { target: DeliveryTarget::S3 }).inc_by(n as u64);
        Ok(n)
    }

    /// Resolves once a commit added records (or at once if one did since
    /// the last call).
    pub async fn records_added(&self) {
        self.shared.records_added.notified().await;
    }

    pub async fn chunks_added(&self) {
        self.shared.chunks_added.notified().await;
    }

    pub fn records_target(&self) -> DeliveryTarget {
        self.shared.records_target
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }
}

#[async_trait::async_trait]
impl RecordSink for Spool {
    async fn submit(&self, records: Vec<LogRecord>) -> Result<(), DeliveryError> {
        let kinds = per_kind(&records);
        match self.put_records(records).await {
            Ok(()) => {
                for (kind, n) in kinds {
                    self.shared.metrics.records_enqueued.get_or_create(&KindLabels { kind }).inc_by(n);
                }
                Ok(())
            }
            Err(error) => {
                if matches!(error, SpoolError::Full) {
                    for (kind, n) in kinds {
                        self.shared.metrics.queue_full.get_or_create(&KindLabels { kind }).inc_by(n);
                    }
                }
                Err(error.into())
            }
        }
    }
}

/// Records per kind, so a batch costs one counter update per kind.
fn per_kind(records: &[LogRecord]) -> Vec<(RecordKind, u64)> {
    let kinds = [RecordKind::Error, RecordKind::Event, RecordKind::Replay];
    kinds
        .into_iter()
        .map(|kind| (kind, records.iter().filter(|r| r.kind == kind).count() as u64))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests;
