//! Streaming: bracket stripping at every split point, the decompression
//! cap, and whole sessions from an in-memory store.

use std::io::Write;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::store::{ChunkMeta, memory::MemoryStore};

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap().into()
}

/// Feeds `json` split at `at` and returns the inner part.
fn strip(json: &str, at: usize) -> io::Result<(String, bool)> {
    let mut inner = ArrayInner::default();
    let mut out = Vec::new();
    inner.feed(&json.as_bytes()[..at], &mut out)?;
    inner.feed(&json.as_bytes()[at..], &mut out)?;
    let had = inner.finish()?;
    Ok((String::from_utf8(out).unwrap(), had))
}

#[test]
fn strips_brackets_at_every_split_point() {
    let json = " \n[ {\"a\":[1,[2]]}, {\"b\":\"]\"} ] \n";
    for at in 0..=json.len() {
        let (inner, had) = strip(json, at).unwrap();
        assert_eq!(inner, "{\"a\":[1,[2]]}, {\"b\":\"]\"} ", "split at {at}");
        assert!(had);
    }
    for at in 0..=4 {
        assert_eq!(strip("[ ]\n", at).unwrap(), (String::new(), false));
    }
}

#[test]
fn refuses_what_is_not_an_array() {
    for bad in ["{\"a\":1}", "[1,2", "", "[1] x", "x[1]"] {
        assert!(strip(bad, bad.len() / 2).is_err(), "{bad:?}");
    }
}

#[test]
fn gunzip_pieces_are_bounded() {
    let data = vec![b'a'; 200_000];
    let pieces: Vec<Bytes> = gunzip_pieces(gzip(&data), 200_000).collect::<io::Result<_>>().unwrap();
    assert!(pieces.iter().all(|p| p.len() <= PIECE));
    assert_eq!(pieces.concat(), data);
    let err = gunzip_pieces(gzip(&data), 199_999).collect::<io::Result<Vec<_>>>().unwrap_err();
    assert!(err.to_string().contains("OBSERVER_MAX_REPLAY_DECOMPRESSED"), "{err}");
    assert!(gunzip_pieces(Bytes::from_static(b"not gzip"), 10).collect::<io::Result<Vec<_>>>().is_err());
}

async fn stream_all(chunks: Vec<(u32, Option<&str>)>, seqs: Vec<u32>) -> Vec<io::Result<Bytes>> {
    // `None`: the chunk is listed but reading it fails.
    let meta = ChunkMeta { first_timestamp: 1, last_timestamp: 2, events: 1 };
    let store = chunks.into_iter().fold(MemoryStore::default(), |store, (seq, json)| match json {
        Some(json) => store.with_chunk("session-stream", seq, meta, gzip(json.as_bytes())),
        None => store.with_failing_chunk("session-stream", seq, meta),
    });
    let id = SessionId::parse("session-stream").unwrap();
    session_events(Arc::new(store), id, seqs, 1 << 20).collect().await
}

fn joined(items: Vec<io::Result<Bytes>>) -> Value {
    let bytes: Vec<u8> = items.into_iter().map(Result::unwrap).flat_map(|b| b.to_vec()).collect();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

#[tokio::test]
async fn session_is_one_array_in_seq_order() {
    let big: Vec<Value> =
        (0..5000).map(|i| json!({"type": 3, "timestamp": i, "data": {"text": "x".repeat(20)}})).collect();
    let big_json = serde_json::to_string(&big).unwrap();
    let items = stream_all(
        vec![
            (0, Some("[{\"n\":0},{\"n\":1}]")),
            (1, Some(" [ ] ")),
            (2, Some(&big_json)),
            (3, Some("[\n{\"n\":3}\n]\n")),
        ],
        vec![0, 1, 2, 3],
    )
    .await;
    let mut expected = vec![json!({"n": 0}), json!({"n": 1})];
    expected.extend(big);
    expected.push(json!({"n": 3}));
    assert_eq!(joined(items), Value::Array(expected));
}

#[tokio::test]
async fn gaps_are_skipped_and_an_empty_list_is_an_empty_array() {
    assert_eq!(joined(stream_all(vec![(2, Some("[1]"))], vec![0, 1, 2]).await), json!([1]));
    assert_eq!(joined(stream_all(vec![], vec![]).await), json!([]));
}

#[tokio::test]
async fn failures_end_the_stream_with_an_error() {
    for chunks in [vec![(0, Some("[1]")), (1, None)], vec![(0, Some("[1]")), (1, Some("{\"not\":\"array\"}"))]] {
        let items = stream_all(chunks, vec![0, 1]).await;
        assert!(items.last().unwrap().is_err(), "{items:?}");
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1, "nothing after the error");
    }
}
