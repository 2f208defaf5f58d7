//! Validation of a replay chunk: a JSON array of rrweb events.
//!
//! Each element must be an object with an integer `type` in 0..=6 and a
//! numeric `timestamp`. Only those two fields (and `data.href` of Meta
//! events) are looked at; everything else — the DOM snapshots, mutations,
//! mouse moves — is skipped by serde's `IgnoredAny` without building a tree,
//! which keeps validation at hundreds of MB/s.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{ApiError, FieldError};

/// rrweb's `EventType.Meta`, which carries the page URL in `data.href`.
const META_EVENT_TYPE: u8 = 4;
const MAX_EVENT_TYPE: u8 = 6;
/// Longest page URL kept from a Meta event (the `url` limit of the other
/// routes); a longer one is cut, so it cannot bloat the `replay_started` line.
const MAX_HREF_CHARS: usize = 2048;

/// What the server keeps from a valid chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkSummary {
    pub events: u32,
    /// Smallest and largest event timestamp, in ms since the epoch.
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    /// `data.href` of the first Meta event, if any.
    pub meta_href: Option<String>,
}

/// Validates a decompressed chunk.
pub fn validate_chunk(json: &[u8]) -> Result<ChunkSummary, ApiError> {
    let mut state = ScanState { events: 0, first: f64::INFINITY, last: f64::NEG_INFINITY, meta_href: None, bad: None };
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = ChunkSeed(&mut state).deserialize(&mut de).and_then(|()| de.end());
    if let Some((index, field, reason)) = state.bad {
        return Err(ApiError::invalid_fields(vec![FieldError::new(Some(index), field, reason)]));
    }
    if let Err(e) = parsed {
        return Err(ApiError::invalid_body(format!("not a JSON array of rrweb events: {e}")));
    }
    if state.events == 0 {
        return Err(ApiError::invalid_body("the array is empty"));
    }
    Ok(ChunkSummary {
        events: state.events,
        first_timestamp: state.first as i64,
        last_timestamp: state.last as i64,
        meta_href: state.meta_href,
    })
}

struct ScanState {
    events: u32,
    first: f64,
    last: f64,
    meta_href: Option<String>,
    /// The first invalid element: index, field, reason.
    bad: Option<(usize, &'static str, String)>,
}

struct ChunkSeed<'s>(&'s mut ScanState);

impl<'de> DeserializeSeed<'de> for ChunkSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChunkSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of rrweb events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut index = 0usize;
        while let Some(element) = seq.next_element::<Element<'de>>()? {
            let problem = match element {
                Element::NotObject => Some(("event", "must be an object".to_owned())),
                Element::Event(event) => state.record(event).err(),
            };
            if let Some((field, reason)) = problem {
                state.bad = Some((index, field, reason));
                return Err(de::Error::custom("invalid rrweb event"));
            }
            index += 1;
        }
        Ok(())
    }
}

impl ScanState {
    fn record(&mut self, event: EventHead<'_>) -> Result<(), (&'static str, String)> {
        let kind = event
            .kind
            .and_then(|raw| raw.get().parse::<u8>().ok())
            .filter(|kind| *kind <= MAX_EVENT_TYPE)
            .ok_or(("type", "must be an integer from 0 to 6".to_owned()))?;
        let timestamp = event
            .timestamp
            .and_then(|raw| raw.get().parse::<f64>().ok())
            .filter(|ts| ts.is_finite() && *ts >= 0.0)
            .ok_or(("timestamp", "must be a non-negative number (ms since the epoch)".to_owned()))?;
        self.events = self.events.checked_add(1).ok_or(("event", "too many events".to_owned()))?;
        self.first = self.first.min(timestamp);
        self.last = self.last.max(timestamp);
        if kind == META_EVENT_TYPE && self.meta_href.is_none() {
            let href = event.data.and_then(|data| serde_json::from_str::<MetaData>(data.get()).ok()?.href);
            self.meta_href = href.map(|mut href| {
                if let Some((cut, _)) = href.char_indices().nth(MAX_HREF_CHARS) {
                    href.truncate(cut);
                }
                href
            });
        }
        Ok(())
    }
}

/// An array element: an event object, or anything else (reported as invalid).
enum Element<'a> {
    Event(EventHead<'a>),
    NotObject,
}

/// The fields of an event that are checked; values stay raw JSON text.
struct EventHead<'a> {
    kind: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Type,
    Timestamp,
    Data,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MetaData {
    href: Option<String>,
}

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

macro_rules! not_object {
    ($($method:ident($($arg:ty)?)),*) => {$(
        fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<Element<'de>, E> { Ok(Element::NotObject) }
    )*};
}

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an rrweb event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element<'de>, A::Error> {
        let mut head = EventHead { kind: None, timestamp: None, data: None };
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Type => head.kind = Some(map.next_value()?),
                Field::Timestamp => head.timestamp = Some(map.next_value()?),
                Field::Data => head.data = Some(map.next_value()?),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Element::Event(head))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::NotObject)
    }

    not_object!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_unit());

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Element<'de>, E> {
        Ok(Element::NotObject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(json: &str) -> (Option<usize>, String) {
        match validate_chunk(json.as_bytes()) {
            Err(ApiError::Invalid { details, .. }) => (details[0].index, details[0].field.clone()),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn valid_chunk_summary() {
        let json = r#"[{"type":4,"data":{"href":"https://a.example/x","width":1},"timestamp":1000},
                      {"type":2,"data":{"node":{"childNodes":[]}},"timestamp":1001.5},
                      {"type":3,"timestamp":900,"data":{}}]"#;
        let s = validate_chunk(json.as_bytes()).unwrap();
        assert_eq!(s.events, 3);
        assert_eq!((s.first_timestamp, s.last_timestamp), (900, 1001));
        assert_eq!(s.meta_href.as_deref(), Some("https://a.example/x"));
    }

    #[test]
    fn rejects_bad_elements_with_index() {
        assert_eq!(bad(r#"[{"type":3,"timestamp":1},{"type":7,"timestamp":1}]"#), (Some(1), "type".into()));
        assert_eq!(bad(r#"[{"type":"3","timestamp":1}]"#), (Some(0), "type".into()));
        assert_eq!(bad(r#"[{"type":3.5,"timestamp":1}]"#), (Some(0), "type".into()));
        assert_eq!(bad(r#"[{"type":3}]"#), (Some(0), "timestamp".into()));
        assert_eq!(bad(r#"[{"type":3,"timestamp":"x"}]"#), (Some(0), "timestamp".into()));
        assert_eq!(bad(r#"[{"type":3,"timestamp":1}, 5]"#), (Some(1), "event".into()));
        assert_eq!(bad(r#"[[1]]"#), (Some(0), "event".into()));
        assert_eq!(bad(r#"[null]"#), (Some(0), "event".into()));
    }

    #[test]
    fn rejects_non_arrays_and_garbage() {
        for body in [r#"{"type":3}"#, "", "[", r#"[{"type":3,"timestamp":1}] x"#, "[]", "\"s\""] {
            assert!(matches!(validate_chunk(body.as_bytes()), Err(ApiError::Invalid { .. })), "{body}");
        }
    }
}
