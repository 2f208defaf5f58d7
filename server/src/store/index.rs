//! Names and bodies of the index entries both backends write next to the
//! chunks, so reads need no database (pure functions, shared by both).
//!
//! - Session entries, `sessions/{inverted:013}-{session_id}.json` with
//!   `inverted = 9999999999999 - start_ms`: lexicographic order is newest
//!   first, so "the most recent sessions" is the start of one listing and a
//!   page cursor is simply the last name returned (`start-after`).
//! - Chunk entries (S3),
//!   `replays/{sid}/index/{seq:010}-{first}-{last}-{events}-{bytes}-{pages}-{errors}-{received}`:
//!   empty objects whose key holds the chunk's manifest line and what it
//!   adds to the listing (`ChunkStats`; `received` 0 when unknown), so one
//!   `ListObjectsV2` page (1000 keys) yields the manifest of a session of up
//!   to 1000 chunks, or its listing totals, instead of one `HeadObject` per
//!   chunk. The key is a pure function of the stored chunk (and its
//!   metadata), so writing it again is harmless. Entries written before the
//!   last three fields existed still parse, with zero pages and errors.

use serde::{Deserialize, Serialize};

use super::{ChunkInfo, ChunkMeta, ChunkStats, SessionDetails};
use crate::payload::SessionId;

/// Largest start time an entry name can hold (year 2286).
const MAX_START_MS: i64 = 9_999_999_999_999;

/// Longest first URL kept in a session entry; longer ones are cut.
const MAX_URL_CHARS: usize = 2048;

/// A position in the session listing: the name (without `.json`) of the
/// last entry of the previous page. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor(String);

impl SessionCursor {
    /// Accepts exactly the names this module writes, so a cursor cannot
    /// smuggle anything into a path or key.
    pub fn parse(raw: &str) -> Option<SessionCursor> {
        parse_session_stem(raw).map(|_| SessionCursor(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entry file/object name the next page starts after.
    pub fn entry_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

/// `sessions/` entry name of a session that started at `start_ms`.
pub fn session_entry_name(session_id: &SessionId, start_ms: i64) -> String {
    let inverted = MAX_START_MS - session_entry_start(start_ms);
    format!("{inverted:013}-{}.json", session_id.as_str())
}

/// The start an entry name holds for a session that started at `start_ms`
/// (what the listing reads back from the name).
pub fn session_entry_start(start_ms: i64) -> i64 {
    start_ms.clamp(0, MAX_START_MS)
}

/// The session id, start time and cursor of a `sessions/` entry name.
pub fn parse_session_entry_name(name: &str) -> Option<(SessionId, i64, SessionCursor)> {
    let stem = name.strip_suffix(".json")?;
    let (session_id, start) = parse_session_stem(stem)?;
    Some((session_id, start, SessionCursor(stem.to_owned())))
}

fn parse_session_stem(stem: &str) -> Option<(SessionId, i64)> {
    let (inverted, session_id) = stem.split_at_checked(13)?;
    let session_id = SessionId::parse(session_id.strip_prefix('-')?)?;
    if !inverted.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((session_id, MAX_START_MS - inverted.parse::<i64>().ok()?))
}

/// The body of a session entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    pub session_id: String,
    pub start: i64,
    pub url: Option<String>,
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

impl SessionEntry {
    pub fn new(session_id: &SessionId, start: i64, details: &SessionDetails) -> SessionEntry {
        let url = details.url.as_ref().map(|u| u.chars().take(MAX_URL_CHARS).collect());
        SessionEntry {
            session_id: session_id.to_string(),
            start,
            url,
            user_id: details.user_id.clone(),
            browser: details.browser.clone(),
            os: details.os.clone(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The details of an entry body; an unreadable body shows no details
    /// rather than hiding the session.
    pub fn details_from_json(body: &[u8]) -> SessionDetails {
        match serde_json::from_slice::<SessionEntry>(body) {
            Ok(entry) => {
                SessionDetails { url: entry.url, user_id: entry.user_id, browser: entry.browser, os: entry.os }
            }
            Err(_) => SessionDetails::default(),
        }
    }
}

/// The name of a chunk's index entry (under `replays/{sid}/index/`).
pub fn chunk_index_name(info: &ChunkInfo) -> String {
    let ChunkMeta { first_timestamp, last_timestamp, events } = info.meta;
    let ChunkStats { pages, errors, received_at } = info.stats;
    format!(
        "{:010}-{}-{}-{events}-{}-{pages}-{errors}-{}",
        info.seq,
        first_timestamp.max(0),
        last_timestamp.max(0),
        info.bytes,
        received_at.unwrap_or(0).max(0)
    )
}

/// The manifest line a chunk index entry name holds.
pub fn parse_chunk_index_name(name: &str) -> Option<ChunkInfo> {
    let mut parts = name.split('-');
    let mut next = || parts.next().filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let seq = next()?;
    if seq.len() != 10 {
        return None;
    }
    let info = ChunkInfo {
        seq: seq.parse().ok()?,
        meta: ChunkMeta {
            first_timestamp: next()?.parse().ok()?,
            last_timestamp: next()?.parse().ok()?,
            events: next()?.parse().ok()?,
        },
        bytes: next()?.parse().ok()?,
        stats: ChunkStats::default(),
    };
    // Older entries end here.
    let Some(pages) = next() else { return parts.next().is_none().then_some(info) };
    let stats = ChunkStats {
        pages: pages.parse().ok()?,
        errors: next()?.parse().ok()?,
        received_at: next()?.parse::<i64>().ok().filter(|&t| t > 0),
    };
    parts.next().is_none().then_some(ChunkInfo { stats, ..info })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    #[test]
    fn session_names_sort_newest_first() {
        let older = session_entry_name(&sid("session-zzzz"), 1_700_000_000_000);
        let newer = session_entry_name(&sid("session-aaaa"), 1_700_000_000_001);
        assert_eq!(older, "8299999999999-session-zzzz.json");
        assert!(newer < older);
        let (id, start, cursor) = parse_session_entry_name(&older).unwrap();
        assert_eq!(
            (id.as_str(), start, cursor.as_str()),
            ("session-zzzz", 1_700_000_000_000, "8299999999999-session-zzzz")
        );
        assert_eq!(cursor.entry_name(), older);
        assert_eq!(SessionCursor::parse(cursor.as_str()), Some(cursor));
        assert_eq!(session_entry_name(&sid("session-aaaa"), -5), "9999999999999-session-aaaa.json");
    }

    #[test]
    fn bad_session_names_and_cursors() {
        for bad in [
            "",
            "829999999999-session-zzzz",
            "8299999999999session-zzzz",
            "82999999999x9-session-zzzz",
            "8299999999999-../../etc",
            "8299999999999-short",
            "8299999999999-session-zzzz.json",
        ] {
            assert_eq!(SessionCursor::parse(bad), None, "{bad:?}");
        }
        assert!(parse_session_entry_name("8299999999999-session-zzzz").is_none(), "needs .json");
        assert!(parse_session_entry_name(".tmp-1234.json").is_none());
    }

    #[test]
    fn entries_round_trip_and_cut_long_urls() {
        let details = SessionDetails {
            url: Some("x".repeat(5000)),
            user_id: Some("user-1".into()),
            browser: Some("Chrome".into()),
            os: Some("Linux".into()),
        };
        let entry = SessionEntry::new(&sid("session-aaaa"), 42, &details);
        assert_eq!(entry.url.as_ref().unwrap().len(), MAX_URL_CHARS);
        let back = SessionEntry::details_from_json(&entry.to_json());
        assert_eq!(back.user_id.as_deref(), Some("user-1"));
        assert_eq!((back.browser.as_deref(), back.os.as_deref()), (Some("Chrome"), Some("Linux")));
        let older = br#"{"session_id":"session-aaaa","start":42,"url":null,"user_id":"u"}"#;
        assert_eq!(SessionEntry::details_from_json(older).user_id.as_deref(), Some("u"));
        assert_eq!(SessionEntry::details_from_json(b"garbage"), SessionDetails::default());
    }

    #[test]
    fn chunk_index_names() {
        let info = ChunkInfo {
            seq: 7,
            meta: ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_004_321, events: 42 },
            bytes: 1234,
            stats: ChunkStats { pages: 2, errors: 1, received_at: Some(1_700_000_005_000) },
        };
        let name = chunk_index_name(&info);
        assert_eq!(name, "0000000007-1700000000000-1700000004321-42-1234-2-1-1700000005000");
        assert_eq!(parse_chunk_index_name(&name), Some(info));
        let unknown = ChunkInfo { stats: ChunkStats { received_at: None, ..info.stats }, ..info };
        assert_eq!(parse_chunk_index_name(&chunk_index_name(&unknown)), Some(unknown));
        let older = parse_chunk_index_name("0000000007-1700000000000-1700000004321-42-1234").unwrap();
        assert_eq!((older.meta, older.bytes, older.stats), (info.meta, 1234, ChunkStats::default()));
        for bad in [
            "",
            "7-1-2-3-4",
            "0000000007-1-2-3",
            "0000000007-1-2-3-4-5",
            "0000000007-1-2-3-4-5-6",
            "0000000007-1-2-3-4-5-6-7-8",
            "0000000007-1--3-4",
            "0000000007-a-2-3-4",
        ] {
            assert_eq!(parse_chunk_index_name(bad), None, "{bad:?}");
        }
    }
}
