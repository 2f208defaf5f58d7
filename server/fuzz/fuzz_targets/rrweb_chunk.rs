//! Replay chunks sent as plain JSON and the same bytes sent as gzip must be
//! judged alike: the streaming (gzip) path and the in-memory path agree on
//! accept/refuse, on the summary and on the content hash. Never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use observer::{
    config::{Config, Limits, Settings},
    ingest::replay_chunk::prepare_chunk,
};

fn limits() -> Limits {
    let mut limits = Config::from_settings(&Settings::default()).map(|c| c.limits).unwrap_or_else(|e| panic!("{e}"));
    // Small bounds, so that the fuzzer reaches them.
    limits.max_replay_decompressed = 64 * 1024;
    limits.max_replay_depth = 64;
    limits
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fuzz_target!(|json: &[u8]| {
    // A body that starts with the gzip magic bytes is taken as gzip: that
    // is the gzip_reader target's ground.
    if json.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let limits = limits();
    let plain = prepare_chunk(json.to_vec().into(), false, &limits);
    let zipped = prepare_chunk(gzip(json).into(), true, &limits);
    match (&plain, &zipped) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.summary, b.summary);
            assert_eq!(a.content_hash, b.content_hash);
            assert_eq!(a.decompressed_bytes, b.decompressed_bytes);
            assert!(b.decompressed_bytes <= limits.max_replay_decompressed);
        }
        (Err(a), Err(b)) => assert_eq!(a.status(), b.status(), "{a} / {b}"),
        _ => panic!("plain and gzip disagree: {:?} / {:?}", plain.as_ref().err(), zipped.as_ref().err()),
    }
});
