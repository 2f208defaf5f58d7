//! `RecordQueue`: the bounded queue between routes and the delivery worker.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::sync::mpsc::{
    self,
    error::{TryRecvError, TrySendError},
};

use super::{DeliveryError, LogRecord, RecordSink};
use crate::metrics::{KindLabels, Metrics, RecordKind};

type KindCounters = Family<KindLabels, Counter>;

/// What a client is told to wait when the queue is full: long enough for
/// the worker to push a batch or two, short enough not to lose a page's data.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Cloneable handle routes submit records to. A full queue refuses the whole
/// submission, so the client retries it; nothing is dropped silently.
///
/// Bounded twice: by record count and by bytes, because one error line can
/// be a few hundred KB and a count alone would let a Loki outage fill memory.
#[derive(Debug, Clone)]
pub struct RecordQueue {
    tx: mpsc::Sender<LogRecord>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<Metrics>,
}

/// The worker's end of the queue; gives back the byte budget of every
/// record it takes out.
#[derive(Debug)]
pub(super) struct QueueReceiver {
    rx: mpsc::Receiver<LogRecord>,
    bytes: Arc<AtomicUsize>,
}

/// Bytes a queued record holds.
fn record_bytes(record: &LogRecord) -> usize {
    record.line.len() + record.metadata.iter().map(|(name, value)| name.len() + value.len()).sum::<usize>()
}

impl QueueReceiver {
    fn release(&self, record: &LogRecord) {
        self.bytes.fetch_sub(record_bytes(record), Ordering::AcqRel);
    }

    pub(super) async fn recv(&mut self) -> Option<LogRecord> {
        let record = self.rx.recv().await;
        if let Some(record) = &record {
            self.release(record);
        }
        record
    }

    pub(super) async fn recv_many(&mut self, buffer: &mut Vec<LogRecord>, limit: usize) -> usize {
        let start = buffer.len();
        let n = self.rx.recv_many(buffer, limit).await;
        for record in &buffer[start..] {
            self.release(record);
        }
        n
    }

    pub(super) fn try_recv(&mut self) -> Result<LogRecord, TryRecvError> {
        let record = self.rx.try_recv()?;
        self.release(&record);
        Ok(record)
    }

    pub(super) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(super) fn close(&mut self) {
        self.rx.close();
    }
}

impl RecordQueue {
    /// A queue of at most `capacity` records and `max_bytes` bytes, and the
    /// receiver the worker drains.
    pub(super) fn new(capacity: usize, max_bytes: usize, metrics: Arc<Metrics>) -> (RecordQueue, QueueReceiver) {
        // `mpsc::channel(0)` panics; config already refuses 0.
        let (tx, rx) = mpsc::channel(capacity.max(1));
        metrics.queue_capacity.set(gauge_value(tx.max_capacity()));
        let bytes = Arc::new(AtomicUsize::new(0));
        (RecordQueue { tx, bytes: bytes.clone(), max_bytes, metrics }, QueueReceiver { rx, bytes })
    }

    /// Share of the queue in use (by count or bytes, whichever is higher),
    /// 0.0 to 1.0; readiness fails near 1.0.
    pub fn fill_ratio(&self) -> f64 {
        let max = self.tx.max_capacity();
        let by_count = (max - self.tx.capacity()) as f64 / max as f64;
        let by_bytes = self.bytes.load(Ordering::Acquire) as f64 / self.max_bytes.max(1) as f64;
        by_count.max(by_bytes).min(1.0)
    }

    /// Takes `n` bytes of the budget, or none if that would exceed it.
    fn reserve_bytes(&self, n: usize) -> bool {
        let before = self.bytes.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > self.max_bytes {
            self.bytes.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn update_gauge(&self) {
        self.metrics.queue_records.set(gauge_value(self.tx.max_capacity() - self.tx.capacity()));
    }

    fn count(family: &KindCounters, records: &[LogRecord]) {
        for (kind, n) in per_kind(records) {
            family.get_or_create(&KindLabels { kind }).inc_by(n);
        }
    }
}

impl RecordSink for RecordQueue {
    fn has_room(&self) -> bool {
        self.tx.capacity() > 0 && self.bytes.load(Ordering::Acquire) < self.max_bytes
    }

    fn submit(&self, records: Vec<LogRecord>) -> Result<(), DeliveryError> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes: usize = records.iter().map(record_bytes).sum();
        if !self.reserve_bytes(bytes) {
            Self::count(&self.metrics.queue_full, &records);
            return Err(DeliveryError::QueueFull { retry_after: RETRY_AFTER });
        }
        match self.tx.try_reserve_many(records.len()) {
            Ok(permits) => {
                Self::count(&self.metrics.records_enqueued, &records);
                for (permit, record) in permits.zip(records) {
                    permit.send(record);
                }
                self.update_gauge();
                Ok(())
            }
            Err(TrySendError::Full(())) => {
                self.bytes.fetch_sub(bytes, Ordering::AcqRel);
                Self::count(&self.metrics.queue_full, &records);
                self.update_gauge();
                Err(DeliveryError::QueueFull { retry_after: RETRY_AFTER })
            }
            Err(TrySendError::Closed(())) => {
                self.bytes.fetch_sub(bytes, Ordering::AcqRel);
                Err(DeliveryError::Closed)
            }
        }
    }
}

/// Records per kind, in a fixed order, so a batch costs one counter update
/// per kind rather than one per record.
fn per_kind(records: &[LogRecord]) -> impl Iterator<Item = (RecordKind, u64)> {
    let kinds = [RecordKind::Error, RecordKind::Event, RecordKind::Replay];
    let mut counts = [0u64; 3];
    for record in records {
        if let Some(i) = kinds.iter().position(|k| *k == record.kind) {
            counts[i] += 1;
        }
    }
    kinds.into_iter().zip(counts).filter(|(_, n)| *n > 0)
}

pub(super) fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::delivery::Level;

    fn record(kind: RecordKind, line: &str) -> LogRecord {
        LogRecord { kind, level: Level::Info, received_at: SystemTime::now(), line: line.to_owned(), metadata: vec![] }
    }

    fn counter(family: &KindCounters, kind: RecordKind) -> u64 {
        family.get_or_create(&KindLabels { kind }).get()
    }

    #[test]
    fn full_queue_refuses_the_whole_submission() {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        let (queue, mut rx) = RecordQueue::new(3, 1 << 30, metrics.clone());
        assert_eq!(metrics.queue_capacity.get(), 3);

        queue.submit(vec![record(RecordKind::Error, "a"), record(RecordKind::Event, "b")]).unwrap();
        assert_eq!(metrics.queue_records.get(), 2);
        assert!((queue.fill_ratio() - 2.0 / 3.0).abs() < 1e-9);

        let refused = queue.submit(vec![record(RecordKind::Error, "c"), record(RecordKind::Error, "d")]);
        assert!(matches!(refused, Err(DeliveryError::QueueFull { retry_after }) if retry_after == RETRY_AFTER));
        assert_eq!(rx.len(), 2, "none of the refused records went in");
        assert_eq!(counter(&metrics.queue_full, RecordKind::Error), 2);
        assert_eq!(counter(&metrics.records_enqueued, RecordKind::Error), 1);
        assert_eq!(counter(&metrics.records_enqueued, RecordKind::Event), 1);

        // One slot left: a single record still fits.
        queue.submit(vec![record(RecordKind::Replay, "e")]).unwrap();
        let lines: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).map(|r| r.line).collect();
        assert_eq!(lines, ["a", "b", "e"]);
    }

    #[test]
    fn submission_larger_than_the_queue_is_refused_not_split() {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        let (queue, rx) = RecordQueue::new(2, 1 << 30, metrics);
        let records = (0..3).map(|i| record(RecordKind::Event, &i.to_string())).collect();
        assert!(matches!(queue.submit(records), Err(DeliveryError::QueueFull { .. })));
        assert_eq!(rx.len(), 0);
    }

    #[test]
    fn closed_queue_says_so() {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        let (queue, mut rx) = RecordQueue::new(2, 1 << 30, metrics);
        rx.close();
        assert!(matches!(queue.submit(vec![record(RecordKind::Error, "a")]), Err(DeliveryError::Closed)));
        assert!(queue.submit(vec![]).is_ok(), "nothing to deliver is not an error");
    }
}

#[cfg(test)]
mod byte_budget_tests {
    use std::time::SystemTime;

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::delivery::Level;

    #[tokio::test]
    async fn byte_budget_refuses_and_is_given_back() {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        let (queue, mut rx) = RecordQueue::new(100, 10, metrics);
        let record = |line: &str| LogRecord {
            kind: RecordKind::Error,
            level: Level::Error,
            received_at: SystemTime::now(),
            line: line.to_owned(),
            metadata: vec![],
        };
        queue.submit(vec![record("123456")]).unwrap();
        assert!(matches!(queue.submit(vec![record("12345")]), Err(DeliveryError::QueueFull { .. })));
        assert!((queue.fill_ratio() - 0.6).abs() < 1e-9);
        assert!(rx.recv().await.is_some());
        queue.submit(vec![record("1234567890")]).unwrap();
        assert!(!queue.has_room());
    }
}
