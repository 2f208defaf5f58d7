//! The delivery worker: owns the queue's receiver, batches records and pushes
//! them to Loki (or writes them to stdout), and drains on shutdown.
//!
//! While a push is being retried the worker receives nothing, so the queue
//! fills and routes answer 503: back-pressure instead of dropping data.

use std::{collections::HashMap, future::Future, io, mem, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncWrite, AsyncWriteExt, BufWriter},
    sync::oneshot::{self, error::RecvError},
    task::JoinHandle,
    time::{Instant, sleep, sleep_until},
};

use super::{
    Level, LogRecord,
    loki_auth::{self, LokiHealth, PushRefusal},
    loki_push::{self, LokiClient, LokiRequest, PushError},
    queue::QueueReceiver,
    queue::gauge_value,
};
use crate::{
    config::LokiConfig,
    metrics::{Metrics, PushOutcome, RecordKind, UndeliveredReason},
};

/// First wait after a failed push; it doubles up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between attempts, so a recovered Loki is used soon.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Records written to stdout per flush.
const STDOUT_BATCH: usize = 1000;
/// How long `shutdown` waits past its deadline for a worker that does not
/// stop by itself (it should, every wait in it is bounded by the deadline).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Stops delivery; returned by `start` next to the queue.
#[derive(Debug)]
pub struct DeliveryHandle {
    signal: oneshot::Sender<Instant>,
    task: JoinHandle<()>,
    loki: Option<LokiHealth>,
}

impl DeliveryHandle {
    /// The readiness probe of the Loki this worker pushes to, which also
    /// reports Loki refusing our pushes; `None` for stdout.
    pub fn loki_health(&self) -> Option<LokiHealth> {
        self.loki.clone()
    }

    /// Closes the queue (later submits fail with `Closed`), delivers what is
    /// queued and batched, retrying until `deadline`, then counts whatever
    /// is left as `undelivered{reason="shutdown"}`.
    pub async fn shutdown(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        if self.signal.send(until).is_err() {
            tracing::debug!("delivery worker had already stopped");
        }
        match tokio::time::timeout_at(until + SHUTDOWN_GRACE, self.task).await {
            Ok(Ok(())) => tracing::info!("delivery stopped"),
            Ok(Err(error)) => tracing::error!(%error, "delivery worker failed; queued records may be lost"),
            Err(_) => tracing::error!("delivery worker did not stop by the shutdown deadline"),
        }
    }
}

/// Spawns the worker for `rx`: Loki when configured, stdout otherwise.
pub(super) fn spawn(
    rx: QueueReceiver,
    metrics: Arc<Metrics>,
    loki: Option<LokiConfig>,
    labels: StreamLabels,
) -> DeliveryHandle {
    let refusal = PushRefusal::default();
    let health = loki.as_ref().map(|config| LokiHealth::new(config, refusal.clone()));
    let mut handle = spawn_with(rx, metrics, |control| async move {
        match loki {
            Some(config) => LokiWorker::new(control, config, labels, refusal).run().await,
            None => run_stdout(control, tokio::io::stdout()).await,
        }
    });
    handle.loki = health;
    handle
}

pub(super) fn spawn_with<F, Fut>(rx: QueueReceiver, metrics: Arc<Metrics>, run: F) -> DeliveryHandle
where
    F: FnOnce(Control) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (signal, signal_rx) = oneshot::channel();
    let control = Control { rx, signal: Some(signal_rx), deadline: None, metrics };
    DeliveryHandle { signal, task: tokio::spawn(run(control)), loki: None }
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

/// The receiver plus the shutdown state every wait in the worker watches.
pub(super) struct Control {
    rx: QueueReceiver,
    signal: Option<oneshot::Receiver<Instant>>,
    /// Set once shutdown starts: the queue is closed and draining.
    deadline: Option<Instant>,
    metrics: Arc<Metrics>,
}

async fn next_signal(signal: &mut Option<oneshot::Receiver<Instant>>) -> Result<Instant, RecvError> {
    match signal {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

impl Control {
    fn on_signal(&mut self, signal: Result<Instant, RecvError>) {
        self.signal = None;
        // A dropped handle is not a shutdown: delivery then goes on until
        // every queue handle is gone.
        if let Ok(deadline) = signal {
            self.rx.close();
            self.deadline = Some(deadline);
            tracing::info!(queued = self.rx.len(), "delivery: queue closed, draining");
        }
    }

    /// Runs `fut` while reacting to the shutdown signal, so the queue closes
    /// the moment shutdown starts even mid-push. `None` once the deadline
    /// has passed; `fut` is then abandoned.
    async fn watch<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return Some(out),
                signal = next_signal(&mut self.signal), if self.signal.is_some() => self.on_signal(signal),
                () = sleep_until(self.deadline.unwrap_or_else(Instant::now)), if self.deadline.is_some() => return None,
            }
        }
    }

    fn update_gauge(&self) {
        self.metrics.queue_records.set(gauge_value(self.rx.len()));
    }

    /// Counts what the deadline left undelivered: `in_hand` plus the queue.
    fn give_up(&mut self, in_hand: usize) {
        let mut left = in_hand;
        while self.rx.try_recv().is_ok() {
            left += 1;
        }
        self.update_gauge();
        if left > 0 {
            tracing::error!(records = left, "delivery: shutdown deadline passed with records undelivered");
            self.metrics.undelivered(UndeliveredReason::Shutdown, left as u64);
        }
    }
}

/// Records waiting for one push, grouped by stream.
#[derive(Default)]
struct Batch {
    streams: HashMap<(RecordKind, Level), Vec<LogRecord>>,
    records: usize,
    bytes: usize,
    /// When the first record came in; the batch is pushed `batch_wait` later.
    opened: Option<Instant>,
}

/// What a record adds to a push, as Loki counts it against its limits.
fn size_of(record: &LogRecord) -> usize {
    record.line.len() + record.metadata.iter().map(|(name, value)| name.len() + value.len()).sum::<usize>()
}

struct LokiWorker {
    control: Control,
    config: LokiConfig,
    labels: StreamLabels,
    open: Batch,
    /// A batch closed because the next record did not fit; pushed first.
    sealed: Option<Batch>,
    /// The queue is closed and empty.
    drained: bool,
    /// Set while Loki refuses our credentials, tenant or URL; read by readiness.
    refusal: PushRefusal,
}

impl LokiWorker {
    fn new(control: Control, config: LokiConfig, labels: StreamLabels, refusal: PushRefusal) -> LokiWorker {
        LokiWorker { control, config, labels, open: Batch::default(), sealed: None, drained: false, refusal }
    }

    async fn run(mut self) {
        let Some(client) = self.connect().await else { return self.give_up(0) };
        loop {
            if let Some(batch) = self.sealed.take() {
                if let Err(in_hand) = self.deliver(&client, batch).await {
                    return self.give_up(in_hand);
                }
                continue;
            }
            // Checked here as well as in `select!`, so a queue that never runs
            // empty cannot hold a small batch back past its linger.
            let linger = self.open.opened.map(|opened| opened + self.config.batch_wait);
            let lingered = linger.is_some_and(|due| due <= Instant::now());
            if self.open.records > 0 && (self.open_is_full() || lingered || self.drained) {
                let batch = mem::take(&mut self.open);
                if let Err(in_hand) = self.deliver(&client, batch).await {
                    return self.give_up(in_hand);
                }
                continue;
            }
            if self.drained {
                return;
            }
            tokio::select! {
                biased;
                signal = next_signal(&mut self.control.signal), if self.control.signal.is_some() => {
                    self.control.on_signal(signal);
                }
                received = self.control.rx.recv() => match received {
                    Some(record) => {
                        self.control.update_gauge();
                        self.add(record);
                    }
                    None => self.drained = true,
                },
                () = sleep_until(linger.unwrap_or_else(Instant::now)), if linger.is_some() => {}
            }
        }
    }

    /// Builds the HTTP client (with the credentials and tenant headers),
    /// which fails only if TLS cannot initialise; records then wait in the
    /// queue rather than the process panicking.
    async fn connect(&mut self) -> Option<LokiClient> {
        loop {
            match loki_auth::http_client(&self.config) {
                Ok(http) => return Some(LokiClient::new(http, &self.config.url)),
                Err(error) => {
                    tracing::error!(%error, "delivery: cannot create the HTTP client for Loki");
                    self.control.watch(sleep(RETRY_MAX)).await?;
                }
            }
        }
    }

    fn open_is_full(&self) -> bool {
        self.open.records >= self.config.batch_records || self.open.bytes >= self.config.batch_bytes
    }

    fn add(&mut self, record: LogRecord) {
        let size = size_of(&record);
        let fits = self.open.bytes + size <= self.config.batch_bytes;
        // A record larger than a whole batch still goes, alone.
        if !fits && self.open.records > 0 {
            self.sealed = Some(mem::take(&mut self.open));
        }
        let batch = &mut self.open;
        batch.opened.get_or_insert_with(Instant::now);
        batch.records += 1;
        batch.bytes += size;
        batch.streams.entry((record.kind, record.level)).or_default().push(record);
    }

    /// Pushes one batch, retrying until it is sent or refused. `Err` carries
    /// the records still in hand when the shutdown deadline passed.
    async fn deliver(&mut self, client: &LokiClient, batch: Batch) -> Result<(), usize> {
        let records = batch.records;
        let mut streams: Vec<(String, Vec<LogRecord>)> = batch
            .streams
            .into_iter()
            .map(|((kind, level), stream)| (self.labels.render(kind, level), stream))
            .collect();
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        let request = match LokiRequest::encode(streams) {
            Ok(request) => request,
            Err(error) => {
                self.refused(records, &error);
                return Ok(());
            }
        };
        let records = request.records;
        let metrics = Arc::clone(&self.control.metrics);
        let mut delay = RETRY_FIRST;
        loop {
            let started = Instant::now();
            let outcome = self.control.watch(client.push(&request)).await.ok_or(records)?;
            metrics.loki_push_duration.observe(started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {
                    metrics.loki_push(PushOutcome::Sent);
                    metrics.records_delivered.inc_by(records as u64);
                    self.refusal.clear();
                    return Ok(());
                }
                Err(error) if loki_push::is_retriable(&error) => {
                    metrics.loki_push(PushOutcome::Retried);
                    metrics.loki_push_failed(loki_push::failure_reason(&error));
                    let wait = jittered(delay);
                    if loki_push::refuses_access(&error) {
                        self.refusal.set(error.to_string());
                        tracing::error!(records, %error, retry_in = ?wait, "delivery: Loki refuses our pushes; check OBSERVER_LOKI_URL, the Loki credentials and OBSERVER_LOKI_TENANT_ID; the records are kept and retried, and /readyz reports not ready");
                    } else {
                        tracing::warn!(records, %error, retry_in = ?wait, "delivery: Loki push failed, will retry");
                    }
                    self.control.watch(sleep(wait)).await.ok_or(records)?;
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(error) => {
                    self.refused(records, &error);
                    return Ok(());
                }
            }
        }
    }

    /// Loki refused the content (or it could not be encoded): retrying
    /// cannot help, so the batch is counted and logged and the worker moves on.
    fn refused(&self, records: usize, error: &PushError) {
        self.control.metrics.loki_push(PushOutcome::Failed);
        self.control.metrics.loki_push_failed(loki_push::failure_reason(error));
        self.control.metrics.undelivered(UndeliveredReason::Rejected, records as u64);
        tracing::warn!(records, %error, "delivery: push refused; its records are not delivered");
    }

    fn give_up(mut self, in_hand: usize) {
        let batched = self.open.records + self.sealed.as_ref().map_or(0, |batch| batch.records);
        self.control.give_up(in_hand + batched);
    }
}

/// `delay` spread over its upper half, so many instances restarting
/// together do not retry in step, and the wait never collapses to zero.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=spread))
}

/// Writes each record's line to `out`, flushing once per batch received.
pub(super) async fn run_stdout<W: AsyncWrite + Unpin>(mut control: Control, out: W) {
    let mut out = BufWriter::new(out);
    let mut records = Vec::with_capacity(STDOUT_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            signal = next_signal(&mut control.signal), if control.signal.is_some() => {
                control.on_signal(signal);
                continue;
            }
            received = control.rx.recv_many(&mut records, STDOUT_BATCH) => received,
        };
        if received == 0 {
            return;
        }
        control.update_gauge();
        let n = records.len();
        match control.watch(write_lines(&mut out, &records)).await {
            Some(Ok(())) => {
                control.metrics.records_delivered.inc_by(n as u64);
            }
            Some(Err(error)) => {
                tracing::error!(records = n, %error, "delivery: cannot write records to stdout");
                control.metrics.undelivered(UndeliveredReason::Stdout, n as u64);
            }
            None => return control.give_up(n),
        }
        records.clear();
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut BufWriter<W>, records: &[LogRecord]) -> io::Result<()> {
    for record in records {
        out.write_all(record.line.as_bytes()).await?;
        out.write_all(b"\n").await?;
    }
    out.flush().await
}
