//! How long replays are kept, and what the server says about it.
//!
//! - **S3**: the bucket's lifecycle rules expire objects (set with
//!   `observer storage lifecycle --days N`, see [`rules`] and [`command`]).
//!   At start-up the server reads them once, in the background, and warns,
//!   naming the bucket and the prefixes, when no expiry covers every prefix
//!   it writes.
//! - **Local directory**: a background sweep deletes whole sessions whose
//!   last chunk is older than `OBSERVER_RETENTION_DAYS`
//!   (`store::local::sweep`), first shortly after start-up, then every
//!   `OBSERVER_RETENTION_SWEEP_INTERVAL`.
//!
//! Either way the state is published in a [`RetentionStatus`] that `/readyz`
//! shows (a retention warning never makes the instance unready) and in the
//! `observer_storage_retention_configured` gauge.

pub mod command;
pub(crate) mod rules;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::{S3Store, StoreError};
use crate::config::{RetentionConfig, StoreConfig};
use crate::metrics::Metrics;

/// Most sessions one local sweep deletes; more wait for the next sweep,
/// which then comes after [`CATCH_UP_DELAY`].
const MAX_SESSIONS_PER_SWEEP: usize = 10_000;
const CATCH_UP_DELAY: Duration = Duration::from_secs(60);
/// Longest wait before the first local sweep.
const FIRST_SWEEP_DELAY: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(86_400);

/// What is known about retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionState {
    /// S3: the start-up check has not finished yet.
    Pending,
    /// S3: an enabled expiry covers every prefix Observer writes.
    Covered,
    /// S3: some prefix has no expiry; replays there are kept forever.
    NotCovered,
    /// S3: the lifecycle configuration could not be read.
    Unknown,
    /// Local store: the sweep deletes old sessions.
    Sweeping,
    /// Local store: `OBSERVER_RETENTION_DAYS` is off.
    Off,
}

impl RetentionState {
    /// The word `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionState::Pending => "pending",
            RetentionState::Covered => "covered",
            RetentionState::NotCovered => "not_covered",
            RetentionState::Unknown => "unknown",
            RetentionState::Sweeping => "local_sweep",
            RetentionState::Off => "off",
        }
    }
}

/// The state and a sentence about it (which may name the bucket: `/readyz`
/// shows it to viewer-token holders only).
#[derive(Debug, Clone)]
pub struct RetentionReport {
    pub state: RetentionState,
    pub detail: String,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone)]
pub struct RetentionStatus(Arc<RwLock<RetentionReport>>);

impl RetentionStatus {
    pub fn new(state: RetentionState, detail: impl Into<String>) -> RetentionStatus {
        RetentionStatus(Arc::new(RwLock::new(RetentionReport { state, detail: detail.into() })))
    }

    pub fn current(&self) -> RetentionReport {
        match self.0.read() {
            Ok(report) => report.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, state: RetentionState, detail: String) {
        let mut slot = match self.0.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = RetentionReport { state, detail };
    }
}

/// The running retention task: its status, and a way to stop it.
pub struct Retention {
    status: RetentionStatus,
    stop: Arc<AtomicBool>,
}

impl Retention {
    pub fn status(&self) -> RetentionStatus {
        self.status.clone()
    }

    /// Ends a running sweep between two sessions (at shutdown).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the S3 check or the local sweep in the background.
pub fn start(store: &StoreConfig, retention: &RetentionConfig, metrics: Arc<Metrics>) -> Retention {
    let stop = Arc::new(AtomicBool::new(false));
    let status = match store {
        StoreConfig::S3 { endpoint, bucket, region, key_prefix } => {
            let status = RetentionStatus::new(RetentionState::Pending, "the lifecycle check has not finished yet");
            let (endpoint, bucket, region, key_prefix) =
                (endpoint.clone(), bucket.clone(), region.clone(), key_prefix.clone());
            let published = status.clone();
            tokio::spawn(async move {
                let result = match S3Store::new(endpoint, bucket.clone(), region, key_prefix).await {
                    Ok(s3) => check_s3(&s3).await,
                    Err(e) => Err(e),
                };
                publish_s3(&published, &metrics, &bucket, result);
            });
            status
        }
        StoreConfig::Local { data_dir } => match retention.days {
            None => {
                metrics.retention_configured.set(0);
                tracing::info!("retention: off (OBSERVER_RETENTION_DAYS): replays are kept until deleted by hand");
                RetentionStatus::new(RetentionState::Off, "OBSERVER_RETENTION_DAYS is off: replays are kept forever")
            }
            Some(days) => {
                metrics.retention_configured.set(1);
                let detail = format!(
                    "sessions whose last chunk is older than {days} days are deleted every {}",
                    humantime::format_duration(retention.sweep_interval)
                );
                tracing::info!(days, "retention: {detail}");
                let sweeper = Sweeper {
                    data_dir: data_dir.clone(),
                    days,
                    interval: retention.sweep_interval,
                    metrics,
                    stop: stop.clone(),
                };
                tokio::spawn(sweeper.run());
                RetentionStatus::new(RetentionState::Sweeping, detail)
            }
        },
    };
    Retention { status, stop }
}

/// The prefixes of `s3` that no lifecycle expiry covers.
pub async fn check_s3(s3: &S3Store) -> Result<Vec<String>, StoreError> {
    let lifecycle = s3.lifecycle().await?;
    let prefixes = rules::observer_prefixes(s3.key_prefix());
    Ok(rules::uncovered(&lifecycle.rules, &prefixes).into_iter().map(str::to_owned).collect())
}

fn publish_s3(status: &RetentionStatus, metrics: &Metrics, bucket: &str, result: Result<Vec<String>, StoreError>) {
    match result {
        Ok(uncovered) if uncovered.is_empty() => {
            metrics.retention_configured.set(1);
            tracing::info!(bucket, "retention: a lifecycle expiry covers every prefix Observer writes");
            status.set(RetentionState::Covered, format!("bucket {bucket}: a lifecycle expiry covers every prefix"));
        }
        Ok(uncovered) => {
            metrics.retention_configured.set(0);
            let prefixes = uncovered.join(", ");
            tracing::warn!(
                bucket,
                prefixes,
                "retention: no lifecycle expiry covers these prefixes of the bucket, so replays there are kept \
                 forever; apply one with `observer storage lifecycle --days 30`"
            );
            let detail = format!("bucket {bucket}: no lifecycle expiry covers {prefixes}");
            status.set(RetentionState::NotCovered, detail);
        }
        Err(e) => {
            metrics.retention_configured.set(0);
            tracing::warn!(bucket, error = %e, "retention: cannot read the bucket's lifecycle rules");
            status.set(RetentionState::Unknown, format!("cannot read the lifecycle rules: {e}"));
        }
    }
}

/// The local store's periodic sweep.
struct Sweeper {
    data_dir: PathBuf,
    days: u32,
    interval: Duration,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

impl Sweeper {
    async fn run(self) {
        let mut delay = self.interval.min(FIRST_SWEEP_DELAY);
        loop {
            tokio::time::sleep(delay).await;
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            delay = match self.sweep_once().await {
                Ok(true) => CATCH_UP_DELAY.min(self.interval),
                Ok(false) => self.interval,
                Err(e) => {
                    tracing::warn!(error = %e, "retention: the sweep of the data directory failed");
                    self.interval
                }
            };
        }
    }

    /// One sweep; true when more sessions are due.
    async fn sweep_once(&self) -> Result<bool, StoreError> {
        let root = self.data_dir.clone();
        let cutoff = SystemTime::now() - DAY * self.days;
        let stop = self.stop.clone();
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            super::local::sweep::sweep(&root, cutoff, MAX_SESSIONS_PER_SWEEP, &stop)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))??;
        self.metrics.retention_sessions_deleted.inc_by(outcome.sessions_deleted);
        let seconds = started.elapsed().as_secs_f64();
        let super::local::sweep::SweepOutcome {
            sessions_deleted,
            sessions_kept,
            orphan_entries_deleted,
            failures,
            more,
        } = outcome;
        if sessions_deleted + orphan_entries_deleted + failures > 0 || more {
            tracing::info!(
                days = self.days,
                sessions_deleted,
                sessions_kept,
                orphan_entries_deleted,
                failures,
                more,
                seconds,
                "retention: swept the data directory"
            );
        } else {
            tracing::debug!(days = self.days, sessions_kept, seconds, "retention: swept the data directory");
        }
        Ok(more)
    }
}
