//! Streaming decompressed replay data without holding it whole.
//!
//! - [`gunzip_pieces`]: one stored chunk, inflated 64 KiB at a time, failing
//!   past `OBSERVER_MAX_REPLAY_DECOMPRESSED`. Each piece is a bounded bit of
//!   CPU, so it runs inline on the runtime.
//! - [`session_events`]: a whole session as ONE JSON array: `[`, then each
//!   chunk's elements (its array's brackets stripped by [`ArrayInner`]) joined
//!   by `,`, then `]`. Chunks are fetched in seq order, a few ahead, so memory
//!   holds at most [`PREFETCH`] compressed chunks and one 64 KiB piece.
//!
//! A failure after the first byte (store error, corrupt chunk) ends the body
//! with an error, so the client sees a broken transfer, never a short array
//! that looks complete.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use futures_util::{Stream, StreamExt, stream};

use crate::payload::SessionId;
use crate::store::{ChunkObject, ReplayStore, StoreError};

/// Size of one decompressed piece.
const PIECE: usize = 64 * 1024;

/// Chunks fetched ahead of the one being sent.
const PREFETCH: usize = 4;

/// Inflates one gzip chunk piece by piece; more than `max` bytes is an error.
pub fn gunzip_pieces(gzip: Bytes, max: usize) -> GunzipPieces {
    GunzipPieces { decoder: MultiGzDecoder::new(io::Cursor::new(gzip)), total: 0, max, done: false }
}

pub struct GunzipPieces {
    decoder: MultiGzDecoder<io::Cursor<Bytes>>,
    total: usize,
    max: usize,
    done: bool,
}

impl Iterator for GunzipPieces {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let mut piece = vec![0u8; PIECE];
        let mut filled = 0;
        while filled < PIECE {
            match self.decoder.read(&mut piece[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        if filled == 0 {
            self.done = true;
            return None;
        }
        self.total += filled;
        if self.total > self.max {
            self.done = true;
            let message =
                format!("chunk decompresses to more than {} bytes (OBSERVER_MAX_REPLAY_DECOMPRESSED)", self.max);
            return Some(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
        }
        piece.truncate(filled);
        Some(Ok(piece.into()))
    }
}

/// Strips the outer `[` `]` of a JSON array arriving in pieces, passing its
/// elements through untouched (leading whitespace dropped). Only the
/// brackets are checked: the content was validated when it was stored.
#[derive(Debug, Default)]
pub struct ArrayInner {
    opened: bool,
    /// Whether an element byte was emitted (so a separator is due before the next chunk's).
    emitted: bool,
    /// Trailing bytes that may be the closing `]` (and whitespace after it).
    held: Vec<u8>,
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "stored chunk is not a JSON array")
}

impl ArrayInner {
    /// Appends to `out` what of `piece` is certainly inside the array.
    pub fn feed(&mut self, piece: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(piece);
        let mut body = &data[..];
        if !self.opened {
            let start = body.iter().position(|b| !b.is_ascii_whitespace());
            match start.map(|at| (at, body[at])) {
                None => return Ok(()),
                Some((at, b'[')) => {
                    self.opened = true;
                    body = &body[at + 1..];
                }
                Some(_) => return Err(malformed()),
            }
        }
        let cut = match body.iter().rposition(|b| !b.is_ascii_whitespace()) {
            Some(last) if body[last] == b']' => last,
            Some(_) => body.len(),
            None => 0,
        };
        let (inner, held) = body.split_at(cut);
        let inner = if self.emitted { inner } else { inner.trim_ascii_start() };
        if !inner.is_empty() {
            self.emitted = true;
            out.extend_from_slice(inner);
        }
        self.held = held.to_vec();
        Ok(())
    }

    /// Checks that the array was closed; true if it had elements.
    pub fn finish(self) -> io::Result<bool> {
        match self.held.split_first() {
            Some((b']', rest)) if self.opened && rest.iter().all(u8::is_ascii_whitespace) => Ok(self.emitted),
            _ => Err(malformed()),
        }
    }
}

/// The chunk being sent.
struct Current {
    seq: u32,
    pieces: GunzipPieces,
    inner: ArrayInner,
}

enum Phase {
    Open,
    Chunks,
    Close,
    Done,
}

struct State<F> {
    phase: Phase,
    fetched: F,
    current: Option<Current>,
    /// Whether any element went out (so the next chunk's starts with `,`).
    any: bool,
    session_id: SessionId,
    max: usize,
}

/// The events of `seqs` (in that order) of a session, as one JSON array.
pub fn session_events(
    store: Arc<dyn ReplayStore>,
    session_id: SessionId,
    seqs: Vec<u32>,
    max_decompressed: usize,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let id = session_id.clone();
    let fetched = stream::iter(seqs)
        .map(move |seq| {
            let (store, id) = (store.clone(), id.clone());
            async move { (seq, store.get_chunk(&id, seq).await) }
        })
        .buffered(PREFETCH)
        .boxed();
    let state = State { phase: Phase::Open, fetched, current: None, any: false, session_id, max: max_decompressed };
    stream::unfold(state, |mut st| async move {
        let item = next_piece(&mut st).await?;
        if item.is_err() {
            st.phase = Phase::Done;
        }
        Some((item, st))
    })
}

async fn next_piece<F>(st: &mut State<F>) -> Option<io::Result<Bytes>>
where
    F: Stream<Item = (u32, Result<Option<ChunkObject>, StoreError>)> + Unpin,
{
    loop {
        match st.phase {
            Phase::Open => {
                st.phase = Phase::Chunks;
                return Some(Ok(Bytes::from_static(b"[")));
            }
            Phase::Close => {
                st.phase = Phase::Done;
                return Some(Ok(Bytes::from_static(b"]")));
            }
            Phase::Done => return None,
            Phase::Chunks => {}
        }
        if let Some(current) = &mut st.current {
            match current.pieces.next() {
                Some(Ok(piece)) => {
                    let mut out = Vec::with_capacity(piece.len() + 1);
                    // A separator before this chunk's first element, if any came before.
                    let first = !current.inner_emitted();
                    if let Err(e) = current.inner.feed(&piece, &mut out) {
                        return Some(Err(chunk_error(&st.session_id, current.seq, e)));
                    }
                    if out.is_empty() {
                        continue;
                    }
                    if first && st.any {
                        out.insert(0, b',');
                    }
                    st.any = true;
                    return Some(Ok(out.into()));
                }
                Some(Err(e)) => return Some(Err(chunk_error(&st.session_id, current.seq, e))),
                None => {
                    let Some(done) = st.current.take() else { continue };
                    if let Err(e) = done.inner.finish() {
                        return Some(Err(chunk_error(&st.session_id, done.seq, e)));
                    }
                    continue;
                }
            }
        }
        match st.fetched.next().await {
            Some((seq, Ok(Some(chunk)))) => {
                st.current =
                    Some(Current { seq, pieces: gunzip_pieces(chunk.gzip, st.max), inner: ArrayInner::default() });
            }
            // Listed in the manifest but gone now: leave a gap, like the player.
            Some((seq, Ok(None))) => {
                tracing::warn!(session_id = st.session_id.as_str(), seq, "chunk vanished while streaming events");
            }
            Some((seq, Err(e))) => {
                tracing::warn!(session_id = st.session_id.as_str(), seq, error = %e, "replay store failed while streaming events");
                return Some(Err(io::Error::other(e)));
            }
            None => st.phase = Phase::Close,
        }
    }
}

impl Current {
    fn inner_emitted(&self) -> bool {
        self.inner.emitted
    }
}

fn chunk_error(session_id: &SessionId, seq: u32, e: io::Error) -> io::Error {
    tracing::warn!(session_id = session_id.as_str(), seq, error = %e, "cannot stream a stored chunk");
    e
}

#[cfg(test)]
mod tests;
