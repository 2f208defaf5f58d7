//! Hot-path benchmarks: replay chunk preparation (gunzip + rrweb validation
//! of a real ~850 KB recording) and error payload handling.
//!
//! `cargo bench -p observer --bench ingest`

use std::{hint::black_box, sync::Arc, time::SystemTime};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use observer::{
    config::{Config, Settings},
    error::LimitName,
    ingest::{
        decompress::gunzip_bounded,
        records::{RequestContext, error_record},
        replay_chunk::prepare_chunk,
        user_agent::UserAgentParser,
    },
    payload::{ErrorReport, parse_batch, validate_chunk},
};

const LARGE_CHUNK: &[u8] = include_bytes!("../../tests/fixtures/rrweb/large-chunk.json.gz");

const ERROR_JSON: &str = r#"{"message":"Cannot read properties of undefined (reading 'id')","type":"TypeError",
"stack":"TypeError: Cannot read properties of undefined (reading 'id')\n    at renderRow (https://app.example.com/assets/main.3f2a9c1b.js:10:5)\n    at Array.map (<anonymous>)\n    at renderTable (https://app.example.com/assets/main.3f2a9c1b.js:20:7)\n    at commitRoot (https://app.example.com/assets/vendor.1234abcd.js:1:9999)",
"url":"https://app.example.com/orders?id=7","session_id":"sess-0123456789","visitor_id":"visitor-0001",
"user_id":"user-42","release":"1.2.3","environment":"production","context":{"component":"OrdersTable","retry":2}}"#;

const CHROME_UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// Common browsers and a bot, for `user_agent_uncached`.
const COMMON_UAS: &[&str] = &[
    CHROME_UA,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

fn replay(c: &mut Criterion) {
    let limits = Config::from_settings(&Settings::default()).map(|c| c.limits).unwrap();
    let json = gunzip_bounded(LARGE_CHUNK, usize::MAX, LimitName::ReplayDecompressed).unwrap();
    let mut group = c.benchmark_group("replay_chunk");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("validate_only", |b| b.iter(|| validate_chunk(black_box(&json)).unwrap()));
    group.bench_function("gunzip_only", |b| {
        b.iter(|| gunzip_bounded(black_box(LARGE_CHUNK), 50 << 20, LimitName::ReplayDecompressed).unwrap())
    });
    let gzip = Bytes::from_static(LARGE_CHUNK);
    group.bench_function("gunzip_and_validate", |b| {
        b.iter(|| prepare_chunk(black_box(gzip.clone()), true, &limits).unwrap())
    });
    // Past the 1 MiB in-memory threshold a chunk is validated as a stream.
    let events = &json[1..json.len() - 1];
    let mut large = b"[".to_vec();
    for i in 0..5 {
        if i > 0 {
            large.push(b',');
        }
        large.extend_from_slice(events);
    }
    large.push(b']');
    let large_gzip = Bytes::from(gzip_default(&large));
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("gunzip_and_validate_streamed_4mb", |b| {
        b.iter(|| prepare_chunk(black_box(large_gzip.clone()), true, &limits).unwrap())
    });
    group.throughput(Throughput::Bytes(json.len() as u64));
    let plain = Bytes::from(json.clone());
    group.bench_function("validate_and_gzip_plain", |b| {
        b.iter(|| prepare_chunk(black_box(plain.clone()), false, &limits).unwrap())
    });
    group.finish();
}

fn gzip_default(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn errors(c: &mut Criterion) {
    let now = SystemTime::now();
    let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let parser = UserAgentParser::new(1000);
    let mut group = c.benchmark_group("error_report");
    group.bench_function("parse_and_validate", |b| {
        b.iter(|| parse_batch::<ErrorReport>(black_box(ERROR_JSON.as_bytes()), 100, now_ms).unwrap())
    });
    let reports = parse_batch::<ErrorReport>(ERROR_JSON.as_bytes(), 100, now_ms).unwrap();
    group.bench_function("build_record", |b| {
        b.iter(|| {
            let context = RequestContext::new(now, Some(CHROME_UA), parser.parse(CHROME_UA));
            error_record(black_box(&reports[0]), 0, &context)
        })
    });
    group.bench_function("user_agent_cached", |b| b.iter(|| Arc::clone(&parser.parse(black_box(CHROME_UA)))));
    // A one-entry cache and five user agents in turn: every parse misses.
    let uncached = UserAgentParser::new(1);
    let mut next = COMMON_UAS.iter().cycle();
    group.bench_function("user_agent_uncached", |b| {
        b.iter(|| Arc::clone(&uncached.parse(black_box(next.next().copied().unwrap_or(CHROME_UA)))))
    });
    group.finish();
}

criterion_group!(benches, replay, errors);
criterion_main!(benches);
