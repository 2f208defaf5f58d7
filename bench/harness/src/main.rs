//! Helpers for the load benchmark (`bench/load`):
//!
//! - `ceiling`: a no-op axum server answering Observer's three ingestion
//!   routes with 202 after reading the body — the most any axum server can do
//!   on this machine, so Observer's figures are reported as ratios to it.
//! - `loki`: a Loki push endpoint that decodes Observer's real pushes
//!   (snappy + protobuf `logproto.PushRequest`) and counts entries by `kind`
//!   label, so every accepted record can be counted back (`GET /count`).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The no-op HTTP ceiling.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:18090")]
        listen: String,
    },
    /// A counting Loki push receiver.
    Loki {
        #[arg(long, default_value = "127.0.0.1:18100")]
        listen: String,
    },
}

// Loki's `pkg/push/push.proto`, only as far as counting needs: prost skips
// the fields not declared here (timestamps, structured metadata).
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<Stream>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Stream {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, tag = "2")]
    line: String,
}

#[derive(Default)]
struct Counts {
    pushes: u64,
    bytes: u64,
    entries_by_kind: BTreeMap<String, u64>,
}

type Shared = Arc<Mutex<Counts>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (listen, app) = match Cli::parse().command {
        Command::Ceiling { listen } => (listen, ceiling()),
        Command::Loki { listen } => (listen, loki()),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("listening on {listen}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn ceiling() -> Router {
    async fn accept(body: Bytes) -> (StatusCode, &'static str) {
        std::hint::black_box(body.len());
        (StatusCode::ACCEPTED, "{\"accepted\":1}")
    }
    Router::new()
        .route("/api/observer/errors", post(accept))
        .route("/api/observer/events", post(accept))
        .route("/api/observer/replay-events", post(accept))
        .route("/healthz", get(|| async { "ok" }))
}

fn loki() -> Router {
    async fn push(State(counts): State<Shared>, body: Bytes) -> StatusCode {
        let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&body) else {
            return StatusCode::BAD_REQUEST;
        };
        let Ok(request) = <PushRequest as prost::Message>::decode(raw.as_slice()) else {
            return StatusCode::BAD_REQUEST;
        };
        let Ok(mut counts) = counts.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR;
        };
        counts.pushes += 1;
        counts.bytes += body.len() as u64;
        for stream in request.streams {
            let kind = kind_label(&stream.labels).unwrap_or("none").to_owned();
            *counts.entries_by_kind.entry(kind).or_default() += stream.entries.len() as u64;
        }
        StatusCode::NO_CONTENT
    }
    async fn count(State(counts): State<Shared>) -> Json<serde_json::Value> {
        let counts = counts.lock().map(|c| {
            serde_json::json!({"pushes": c.pushes, "bytes": c.bytes, "entries": c.entries_by_kind})
        });
        Json(counts.unwrap_or_default())
    }
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/ready", get(|| async { "ready" }))
        .route("/count", get(count))
        .with_state(Shared::default())
}

/// The value of `kind` in a `{a="b", kind="error"}` label set.
fn kind_label(labels: &str) -> Option<&str> {
    let start = labels.find("kind=\"")? + "kind=\"".len();
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}
