//! Accepted records → Loki (or stdout in the embedded default).
//!
//! Routes hand records to a `RecordSink`. The production sink is
//! `RecordQueue`, a bounded queue drained by one worker task that batches per
//! Loki stream and pushes with retries (`worker`, `loki_push`), or writes
//! JSON lines to stdout. A full queue is an error the route turns into 503 +
//! `Retry-After`: nothing accepted is dropped silently. A disk spool can be
//! put in as another `RecordSink` without touching the routes.
//!
//! Every request to Loki carries the configured credentials and tenant
//! (`loki_auth`). When Loki refuses them (401, 403, 404) the batch is kept
//! and retried, and [`DeliveryHandle::loki_health`] reports it to readiness.

mod loki_auth;
mod loki_push;
mod queue;
mod record;
#[cfg(test)]
mod tests;
mod worker;

pub use loki_auth::{LokiHealth, PushRefusal, TENANT_HEADER, loki_headers};
pub use loki_push::check_loki;
pub use queue::RecordQueue;
pub use record::{Level, LogRecord};
pub use worker::DeliveryHandle;

use std::{sync::Arc, time::Duration};

use crate::{config::Config, metrics::Metrics};

/// Why records could not be accepted for delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("delivery queue is full")]
    QueueFull { retry_after: Duration },
    #[error("delivery has shut down")]
    Closed,
}

/// Where routes put accepted records.
pub trait RecordSink: Send + Sync + 'static {
    /// Accepts all of `records` or none of them.
    fn submit(&self, records: Vec<LogRecord>) -> Result<(), DeliveryError>;

    /// Whether a small submission would likely be accepted now (a hint for
    /// callers that can wait instead of failing).
    fn has_room(&self) -> bool {
        true
    }
}

/// Creates the record queue and spawns its worker on the current runtime:
/// Loki when `config.loki` is set, JSON lines on stdout otherwise.
pub fn start(config: &Config, metrics: Arc<Metrics>) -> (RecordQueue, DeliveryHandle) {
    let (queue, rx) = RecordQueue::new(config.limits.queue_capacity, config.limits.queue_bytes, Arc::clone(&metrics));
    let labels =
        worker::StreamLabels { service_name: config.service_name.clone(), environment: config.environment.clone() };
    let handle = worker::spawn(rx, metrics, config.loki.clone(), labels);
    (queue, handle)
}
