//! Replay chunks and the spool.
//!
//! [`ChunkIntake`] is how the replay route stores a chunk. With S3 it puts
//! the chunk straight into the bucket while nothing is waiting in the spool;
//! when S3 fails (or does not answer within [`DIRECT_PUT_TIMEOUT`]), or
//! chunks are already waiting, the chunk is committed to the spool instead
//! and acknowledged from there, together with its `replay_started` record
//! in the same transaction; [`super::upload`] moves it to S3 later. The
//! local-directory store fsyncs each chunk before answering, so its chunks
//! never go through the spool.
//!
//! [`SpooledStore`] is the replay store the fetch API reads: the backend,
//! plus the chunks still in the spool, so a replay watched during an S3
//! outage plays what was acknowledged.

use std::{sync::Arc, time::Duration, time::SystemTime};

use super::{Spool, SpoolError, SpooledChunk};
use crate::{
    delivery::{DeliveryError, LogRecord, RecordSink},
    error::ApiError,
    metrics::{Metrics, UndeliveredReason},
    payload::SessionId,
    store::{
        ChunkListing, ChunkObject, NewChunk, PutOutcome, ReplayStore, SessionDetails, SessionPage, SessionQuery,
        StoreError, content_hash_text,
    },
};

/// How long a chunk waits for S3 before it is spooled instead. The put may
/// still complete after that; the later upload then finds it stored.
pub const DIRECT_PUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the replay route hands a validated chunk.
#[derive(Clone)]
pub struct ChunkIntake {
    store: Arc<dyn ReplayStore>,
    /// `Some` when chunks may be spooled (S3); `None` for the local store.
    spool: Option<Spool>,
    records: Arc<dyn RecordSink>,
    metrics: Arc<Metrics>,
}

impl ChunkIntake {
    pub fn new(
        store: Arc<dyn ReplayStore>,
        spool: Option<Spool>,
        records: Arc<dyn RecordSink>,
        metrics: Arc<Metrics>,
    ) -> ChunkIntake {
        ChunkIntake { store, spool, records, metrics }
    }

    /// Stores a chunk unless `(session_id, seq)` is stored or spooled, and
    /// queues `started` (chunk 0's `replay_started` record) when the chunk is
    /// new. Answers only once both are durable.
    pub async fn put(
        &self,
        session_id: &SessionId,
        seq: u32,
        chunk: NewChunk,
        details: &SessionDetails,
        received_at: SystemTime,
        started: Option<LogRecord>,
    ) -> Result<PutOutcome, ApiError> {
        let Some(spool) = &self.spool else {
            let outcome = self.store.put_chunk(session_id, seq, chunk, details).await?;
            self.announce(outcome, started).await;
            return Ok(outcome);
        };
        if let Some(row) = spool.chunk_meta(session_id.as_str(), seq).await.map_err(DeliveryError::from)? {
            return Ok(PutOutcome::of_existing(Some((row.meta, Some(row.content_hash))), &chunk));
        }
        if spool.chunk_backlog() == 0 {
            let direct = self.store.put_chunk(session_id, seq, chunk.clone(), details);
            match tokio::time::timeout(DIRECT_PUT_TIMEOUT, direct).await {
                Ok(Ok(outcome)) => {
                    self.announce(outcome, started).await;
                    return Ok(outcome);
                }
                Ok(Err(error)) => {
                    tracing::warn!(session_id = session_id.as_str(), seq, %error, "S3 put failed; the chunk is spooled");
                }
                Err(_) => tracing::warn!(
                    session_id = session_id.as_str(),
                    seq,
                    "S3 put took over {} s; the chunk is spooled",
                    DIRECT_PUT_TIMEOUT.as_secs()
                ),
            }
        }
        let spooled = SpooledChunk {
            session_id: session_id.as_str().to_owned(),
            seq,
            received_at,
            meta: chunk.meta,
            content_hash: chunk.content_hash,
            details: details.clone(),
            stats: chunk.stats,
            gzip: chunk.gzip.clone(),
        };
        match spool.put_chunk(spooled, started).await.map_err(DeliveryError::from)? {
            None => Ok(PutOutcome::Created),
            Some((meta, hash)) => Ok(PutOutcome::of_existing(Some((meta, Some(hash))), &chunk)),
        }
    }

    /// Queues the `replay_started` record of a chunk 0 just stored. The
    /// chunk is already stored, so answering 503 now would make the client
    /// re-send it, find it stored, and never log the start: the record is
    /// given a few tries, and lost loudly if the spool stays full.
    async fn announce(&self, outcome: PutOutcome, started: Option<LogRecord>) {
        let Some(record) = started.filter(|_| outcome == PutOutcome::Created) else { return };
        let mut wait = Duration::from_millis(100);
        for _ in 0..5 {
            match self.records.submit(vec![record.clone()]).await {
                Ok(()) => return,
                Err(DeliveryError::QueueFull { .. }) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(error) => {
                    tracing::error!(%error, "replay_started record could not be spooled; it is lost");
                    self.metrics.undelivered(UndeliveredReason::Shutdown, 1);
                    return;
                }
            }
        }
        tracing::error!("replay_started record could not be spooled (spool full); it is lost");
        self.metrics.undelivered(UndeliveredReason::QueueFull, 1);
    }
}

/// The replay store as the fetch API sees it: the backend plus the spool.
pub struct SpooledStore {
    inner: Arc<dyn ReplayStore>,
    spool: Spool,
}

impl SpooledStore {
    pub fn new(inner: Arc<dyn ReplayStore>, spool: Spool) -> SpooledStore {
        SpooledStore { inner, spool }
    }
}

fn spool_error(error: SpoolError) -> StoreError {
    StoreError::Io(std::io::Error::other(error.to_string()))
}

/// A spooled chunk's entity tag: stable while it is spooled (it changes
/// once S3 serves it, so a client revalidates once).
fn spooled_etag(chunk: &SpooledChunk) -> String {
    format!("\"spool-{}-{}\"", content_hash_text(chunk.content_hash), chunk.gzip.len())
}

#[async_trait::async_trait]
impl ReplayStore for SpooledStore {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        chunk: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError> {
        self.inner.put_chunk(session_id, seq, chunk, details).await
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        self.inner.list_sessions(query).await
    }

    /// The backend's chunks and the spooled ones, by seq. While the backend
    /// fails, the spooled chunks alone (if any) are what can be played.
    async fn list_chunks(&self, session_id: &SessionId, max_chunks: usize) -> Result<ChunkListing, StoreError> {
        let spooled = self.spool.session_chunks(session_id.as_str()).await.map_err(spool_error)?;
        let mut listing = match self.inner.list_chunks(session_id, max_chunks).await {
            Ok(listing) => listing,
            Err(error) if !spooled.is_empty() => {
                tracing::warn!(%error, session_id = session_id.as_str(), "listing only the spooled chunks");
                ChunkListing::default()
            }
            Err(error) => return Err(error),
        };
        if spooled.is_empty() {
            return Ok(listing);
        }
        for info in spooled {
            if !listing.chunks.iter().any(|c| c.seq == info.seq) {
                listing.chunks.push(info);
            }
        }
        listing.chunks.sort_by_key(|c| c.seq);
        if listing.chunks.len() > max_chunks {
            listing.chunks.truncate(max_chunks);
            listing.truncated = true;
        }
        Ok(listing)
    }

    /// The backend's sizes plus the spooled chunks' (a chunk in both while
    /// it is being uploaded counts once).
    async fn stored_chunk_sizes(
        &self,
        session_id: &SessionId,
        max_chunks: usize,
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        let spooled = self.spool.session_chunks(session_id.as_str()).await.map_err(spool_error)?;
        let mut sizes = match self.inner.stored_chunk_sizes(session_id, max_chunks).await {
            Ok(sizes) => sizes,
            Err(error) if !spooled.is_empty() => {
                tracing::warn!(%error, session_id = session_id.as_str(), "counting only the spooled chunks");
                Vec::new()
            }
            Err(error) => return Err(error),
        };
        for info in spooled {
            if !sizes.iter().any(|(seq, _)| *seq == info.seq) {
                sizes.push((info.seq, info.bytes));
            }
        }
        Ok(sizes)
    }

    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        match self.inner.get_session_details(session_id, start).await {
            Ok(Some(details)) => Ok(Some(details)),
            other => match self.spool.chunk(session_id.as_str(), 0).await.map_err(spool_error)? {
                Some(chunk) => Ok(Some(chunk.details)),
                None => other,
            },
        }
    }

    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        if let Some(chunk) = self.spool.chunk(session_id.as_str(), seq).await.map_err(spool_error)? {
            return Ok(Some(ChunkObject { etag: spooled_etag(&chunk), gzip: chunk.gzip }));
        }
        self.inner.get_chunk(session_id, seq).await
    }

    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        if let Some(chunk) = self.spool.chunk(session_id.as_str(), seq).await.map_err(spool_error)? {
            return Ok(Some(spooled_etag(&chunk)));
        }
        self.inner.chunk_etag(session_id, seq).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }

    fn describe(&self) -> String {
        format!("{} (chunks spooled while it fails)", self.inner.describe())
    }
}
