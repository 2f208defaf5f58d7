//! Loki's push API: wire types, encoding, one HTTP call and its retry rule.
//!
//! `POST {loki}/loki/api/v1/push` with `Content-Type: application/x-protobuf`
//! and a body that is a `logproto.PushRequest` compressed with snappy's
//! *block* format (not the framed/stream format). Loki's distributor
//! (`pkg/loghttp/push/push.go`, `ParseLokiRequest`) snappy-decodes every
//! non-JSON body itself, so no `Content-Encoding` header is sent; it accepts
//! `Content-Encoding: snappy` only as a no-op for clients that add it anyway.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use reqwest::{StatusCode, header::CONTENT_TYPE};
use url::Url;

use super::LogRecord;
use crate::metrics::PushFailureReason;

/// Time limit of one push; a slow Loki is retried like an unreachable one.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit of the readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Enough of Loki's error text to say which limit or label was refused.
const ERROR_BODY_CHARS: usize = 500;

// Wire types written from Loki's `pkg/push/push.proto` (package `logproto`).
// Only the fields a client sends are declared; prost skips the others.

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// Prometheus selector syntax, e.g. `{kind="error", level="error"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Loki computes this itself; clients leave it 0.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<prost_types::Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Why one push did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("Loki answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("cannot reach Loki: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("cannot compress the push request: {0}")]
    Encode(#[source] snap::Error),
}

/// Whether sending the same request again may succeed.
///
/// 429 and 5xx (but 501) are Loki or the path to it being overloaded or
/// restarting. 401, 403 and 404 say our credentials, tenant or URL are
/// wrong ([`refuses_access`]): no retry fixes that by itself, but an
/// operator will, and the records must survive until then, so they are
/// retried too (with the capped backoff, while readiness reports it). Other
/// 4xx mean Loki refused the content (400: too old, too long, bad labels),
/// which no retry fixes. 408 is a timeout like any other. Transport errors
/// are all retried: with a validated URL they are connection failures and
/// timeouts.
pub fn is_retriable(error: &PushError) -> bool {
    match error {
        PushError::Status { status, .. } => match *status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => true,
            StatusCode::NOT_IMPLEMENTED => false,
            status => status.is_server_error() || refuses_status(status),
        },
        PushError::Transport(_) => true,
        PushError::Encode(_) => false,
    }
}

/// Whether Loki refused us rather than the content: 401, 403, 404.
pub fn refuses_access(error: &PushError) -> bool {
    matches!(error, PushError::Status { status, .. } if refuses_status(*status))
}

fn refuses_status(status: StatusCode) -> bool {
    matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
}

/// The metrics label of a failed push.
pub fn failure_reason(error: &PushError) -> PushFailureReason {
    match error {
        PushError::Status { status, .. } => match *status {
            StatusCode::UNAUTHORIZED => PushFailureReason::Unauthorized,
            StatusCode::FORBIDDEN => PushFailureReason::Forbidden,
            StatusCode::NOT_FOUND => PushFailureReason::NotFound,
            StatusCode::TOO_MANY_REQUESTS => PushFailureReason::RateLimited,
            status if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED => {
                PushFailureReason::Unavailable
            }
            StatusCode::REQUEST_TIMEOUT => PushFailureReason::Unavailable,
            _ => PushFailureReason::Invalid,
        },
        PushError::Transport(_) => PushFailureReason::Transport,
        PushError::Encode(_) => PushFailureReason::Invalid,
    }
}

/// One push: an encoded body and how many records it carries.
#[derive(Debug, Clone)]
pub struct LokiRequest {
    pub records: usize,
    /// Snappy-compressed protobuf; `Bytes` so retries resend without copying.
    pub body: Bytes,
}

impl LokiRequest {
    /// Encodes streams, each given as its label string and its records.
    /// Entries are sorted by time within a stream because Loki rejects
    /// out-of-order entries when `unordered_writes` is off.
    pub fn encode(streams: Vec<(String, Vec<LogRecord>)>) -> Result<LokiRequest, PushError> {
        let mut records = 0;
        let mut request = PushRequest { streams: Vec::with_capacity(streams.len()) };
        for (labels, mut stream) in streams {
            stream.sort_by_key(|record| record.received_at);
            records += stream.len();
            let entries = stream.into_iter().map(entry).collect();
            request.streams.push(StreamAdapter { labels, entries, hash: 0 });
        }
        let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).map_err(PushError::Encode)?;
        Ok(LokiRequest { records, body: Bytes::from(body) })
    }
}

fn entry(record: LogRecord) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(prost_types::Timestamp::from(record.received_at)),
        line: record.line,
        structured_metadata: record
            .metadata
            .into_iter()
            .map(|(name, value)| LabelPairAdapter { name: name.to_owned(), value })
            .collect(),
    }
}

/// Renders labels as a Prometheus selector, sorted by name, the form Loki
/// parses in `StreamAdapter.labels`.
pub fn label_string(labels: &[(&str, &str)]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort_by_key(|(name, _)| *name);
    let mut out = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// `base` with `path` appended, keeping any path prefix of `base` (Loki
/// behind a reverse proxy at `/loki-gw/`), which `Url::join` would replace.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// Sends push requests to one Loki.
#[derive(Debug, Clone)]
pub struct LokiClient {
    http: reqwest::Client,
    push_url: Url,
}

impl LokiClient {
    pub fn new(http: reqwest::Client, base: &Url) -> LokiClient {
        LokiClient { http, push_url: endpoint(base, "loki/api/v1/push") }
    }

    /// One HTTP call; any 2xx (Loki answers 204) is success.
    pub async fn push(&self, request: &LokiRequest) -> Result<(), PushError> {
        let response = self
            .http
            .post(self.push_url.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .timeout(PUSH_TIMEOUT)
            .body(request.body.clone())
            .send()
            .await
            .map_err(PushError::Transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(PushError::Status { status, body: error_text(response).await })
    }
}

/// The start of an error response, read only as far as it is shown.
async fn error_text(mut response: reqwest::Response) -> String {
    let mut raw = Vec::new();
    // Four bytes per char covers ERROR_BODY_CHARS of any UTF-8 text.
    while raw.len() < ERROR_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    match text.char_indices().nth(ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Readiness probe: `GET {base}/ready` answers 2xx once Loki accepts pushes.
pub async fn check_loki(client: &reqwest::Client, base: &Url) -> Result<(), String> {
    let response = client
        .get(endpoint(base, "ready"))
        .timeout(READY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("cannot reach Loki: {e}"))?;
    let status = response.status();
    if status.is_success() { Ok(()) } else { Err(format!("Loki /ready answered {status}")) }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::{delivery::Level, metrics::RecordKind};

    fn record(secs: u64, line: &str) -> LogRecord {
        LogRecord {
            kind: RecordKind::Error,
            level: Level::Error,
            received_at: SystemTime::UNIX_EPOCH + Duration::new(secs, 123_456_789),
            line: line.to_owned(),
            metadata: vec![("session_id", "s1".to_owned())],
        }
    }

    fn decode(body: &[u8]) -> PushRequest {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        PushRequest::decode(raw.as_slice()).unwrap()
    }

    #[test]
    fn push_request_round_trips_through_protobuf_and_snappy() {
        let labels = label_string(&[("kind", "error"), ("level", "error")]);
        let streams = vec![(labels.clone(), vec![record(20, "second"), record(10, "first")])];
        let request = LokiRequest::encode(streams).unwrap();
        assert_eq!(request.records, 2);

        let decoded = decode(&request.body);
        assert_eq!(decoded.streams.len(), 1);
        let stream = &decoded.streams[0];
        assert_eq!(stream.labels, labels);
        let lines: Vec<&str> = stream.entries.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["first", "second"], "entries are sorted by time");
        let ts = stream.entries[0].timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (10, 123_456_789));
        assert_eq!(
            stream.entries[0].structured_metadata,
            [LabelPairAdapter { name: "session_id".into(), value: "s1".into() }]
        );
    }

    #[test]
    fn body_is_snappy_block_format_not_framed() {
        let request = LokiRequest::encode(vec![("{a=\"b\"}".into(), vec![record(1, "x")])]).unwrap();
        // The framed format starts with a stream identifier chunk (0xff).
        assert_ne!(request.body[0], 0xff);
        assert!(snap::raw::decompress_len(&request.body).is_ok());
    }

    #[test]
    fn labels_are_sorted_and_escaped() {
        assert_eq!(
            label_string(&[("service_name", "observer"), ("environment", "prod"), ("kind", "error")]),
            r#"{environment="prod", kind="error", service_name="observer"}"#
        );
        assert_eq!(label_string(&[("a", "x\"y\\z\nw")]), r#"{a="x\"y\\z\nw"}"#);
        assert_eq!(label_string(&[]), "{}");
    }

    #[test]
    fn endpoint_keeps_a_path_prefix() {
        let push = |base: &str| endpoint(&Url::parse(base).unwrap(), "loki/api/v1/push").to_string();
        assert_eq!(push("http://loki:3100"), "http://loki:3100/loki/api/v1/push");
        assert_eq!(push("http://gw/prefix/"), "http://gw/prefix/loki/api/v1/push");
        assert_eq!(push("http://gw/prefix"), "http://gw/prefix/loki/api/v1/push");
    }

    #[test]
    fn retry_decisions() {
        use PushFailureReason::*;
        let status = |code: u16| PushError::Status { status: StatusCode::from_u16(code).unwrap(), body: String::new() };
        // (status, retried, Loki refuses our access, metrics reason)
        let table = [
            (429, true, false, RateLimited),
            (408, true, false, Unavailable),
            (500, true, false, Unavailable),
            (502, true, false, Unavailable),
            (503, true, false, Unavailable),
            (504, true, false, Unavailable),
            (401, true, true, Unauthorized),
            (403, true, true, Forbidden),
            (404, true, true, NotFound),
            (501, false, false, Invalid),
            (400, false, false, Invalid),
            (413, false, false, Invalid),
            (422, false, false, Invalid),
        ];
        for (code, retriable, refuses, reason) in table {
            let error = status(code);
            assert_eq!(is_retriable(&error), retriable, "status {code}");
            assert_eq!(refuses_access(&error), refuses, "status {code}");
            assert_eq!(failure_reason(&error), reason, "status {code}");
        }
        let too_large = PushError::Encode(snap::Error::TooBig { given: 1, max: 0 });
        assert!(!is_retriable(&too_large) && !refuses_access(&too_large));
        assert_eq!(failure_reason(&too_large), Invalid);
    }

    #[tokio::test]
    async fn connection_errors_are_retriable() {
        // A port that was just free: nothing listens, the connect is refused.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let client = LokiClient::new(reqwest::Client::new(), &Url::parse(&format!("http://{addr}")).unwrap());
        let request = LokiRequest::encode(vec![]).unwrap();
        let error = client.push(&request).await.unwrap_err();
        assert!(matches!(error, PushError::Transport(_)), "{error}");
        assert!(is_retriable(&error));
        assert_eq!(failure_reason(&error), PushFailureReason::Transport);
    }
}
