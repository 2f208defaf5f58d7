//! Arbitrary bytes as a gzip replay chunk: truncated, corrupt, multi-member
//! or bomb-like streams get a refusal; what is accepted never inflates past
//! the limit. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    config::{Config, Settings},
    ingest::replay_chunk::prepare_chunk,
};

fuzz_target!(|body: &[u8]| {
    let mut limits = Config::from_settings(&Settings::default()).map(|c| c.limits).unwrap_or_else(|e| panic!("{e}"));
    limits.max_replay_decompressed = 256 * 1024;
    if let Ok(chunk) = prepare_chunk(body.to_vec().into(), true, &limits) {
        assert!(chunk.decompressed_bytes <= limits.max_replay_decompressed);
        assert!(chunk.was_gzip);
    }
});
