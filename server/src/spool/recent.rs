//! The newest spooled records, kept in memory by the writer thread as well
//! as on disk, so delivery reads them back without SQLite.
//!
//! Under steady load the delivery worker reads each record a second or so
//! after it was committed; by then its page has left SQLite's page cache,
//! and reading it back (a `pread` of the WAL, decoding the row and its
//! metadata) was a tenth of the W1 benchmark's CPU. The records are moved
//! here after their commit, so keeping them costs no copy.
//!
//! The cache holds a *contiguous* run of the newest records, bounded in
//! bytes. It serves a read only when its first record is the oldest one on
//! disk; otherwise (a backlog bigger than the cache, a restart, a batch read
//! but not deleted) the reader falls back to SQLite, which is always
//! complete. When a record does not fit, the cache stops taking records
//! until it has drained, so it never skips one.

use std::collections::VecDeque;

use super::db::SpooledRecord;
use crate::delivery::LogRecord;

/// Bytes of records (as counted against the spool's limit) held at most.
pub const RECENT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug)]
pub struct RecentRecords {
    records: VecDeque<SpooledRecord>,
    bytes: u64,
    max_bytes: u64,
    /// A record did not fit: take none until the cache is empty again.
    overflowed: bool,
}

impl RecentRecords {
    pub fn new(max_bytes: u64) -> RecentRecords {
        RecentRecords { records: VecDeque::new(), bytes: 0, max_bytes, overflowed: false }
    }

    /// Keeps a record just committed with row id `id` (ids only grow).
    pub fn push(&mut self, id: i64, bytes: u64, record: LogRecord) {
        if self.overflowed && !self.records.is_empty() {
            return;
        }
        if self.bytes + bytes > self.max_bytes {
            self.overflowed = true;
            return;
        }
        self.overflowed = false;
        self.bytes += bytes;
        self.records.push_back(SpooledRecord { id, bytes, record });
    }

    /// Forgets everything, e.g. when the records of a commit that failed
    /// may already be in it.
    pub fn clear(&mut self) {
        self.records.clear();
        self.bytes = 0;
        self.overflowed = true;
    }

    /// The records from `first_on_disk` on, taken out of the cache, if the
    /// cache starts there: at most `max` and `max_bytes` (the first one
    /// whatever its size if `first_always`). `None` when the caller must
    /// read SQLite. Cached records before `first_on_disk` were deleted
    /// (delivered or expired) or already read, and are dropped.
    pub fn take_from(
        &mut self,
        first_on_disk: i64,
        max: usize,
        max_bytes: u64,
        first_always: bool,
    ) -> Option<Vec<SpooledRecord>> {
        while self.records.front().is_some_and(|r| r.id < first_on_disk) {
            self.pop_front();
        }
        if self.records.front()?.id != first_on_disk {
            return None;
        }
        let mut out = Vec::new();
        let mut total = 0u64;
        while out.len() < max {
            let Some(next) = self.records.front() else { break };
            if !(first_always && out.is_empty()) && total + next.bytes > max_bytes {
                break;
            }
            total += next.bytes;
            out.extend(self.pop_front());
        }
        Some(out)
    }

    fn pop_front(&mut self) -> Option<SpooledRecord> {
        let record = self.records.pop_front()?;
        self.bytes -= record.bytes;
        Some(record)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::{delivery::Level, metrics::RecordKind};

    fn record(n: u32) -> LogRecord {
        LogRecord {
            kind: RecordKind::Error,
            level: Level::Error,
            received_at: SystemTime::now(),
            line: format!("{{\"n\":{n}}}"),
            metadata: vec![],
        }
    }

    fn ids(batch: &[SpooledRecord]) -> Vec<i64> {
        batch.iter().map(|r| r.id).collect()
    }

    #[test]
    fn serves_the_oldest_records_in_order_within_the_limits() {
        let mut recent = RecentRecords::new(1000);
        for id in 1..=5 {
            recent.push(id, 10, record(id as u32));
        }
        assert_eq!(ids(&recent.take_from(1, 2, 1000, true).unwrap()), [1, 2]);
        // The taken batch is not deleted yet: a read from the oldest record
        // on disk must go to SQLite; a read past the batch is served.
        assert!(recent.take_from(1, 10, 1000, true).is_none());
        assert_eq!(ids(&recent.take_from(3, 10, 25, true).unwrap()), [3, 4]);
        assert!(recent.take_from(5, 10, 5, false).unwrap().is_empty());
        assert_eq!(ids(&recent.take_from(5, 10, 1000, true).unwrap()), [5]);
        assert!(recent.take_from(6, 10, 1000, true).is_none());
    }

    #[test]
    fn drops_records_deleted_on_disk_and_refuses_to_skip_any() {
        let mut recent = RecentRecords::new(30);
        recent.push(1, 10, record(1));
        recent.push(2, 10, record(2));
        recent.push(3, 10, record(3));
        // 4 does not fit: neither it nor anything newer is kept until the
        // cache has drained, so the cache never has a hole.
        recent.push(4, 10, record(4));
        recent.push(5, 1, record(5));
        assert_eq!(recent.len(), 3);
        assert_eq!(ids(&recent.take_from(2, 10, 1000, true).unwrap()), [2, 3]);
        assert!(recent.take_from(4, 10, 1000, true).is_none());
        recent.push(6, 10, record(6));
        assert_eq!(ids(&recent.take_from(6, 10, 1000, true).unwrap()), [6]);
    }

    #[test]
    fn a_backlog_on_disk_older_than_the_cache_is_read_from_sqlite() {
        let mut recent = RecentRecords::new(1000);
        recent.push(10, 10, record(10));
        assert!(recent.take_from(3, 10, 1000, true).is_none());
        assert_eq!(ids(&recent.take_from(10, 10, 1000, true).unwrap()), [10]);
    }
}
