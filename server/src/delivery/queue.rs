//! `RecordQueue`: the bounded queue between routes and the delivery worker.

use std::{sync::Arc, time::Duration};

use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::{DeliveryError, LogRecord, RecordSink};
use crate::metrics::{KindLabels, Metrics, RecordKind};

type KindCounters = Family<KindLabels, Counter>;

/// What a client is told to wait when the queue is full: long enough for
/// the worker to push a batch or two, short enough not to lose a page's data.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Cloneable handle routes submit records to. A full queue refuses the whole
/// submission, so the client retries it; nothing is dropped silently.
#[derive(Debug, Clone)]
pub struct RecordQueue {
    tx: mpsc::Sender<LogRecord>,
    metrics: Arc<Metrics>,
}

impl RecordQueue {
    /// A queue of `capacity` records and the receiver the worker drains.
    pub(super) fn new(capacity: usize, metrics: Arc<Metrics>) -> (RecordQueue, mpsc::Receiver<LogRecord>) {
        // `mpsc::channel(0)` panics; config already refuses 0.
        let (tx, rx) = mpsc::channel(capacity.max(1));
        metrics.queue_capacity.set(gauge_value(tx.max_capacity()));
        (RecordQueue { tx, metrics }, rx)
    }

    /// Share of the queue in use, 0.0 to 1.0; readiness fails near 1.0.
    pub fn fill_ratio(&self) -> f64 {
        let max = self.tx.max_capacity();
        (max - self.tx.capacity()) as f64 / max as f64
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
    fn submit(&self, records: Vec<LogRecord>) -> Result<(), DeliveryError> {
        if records.is_empty() {
            return Ok(());
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
                Self::count(&self.metrics.queue_full, &records);
                self.update_gauge();
                Err(DeliveryError::QueueFull { retry_after: RETRY_AFTER })
            }
            Err(TrySendError::Closed(())) => Err(DeliveryError::Closed),
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
        let (queue, mut rx) = RecordQueue::new(3, metrics.clone());
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
        let (queue, rx) = RecordQueue::new(2, metrics);
        let records = (0..3).map(|i| record(RecordKind::Event, &i.to_string())).collect();
        assert!(matches!(queue.submit(records), Err(DeliveryError::QueueFull { .. })));
        assert!(rx.is_empty());
    }

    #[test]
    fn closed_queue_says_so() {
        let metrics = Arc::new(Metrics::new(&mut Registry::default()));
        let (queue, mut rx) = RecordQueue::new(2, metrics);
        rx.close();
        assert!(matches!(queue.submit(vec![record(RecordKind::Error, "a")]), Err(DeliveryError::Closed)));
        assert!(queue.submit(vec![]).is_ok(), "nothing to deliver is not an error");
    }
}
