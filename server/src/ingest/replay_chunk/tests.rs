use std::io::Write;

use flate2::{Compression, write::GzEncoder};

use super::*;
use crate::config::{Config, Settings};

fn limits(decompressed: usize, depth: usize) -> Limits {
    let mut limits = Config::from_settings(&Settings::default()).map(|c| c.limits).unwrap();
    limits.max_replay_decompressed = decompressed;
    limits.max_replay_depth = depth;
    limits
}

fn gzip_with(data: &[u8], level: Compression) -> Bytes {
    let mut e = GzEncoder::new(Vec::new(), level);
    e.write_all(data).unwrap();
    e.finish().unwrap().into()
}

fn gzip(data: &[u8]) -> Bytes {
    gzip_with(data, Compression::default())
}

/// A valid chunk of exactly `len` bytes (padding inside a string).
fn chunk_of_len(len: usize) -> Vec<u8> {
    let head = br#"[{"type":3,"timestamp":1,"data":{"pad":""#;
    let tail = br#""}}]"#;
    let mut json = head.to_vec();
    json.resize(len - tail.len(), b'x');
    json.extend_from_slice(tail);
    json
}

fn nested(depth: usize) -> Vec<u8> {
    // The array and the event object are two levels; `data` adds the rest.
    let inner = depth - 2;
    let mut json = br#"[{"type":3,"timestamp":1,"data":"#.to_vec();
    json.extend(std::iter::repeat_n(b'[', inner));
    json.extend(std::iter::repeat_n(b']', inner));
    json.extend_from_slice(b"}]");
    json
}

fn prepare(body: Bytes, limits: &Limits) -> Result<PreparedChunk, ApiError> {
    prepare_chunk(body, false, limits)
}

#[test]
fn gzip_is_validated_and_stored_as_sent() {
    let json = br#"[{"type":4,"data":{"href":"https://a.example/"},"timestamp":5},{"type":3,"timestamp":9}]"#;
    let body = gzip(json);
    let chunk = prepare(body.clone(), &limits(1 << 20, 100)).unwrap();
    assert!(chunk.was_gzip);
    assert_eq!(chunk.gzip, body);
    assert_eq!((chunk.received_bytes, chunk.decompressed_bytes), (body.len(), json.len()));
    assert_eq!(chunk.summary.events, 2);
    assert_eq!(chunk.summary.meta_href.as_deref(), Some("https://a.example/"));
}

#[test]
fn decompressed_size_at_limit_and_one_over() {
    let json = chunk_of_len(100_000);
    assert!(prepare(gzip(&json), &limits(100_000, 100)).is_ok());
    let over = prepare(gzip(&json), &limits(99_999, 100)).unwrap_err();
    assert!(matches!(over, ApiError::TooLarge { limit: LimitName::ReplayDecompressed, max: 99_999, .. }), "{over:?}");
    // Plain JSON is held to the same cap.
    assert!(prepare(json.clone().into(), &limits(100_000, 100)).is_ok());
    assert!(matches!(prepare(json.into(), &limits(99_999, 100)), Err(ApiError::TooLarge { .. })));
}

#[test]
fn bomb_stops_at_the_limit() {
    // 64 MiB of one byte inside a valid-looking string: ~64 KB of gzip.
    let mut json = br#"[{"type":3,"timestamp":1,"data":""#.to_vec();
    json.resize(64 << 20, b'a');
    let bomb = gzip(&json);
    drop(json);
    assert!(bomb.len() < 200_000);
    let err = prepare(bomb, &limits(1 << 20, 100)).unwrap_err();
    assert!(matches!(err, ApiError::TooLarge { .. }), "{err:?}");
}

#[test]
fn garbage_and_truncated_gzip() {
    let err = prepare(Bytes::from_static(b"\x1f\x8bnot gzip at all"), &limits(1 << 20, 100)).unwrap_err();
    assert!(err.to_string().contains("not valid gzip"), "{err}");
    let whole = gzip(&chunk_of_len(10_000));
    let err = prepare(whole.slice(..whole.len() / 2), &limits(1 << 20, 100)).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // Valid gzip, invalid JSON inside.
    let err = prepare(gzip(b"[{\"type\":3,"), &limits(1 << 20, 100)).unwrap_err();
    assert!(err.to_string().contains("not a JSON array"), "{err}");
    let err = prepare(gzip(br#"[{"type":9,"timestamp":1}]"#), &limits(1 << 20, 100)).unwrap_err();
    assert!(matches!(&err, ApiError::Invalid { details, .. } if details[0].field == "type"), "{err:?}");
}

#[test]
fn trailing_garbage_after_the_gzip_member_is_refused() {
    let mut body = gzip(br#"[{"type":3,"timestamp":1}]"#).to_vec();
    body.extend_from_slice(b"junk");
    assert!(matches!(prepare(body.into(), &limits(1 << 20, 100)), Err(ApiError::Invalid { .. })));
}

#[test]
fn multi_member_gzip() {
    let mut body = gzip(br#"[{"type":3,"#).to_vec();
    body.extend_from_slice(&gzip(br#""timestamp":1}]"#));
    let chunk = prepare(body.into(), &limits(1 << 20, 100)).unwrap();
    assert_eq!(chunk.summary.events, 1);
    assert_eq!(
        chunk.content_hash,
        prepare(gzip(br#"[{"type":3,"timestamp":1}]"#), &limits(1 << 20, 100)).unwrap().content_hash
    );
}

#[test]
fn depth_at_and_over_the_bound() {
    for gzipped in [false, true] {
        let body = |depth| if gzipped { gzip(&nested(depth)) } else { Bytes::from(nested(depth)) };
        assert!(prepare(body(50), &limits(1 << 20, 50)).is_ok(), "gzip: {gzipped}");
        let err = prepare(body(51), &limits(1 << 20, 50)).unwrap_err();
        assert!(err.to_string().contains("deeper than 50 levels"), "gzip: {gzipped}: {err}");
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn very_deep_chunks_are_refused_quickly() {
    let started = std::time::Instant::now();
    for depth in [10_000, 2_000_000] {
        assert!(matches!(prepare(gzip(&nested(depth)), &limits(50 << 20, 1000)), Err(ApiError::Invalid { .. })));
        assert!(matches!(prepare(nested(depth).into(), &limits(50 << 20, 1000)), Err(ApiError::Invalid { .. })));
    }
    // Generous: the scan is linear and stops at depth 1001.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn hash_is_of_the_decompressed_json() {
    let json = chunk_of_len(50_000);
    let l = limits(1 << 20, 100);
    let fast = prepare(gzip_with(&json, Compression::fast()), &l).unwrap();
    let best = prepare(gzip_with(&json, Compression::best()), &l).unwrap();
    let plain = prepare(json.clone().into(), &l).unwrap();
    assert_ne!(fast.gzip, best.gzip);
    assert_eq!(fast.content_hash, best.content_hash);
    assert_eq!(fast.content_hash, plain.content_hash);
    assert_eq!(fast.content_hash, xxhash_rust::xxh3::xxh3_64(&json));
    let mut other = json;
    other[45] = b'y';
    assert_ne!(prepare(other.into(), &l).unwrap().content_hash, plain.content_hash);
}

#[test]
fn plain_json_is_compressed() {
    let json = chunk_of_len(10_000);
    let chunk = prepare(json.clone().into(), &limits(1 << 20, 100)).unwrap();
    assert!(!chunk.was_gzip);
    assert!(chunk.gzip.len() < json.len() / 10);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut MultiGzDecoder::new(&chunk.gzip[..]), &mut out).unwrap();
    assert_eq!(out, json);
}

#[test]
fn chunks_past_the_in_memory_threshold_are_streamed_with_the_same_checks() {
    let l = limits(8 << 20, 100);
    let big = chunk_of_len(3 * INFLATE_IN_MEMORY_BYTES);
    let chunk = prepare(gzip(&big), &l).unwrap();
    assert_eq!(chunk.decompressed_bytes, big.len());
    assert_eq!(chunk.content_hash, xxhash_rust::xxh3::xxh3_64(&big));
    assert_eq!(chunk.summary.events, 1);

    // The problem sits after the first megabyte, in the streamed part.
    let tail_at = big.len() - 4; // before `"}}]`
    let with_tail = |tail: &[u8]| {
        let mut json = big[..tail_at].to_vec();
        json.extend_from_slice(tail);
        gzip(&json)
    };
    let bad_event = with_tail(br#""}},{"type":9,"timestamp":1}]"#);
    let err = prepare(bad_event, &l).unwrap_err();
    assert!(matches!(&err, ApiError::Invalid { details, .. } if details[0].index == Some(1)), "{err:?}");
    let too_deep = with_tail(format!("\"}}}},{}]", "[".repeat(200)).as_bytes());
    assert!(prepare(too_deep, &l).unwrap_err().to_string().contains("deeper than 100"));
    let truncated = gzip(&big);
    let err = prepare(truncated.slice(..truncated.len() - 100), &l).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let err = prepare(gzip(&big), &limits(2 * INFLATE_IN_MEMORY_BYTES, 100)).unwrap_err();
    assert!(matches!(err, ApiError::TooLarge { .. }), "{err:?}");
}
