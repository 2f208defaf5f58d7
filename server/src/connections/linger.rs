//! Lingering close, as nginx does it (`lingering_close`).
//!
//! An answer sent before the request body was read (413 from
//! `Content-Length`, 401/403/415/429 from middleware) ends the exchange
//! with body bytes still on their way. Closing then makes the kernel send a
//! reset, which also throws away our answer in the client's receive buffer:
//! a client that writes its whole body before reading (Python's
//! `http.client`, many SDKs) sees "connection reset" instead of the refusal
//! and retries forever. So after the last answer the write side is shut
//! (the client sees the end of the answer) and whatever the client still
//! sends is read and thrown away, within a byte and a time bound, before
//! the socket is closed.

use std::time::Duration;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::{Instant, timeout_at},
};

use crate::config::Limits;

/// Longest a connection lingers in all.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// A client that sends nothing for this long is done sending.
const LINGER_QUIET: Duration = Duration::from_secs(2);

/// Bytes a lingering connection reads at least before giving up.
const LINGER_MIN_BYTES: usize = 64 * 1024 * 1024;

/// How many bytes one lingering connection may discard: twice the largest
/// body Observer accepts (so a body just over a limit is always drained),
/// and at least [`LINGER_MIN_BYTES`].
pub fn linger_bytes(limits: &Limits) -> usize {
    limits.max_replay_body.max(limits.max_json_body).saturating_mul(2).max(LINGER_MIN_BYTES)
}

/// Shuts the write side, then reads and discards until the client closes,
/// goes quiet, `max_bytes` are read or [`LINGER_TIME`] is up.
pub async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, max_bytes: usize) {
    let deadline = Instant::now() + LINGER_TIME;
    if !matches!(timeout_at(deadline, stream.shutdown()).await, Ok(Ok(()))) {
        return;
    }
    let mut discard = vec![0u8; 16 * 1024];
    let mut discarded = 0usize;
    while discarded < max_bytes {
        let quiet_until = deadline.min(Instant::now() + LINGER_QUIET);
        match timeout_at(quiet_until, stream.read(&mut discard)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(n)) => discarded += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn reads_what_the_client_still_sends_until_it_closes() {
        let (server, mut client) = tokio::io::duplex(1024);
        let lingering = tokio::spawn(linger(server, 1 << 20));
        // The server's side sees our whole body although its buffer is small.
        client.write_all(&vec![b'x'; 100_000]).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert!(answer.is_empty(), "the write side was shut");
        drop(client);
        tokio::time::timeout(Duration::from_secs(1), lingering).await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stops_when_the_client_goes_quiet_or_sends_too_much() {
        let (server, _client) = tokio::io::duplex(1024);
        let started = Instant::now();
        linger(server, 1 << 20).await;
        assert_eq!(started.elapsed(), LINGER_QUIET);

        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let lingering = tokio::spawn(linger(server, 1000));
        client.write_all(&[b'x'; 4096]).await.unwrap();
        lingering.await.unwrap();
        assert!(client.write_all(&[b'x'; 4096]).await.is_err(), "closed after max_bytes");
    }

    #[test]
    fn drains_twice_the_largest_body_and_at_least_64_mib() {
        let mut limits = crate::config::Config::from_settings(&Default::default()).unwrap().limits;
        limits.max_replay_body = 5 << 20;
        assert_eq!(linger_bytes(&limits), LINGER_MIN_BYTES);
        limits.max_replay_body = 100 << 20;
        assert_eq!(linger_bytes(&limits), 200 << 20);
    }
}
