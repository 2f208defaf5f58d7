//! Moves spooled replay chunks to S3, oldest first, one at a time.
//!
//! A chunk is deleted from the spool only after S3 confirmed it: `Created`,
//! or `AlreadyExists` (the put of a run killed before its delete, or the
//! direct put that timed out but landed). The S3 put is conditional on the
//! key (HEAD, then `If-None-Match: *`), so a chunk is stored once however
//! often the upload is repeated. Failures are retried with capped
//! exponential backoff and jitter; chunks older than
//! `OBSERVER_SPOOL_MAX_AGE` are dropped, counted and logged.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::Spool;
use crate::{
    delivery::jittered,
    metrics::{DeliveryFailure, DeliveryTarget},
    payload::SessionId,
    store::{NewChunk, PutOutcome, ReplayStore},
};

const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often chunks are checked against `OBSERVER_SPOOL_MAX_AGE`, and the
/// longest an idle uploader sleeps.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);

/// Stops the uploader; chunks not uploaded by then stay in the spool.
pub struct UploadHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl UploadHandle {
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("spool: chunk upload did not stop in time; the chunks stay spooled");
        }
    }
}

pub fn spawn(spool: Spool, store: Arc<dyn ReplayStore>, max_age: Duration) -> UploadHandle {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(spool, store, max_age, stopped));
    UploadHandle { stop, task }
}

async fn run(spool: Spool, store: Arc<dyn ReplayStore>, max_age: Duration, mut stop: watch::Receiver<bool>) {
    let metrics = spool.metrics().clone();
    let mut delay = RETRY_FIRST;
    let mut expired_at: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
            expired_at = Some(Instant::now());
            let cutoff = SystemTime::now() - max_age;
            if let Err(error) = spool.expire_chunks(cutoff).await {
                tracing::error!(%error, "spool: cannot drop expired chunks");
            }
        }
        let wait = match spool.oldest_chunk().await {
            Ok(None) => {
                tokio::select! {
                    () = spool.chunks_added() => {}
                    () = tokio::time::sleep(EXPIRE_EVERY) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Ok(Some((id, chunk))) => {
                let Some(session_id) = SessionId::parse(&chunk.session_id) else {
                    tracing::error!(
                        session_id = chunk.session_id,
                        "spool: a chunk with an invalid session id is dropped"
                    );
                    let _ = spool.delete_chunk(id).await;
                    continue;
                };
                metrics.delivery_attempt(DeliveryTarget::S3);
                let new = NewChunk {
                    gzip: chunk.gzip,
                    meta: chunk.meta,
                    stats: chunk.stats,
                    content_hash: chunk.content_hash,
                };
                match store.put_chunk(&session_id, chunk.seq, new, &chunk.details).await {
                    Ok(outcome) => {
                        if outcome == PutOutcome::Conflict {
                            metrics.delivery_failed(DeliveryTarget::S3, DeliveryFailure::Conflict);
                            tracing::error!(
                                session_id = chunk.session_id,
                                seq = chunk.seq,
                                "spool: S3 holds other events under this chunk's key; the spooled chunk is dropped"
                            );
                        }
                        match spool.delete_chunk(id).await {
                            Ok(()) => {
                                delay = RETRY_FIRST;
                                continue;
                            }
                            Err(error) => {
                                tracing::error!(%error, "spool: cannot delete an uploaded chunk");
                                RETRY_MAX
                            }
                        }
                    }
                    Err(error) => {
                        metrics.delivery_failed(DeliveryTarget::S3, DeliveryFailure::Store);
                        let wait = jittered(delay);
                        tracing::warn!(%error, retry_in = ?wait, backlog = spool.chunk_backlog(), "spool: S3 upload failed, will retry");
                        delay = (delay * 2).min(RETRY_MAX);
                        wait
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "spool: cannot read the next chunk");
                RETRY_MAX
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}
