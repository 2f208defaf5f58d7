//! Replay bytes stored per session (`OBSERVER_MAX_SESSION_BYTES`, default
//! 200 MiB, counted as stored: gzip), so one session cannot fill the bucket.
//!
//! The store has no counter to read, so each process keeps one per session
//! in a bounded cache (`quick_cache`, [`TRACKED_SESSIONS`] entries). On first
//! sight of a session (or after its entry was evicted) the counter is
//! seeded from the store's listing of the session's chunks, so a restart
//! does not reset it. A chunk reserves its size before it is written and
//! gives it back unless the write created it ([`Reservation::commit`]), so
//! concurrent chunks of one session cannot overshoot the cap in a process.
//!
//! With several replicas each one seeds once and then counts only its own
//! writes: a session whose chunks are spread over N replicas can store up
//! to about N times the cap (less once entries are evicted and re-seeded).
//! The chunk count cap (`seq` below `OBSERVER_MAX_SESSION_CHUNKS`) is
//! stateless and exact everywhere, and bounds a session to
//! `max_session_chunks × max_replay_body` whatever happens here.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use quick_cache::sync::Cache;

use crate::{
    error::{ApiError, LimitName},
    payload::SessionId,
    store::ReplayStore,
};

/// Sessions whose counter is kept. An evicted session costs one listing
/// when it is seen again, never a wrong answer beyond the replica caveat.
const TRACKED_SESSIONS: usize = 10_000;

pub struct SessionBytes {
    stored: Cache<SessionId, Arc<AtomicU64>>,
    max_bytes: u64,
    /// How many chunks a seeding listing reads (all a session may have).
    max_chunks: usize,
}

/// Bytes held for a chunk being written; released when dropped unless
/// [`Reservation::commit`] keeps them.
#[must_use]
pub struct Reservation {
    counter: Arc<AtomicU64>,
    bytes: u64,
    committed: bool,
}

impl Reservation {
    /// The chunk was stored: its bytes stay counted.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.committed {
            self.counter.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

impl SessionBytes {
    pub fn new(max_bytes: u64, max_chunks: u32) -> SessionBytes {
        SessionBytes {
            stored: Cache::new(TRACKED_SESSIONS),
            max_bytes,
            max_chunks: usize::try_from(max_chunks).unwrap_or(usize::MAX),
        }
    }

    /// Reserves `bytes` of `session`'s allowance: 413 naming
    /// `OBSERVER_MAX_SESSION_BYTES` when they do not fit. When the store
    /// cannot be listed (S3 down: the chunk will be spooled), the counter
    /// starts from what the spool holds alone, so an outage does not refuse
    /// new sessions; the limit then undercounts what S3 already held.
    pub async fn reserve(
        &self,
        store: &dyn ReplayStore,
        session: &SessionId,
        bytes: u64,
    ) -> Result<Reservation, ApiError> {
        let counter = self
            .stored
            .get_or_insert_async(session, async {
                let sizes = match store.stored_chunk_sizes(session, self.max_chunks).await {
                    Ok(sizes) => sizes,
                    Err(error) => {
                        tracing::warn!(%error, session_id = session.as_str(), "cannot list the session's stored bytes; counting from zero");
                        Vec::new()
                    }
                };
                let stored: u64 = sizes.iter().map(|(_, bytes)| bytes).sum();
                Ok::<_, ApiError>(Arc::new(AtomicU64::new(stored)))
            })
            .await?;
        let fits = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            used.checked_add(bytes).filter(|total| *total <= self.max_bytes)
        });
        match fits {
            Ok(_) => Ok(Reservation { counter, bytes, committed: false }),
            Err(_) => Err(ApiError::TooLarge {
                limit: LimitName::SessionBytes,
                what: "the replay bytes stored for this session",
                max: usize::try_from(self.max_bytes).unwrap_or(usize::MAX),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{ChunkMeta, LocalStore, NewChunk, PutOutcome, SessionDetails};

    fn sid(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn is_session_cap(result: &Result<Reservation, ApiError>) -> bool {
        matches!(result, Err(ApiError::TooLarge { limit: LimitName::SessionBytes, .. }))
    }

    #[tokio::test]
    async fn reservations_count_until_the_cap_and_failed_writes_give_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().to_owned()).unwrap();
        let tracker = SessionBytes::new(100, 720);
        let id = sid("session-bytes-1");
        tracker.reserve(&store, &id, 60).await.unwrap().commit();
        // Dropped without commit (the write failed or found the chunk stored).
        drop(tracker.reserve(&store, &id, 40).await.unwrap());
        tracker.reserve(&store, &id, 40).await.unwrap().commit();
        assert!(is_session_cap(&tracker.reserve(&store, &id, 1).await));
        tracker.reserve(&store, &sid("session-bytes-2"), 100).await.unwrap().commit();
        assert!(is_session_cap(&tracker.reserve(&store, &id, u64::MAX).await), "no overflow");
    }

    #[tokio::test]
    async fn a_new_process_seeds_from_what_the_store_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().to_owned()).unwrap();
        let id = sid("session-bytes-3");
        let meta = ChunkMeta { first_timestamp: 1, last_timestamp: 2, events: 1 };
        for seq in 0..3 {
            let chunk =
                NewChunk { gzip: Bytes::from(vec![seq as u8; 30]), meta, stats: Default::default(), content_hash: 1 };
            let outcome = store.put_chunk(&id, seq, chunk, &SessionDetails::default()).await.unwrap();
            assert_eq!(outcome, PutOutcome::Created);
        }
        let restarted = SessionBytes::new(100, 720);
        restarted.reserve(&store, &id, 10).await.unwrap().commit();
        assert!(is_session_cap(&restarted.reserve(&store, &id, 1).await), "90 stored + 10 reserved");
    }
}
