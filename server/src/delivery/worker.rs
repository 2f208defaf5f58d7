//! The delivery worker: reads records from the disk spool oldest first,
//! pushes them to Loki in batches (or writes them to stdout), and deletes
//! them from the spool only once that succeeded.
//!
//! One worker, one batch at a time, in spool order: a stream's backlog is
//! always delivered before its newer records, and while a push is retried
//! nothing newer overtakes it. On shutdown it keeps delivering until the
//! spool is empty or the deadline passes; what is left stays spooled for
//! the next start.

use std::{
    collections::HashMap,
    future::Future,
    io,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    io::{AsyncWrite, AsyncWriteExt, BufWriter},
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep, sleep_until},
};

use super::{
    Level, LogRecord,
    loki_auth::{self, LokiHealth, PushRefusal},
    loki_push::{self, LokiClient, LokiRequest, PushError},
};
use crate::{
    config::LokiConfig,
    metrics::{DeliveryFailure, Metrics, PushOutcome, RecordKind, UndeliveredReason},
    spool::{Spool, db::SpooledRecord},
};

/// First wait after a failed push; it doubles up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between attempts, so a recovered Loki is used soon.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Records written to stdout per flush.
const STDOUT_BATCH: usize = 1000;
const STDOUT_BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// How often records are checked against `OBSERVER_SPOOL_MAX_AGE`, and the
/// longest an idle worker sleeps.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);
/// How long `shutdown` waits past its deadline for a worker that does not
/// stop by itself (it should, every wait in it is bounded by the deadline).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Stops delivery; returned by `start`.
#[derive(Debug)]
pub struct DeliveryHandle {
    stop: watch::Sender<Option<Instant>>,
    task: JoinHandle<()>,
    loki: Option<LokiHealth>,
}

impl DeliveryHandle {
    /// The readiness probe of the Loki this worker pushes to, which also
    /// reports Loki refusing our pushes; `None` for stdout.
    pub fn loki_health(&self) -> Option<LokiHealth> {
        self.loki.clone()
    }

    /// Delivers what is spooled, retrying, until the spool is empty or
    /// `deadline` has passed. Whatever is left stays in the spool.
    pub async fn shutdown(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        let _ = self.stop.send(Some(until));
        match tokio::time::timeout_at(until + SHUTDOWN_GRACE, self.task).await {
            Ok(Ok(())) => tracing::info!("delivery stopped"),
            Ok(Err(error)) => tracing::error!(%error, "delivery worker failed; its records stay spooled"),
            Err(_) => tracing::error!("delivery worker did not stop by the shutdown deadline"),
        }
    }
}

/// The Loki labels every stream shares, plus a stream's own.
#[derive(Debug, Clone)]
pub(super) struct StreamLabels {
    pub service_name: String,
    pub environment: Option<String>,
}

impl StreamLabels {
    fn render(&self, kind: RecordKind, level: Level) -> String {
        let mut labels =
            vec![("service_name", self.service_name.as_str()), ("kind", kind.as_str()), ("level", level.as_str())];
        if let Some(environment) = &self.environment {
            labels.push(("environment", environment));
        }
        loki_push::label_string(&labels)
    }
}

/// Where records go, and how one batch gets there.
pub(super) enum Output<W> {
    Loki { config: Box<LokiConfig>, labels: StreamLabels, refusal: PushRefusal, client: Option<LokiClient> },
    Stdout(BufWriter<W>),
}

/// What became of a batch.
enum Done {
    /// Delivered, or refused for good (counted and logged): delete it.
    Finished,
    /// The shutdown deadline passed first: it stays spooled.
    Stopped,
}

/// Spawns the worker: Loki when configured, stdout otherwise.
pub(super) fn spawn(spool: Spool, loki: Option<LokiConfig>, labels: StreamLabels, max_age: Duration) -> DeliveryHandle {
    let refusal = PushRefusal::default();
    let health = loki.as_ref().map(|config| LokiHealth::new(config, refusal.clone()));
    let mut handle = match loki {
        Some(config) => spawn_with::<tokio::io::Stdout>(
            spool,
            Output::Loki { config: Box::new(config), labels, refusal, client: None },
            max_age,
        ),
        None => spawn_with(spool, Output::Stdout(BufWriter::new(tokio::io::stdout())), max_age),
    };
    handle.loki = health;
    handle
}

pub(super) fn spawn_with<W: AsyncWrite + Unpin + Send + 'static>(
    spool: Spool,
    output: Output<W>,
    max_age: Duration,
) -> DeliveryHandle {
    let (stop, stopped) = watch::channel(None);
    let worker = Worker { spool, output, stop: stopped, stop_closed: false, max_age };
    DeliveryHandle { stop, task: tokio::spawn(worker.run()), loki: None }
}

struct Worker<W> {
    spool: Spool,
    output: Output<W>,
    stop: watch::Receiver<Option<Instant>>,
    /// The handle was dropped without a shutdown: deliver on, no deadline.
    stop_closed: bool,
    max_age: Duration,
}

impl<W: AsyncWrite + Unpin> Worker<W> {
    fn metrics(&self) -> Arc<Metrics> {
        self.spool.metrics().clone()
    }

    fn deadline(&self) -> Option<Instant> {
        *self.stop.borrow()
    }

    /// Runs `fut` unless the shutdown deadline passes first (`None`).
    async fn watch<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            let deadline = self.deadline();
            tokio::select! {
                biased;
                out = &mut fut => return Some(out),
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => return None,
                changed = self.stop.changed(), if !self.stop_closed => self.stop_closed = changed.is_err(),
            }
        }
    }

    /// Waits for `fut`, or until shutdown starts (or its deadline is moved).
    async fn wait_or_stop(&mut self, fut: impl Future<Output = ()>) {
        if self.stop_closed {
            return fut.await;
        }
        tokio::select! {
            () = fut => {}
            changed = self.stop.changed() => self.stop_closed = changed.is_err(),
        }
    }

    fn limits(&self) -> (usize, u64, Option<Duration>) {
        match &self.output {
            Output::Loki { config, .. } => (config.batch_records, config.batch_bytes as u64, Some(config.batch_wait)),
            Output::Stdout(_) => (STDOUT_BATCH, STDOUT_BATCH_BYTES, None),
        }
    }

    async fn run(mut self) {
        let mut expired_at: Option<Instant> = None;
        // A partial batch waiting for more records (`batch_wait`): kept
        // between reads, so each record is read from the spool once.
        let mut batch: Vec<SpooledRecord> = Vec::new();
        loop {
            if self.deadline().is_some_and(|d| d <= Instant::now()) {
                break;
            }
            if batch.is_empty() && expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
                expired_at = Some(Instant::now());
                if let Err(error) = self.spool.expire_records(SystemTime::now() - self.max_age).await {
                    tracing::error!(%error, "spool: cannot drop expired records");
                }
            }
            let (max, max_bytes, linger) = self.limits();
            let held: u64 = batch.iter().map(|r| r.bytes).sum();
            if batch.len() < max && held < max_bytes {
                let after = batch.last().map_or(0, |r| r.id);
                match self.spool.records_after(after, max - batch.len(), max_bytes - held, batch.is_empty()).await {
                    Ok(more) => batch.extend(more),
                    Err(error) => {
                        tracing::error!(%error, "delivery: cannot read the spool");
                        if self.watch(sleep(Duration::from_secs(1))).await.is_none() {
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some((first, last)) = batch.first().zip(batch.last()).map(|(f, l)| (f.id, l.id)) else {
                if self.deadline().is_some() {
                    break;
                }
                let spool = self.spool.clone();
                let woken = async move {
                    tokio::select! {
                        () = spool.records_added() => {}
                        () = sleep(EXPIRE_EVERY) => {}
                    }
                };
                self.wait_or_stop(woken).await;
                continue;
            };
            let bytes: u64 = batch.iter().map(|r| r.bytes).sum();
            // A partial batch waits for more until its oldest record is
            // `batch_wait` old (never during shutdown).
            if let Some(linger) = linger
                && self.deadline().is_none()
                && batch.len() < max
                && bytes < max_bytes
            {
                let age = batch[0].record.received_at.elapsed().unwrap_or_default();
                if age < linger {
                    let spool = self.spool.clone();
                    let wait = async move {
                        tokio::select! {
                            () = sleep(linger - age) => {}
                            () = spool.records_added() => sleep(linger - age).await,
                        }
                    };
                    self.wait_or_stop(wait).await;
                    continue;
                }
            }
            let records: Vec<LogRecord> = std::mem::take(&mut batch).into_iter().map(|r| r.record).collect();
            match self.deliver(records).await {
                Done::Finished => {
                    if let Err(error) = self.spool.delete_records(first, last).await {
                        tracing::error!(%error, "delivery: cannot delete delivered records; they will be sent again");
                    }
                }
                Done::Stopped => break,
            }
        }
        let left = self.spool.record_backlog();
        if left > 0 {
            tracing::warn!(
                records = left,
                "delivery stopped; undelivered records stay in the spool for the next start"
            );
        }
    }

    async fn deliver(&mut self, records: Vec<LogRecord>) -> Done {
        let metrics = self.metrics();
        let target = self.spool.records_target();
        match &mut self.output {
            Output::Stdout(out) => {
                metrics.delivery_attempt(target);
                let n = records.len() as u64;
                match write_lines(out, &records).await {
                    Ok(()) => {
                        metrics.records_delivered.inc_by(n);
                    }
                    Err(error) => {
                        tracing::error!(records = n, %error, "delivery: cannot write records to stdout; they are dropped");
                        metrics.delivery_failed(target, DeliveryFailure::Io);
                        metrics.undelivered(UndeliveredReason::Stdout, n);
                    }
                }
                Done::Finished
            }
            Output::Loki { .. } => self.push(records).await,
        }
    }

    /// The Loki client, built once. Building fails only if TLS cannot
    /// initialise; records then wait in the spool. `None`: shutdown.
    async fn client(&mut self) -> Option<LokiClient> {
        loop {
            let Output::Loki { config, client, .. } = &mut self.output else { return None };
            if let Some(client) = client {
                return Some(client.clone());
            }
            match loki_auth::http_client(config) {
                Ok(http) => *client = Some(LokiClient::new(http, &config.url)),
                Err(error) => {
                    tracing::error!(%error, "delivery: cannot create the HTTP client for Loki");
                    self.watch(sleep(RETRY_MAX)).await?;
                }
            }
        }
    }

    /// Pushes one batch, retrying until it is sent or refused as invalid.
    async fn push(&mut self, records: Vec<LogRecord>) -> Done {
        let metrics = self.metrics();
        let Some(client) = self.client().await else { return Done::Stopped };
        let Output::Loki { labels, .. } = &self.output else { return Done::Finished };
        let mut streams: HashMap<(RecordKind, Level), Vec<LogRecord>> = HashMap::new();
        for record in records {
            streams.entry((record.kind, record.level)).or_default().push(record);
        }
        let mut streams: Vec<(String, Vec<LogRecord>)> =
            streams.into_iter().map(|((kind, level), stream)| (labels.render(kind, level), stream)).collect();
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        let batch = streams.iter().map(|(_, stream)| stream.len()).sum();
        let request = match LokiRequest::encode(streams) {
            Ok(request) => request,
            Err(error) => {
                self.refused(batch, &error);
                return Done::Finished;
            }
        };
        let records = request.records;
        let mut delay = RETRY_FIRST;
        loop {
            let started = Instant::now();
            metrics.delivery_attempt(crate::metrics::DeliveryTarget::Loki);
            let Some(outcome) = self.watch(client.push(&request)).await else { return Done::Stopped };
            metrics.loki_push_duration.observe(started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {
                    metrics.loki_push(PushOutcome::Sent);
                    metrics.records_delivered.inc_by(records as u64);
                    self.refusal().clear();
                    return Done::Finished;
                }
                Err(error) if loki_push::is_retriable(&error) => {
                    metrics.loki_push(PushOutcome::Retried);
                    let reason = loki_push::failure_reason(&error);
                    metrics.loki_push_failed(reason);
                    metrics.delivery_failed(crate::metrics::DeliveryTarget::Loki, reason.into());
                    let wait = jittered(delay);
                    if loki_push::refuses_access(&error) {
                        self.refusal().set(error.to_string());
                        tracing::error!(records, %error, retry_in = ?wait, "delivery: Loki refuses our pushes; check OBSERVER_LOKI_URL, the Loki credentials and OBSERVER_LOKI_TENANT_ID; the records are kept and retried, and /readyz reports not ready");
                    } else {
                        tracing::warn!(records, %error, retry_in = ?wait, "delivery: Loki push failed, will retry");
                    }
                    if self.watch(sleep(wait)).await.is_none() {
                        return Done::Stopped;
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(error) => {
                    self.refused(records, &error);
                    return Done::Finished;
                }
            }
        }
    }

    fn refusal(&self) -> PushRefusal {
        match &self.output {
            Output::Loki { refusal, .. } => refusal.clone(),
            Output::Stdout(_) => PushRefusal::default(),
        }
    }

    /// Loki refused the content (or it could not be encoded): retrying
    /// cannot help. Loki stores the valid entries of a push and answers 400
    /// naming the others, so only those are counted as undelivered.
    fn refused(&self, records: usize, error: &PushError) {
        let metrics = self.metrics();
        let dropped = match error {
            PushError::Status { body, .. } => ignored_entries(body).unwrap_or(records),
            _ => records,
        };
        metrics.loki_push(PushOutcome::Failed);
        metrics.loki_push_failed(loki_push::failure_reason(error));
        metrics.delivery_failed(crate::metrics::DeliveryTarget::Loki, DeliveryFailure::Invalid);
        metrics.undelivered(UndeliveredReason::Rejected, dropped as u64);
        tracing::warn!(records, dropped, %error, "delivery: Loki refused entries as invalid; they are not delivered");
    }
}

/// The entries Loki says it ignored in a 400 answer: the sum of every
/// `total ignored: N out of M` (one per refused stream).
fn ignored_entries(body: &str) -> Option<usize> {
    let counts: Vec<usize> = body
        .match_indices("total ignored: ")
        .filter_map(|(at, marker)| {
            let rest = &body[at + marker.len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// `delay` spread over its upper half, so many instances restarting
/// together do not retry in step, and the wait never collapses to zero.
pub fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=spread))
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut BufWriter<W>, records: &[LogRecord]) -> io::Result<()> {
    for record in records {
        out.write_all(record.line.as_bytes()).await?;
        out.write_all(b"\n").await?;
    }
    out.flush().await
}

#[cfg(test)]
mod tests {
    use super::ignored_entries;

    #[test]
    fn ignored_entries_are_read_from_lokis_answer() {
        let body = "entry for stream '{a=\"b\"}' has timestamp too old: 2024-01-01T00:00:00Z\n\
                    user 'fake', total ignored: 2 out of 5 for stream: {a=\"b\"}\n\
                    user 'fake', total ignored: 1 out of 3 for stream: {a=\"c\"}";
        assert_eq!(ignored_entries(body), Some(3));
        assert_eq!(ignored_entries("line too long"), None);
    }
}
