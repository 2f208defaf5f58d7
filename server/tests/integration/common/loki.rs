//! A stand-in for Loki's push endpoint that decodes what Observer really
//! sends: snappy-compressed protobuf `logproto.PushRequest`. The message
//! types are written here from Loki's `pkg/push/push.proto`, independently
//! of the server's own, so a wrong tag on either side fails the tests.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
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

/// One decoded log entry with its stream's labels.
#[derive(Debug, Clone)]
pub struct ReceivedEntry {
    pub labels: BTreeMap<String, String>,
    pub line: String,
    pub json: serde_json::Value,
    pub timestamp_nanos: i128,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<ReceivedEntry>,
    pushes: usize,
    /// Statuses to answer the next data pushes with, before 204s.
    scripted: VecDeque<StatusCode>,
    /// While set, every data push is answered with it (after `scripted`).
    refusing: Option<StatusCode>,
    content_types: Vec<String>,
    /// The headers of every request, server-log pushes and `/ready` included.
    headers: Vec<HeaderMap>,
}

#[derive(Clone)]
pub struct LokiReceiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

/// Parses a Prometheus-style label selector `{a="b", c="d\"e"}`.
pub fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let body = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')).expect("labels must be {…}");
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('='));
        assert_eq!(chars.next(), Some('"'), "label value must be quoted in {text}");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next().unwrap() {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim().to_owned(), value);
    }
    labels
}

async fn push(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let raw = snap::raw::Decoder::new().decompress_vec(&body).expect("push body must be snappy block format");
    let request: PushRequest = prost::Message::decode(raw.as_slice()).expect("push body must be a PushRequest");
    let mut inner = inner.lock().unwrap();
    inner.headers.push(headers.clone());
    // Scripted failures are for the data path; the server's own log shipper
    // (kind="server" only) is always answered normally.
    let server_logs_only = request.streams.iter().all(|s| s.labels.contains("kind=\"server\""));
    if !server_logs_only {
        inner.pushes += 1;
        inner
            .content_types
            .push(headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default());
        if let Some(status) = inner.scripted.pop_front().or(inner.refusing) {
            return status;
        }
    }
    for stream in request.streams {
        let labels = parse_labels(&stream.labels);
        for entry in stream.entries {
            let ts = entry.timestamp.expect("entries carry a timestamp");
            let json = serde_json::from_str(&entry.line).unwrap_or(serde_json::Value::Null);
            inner.entries.push(ReceivedEntry {
                labels: labels.clone(),
                json,
                line: entry.line,
                timestamp_nanos: ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128,
                metadata: entry.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect(),
            });
        }
    }
    StatusCode::NO_CONTENT
}

impl LokiReceiver {
    pub async fn start() -> LokiReceiver {
        LokiReceiver::start_on(0).await
    }

    /// A receiver on `port` (0: any free one), e.g. one a server was told
    /// about while nothing listened there: Loki coming up.
    pub async fn start_on(port: u16) -> LokiReceiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/loki/api/v1/push", post(push))
            .route(
                "/ready",
                get(|State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap| async move {
                    inner.lock().unwrap().headers.push(headers);
                    "ready"
                }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        LokiReceiver { inner, url }
    }

    /// The next `n` pushes are answered with `status` instead of being stored.
    pub fn script(&self, status: StatusCode, n: usize) {
        let mut inner = self.inner.lock().unwrap();
        inner.scripted.extend(std::iter::repeat_n(status, n));
    }

    /// Until called again with `None`, every data push is answered with
    /// `status` and not stored (a Loki refusing our credentials or tenant).
    pub fn refuse_with(&self, status: Option<StatusCode>) {
        self.inner.lock().unwrap().refusing = status;
    }

    /// The headers of every request so far (data and server-log pushes, `/ready`).
    pub fn request_headers(&self) -> Vec<HeaderMap> {
        self.inner.lock().unwrap().headers.clone()
    }

    pub fn entries(&self) -> Vec<ReceivedEntry> {
        self.inner.lock().unwrap().entries.clone()
    }

    pub fn pushes(&self) -> usize {
        self.inner.lock().unwrap().pushes
    }

    pub fn content_types(&self) -> Vec<String> {
        self.inner.lock().unwrap().content_types.clone()
    }

    /// Waits until `count` entries satisfy `filter` and returns them.
    pub async fn wait_for(&self, count: usize, filter: impl Fn(&ReceivedEntry) -> bool) -> Vec<ReceivedEntry> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<_> = self.entries().into_iter().filter(|e| filter(e)).collect();
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "expected {count} Loki entries, have {}: {found:?}", found.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Entries whose JSON line has `field == value`.
    pub fn with_field(&self, field: &str, value: &str) -> Vec<ReceivedEntry> {
        self.entries().into_iter().filter(|e| e.json.get(field).and_then(|v| v.as_str()) == Some(value)).collect()
    }
}

#[test]
fn label_parser() {
    let labels = parse_labels(r#"{a="b", kind="error", q="x\"y\\z"}"#);
    assert_eq!(labels["a"], "b");
    assert_eq!(labels["q"], "x\"y\\z");
}
