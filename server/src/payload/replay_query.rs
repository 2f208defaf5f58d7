//! `ReplayChunkQuery`: the query string of `POST /api/observer/replay-events`.

use super::{QueryParams, SessionId};
use crate::error::{ApiError, FieldError};

/// The parameters; `key` is the ingest key (checked by the ingest key
/// layer), allowed here so a `sendBeacon` client can pass it.
const PARAMS: &[&str] = &["session_id", "seq", "user_id", "key"];

/// A validated replay chunk address.
#[derive(Debug, Clone)]
pub struct ReplayChunkQuery {
    pub session_id: SessionId,
    pub seq: u32,
    pub user_id: Option<String>,
}

impl ReplayChunkQuery {
    /// Parses and validates the raw query string, reporting every bad field.
    pub fn parse(query: Option<&str>) -> Result<ReplayChunkQuery, ApiError> {
        let raw = QueryParams::parse(query, PARAMS)?;
        let mut errors = Vec::new();
        let session_id = match raw.get("session_id") {
            None => {
                errors.push(FieldError::new(None, "session_id", "is required"));
                None
            }
            Some(value) => {
                let id = SessionId::parse(value);
                if id.is_none() {
                    errors.push(FieldError::new(None, "session_id", super::ID_RULE));
                }
                id
            }
        };
        let seq = match raw.get("seq") {
            None => {
                errors.push(FieldError::new(None, "seq", "is required"));
                None
            }
            // Digits only: u32's parser would also take a leading '+'.
            Some(value) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => match value.parse::<u32>()
            {
                Ok(seq) => Some(seq),
                Err(_) => {
                    errors.push(FieldError::new(None, "seq", "must be an integer from 0 to 4294967295"));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new(None, "seq", "must be an integer from 0 to 4294967295"));
                None
            }
        };
        if let Some(user_id) = raw.get("user_id")
            && (user_id.is_empty() || user_id.chars().count() > 256)
        {
            errors.push(FieldError::new(None, "user_id", "must be 1 to 256 characters"));
        }
        match (session_id, seq) {
            (Some(session_id), Some(seq)) if errors.is_empty() => {
                Ok(ReplayChunkQuery { session_id, seq, user_id: raw.get("user_id").map(str::to_owned) })
            }
            _ => Err(ApiError::invalid_fields(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let q = ReplayChunkQuery::parse(Some("session_id=abcdefgh12&seq=7&user_id=u1&key=k")).unwrap();
        assert_eq!((q.session_id.as_str(), q.seq, q.user_id.as_deref()), ("abcdefgh12", 7, Some("u1")));
        for bad in [
            "",
            "session_id=../x&seq=1",
            "session_id=abcdefgh12&seq=-1",
            "session_id=abcdefgh12&seq=4294967296",
            "session_id=abcdefgh12&seq=+1",
            "session_id=abcdefgh12&seq=1&extra=1",
            "session_id=abcdefgh12",
            "session_id=abcdefgh12&seq=1&seq=2",
        ] {
            assert!(ReplayChunkQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
