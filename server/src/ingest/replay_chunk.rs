//! Prepares a received replay chunk for storage: validate the rrweb events
//! (inflating gzip as a stream, never into one buffer), bound the JSON's
//! size and depth, hash it, and make sure what is stored is gzip.

use std::io::{BufReader, Read, Write};

use bytes::Bytes;
use flate2::{Compression, read::MultiGzDecoder, write::GzEncoder};

use super::{
    chunk_scan::{ChunkScan, ScanFailure, ScanningReader},
    decompress::{gzip_error, is_gzip},
};
use crate::{
    config::Limits,
    error::{ApiError, LimitName},
    payload::{ChunkSummary, validate_chunk, validate_chunk_reader},
};

/// Chunks that inflate to at most this are validated from one buffer:
/// serde_json reads a buffer about four times faster than a stream
/// (measured: 186 MiB/s streaming vs ~800 MiB/s inflate + validate), and
/// most chunks are this small. Larger ones continue as a stream, so a
/// chunk in preparation holds at most this much inflated text.
const INFLATE_IN_MEMORY_BYTES: usize = 1024 * 1024;
/// Inflated text handed to the streaming validator at a time.
const INFLATE_BUFFER_BYTES: usize = 64 * 1024;

/// A validated chunk, ready for the store.
#[derive(Debug)]
pub struct PreparedChunk {
    /// The gzip bytes to store: what the client sent when it sent gzip.
    pub gzip: Bytes,
    pub received_bytes: usize,
    pub decompressed_bytes: usize,
    /// Whether the client sent gzip (else Observer compressed it).
    pub was_gzip: bool,
    /// xxh3-64 of the decompressed JSON: equal for the same events however
    /// they were compressed, so a re-sent `(session, seq)` can be compared.
    pub content_hash: u64,
    pub summary: ChunkSummary,
}

/// What [`prepare_chunk`] bounds.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// `OBSERVER_MAX_REPLAY_DECOMPRESSED`.
    pub max_inflated: usize,
    /// `OBSERVER_MAX_REPLAY_DEPTH`.
    pub max_depth: usize,
}

impl From<&Limits> for ChunkLimits {
    fn from(limits: &Limits) -> Self {
        ChunkLimits { max_inflated: limits.max_replay_decompressed, max_depth: limits.max_replay_depth }
    }
}

/// CPU-bound: call from a blocking thread for large bodies.
pub fn prepare_chunk(
    received: Bytes,
    declared_gzip: bool,
    limits: impl Into<ChunkLimits>,
) -> Result<PreparedChunk, ApiError> {
    let received_bytes = received.len();
    let limits = limits.into();
    let mut scan = ChunkScan::new(limits.max_inflated, limits.max_depth);
    // Clients that cannot set Content-Encoding (sendBeacon blobs) are
    // recognised by the gzip magic bytes.
    if declared_gzip || is_gzip(&received) {
        let validated = validate_gzip(&received, &mut scan);
        // A scan failure ended the stream: it, not the parser's view of a
        // cut-off text, is the reason.
        refuse_failed_scan(&mut scan)?;
        let summary = validated?;
        Ok(PreparedChunk {
            gzip: received,
            received_bytes,
            decompressed_bytes: scan.bytes(),
            was_gzip: true,
            content_hash: scan.hash(),
            summary,
        })
    } else {
        // Depth first: serde skips nesting of any depth in linear time, but
        // a too-deep chunk should be refused for that, not for what follows.
        let _ = scan.feed(&received);
        refuse_failed_scan(&mut scan)?;
        let summary = validate_chunk(&received)?;
        // Fast compression: rrweb JSON still shrinks ~8-10x at level 1,
        // and this runs once per plain-JSON chunk on the request path.
        // Sized for the worst case (incompressible text) so the output never
        // reallocates: a copy per doubling would briefly hold twice the
        // output, and pages of the capacity that are never written cost no RSS.
        let worst_case = received.len() + received.len() / 1000 + 1024;
        let mut encoder = GzEncoder::new(Vec::with_capacity(worst_case), Compression::fast());
        encoder.write_all(&received).and_then(|()| encoder.flush()).map_err(|e| ApiError::Internal(Box::new(e)))?;
        let gzip = encoder.finish().map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(PreparedChunk {
            gzip: gzip.into(),
            received_bytes,
            decompressed_bytes: received.len(),
            was_gzip: false,
            content_hash: scan.hash(),
            summary,
        })
    }
}

/// Inflates and validates a gzip chunk, scanning the text as it comes.
fn validate_gzip(received: &[u8], scan: &mut ChunkScan) -> Result<ChunkSummary, ApiError> {
    let mut inflated = ScanningReader::new(MultiGzDecoder::new(received), scan);
    // One byte over the threshold tells "all of it" from "there is more".
    // Allocated once at full size: growing by doubling would briefly hold
    // 3 MiB, and pages a small chunk never writes cost no RSS.
    let limit = INFLATE_IN_MEMORY_BYTES as u64 + 1;
    let mut head = Vec::with_capacity(INFLATE_IN_MEMORY_BYTES + 1);
    if let Err(e) = (&mut inflated).take(limit).read_to_end(&mut head) {
        // The scan holds the reason; the validator's answer is not used.
        return Err(ApiError::invalid_body(format!("cannot inflate the chunk: {e}")));
    }
    if head.len() <= INFLATE_IN_MEMORY_BYTES {
        return validate_chunk(&head);
    }
    let rest = std::io::Cursor::new(head).chain(inflated);
    validate_chunk_reader(BufReader::with_capacity(INFLATE_BUFFER_BYTES, rest))
}

fn refuse_failed_scan(scan: &mut ChunkScan) -> Result<(), ApiError> {
    let Some(failure) = scan.take_failure() else { return Ok(()) };
    Err(match failure {
        ScanFailure::TooLarge { max } => {
            ApiError::TooLarge { limit: LimitName::ReplayDecompressed, what: "decompressed body", max }
        }
        ScanFailure::TooDeep { max } => {
            ApiError::invalid_body(format!("the JSON nests deeper than {max} levels (OBSERVER_MAX_REPLAY_DEPTH)"))
        }
        ScanFailure::Source(e) => gzip_error(&e),
    })
}

#[cfg(test)]
mod tests;
