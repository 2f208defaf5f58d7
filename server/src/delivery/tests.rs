//! Worker tests against a fake Loki that decodes real push requests.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use prometheus_client::registry::Registry;
use prost::Message;
use tokio::{io::AsyncReadExt, time::Instant};

use super::{
    DeliveryHandle, Level, LogRecord, RecordSink,
    loki_push::PushRequest,
    worker::{Output, spawn_with},
};
use crate::{
    config::{Config, Settings},
    metrics::{
        DeliveryTarget, Metrics, PushFailureLabels, PushFailureReason, PushLabels, PushOutcome, RecordKind,
        UndeliveredLabels, UndeliveredReason,
    },
    spool::Spool,
};

/// A spool in a fresh directory (kept for the test's lifetime) and the
/// worker delivering it as `config` says.
fn start(config: &Config, metrics: Arc<Metrics>) -> (Spool, DeliveryHandle) {
    let dir = tempfile::tempdir().unwrap().keep();
    let target = if config.loki.is_some() { DeliveryTarget::Loki } else { DeliveryTarget::Stdout };
    let spool = Spool::open(&dir, 1 << 30, target, metrics).unwrap();
    let handle = super::start(config, spool.clone());
    (spool, handle)
}

#[derive(Default)]
struct Fake {
    /// Statuses to answer, in order; then `otherwise`.
    script: VecDeque<StatusCode>,
    otherwise: Option<StatusCode>,
    pushes: Vec<Push>,
}

struct Push {
    status: StatusCode,
    content_type: Option<String>,
    content_encoding: Option<String>,
    request: PushRequest,
}

impl Push {
    fn lines(&self) -> Vec<&str> {
        self.request.streams.iter().flat_map(|s| &s.entries).map(|e| e.line.as_str()).collect()
    }
}

type Shared = Arc<Mutex<Fake>>;

async fn receive(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let raw = snap::raw::Decoder::new().decompress_vec(&body).expect("snappy block body");
    let request = PushRequest::decode(raw.as_slice()).expect("protobuf PushRequest");
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let mut fake = fake.lock().unwrap();
    let status = fake.script.pop_front().or(fake.otherwise).unwrap_or(StatusCode::NO_CONTENT);
    fake.pushes.push(Push {
        status,
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        request,
    });
    (status, "entry for stream has timestamp too old")
}

async fn fake_loki(script: &[u16]) -> (SocketAddr, Shared) {
    let fake = Shared::default();
    fake.lock().unwrap().script = script.iter().map(|c| StatusCode::from_u16(*c).unwrap()).collect();
    let app = Router::new()
        .route("/loki/api/v1/push", post(receive))
        .route("/ready", axum::routing::get(|| async { "ready" }))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, fake)
}

fn config(loki: SocketAddr, batch_records: usize, batch_wait: &str) -> Config {
    Config::from_settings(&Settings {
        loki_url: Some(format!("http://{loki}")),
        environment: Some("test".into()),
        spool_max_bytes: Some("16MiB".into()),
        // The records are dated 2023 (fixed timestamps).
        spool_max_age: Some("36500days".into()),
        max_batch_items: Some("1".into()),
        loki_batch_records: Some(batch_records.to_string()),
        loki_batch_wait: Some(batch_wait.into()),
        ..Settings::default()
    })
    .unwrap()
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&mut Registry::default()))
}

fn pushes(metrics: &Metrics, outcome: PushOutcome) -> u64 {
    metrics.loki_pushes.get_or_create(&PushLabels { outcome }).get()
}

fn undelivered(metrics: &Metrics, reason: UndeliveredReason) -> u64 {
    metrics.records_undelivered.get_or_create(&UndeliveredLabels { reason }).get()
}

fn record(kind: RecordKind, level: Level, secs: u64, line: &str) -> LogRecord {
    LogRecord {
        kind,
        level,
        received_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs),
        line: line.to_owned(),
        metadata: vec![("session_id", format!("session-{line}"))],
    }
}

fn events(lines: &[&str]) -> Vec<LogRecord> {
    lines.iter().map(|line| record(RecordKind::Event, Level::Info, 0, line)).collect()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn records_arrive_grouped_by_stream_after_the_linger() {
    let (addr, fake) = fake_loki(&[]).await;
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 100, "50ms"), metrics.clone());
    queue
        .submit(vec![
            record(RecordKind::Event, Level::Info, 2, "event-late"),
            record(RecordKind::Error, Level::Error, 1, "error"),
            record(RecordKind::Event, Level::Info, 1, "event-early"),
            record(RecordKind::Replay, Level::Info, 3, "replay"),
        ])
        .await
        .unwrap();

    // No shutdown yet: the linger alone sends the batch.
    eventually("the linger push", || !fake.lock().unwrap().pushes.is_empty()).await;
    {
        let fake = fake.lock().unwrap();
        let push = &fake.pushes[0];
        assert_eq!(push.content_type.as_deref(), Some("application/x-protobuf"));
        assert_eq!(push.content_encoding, None);
        let streams: Vec<(&str, Vec<&str>)> = push
            .request
            .streams
            .iter()
            .map(|s| (s.labels.as_str(), s.entries.iter().map(|e| e.line.as_str()).collect()))
            .collect();
        let labels = |kind: &str, level: &str| {
            format!(r#"{{environment="test", kind="{kind}", level="{level}", service_name="observer"}}"#)
        };
        assert_eq!(
            streams,
            [
                (labels("error", "error").as_str(), vec!["error"]),
                (labels("event", "info").as_str(), vec!["event-early", "event-late"]),
                (labels("replay", "info").as_str(), vec!["replay"]),
            ]
        );
        let entry = &push.request.streams[1].entries[0];
        let ts = entry.timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_001, 0));
        assert_eq!(entry.structured_metadata[0].name, "session_id");
        assert_eq!(entry.structured_metadata[0].value, "session-event-early");
    }
    assert_eq!(metrics.records_delivered.get(), 4);
    assert_eq!(pushes(&metrics, PushOutcome::Sent), 1);
    assert_eq!(metrics.queue_records.get(), 0);
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unavailable_loki_is_retried_until_it_accepts() {
    let (addr, fake) = fake_loki(&[503, 503]).await;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let (queue, handle) = start(&config(addr, 100, "10ms"), metrics.clone());
    queue.submit(events(&["a", "b", "c"])).await.unwrap();
    handle.shutdown(Duration::from_secs(10)).await;

    let fake = fake.lock().unwrap();
    let statuses: Vec<u16> = fake.pushes.iter().map(|p| p.status.as_u16()).collect();
    assert_eq!(statuses, [503, 503, 204]);
    assert!(fake.pushes.iter().all(|p| p.request == fake.pushes[2].request), "the same batch is resent");
    assert_eq!(pushes(&metrics, PushOutcome::Retried), 2);
    assert_eq!(pushes(&metrics, PushOutcome::Sent), 1);
    assert_eq!(pushes(&metrics, PushOutcome::Failed), 0);
    assert_eq!(metrics.records_delivered.get(), 3);
    let exposition = crate::metrics::render(&registry).unwrap();
    assert!(exposition.contains("observer_loki_push_duration_seconds_count 3\n"), "every attempt is timed");
}

#[tokio::test]
async fn refused_batch_is_counted_and_the_next_one_goes() {
    let (addr, fake) = fake_loki(&[400]).await;
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 2, "1h"), metrics.clone());
    queue.submit(events(&["refused-1", "refused-2", "next-1", "next-2"])).await.unwrap();
    handle.shutdown(Duration::from_secs(5)).await;

    let fake = fake.lock().unwrap();
    assert_eq!(fake.pushes.len(), 2, "a 400 is not retried");
    assert_eq!(fake.pushes[1].lines(), ["next-1", "next-2"]);
    assert_eq!(pushes(&metrics, PushOutcome::Failed), 1);
    assert_eq!(pushes(&metrics, PushOutcome::Retried), 0);
    assert_eq!(undelivered(&metrics, UndeliveredReason::Rejected), 2);
    assert_eq!(
        metrics.loki_push_failures.get_or_create(&PushFailureLabels { reason: PushFailureReason::Invalid }).get(),
        1
    );
    assert_eq!(metrics.records_delivered.get(), 2);
}

#[tokio::test]
async fn loki_refusing_our_access_keeps_the_records_and_reports_it() {
    let (addr, fake) = fake_loki(&[401, 403, 404]).await;
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 100, "10ms"), metrics.clone());
    let health = handle.loki_health().expect("a Loki worker reports its health");
    assert_eq!(health.check().await, Ok(()));
    queue.submit(events(&["kept-1", "kept-2"])).await.unwrap();
    eventually("the first refusal", || !fake.lock().unwrap().pushes.is_empty()).await;
    let why = health.check().await.unwrap_err();
    assert!(why.contains("refuses our pushes") && why.contains("401"), "{why}");

    // 250 ms, 500 ms, 1 s of backoff later the fourth attempt is taken.
    eventually("delivery", || metrics.records_delivered.get() == 2).await;
    assert_eq!(health.check().await, Ok(()), "a successful push clears the refusal");
    handle.shutdown(Duration::from_secs(5)).await;

    let fake = fake.lock().unwrap();
    let statuses: Vec<u16> = fake.pushes.iter().map(|p| p.status.as_u16()).collect();
    assert_eq!(statuses, [401, 403, 404, 204]);
    let failures = |reason| metrics.loki_push_failures.get_or_create(&PushFailureLabels { reason }).get();
    assert_eq!(
        [PushFailureReason::Unauthorized, PushFailureReason::Forbidden, PushFailureReason::NotFound].map(failures),
        [1, 1, 1]
    );
    assert_eq!(undelivered(&metrics, UndeliveredReason::Rejected), 0);
}

#[tokio::test]
async fn newer_records_wait_behind_a_batch_being_retried() {
    let (addr, fake) = fake_loki(&[]).await;
    fake.lock().unwrap().otherwise = Some(StatusCode::SERVICE_UNAVAILABLE);
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 2, "1h"), metrics.clone());
    queue.submit(events(&["1", "2"])).await.unwrap();
    eventually("the first attempt", || !fake.lock().unwrap().pushes.is_empty()).await;

    // The worker is retrying; newer records are spooled behind the batch.
    queue.submit(events(&["3"])).await.unwrap();
    queue.submit(events(&["4", "5"])).await.unwrap();
    queue.submit(events(&["6"])).await.unwrap();
    assert_eq!(queue.record_backlog(), 6);
    assert!(fake.lock().unwrap().pushes.iter().all(|p| p.lines() == ["1", "2"]), "nothing overtakes the batch");

    fake.lock().unwrap().otherwise = None;
    handle.shutdown(Duration::from_secs(10)).await;

    let fake = fake.lock().unwrap();
    let delivered: Vec<&str> = fake.pushes.iter().filter(|p| p.status.is_success()).flat_map(|p| p.lines()).collect();
    assert_eq!(delivered, ["1", "2", "3", "4", "5", "6"], "in spool order");
    assert_eq!(metrics.records_delivered.get(), 6);
    assert!(pushes(&metrics, PushOutcome::Retried) >= 1);
    assert_eq!(queue.record_backlog(), 0);
}

#[tokio::test]
async fn shutdown_drains_everything() {
    let (addr, fake) = fake_loki(&[]).await;
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 3, "1h"), metrics.clone());
    let lines: Vec<String> = (0..10).map(|i| format!("line-{i:02}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    queue.submit(events(&refs)).await.unwrap();

    // The linger is an hour: only shutdown sends the last partial batch.
    handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(queue.record_backlog(), 0);

    let fake = fake.lock().unwrap();
    let sizes: Vec<usize> = fake.pushes.iter().map(|p| p.lines().len()).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    let received: Vec<&str> = fake.pushes.iter().flat_map(|p| p.lines()).collect();
    assert_eq!(received, refs);
    assert_eq!(metrics.records_delivered.get(), 10);
    assert_eq!(undelivered(&metrics, UndeliveredReason::Shutdown), 0);
}

#[tokio::test]
async fn shutdown_deadline_leaves_the_rest_spooled() {
    let (addr, fake) = fake_loki(&[]).await;
    fake.lock().unwrap().otherwise = Some(StatusCode::BAD_GATEWAY);
    let metrics = metrics();
    let (queue, handle) = start(&config(addr, 2, "1h"), metrics.clone());
    queue.submit(events(&["1", "2", "3"])).await.unwrap();
    eventually("the first attempt", || !fake.lock().unwrap().pushes.is_empty()).await;

    let started = Instant::now();
    handle.shutdown(Duration::from_millis(600)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(550) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(undelivered(&metrics, UndeliveredReason::Shutdown), 0, "nothing is lost");
    assert_eq!(metrics.records_delivered.get(), 0);
    assert_eq!(queue.record_backlog(), 3, "kept for the next start");
}

#[tokio::test]
async fn stdout_destination_writes_one_line_per_record() {
    let metrics = metrics();
    let dir = tempfile::tempdir().unwrap();
    let queue = Spool::open(dir.path(), 1 << 30, DeliveryTarget::Stdout, metrics.clone()).unwrap();
    let (writer, mut reader) = tokio::io::duplex(64 * 1024);
    let output = Output::Stdout(tokio::io::BufWriter::new(writer));
    let handle = spawn_with(queue.clone(), output, Duration::from_secs(100 * 365 * 86400));
    queue.submit(events(&[r#"{"a":1}"#, r#"{"b":2}"#])).await.unwrap();
    queue.submit(events(&[r#"{"c":3}"#])).await.unwrap();
    eventually_async(|| metrics.records_delivered.get() == 3).await;
    handle.shutdown(Duration::from_secs(5)).await;

    let mut out = vec![0u8; 64];
    let n = reader.read(&mut out).await.unwrap();
    assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    assert_eq!(queue.record_backlog(), 0);
}

async fn eventually_async(mut done: impl FnMut() -> bool) {
    eventually("delivery", &mut done).await;
}
