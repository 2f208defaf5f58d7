//! The session listing with filters, one algorithm for both backends.
//!
//! Entries are named `{9999999999999 - start:013}-{session_id}.json`
//! (`store::index`), so they are read newest first and a date range is a
//! range of names: `to` becomes where the listing starts, `from` where it
//! stops, both without reading an entry. The other filters need what an
//! entry holds (user id, first URL: one small read per entry) or what its
//! chunks add up to (errors: one listing per session on S3, the session's
//! sidecars locally), in that order, and only for entries that passed the
//! cheaper tests.
//!
//! Work per request is bounded: at most [`MAX_SCAN`] entries are examined.
//! When the scan ends before `limit` sessions matched, the page holds what
//! matched (maybe nothing) and `next_cursor` points after the last entry
//! examined, so a client continues where the scan stopped.

use futures_util::{StreamExt, stream};

use super::index::{SessionCursor, parse_session_entry_name, session_entry_start};
use super::{SessionDetails, SessionPage, SessionStats, SessionSummary, StoreError};
use crate::payload::SessionId;

/// Most session entries one listing request examines.
pub const MAX_SCAN: usize = 500;

/// Sessions whose details and chunk totals are read at the same time.
const PARALLEL_READS: usize = 16;

/// Which sessions a listing shows; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// The user id chunk 0 was sent with, exactly.
    pub user_id: Option<String>,
    /// Contained in the session's first URL, ignoring ASCII case.
    pub url: Option<String>,
    /// The session started at or after / at or before (ms since the epoch).
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// With (true) or without (false) recorded errors.
    pub has_errors: Option<bool>,
    /// Live (true) or not (false): `(wanted, since)`, live meaning that the
    /// newest chunk was accepted at or after `since` (ms since the epoch).
    pub live: Option<(bool, i64)>,
}

impl SessionFilter {
    fn matches_details(&self, details: &SessionDetails) -> bool {
        let user = self.user_id.as_ref().is_none_or(|want| details.user_id.as_ref() == Some(want));
        let url = self.url.as_ref().is_none_or(|want| {
            details.url.as_ref().is_some_and(|url| url.to_ascii_lowercase().contains(&want.to_ascii_lowercase()))
        });
        user && url
    }

    fn matches_stats(&self, stats: &SessionStats) -> bool {
        let errors = self.has_errors.is_none_or(|want| (stats.errors > 0) == want);
        let live = self.live.is_none_or(|(want, since)| stats.last_received.is_some_and(|at| at >= since) == want);
        errors && live
    }
}

/// One listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQuery {
    pub limit: usize,
    pub after: Option<SessionCursor>,
    pub filter: SessionFilter,
}

impl SessionQuery {
    /// A page of every session.
    #[cfg(test)]
    pub fn page(limit: usize, after: Option<SessionCursor>) -> SessionQuery {
        SessionQuery { limit, after, filter: SessionFilter::default() }
    }
}

/// What a backend provides for [`list_sessions`].
#[async_trait::async_trait]
pub trait EntrySource: Sync {
    /// Up to `max` entry names (`….json`, without directory) after
    /// `after`, in name order, and whether more follow.
    async fn entry_names(&self, after: Option<&str>, max: usize) -> Result<(Vec<String>, bool), StoreError>;

    /// An entry's details; `None` when it vanished since it was listed.
    async fn entry_details(&self, name: &str) -> Result<Option<SessionDetails>, StoreError>;

    /// The session's chunks summed up.
    async fn session_stats(&self, session_id: &SessionId) -> Result<SessionStats, StoreError>;
}

/// The name the listing starts after: the cursor, or the `to` bound when
/// it lies further on. A bare 13-digit inverted start sorts just before
/// every entry of that start, so it keeps them.
fn start_after(query: &SessionQuery) -> Option<String> {
    let cursor = query.after.as_ref().map(SessionCursor::entry_name);
    let bound = query.filter.to.map(|to| {
        let inverted = 9_999_999_999_999 - session_entry_start(to);
        format!("{inverted:013}")
    });
    cursor.into_iter().chain(bound).max()
}

pub async fn list_sessions(source: &impl EntrySource, query: &SessionQuery) -> Result<SessionPage, StoreError> {
    let (names, more_listed) = source.entry_names(start_after(query).as_deref(), MAX_SCAN).await?;
    let filter = &query.filter;
    // Names before the `from` bound, in order; the rest is older.
    let mut reached_from = false;
    let mut candidates = Vec::with_capacity(names.len());
    for name in &names {
        // Unparsable names are not ours (temporary files): skipped, examined.
        let Some((session_id, start, cursor)) = parse_session_entry_name(name) else {
            candidates.push(None);
            continue;
        };
        if filter.from.is_some_and(|from| start < session_entry_start(from)) {
            reached_from = true;
            break;
        }
        candidates.push(Some((name.clone(), session_id, start, cursor)));
    }
    let examined_all = candidates.len();
    let mut results = stream::iter(candidates)
        .map(|candidate| async move {
            let Some((name, session_id, start, cursor)) = candidate else { return Ok((None, None)) };
            let summary = match source.entry_details(&name).await? {
                Some(details) if filter.matches_details(&details) => {
                    let stats = source.session_stats(&session_id).await?;
                    filter.matches_stats(&stats).then_some(SessionSummary { session_id, start, details, stats })
                }
                _ => None,
            };
            Ok::<_, StoreError>((summary, Some(cursor)))
        })
        .buffered(PARALLEL_READS);

    let mut sessions = Vec::new();
    let mut examined = 0;
    let mut last_cursor = None;
    while sessions.len() < query.limit {
        let Some(result) = results.next().await else { break };
        let (summary, cursor) = result?;
        examined += 1;
        if cursor.is_some() {
            last_cursor = cursor;
        }
        sessions.extend(summary);
    }
    let exhausted = examined == examined_all && (reached_from || !more_listed);
    let next_cursor = if exhausted { None } else { last_cursor };
    Ok(SessionPage { sessions, next_cursor, scanned: examined })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::index::session_entry_name;

    /// Sessions by entry name, with their details and error counts.
    struct Fake {
        entries: BTreeMap<String, (SessionDetails, u32)>,
        reads: AtomicUsize,
    }

    impl Fake {
        fn new(sessions: &[(&str, i64, Option<&str>, u32)]) -> Fake {
            let entries = sessions
                .iter()
                .map(|(id, start, user, errors)| {
                    let details = SessionDetails {
                        user_id: user.map(str::to_owned),
                        url: Some(format!("https://shop.example/{id}")),
                        ..SessionDetails::default()
                    };
                    (session_entry_name(&SessionId::parse(id).unwrap(), *start), (details, *errors))
                })
                .collect();
            Fake { entries, reads: AtomicUsize::new(0) }
        }
    }

    #[async_trait::async_trait]
    impl EntrySource for Fake {
        async fn entry_names(&self, after: Option<&str>, max: usize) -> Result<(Vec<String>, bool), StoreError> {
            let mut names: Vec<String> =
                self.entries.keys().filter(|n| after.is_none_or(|a| n.as_str() > a)).cloned().collect();
            let more = names.len() > max;
            names.truncate(max);
            Ok((names, more))
        }
        async fn entry_details(&self, name: &str) -> Result<Option<SessionDetails>, StoreError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok(self.entries.get(name).map(|(d, _)| d.clone()))
        }
        async fn session_stats(&self, id: &SessionId) -> Result<SessionStats, StoreError> {
            let errors =
                self.entries.values().find(|(d, _)| d.url.as_deref().unwrap().ends_with(id.as_str())).unwrap().1;
            Ok(SessionStats { chunks: 1, errors, ..SessionStats::default() })
        }
    }

    fn query(limit: usize, filter: SessionFilter) -> SessionQuery {
        SessionQuery { limit, after: None, filter }
    }

    fn ids(page: &SessionPage) -> Vec<&str> {
        page.sessions.iter().map(|s| s.session_id.as_str()).collect()
    }

    #[tokio::test]
    async fn filters_and_pages() {
        let fake = Fake::new(&[
            ("session-a1", 1000, Some("u1"), 0),
            ("session-b2", 2000, Some("u2"), 3),
            ("session-c3", 3000, Some("u1"), 1),
            ("session-d4", 4000, None, 0),
        ]);
        let all = list_sessions(&fake, &query(10, SessionFilter::default())).await.unwrap();
        assert_eq!(ids(&all), ["session-d4", "session-c3", "session-b2", "session-a1"]);
        assert_eq!((all.next_cursor.clone(), all.scanned), (None, 4));

        let user = SessionFilter { user_id: Some("u1".into()), ..Default::default() };
        assert_eq!(ids(&list_sessions(&fake, &query(10, user)).await.unwrap()), ["session-c3", "session-a1"]);
        let errors = SessionFilter { has_errors: Some(true), ..Default::default() };
        assert_eq!(ids(&list_sessions(&fake, &query(10, errors)).await.unwrap()), ["session-c3", "session-b2"]);
        let clean = SessionFilter { has_errors: Some(false), ..Default::default() };
        assert_eq!(ids(&list_sessions(&fake, &query(10, clean)).await.unwrap()), ["session-d4", "session-a1"]);
        let url = SessionFilter { url: Some("SHOP.example/session-B".into()), ..Default::default() };
        assert_eq!(ids(&list_sessions(&fake, &query(10, url)).await.unwrap()), ["session-b2"]);

        // A date range is a range of names: nothing outside it is read.
        fake.reads.store(0, Ordering::Relaxed);
        let range = SessionFilter { from: Some(2000), to: Some(3000), ..Default::default() };
        let page = list_sessions(&fake, &query(10, range.clone())).await.unwrap();
        assert_eq!(ids(&page), ["session-c3", "session-b2"]);
        assert_eq!((page.next_cursor, fake.reads.load(Ordering::Relaxed)), (None, 2));

        // Paging through a filter: the cursor is the last entry examined.
        let page = list_sessions(&fake, &query(1, range.clone())).await.unwrap();
        assert_eq!(ids(&page), ["session-c3"]);
        let next = SessionQuery { after: page.next_cursor, ..query(1, range) };
        let page = list_sessions(&fake, &next).await.unwrap();
        assert_eq!(ids(&page), ["session-b2"]);
        assert_eq!(page.next_cursor, None, "the next entry is before `from`: nothing more");
        let page = list_sessions(&fake, &query(1, SessionFilter::default())).await.unwrap();
        let next = SessionQuery { after: page.next_cursor, ..query(3, SessionFilter::default()) };
        let page = list_sessions(&fake, &next).await.unwrap();
        assert_eq!(ids(&page), ["session-c3", "session-b2", "session-a1"]);
        assert_eq!(page.next_cursor, None);
    }

    #[tokio::test]
    async fn the_scan_is_bounded() {
        let sessions: Vec<(String, i64)> = (0..MAX_SCAN + 20).map(|i| (format!("session-{i:05}"), i as i64)).collect();
        let refs: Vec<(&str, i64, Option<&str>, u32)> =
            sessions.iter().map(|(id, start)| (id.as_str(), *start, None, 0)).collect();
        let fake = Fake::new(&refs);
        let nobody = SessionFilter { user_id: Some("nobody".into()), ..Default::default() };
        let page = list_sessions(&fake, &query(50, nobody.clone())).await.unwrap();
        assert_eq!((page.sessions.len(), page.scanned), (0, MAX_SCAN));
        let cursor = page.next_cursor.expect("more to scan");
        let rest = list_sessions(&fake, &SessionQuery { after: Some(cursor), ..query(50, nobody) }).await.unwrap();
        assert_eq!((rest.scanned, rest.next_cursor), (20, None));
    }
}
