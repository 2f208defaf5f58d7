//! Prepares a received replay chunk for storage: inflate (bounded) when it
//! is gzip, validate the rrweb events, and make sure what is stored is gzip.

use std::io::Write;

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use xxhash_rust::xxh3::xxh3_64;

use super::decompress::{gunzip_bounded, is_gzip};
use crate::{
    config::Limits,
    error::{ApiError, LimitName},
    payload::{ChunkSummary, validate_chunk},
};

/// A validated chunk, ready for the store.
#[derive(Debug)]
pub struct PreparedChunk {
    /// The gzip bytes to store: what the client sent when it sent gzip.
    pub gzip: Bytes,
    pub received_bytes: usize,
    pub decompressed_bytes: usize,
    /// Whether the client sent gzip (else Observer compressed it).
    pub was_gzip: bool,
    pub summary: ChunkSummary,
    /// xxh3-64 of the decompressed JSON: the same events re-sent (even
    /// compressed differently) give the same hash.
    pub content_hash: u64,
}

/// CPU-bound: call from a blocking thread for large bodies.
pub fn prepare_chunk(received: Bytes, declared_gzip: bool, limits: &Limits) -> Result<PreparedChunk, ApiError> {
    let received_bytes = received.len();
    // Clients that cannot set Content-Encoding (sendBeacon blobs) are
    // recognised by the gzip magic bytes.
    if declared_gzip || is_gzip(&received) {
        let json = gunzip_bounded(&received, limits.max_replay_decompressed, LimitName::ReplayDecompressed)?;
        let summary = validate_chunk(&json)?;
        let content_hash = xxh3_64(&json);
        Ok(PreparedChunk {
            gzip: received,
            received_bytes,
            decompressed_bytes: json.len(),
            was_gzip: true,
            summary,
            content_hash,
        })
    } else {
        let summary = validate_chunk(&received)?;
        // Fast compression: rrweb JSON still shrinks ~8-10x at level 1,
        // and this runs once per plain-JSON chunk on the request path.
        let mut encoder = GzEncoder::new(Vec::with_capacity(received.len() / 6), Compression::fast());
        encoder.write_all(&received).and_then(|()| encoder.flush()).map_err(|e| ApiError::Internal(Box::new(e)))?;
        let gzip = encoder.finish().map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(PreparedChunk {
            gzip: gzip.into(),
            received_bytes,
            decompressed_bytes: received.len(),
            was_gzip: false,
            summary,
            content_hash: xxh3_64(&received),
        })
    }
}
