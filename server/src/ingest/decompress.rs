//! Bounded body reading and gzip decompression.
//!
//! Two separate caps: bytes as received (checked against `Content-Length`
//! up front and while the body streams in, before it is all buffered) and
//! bytes after decompression (checked while inflating, so a gzip bomb costs
//! at most the limit).

use std::io::Read;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt;

use super::inflight::Reservation;
use crate::error::{ApiError, LimitName};

/// The two magic bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads a whole request body, refusing more than `max` bytes, and grows
/// `reservation` (the in-flight budget) as the bytes arrive.
pub async fn read_body(
    body: Body,
    content_length: Option<u64>,
    max: usize,
    limit: LimitName,
    reservation: &mut Reservation,
) -> Result<Bytes, ApiError> {
    let mut reader = BodyReader::new(body, content_length, max, limit)?;
    reader.read_until(usize::MAX, reservation).await?;
    Ok(reader.into_bytes())
}

/// A request body read in steps (see the replay route: the first bytes
/// before a processing slot is taken, the rest after).
///
/// Frames are appended to one buffer as they arrive and dropped, so the
/// body is never held twice; the buffer is sized from `Content-Length` (at
/// most `max`) so it rarely grows (pages it never writes cost no memory).
pub struct BodyReader {
    body: Body,
    buffer: BytesMut,
    max: usize,
    limit: LimitName,
    ended: bool,
}

impl BodyReader {
    /// Refuses a `Content-Length` over `max` before reading anything.
    pub fn new(body: Body, content_length: Option<u64>, max: usize, limit: LimitName) -> Result<Self, ApiError> {
        refuse_declared_over(content_length, max, limit)?;
        let capacity = content_length.map_or(16 * 1024, |len| len as usize).min(max);
        Ok(BodyReader { body, buffer: BytesMut::with_capacity(capacity), max, limit, ended: false })
    }

    /// Reads until at least `bytes` are buffered or the body has ended.
    pub async fn read_until(&mut self, bytes: usize, reservation: &mut Reservation) -> Result<(), ApiError> {
        while !self.ended && self.buffer.len() < bytes {
            let Some(frame) = self.body.frame().await else {
                self.ended = true;
                break;
            };
            let frame = frame.map_err(|e| ApiError::invalid_body(format!("could not read the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if self.buffer.len() + data.len() > self.max {
                    return Err(ApiError::TooLarge { limit: self.limit, what: "request body", max: self.max });
                }
                reservation.grow_to(self.buffer.len() + data.len()).await?;
                self.buffer.extend_from_slice(&data);
            }
        }
        Ok(())
    }

    pub fn into_bytes(self) -> Bytes {
        self.buffer.freeze()
    }
}

/// Refuses a body whose `Content-Length` is over `max` without reading it.
fn refuse_declared_over(content_length: Option<u64>, max: usize, limit: LimitName) -> Result<(), ApiError> {
    match content_length {
        Some(len) if len > max as u64 => Err(ApiError::TooLarge { limit, what: "request body", max }),
        _ => Ok(()),
    }
}

/// The answer to a gzip stream that cannot be inflated.
pub fn gzip_error(e: &std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ApiError::invalid_body("gzip data is truncated")
    } else {
        ApiError::invalid_body(format!("body is not valid gzip: {e}"))
    }
}

/// Inflates a gzip body (one or more members) into at most `max` bytes.
pub fn gunzip_bounded(compressed: &[u8], max: usize, limit: LimitName) -> Result<Vec<u8>, ApiError> {
    // The gzip trailer states the uncompressed size (mod 2^32) of the last
    // member: a good capacity hint, never trusted beyond the limit.
    let hint = compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, |tail| u32::from_le_bytes(tail) as usize)
        // Deflate cannot expand more than ~1032:1; a larger claim is a lie.
        .min(compressed.len().saturating_mul(1032));
    let mut out = Vec::with_capacity(hint.clamp(compressed.len(), max.saturating_add(1)));
    // One byte more than the limit tells "exactly at the limit" from "over it".
    let mut reader = MultiGzDecoder::new(compressed).take((max as u64).saturating_add(1));
    match reader.read_to_end(&mut out) {
        Ok(_) if out.len() > max => Err(ApiError::TooLarge { limit, what: "decompressed body", max }),
        Ok(_) => Ok(out),
        Err(e) => Err(gzip_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const LIMIT: LimitName = LimitName::ReplayDecompressed;

    #[test]
    fn at_limit_and_one_over() {
        let data = vec![b'a'; 1000];
        assert_eq!(gunzip_bounded(&gzip(&data), 1000, LIMIT).unwrap(), data);
        assert!(matches!(gunzip_bounded(&gzip(&data), 999, LIMIT), Err(ApiError::TooLarge { .. })));
    }

    #[test]
    fn bomb_stops_at_limit() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(gunzip_bounded(&bomb, 1 << 20, LIMIT), Err(ApiError::TooLarge { .. })));
    }

    #[test]
    fn garbage_and_truncated() {
        assert!(matches!(gunzip_bounded(b"\x1f\x8bnot gzip at all", 100, LIMIT), Err(ApiError::Invalid { .. })));
        let g = gzip(&vec![b'x'; 10_000]);
        let err = gunzip_bounded(&g[..g.len() / 2], 1 << 20, LIMIT).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn multi_member() {
        let mut g = gzip(b"[1,");
        g.extend(gzip(b"2]"));
        assert_eq!(gunzip_bounded(&g, 100, LIMIT).unwrap(), b"[1,2]");
    }

    #[tokio::test]
    async fn read_body_limits() {
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(&mut Default::default()));
        let budget = super::super::inflight::InflightBudget::new(1 << 20, metrics.clone());
        let mut reservation = budget.empty().unwrap();
        let ok = read_body(Body::from(vec![1u8; 10]), None, 10, LimitName::JsonBody, &mut reservation).await.unwrap();
        assert_eq!(ok.len(), 10);
        assert!(metrics.inflight_body_bytes.get() > 0, "received bytes are reserved");
        let over = read_body(Body::from(vec![1u8; 11]), None, 10, LimitName::JsonBody, &mut reservation).await;
        assert!(matches!(over, Err(ApiError::TooLarge { .. })));
        let declared = read_body(Body::from(vec![1u8; 1]), Some(11), 10, LimitName::JsonBody, &mut reservation).await;
        assert!(matches!(declared, Err(ApiError::TooLarge { .. })));
    }
}
