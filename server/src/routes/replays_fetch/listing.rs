//! `GET /api/observer/replays`: the session listing, its filters and the
//! live marker (docs/replay-api.md).
//!
//! Query: `limit` (1..=200, default 50), `cursor` (a `next_cursor`),
//! `user_id` (exact), `url` (substring of the first URL, ASCII case
//! ignored), `from`/`to` (session start, ms since the epoch or RFC 3339),
//! `has_errors` and `live` (`true`/`false`). Empty values mean "no filter".
//! Each bad value is named in the 400's `details`. At most
//! `store::listing::MAX_SCAN` entries are examined per request (see `store::listing`).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::payload::QueryParams;
use crate::routes::extract::epoch_ms;
use crate::store::{SessionCursor, SessionFilter, SessionQuery, SessionStats, SessionSummary};

/// Sessions per listing page: default and most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;
/// Longest `user_id` (as the ingestion routes accept) and `url` filter.
const MAX_USER_ID_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;

#[derive(Debug, Serialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionItem>,
    pub next_cursor: Option<String>,
    /// Session entries examined for this page (at most `store::listing::MAX_SCAN`).
    pub scanned: usize,
    /// How recently a live session's newest chunk was accepted, at most.
    pub live_window_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct SessionItem {
    pub session_id: String,
    /// Milliseconds since the epoch of the first event.
    pub start: i64,
    pub url: Option<String>,
    pub user_id: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub chunks: u32,
    /// From the first event to the latest of any chunk stored so far.
    pub duration_ms: i64,
    pub pages: u32,
    pub errors: u32,
    /// When the newest chunk was accepted (ms since the epoch, server clock).
    pub last_received_at: Option<i64>,
    pub live: bool,
}

/// Whether a session whose newest chunk was accepted at `last_received`
/// still records, as of `now`.
pub fn is_live(last_received: Option<i64>, now: i64, window: Duration) -> bool {
    let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    last_received.is_some_and(|at| now.saturating_sub(at) <= window)
}

impl SessionItem {
    pub fn new(s: SessionSummary, now: i64, window: Duration) -> SessionItem {
        let SessionStats { chunks, pages, errors, last_timestamp, last_received } = s.stats;
        SessionItem {
            session_id: s.session_id.to_string(),
            start: s.start,
            url: s.details.url,
            user_id: s.details.user_id,
            browser: s.details.browser,
            os: s.details.os,
            chunks,
            duration_ms: last_timestamp.map_or(0, |last| last.saturating_sub(s.start).max(0)),
            pages,
            errors,
            last_received_at: last_received,
            live: is_live(last_received, now, window),
        }
    }
}

/// The listing's parameters (`token` is read by the access extractor).
const LIST_PARAMS: &[&str] = &["limit", "cursor", "user_id", "url", "from", "to", "has_errors", "live", "token"];

/// The listing request in `query`, as of `now` (ms since the epoch) for
/// the `live` filter.
pub fn parse_list_query(query: Option<&str>, now: i64, window: Duration) -> Result<SessionQuery, ApiError> {
    let raw = QueryParams::parse(query, LIST_PARAMS)?;
    let mut errors = Vec::new();
    let mut bad = |field: &str, reason: &str| errors.push(FieldError::new(None, field, reason));
    // Forms send empty fields: an empty value is no filter.
    let given = |name: &str| raw.get(name).filter(|v| !v.is_empty()).map(str::to_owned);

    let limit = match given("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            bad("limit", &format!("must be an integer from 1 to {MAX_PAGE}"));
            DEFAULT_PAGE
        }
    };
    let after = given("cursor").and_then(|c| {
        let cursor = SessionCursor::parse(&c);
        if cursor.is_none() {
            bad("cursor", "is not a cursor from a previous page");
        }
        cursor
    });
    let user_id = given("user_id");
    if user_id.as_ref().is_some_and(|u| u.chars().count() > MAX_USER_ID_CHARS) {
        bad("user_id", &format!("must be at most {MAX_USER_ID_CHARS} characters"));
    }
    let url = given("url");
    if url.as_ref().is_some_and(|u| u.chars().count() > MAX_URL_CHARS) {
        bad("url", &format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let mut time = |field: &str, value: Option<String>| {
        let value = value?;
        let parsed = parse_time(&value);
        if parsed.is_none() {
            bad(field, "must be milliseconds since the epoch or an RFC 3339 time such as 2026-12-01T00:00:00Z");
        }
        parsed
    };
    let from = time("from", given("from"));
    let to = time("to", given("to"));
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        bad("to", "must not be before from");
    }
    let mut flag = |field: &str, value: Option<String>| match value.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            bad(field, "must be true or false");
            None
        }
    };
    let has_errors = flag("has_errors", given("has_errors"));
    let live = flag("live", given("live"));
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let since = now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    let live = live.map(|want| (want, since));
    let filter = SessionFilter { user_id, url, from, to, has_errors, live };
    Ok(SessionQuery { limit, after, filter })
}

/// Milliseconds since the epoch, from digits or an RFC 3339 time.
fn parse_time(value: &str) -> Option<i64> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<i64>().ok();
    }
    let time: SystemTime = humantime::parse_rfc3339_weak(value).ok()?;
    Some(epoch_ms(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    fn details(query: &str) -> Vec<String> {
        match parse_list_query(Some(query), 0, WINDOW) {
            Err(ApiError::Invalid { details, .. }) => details.into_iter().map(|d| d.field).collect(),
            other => panic!("expected 400 for {query:?}, got {other:?}"),
        }
    }

    #[test]
    fn filters_parse() {
        let q = parse_list_query(
            Some("limit=10&user_id=u-1&url=%2Fcart&from=1000&to=2026-12-01T00:00:00Z&has_errors=true&live=false"),
            100_000,
            WINDOW,
        )
        .unwrap();
        assert_eq!(q.limit, 10);
        let f = q.filter;
        assert_eq!((f.user_id.as_deref(), f.url.as_deref()), (Some("u-1"), Some("/cart")));
        assert_eq!((f.from, f.to, f.has_errors), (Some(1000), Some(1_796_083_200_000), Some(true)));
        assert_eq!(f.live, Some((false, 70_000)));

        let empty = parse_list_query(Some("user_id=&url=&from=&to=&has_errors=&live=&cursor="), 0, WINDOW).unwrap();
        assert_eq!(empty, SessionQuery::page(DEFAULT_PAGE, None));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(details("limit=0&from=yesterday&has_errors=yes"), ["limit", "from", "has_errors"]);
        assert_eq!(details("from=2000&to=1000"), ["to"]);
        assert_eq!(details("live=1&cursor=nope"), ["cursor", "live"]);
        assert_eq!(details(&format!("user_id={}", "u".repeat(257))), ["user_id"]);
        assert_eq!(details(&format!("url={}", "u".repeat(2049))), ["url"]);
        assert_eq!(details("sort=start&limit=1&limit=2"), ["sort", "limit"]);
    }

    #[test]
    fn live_window() {
        let window = Duration::from_secs(30);
        assert!(is_live(Some(1_000), 31_000, window));
        assert!(!is_live(Some(1_000), 31_001, window));
        assert!(!is_live(None, 0, window));
    }
}
