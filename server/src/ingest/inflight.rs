//! The in-flight body budget (`OBSERVER_MAX_INFLIGHT_BYTES`): every
//! ingestion request reserves the bytes of its body as they arrive
//! ([`Reservation::grow_to`], by the KiB), so the memory that
//! request bodies hold is bounded by configuration, not by how many clients
//! send at once. Past the budget a request waits a moment, then gets 503
//! with `Retry-After`; what it has not sent yet stays in the kernel's
//! socket buffer, not in ours.
//!
//! Reserving what a body *declares* (`Content-Length`) up front would let
//! a client that sends headers and nothing else hold budget it never uses:
//! 48 such connections (1.6 requests a second, no bandwidth) refused every
//! ingestion request. Counting received bytes makes holding the budget cost
//! the attacker the bytes themselves (a connection that sent one byte holds
//! 1 KiB: the default budget outlasts `OBSERVER_MAX_CONNECTIONS` of them).
//!
//! A `tokio::sync::Semaphore` counted in KiB (its `acquire_many` takes a
//! `u32`, which in bytes would cap one reservation at 4 GiB). The
//! reservation travels with the body (`Reservation::attach`), so it is
//! released when the last copy of the bytes is dropped — after the store
//! has written a gzip chunk, for instance — not when the handler returns.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::{
    error::ApiError,
    metrics::{Metrics, Overload},
};

/// How long a request waits for room in the budget before 503: long enough
/// to ride out a burst of bodies being parsed, short enough that a client
/// is not left hanging while the server is saturated.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);
/// What a refused client is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Cheap to clone; all clones share one budget.
#[derive(Clone)]
pub struct InflightBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
    metrics: Arc<Metrics>,
}

/// Budget held for one body; released when dropped.
pub struct Reservation {
    permit: OwnedSemaphorePermit,
    budget: InflightBudget,
}

impl InflightBudget {
    pub fn new(max_bytes: usize, metrics: Arc<Metrics>) -> Self {
        let total_kib = u32::try_from(max_bytes / 1024).unwrap_or(u32::MAX).max(1);
        InflightBudget { kib: Arc::new(Semaphore::new(total_kib as usize)), total_kib, metrics }
    }

    /// Reserves room for a body of up to `bytes`, waiting briefly for it.
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, ApiError> {
        let mut reservation = self.empty()?;
        reservation.grow_to(bytes).await?;
        Ok(reservation)
    }

    /// A reservation of nothing, to grow as a body arrives.
    pub fn empty(&self) -> Result<Reservation, ApiError> {
        let permit = Arc::clone(&self.kib).try_acquire_many_owned(0).map_err(|_| self.refuse())?;
        Ok(Reservation { permit, budget: self.clone() })
    }

    /// Takes `kib` more, waiting briefly for room.
    async fn acquire(&self, kib: u32) -> Result<OwnedSemaphorePermit, ApiError> {
        let permit = match Arc::clone(&self.kib).try_acquire_many_owned(kib) {
            Ok(permit) => Some(permit),
            Err(TryAcquireError::NoPermits) => {
                tokio::time::timeout(WAIT_FOR_ROOM, Arc::clone(&self.kib).acquire_many_owned(kib))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(TryAcquireError::Closed) => None,
        };
        let permit = permit.ok_or_else(|| self.refuse())?;
        self.metrics.inflight_body_bytes.inc_by(i64::from(kib) * 1024);
        Ok(permit)
    }

    fn refuse(&self) -> ApiError {
        self.metrics.overload_refused(Overload::InflightBytes);
        ApiError::Unavailable { what: "the in-flight body budget", retry_after: RETRY_AFTER }
    }
}

impl Reservation {
    /// Makes the reservation cover at least `bytes`, waiting briefly for
    /// room; 503 when there is none.
    pub async fn grow_to(&mut self, bytes: usize) -> Result<(), ApiError> {
        let held = self.permit.num_permits();
        let wanted = kib_for(bytes) as usize;
        if wanted <= held {
            return Ok(());
        }
        // Never past the whole budget: a body larger than all of it could
        // never be served, and the configuration keeps every route's
        // maximum within it.
        let target = wanted.min(self.budget.total_kib as usize);
        if target <= held {
            return Ok(());
        }
        let more = u32::try_from(target - held).unwrap_or(u32::MAX);
        let permit = self.budget.acquire(more).await?;
        self.permit.merge(permit);
        Ok(())
    }

    /// Gives back what a body of `bytes` does not need.
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = kib_for(bytes) as usize;
        let held = self.permit.num_permits();
        if keep < held
            && let Some(excess) = self.permit.split(held - keep)
        {
            self.budget.metrics.inflight_body_bytes.dec_by((excess.num_permits() * 1024) as i64);
        }
    }

    /// Ties the reservation to `bytes`: it is released when the last clone
    /// of the returned `Bytes` is dropped.
    pub fn attach(mut self, bytes: Bytes) -> Bytes {
        self.shrink_to(bytes.len());
        Bytes::from_owner(HeldBody { bytes, _reservation: self })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.metrics.inflight_body_bytes.dec_by((self.permit.num_permits() * 1024) as i64);
    }
}

struct HeldBody {
    bytes: Bytes,
    _reservation: Reservation,
}

impl AsRef<[u8]> for HeldBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

fn kib_for(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    fn budget(bytes: usize) -> InflightBudget {
        InflightBudget::new(bytes, Arc::new(Metrics::new(&mut Registry::default())))
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_past_the_budget_then_recovers() {
        let budget = budget(10 * 1024);
        let first = budget.reserve(6 * 1024).await.unwrap();
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 6 * 1024);
        let refused = budget.reserve(5 * 1024).await.err().unwrap();
        assert!(matches!(refused, ApiError::Unavailable { .. }));
        assert!(budget.reserve(4 * 1024).await.is_ok(), "what fits is served");
        drop(first);
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 0);
        assert!(budget.reserve(10 * 1024).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_room_freed_in_time() {
        let budget = budget(4 * 1024);
        let held = budget.reserve(4 * 1024).await.unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(1024).await.is_ok() }
        });
        tokio::time::sleep(WAIT_FOR_ROOM / 2).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_reservation_holds_nothing_and_grows_with_the_body() {
        let budget = budget(256 * 1024);
        let mut reservation = budget.empty().unwrap();
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 0, "declaring a body reserves nothing");
        reservation.grow_to(10).await.unwrap();
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 1024, "by the KiB");
        reservation.grow_to(1024).await.unwrap();
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 1024);
        reservation.grow_to(200 * 1024).await.unwrap();
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 200 * 1024);
        let other = budget.reserve(100 * 1024).await.err().unwrap();
        assert!(matches!(other, ApiError::Unavailable { .. }), "what arrived is what counts");
        drop(reservation);
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 0);
    }

    #[tokio::test]
    async fn attached_bytes_hold_the_reservation_until_dropped() {
        let budget = budget(8 * 1024);
        let body = budget.reserve(8 * 1024).await.unwrap().attach(Bytes::from(vec![7u8; 3000]));
        // 3000 bytes keep 3 KiB; the rest went back at once.
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 3 * 1024);
        let copy = body.slice(10..20);
        drop(body);
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 3 * 1024);
        assert_eq!(&copy[..], &[7u8; 10]);
        drop(copy);
        assert_eq!(budget.metrics.inflight_body_bytes.get(), 0);
        assert_eq!(budget.kib.available_permits(), 8);
    }
}
