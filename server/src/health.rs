//! Liveness and readiness.
//!
//! Probes (replay store, Loki when configured, disk spool room) run in a
//! background loop, each under a timeout, and publish their result; `/readyz`
//! only reads it, so a flood of probes cannot load S3 or Loki. A result older
//! than three intervals counts as a failure, and readiness turns off as soon
//! as shutdown starts.
//!
//! Not every failing check makes the instance unready. While the disk spool
//! has room, an unreachable Loki (records are spooled) or S3 (chunks are
//! spooled) leaves it *degraded* but ready: it still acknowledges what it
//! is sent, and taking every replica out of a load balancer during an
//! outage would refuse exactly what the spool is there to keep. A failing
//! local store (nothing spools its chunks), a spool above
//! [`SPOOL_READY_MAX_FILL`], start-up and shutdown make it unready.
//!
//! The Loki probe ([`LokiHealth`]) asks Loki's `/ready` with our credentials
//! and fails while Loki refuses our pushes (401, 403, 404). A failure's text
//! may name hosts, buckets and upstream errors: `/readyz` shows it only to a
//! viewer-token holder (`routes::ops`).

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    delivery::LokiHealth,
    spool::Spool,
    store::{
        ReplayStore,
        retention::{RetentionReport, RetentionStatus},
    },
};

const PROBE_INTERVAL: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Above this share of `OBSERVER_SPOOL_MAX_BYTES` in use, the instance is
/// not ready (a load balancer should send traffic elsewhere before it
/// answers 503s).
const SPOOL_READY_MAX_FILL: f64 = 0.9;

/// Outcome of one round of probes: each check's name and its failure, if any.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub checked_at: Instant,
    pub checks: Vec<(&'static str, Result<(), String>)>,
}

/// What a check's failure means for readiness.
pub fn blocks_readiness(check: &str, chunks_spooled: bool) -> bool {
    match check {
        "loki" => false,
        "store" => !chunks_spooled,
        _ => true,
    }
}

#[derive(Clone)]
pub struct Readiness {
    report: Arc<RwLock<Option<ProbeReport>>>,
    /// The replay store's chunks go through the spool when it fails (S3).
    chunks_spooled: bool,
    shutting_down: Arc<AtomicBool>,
    /// Shown beside the checks; never makes the instance unready.
    retention: Option<RetentionStatus>,
}

impl Readiness {
    /// `chunks_spooled`: replay chunks are spooled when the store fails
    /// (S3), so a failing store does not make the instance unready.
    pub fn start(
        store: Arc<dyn ReplayStore>,
        loki: Option<LokiHealth>,
        spool: Spool,
        chunks_spooled: bool,
    ) -> Readiness {
        let readiness = Readiness {
            report: Arc::new(RwLock::new(None)),
            chunks_spooled,
            shutting_down: Arc::new(AtomicBool::new(false)),
            retention: None,
        };
        let published = readiness.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PROBE_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if published.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                let report = probe(store.as_ref(), loki.as_ref(), &spool).await;
                if let Ok(mut slot) = published.report.write() {
                    *slot = Some(report);
                }
            }
        });
        readiness
    }

    /// Adds the retention state to what `/readyz` shows.
    pub fn with_retention(mut self, retention: RetentionStatus) -> Readiness {
        self.retention = Some(retention);
        self
    }

    /// The retention state, when one was added.
    pub fn retention(&self) -> Option<RetentionReport> {
        self.retention.as_ref().map(RetentionStatus::current)
    }

    /// Whether `check`'s failure makes this instance unready.
    pub fn blocks(&self, check: &str) -> bool {
        blocks_readiness(check, self.chunks_spooled)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// The checks as they stand: `Err` lists the failing ones.
    pub fn current(&self) -> Vec<(&'static str, Result<(), String>)> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return vec![("shutdown", Err("the server is shutting down".to_owned()))];
        }
        let report = self.report.read().ok().and_then(|r| r.clone());
        match report {
            None => vec![("startup", Err("the first probes have not finished yet".to_owned()))],
            Some(r) if r.checked_at.elapsed() > PROBE_INTERVAL * 3 => {
                vec![("probes", Err(format!("last probe result is {} s old", r.checked_at.elapsed().as_secs())))]
            }
            Some(r) => r.checks,
        }
    }
}

async fn probe(store: &dyn ReplayStore, loki: Option<&LokiHealth>, spool: &Spool) -> ProbeReport {
    let store_check = async {
        match tokio::time::timeout(PROBE_TIMEOUT, store.check()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }
    };
    let loki_check = async {
        match loki {
            Some(loki) => Some(match tokio::time::timeout(PROBE_TIMEOUT, loki.check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            }),
            None => None,
        }
    };
    let (store_result, loki_result) = tokio::join!(store_check, loki_check);
    let mut checks = vec![("store", store_result)];
    if let Some(result) = loki_result {
        checks.push(("loki", result));
    }
    let fill = spool.fill_ratio();
    checks.push((
        "spool",
        if fill <= SPOOL_READY_MAX_FILL {
            Ok(())
        } else {
            Err(format!(
                "the disk spool is {:.0}% full ({} records, {} chunks waiting)",
                fill * 100.0,
                spool.record_backlog(),
                spool.chunk_backlog()
            ))
        },
    ));
    ProbeReport { checked_at: Instant::now(), checks }
}

#[cfg(test)]
mod tests {
    use super::blocks_readiness;

    #[test]
    fn only_what_the_spool_cannot_absorb_makes_the_instance_unready() {
        // Records are spooled while Loki fails; S3 chunks too, local ones not.
        assert!(!blocks_readiness("loki", false));
        assert!(!blocks_readiness("store", true));
        assert!(blocks_readiness("store", false));
        for check in ["spool", "startup", "probes", "shutdown"] {
            assert!(blocks_readiness(check, true), "{check}");
        }
    }
}
