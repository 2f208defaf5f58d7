//! An in-memory [`ReplayStore`] for unit tests, one for every test that
//! needs a store: chunks by session and seq with their metadata, listing
//! entries, counters of the reads a test may assert on, chunks whose reads
//! fail, and a store that never answers.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;

use super::{
    ChunkInfo, ChunkListing, ChunkMeta, ChunkObject, NewChunk, PutOutcome, ReplayStore, SessionDetails, SessionPage,
    SessionQuery, StoreError,
};
use crate::payload::SessionId;

/// See the module docs. Chunk `seq`'s entity tag is `"tag-{seq}"`.
#[derive(Default)]
pub(crate) struct MemoryStore {
    chunks: Mutex<BTreeMap<(String, u32), Stored>>,
    /// Listing entries: the session's start and details.
    entries: Mutex<HashMap<String, (i64, SessionDetails)>>,
    /// Every operation waits forever.
    hangs: bool,
    /// `get_chunk` calls.
    pub gets: AtomicUsize,
    /// `chunk_etag` calls.
    pub tags: AtomicUsize,
    /// `get_session_details` calls.
    pub entry_reads: AtomicUsize,
}

struct Stored {
    meta: ChunkMeta,
    /// `None`: reading the chunk fails.
    gzip: Option<Bytes>,
    content_hash: Option<u64>,
}

impl MemoryStore {
    /// A store whose every operation waits forever.
    pub fn hanging() -> Self {
        MemoryStore { hangs: true, ..MemoryStore::default() }
    }

    /// Holds `gzip` as `session`'s chunk `seq`.
    pub fn with_chunk(self, session: &str, seq: u32, meta: ChunkMeta, gzip: Bytes) -> Self {
        self.insert(session, seq, Stored { meta, gzip: Some(gzip), content_hash: None });
        self
    }

    /// Lists `session`'s chunk `seq`, but reading it fails.
    pub fn with_failing_chunk(self, session: &str, seq: u32, meta: ChunkMeta) -> Self {
        self.insert(session, seq, Stored { meta, gzip: None, content_hash: None });
        self
    }

    /// A listing entry for `session`, which started at `start`.
    pub fn with_entry(self, session: &str, start: i64, details: SessionDetails) -> Self {
        self.entries.lock().unwrap().insert(session.to_owned(), (start, details));
        self
    }

    fn insert(&self, session: &str, seq: u32, stored: Stored) {
        self.chunks.lock().unwrap().insert((session.to_owned(), seq), stored);
    }

    async fn hang_if_asked(&self) {
        if self.hangs {
            std::future::pending::<()>().await;
        }
    }
}

fn etag(seq: u32) -> String {
    format!("\"tag-{seq}\"")
}

#[async_trait::async_trait]
impl ReplayStore for MemoryStore {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        chunk: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError> {
        self.hang_if_asked().await;
        let mut chunks = self.chunks.lock().unwrap();
        let key = (session_id.as_str().to_owned(), seq);
        if let Some(stored) = chunks.get(&key) {
            return Ok(PutOutcome::of_existing(Some((stored.meta, stored.content_hash)), &chunk));
        }
        if seq == 0 {
            let entry = (chunk.meta.first_timestamp, details.clone());
            self.entries.lock().unwrap().insert(session_id.as_str().to_owned(), entry);
        }
        let stored = Stored { meta: chunk.meta, gzip: Some(chunk.gzip), content_hash: Some(chunk.content_hash) };
        chunks.insert(key, stored);
        Ok(PutOutcome::Created)
    }

    async fn list_sessions(&self, _: &SessionQuery) -> Result<SessionPage, StoreError> {
        self.hang_if_asked().await;
        Err(StoreError::Config("MemoryStore does not list sessions".into()))
    }

    async fn list_chunks(&self, session_id: &SessionId, max: usize) -> Result<ChunkListing, StoreError> {
        self.hang_if_asked().await;
        let chunks = self.chunks.lock().unwrap();
        let all: Vec<ChunkInfo> = chunks
            .iter()
            .filter(|((session, _), _)| session == session_id.as_str())
            .map(|((_, seq), stored)| ChunkInfo {
                seq: *seq,
                meta: stored.meta,
                bytes: stored.gzip.as_ref().map_or(0, |gzip| gzip.len() as u64),
                stats: Default::default(),
            })
            .collect();
        Ok(ChunkListing { truncated: all.len() > max, chunks: all.into_iter().take(max).collect() })
    }

    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        self.hang_if_asked().await;
        self.entry_reads.fetch_add(1, Ordering::Relaxed);
        let entries = self.entries.lock().unwrap();
        Ok(entries.get(session_id.as_str()).filter(|(at, _)| *at == start).map(|(_, details)| details.clone()))
    }

    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        self.hang_if_asked().await;
        self.gets.fetch_add(1, Ordering::Relaxed);
        match self.chunks.lock().unwrap().get(&(session_id.as_str().to_owned(), seq)) {
            None => Ok(None),
            Some(Stored { gzip: None, .. }) => Err(StoreError::S3(format!("reading chunk {seq} failed (test)"))),
            Some(Stored { gzip: Some(gzip), .. }) => Ok(Some(ChunkObject { etag: etag(seq), gzip: gzip.clone() })),
        }
    }

    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        self.hang_if_asked().await;
        self.tags.fetch_add(1, Ordering::Relaxed);
        Ok(self.chunks.lock().unwrap().contains_key(&(session_id.as_str().to_owned(), seq)).then(|| etag(seq)))
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.hang_if_asked().await;
        Ok(())
    }

    fn describe(&self) -> String {
        "memory (tests)".to_owned()
    }
}
