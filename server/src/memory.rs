//! Giving the memory of large request bodies back to the system soon after
//! they are done with.
//!
//! The allocator (chosen by the binary, see `main.rs`) lets freed small
//! pages wait a tenth of a second before returning them, which keeps the
//! churn of small requests cheap. After a burst of large replay uploads that
//! wait let RSS overshoot by a third (64 × 4.9 MiB plain chunks: 70 → 105
//! MiB). So once a replay chunk is done with, the binary's release hook
//! returns every arena's unused pages at once, at most every
//! [`MIN_INTERVAL_MS`], so a stream of uploads costs a few calls a second.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// Shortest time between two releases.
pub const MIN_INTERVAL_MS: u64 = 20;

static RELEASE_HOOK: OnceLock<fn()> = OnceLock::new();
static LAST_RELEASE_MS: AtomicU64 = AtomicU64::new(0);

/// Installs the allocator's "return unused pages now" call (once).
pub fn set_release_hook(hook: fn()) {
    let _ = RELEASE_HOOK.set(hook);
}

/// Returns unused pages to the system, unless that was done less than
/// [`MIN_INTERVAL_MS`] ago or no hook is installed (tests, other allocators).
pub fn release_unused() {
    let Some(hook) = RELEASE_HOOK.get() else { return };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let last = LAST_RELEASE_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < MIN_INTERVAL_MS {
        return;
    }
    if LAST_RELEASE_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        hook();
    }
}

/// Calls [`release_unused`] when dropped: held by a request that buffered a
/// large body, whatever way it ends.
pub struct ReleaseOnDrop;

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        release_unused();
    }
}
