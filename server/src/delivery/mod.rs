//! Accepted records → Loki (or stdout in the embedded default).
//!
//! Routes hand records to a `RecordSink`. The production sink is the disk
//! spool (`crate::spool`): `submit` returns once the records are committed
//! to disk, and one worker (`worker`) delivers them from there oldest
//! first, pushing to Loki in batches with retries (`loki_push`), or writing
//! JSON lines to stdout, and deletes them only once delivered. A full
//! spool is an error the route turns into 503 + `Retry-After`: nothing
//! accepted is dropped silently.
//!
//! Every request to Loki carries the configured credentials and tenant
//! (`loki_auth`). When Loki refuses them (401, 403, 404) the batch is kept
//! and retried, and [`DeliveryHandle::loki_health`] reports it to readiness.

mod loki_auth;
mod loki_push;
mod record;
#[cfg(test)]
mod tests;
mod worker;

pub use loki_auth::{LokiHealth, loki_headers};
pub(crate) use record::{Level, LogRecord, metadata_name};
pub(crate) use worker::{DeliveryHandle, jittered};

use std::time::Duration;

use crate::{config::Config, spool::Spool};

/// Why records could not be accepted for delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the disk spool is full")]
    QueueFull { retry_after: Duration },
    #[error("delivery has shut down")]
    Closed,
    #[error("{0}")]
    Storage(String),
}

/// Where routes put accepted records.
#[async_trait::async_trait]
pub trait RecordSink: Send + Sync + 'static {
    /// Accepts all of `records` or none of them; returns once they are
    /// durable (or delivered).
    async fn submit(&self, records: Vec<LogRecord>) -> Result<(), DeliveryError>;
}

/// Spawns the worker delivering `spool`'s records: to Loki when
/// `config.loki` is set, as JSON lines on stdout otherwise.
pub fn start(config: &Config, spool: Spool) -> DeliveryHandle {
    let labels =
        worker::StreamLabels { service_name: config.service_name.clone(), environment: config.environment.clone() };
    worker::spawn(spool, config.loki.clone(), labels, config.spool.max_age)
}
