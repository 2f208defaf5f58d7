//! Validation of a replay chunk: a JSON array of rrweb events.
//!
//! Each element must be an object with an integer `type` in 0..=6 and a
//! numeric `timestamp`. Only those two fields (and `data.href` of Meta
//! events, `data.tag` of custom events) are looked at; everything else — the DOM snapshots, mutations,
//! mouse moves — is skipped by serde's `IgnoredAny` without building a tree.
//! Nothing is borrowed from the input, so the same validator reads a
//! buffer (`validate_chunk`, hundreds of MB/s) or a stream such as a gzip
//! decoder (`validate_chunk_reader`), which never holds the whole text.
//! The nesting depth of skipped values is bounded by `ingest::chunk_scan`.

use std::{fmt, io};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{ApiError, FieldError};

/// rrweb's `EventType.Meta`, which carries the page URL in `data.href`.
const META_EVENT_TYPE: u64 = 4;
/// rrweb's `EventType.Custom`; the SDK marks errors with `data.tag == "error"`.
const CUSTOM_EVENT_TYPE: u64 = 5;
const MAX_EVENT_TYPE: u64 = 6;
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
    /// Meta events (type 4): rrweb emits one per page load, and one with
    /// each periodic full snapshot.
    pub pages: u32,
    /// Custom events (type 5) with `data.tag == "error"`.
    pub errors: u32,
}

/// Validates a decompressed chunk held in memory.
pub fn validate_chunk(json: &[u8]) -> Result<ChunkSummary, ApiError> {
    validate(serde_json::Deserializer::from_slice(json))
}

/// Validates a chunk read from `reader` to its end, a piece at a time.
/// Wrap unbuffered sources in a `BufReader`: serde_json reads byte by byte.
pub fn validate_chunk_reader(reader: impl io::Read) -> Result<ChunkSummary, ApiError> {
    validate(serde_json::Deserializer::from_reader(reader))
}

fn validate<'de, R: serde_json::de::Read<'de>>(mut de: serde_json::Deserializer<R>) -> Result<ChunkSummary, ApiError> {
    let mut state = ScanState {
        events: 0,
        first: f64::INFINITY,
        last: f64::NEG_INFINITY,
        meta_href: None,
        pages: 0,
        errors: 0,
        bad: None,
    };
    // `end` reads to the end of the input, so a stream is always consumed whole.
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
        pages: state.pages,
        errors: state.errors,
    })
}

struct ScanState {
    events: u32,
    first: f64,
    last: f64,
    meta_href: Option<String>,
    pages: u32,
    errors: u32,
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
        while let Some(element) = seq.next_element::<Element>()? {
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
    fn record(&mut self, event: EventHead) -> Result<(), (&'static str, String)> {
        let kind = match event.kind {
            Some(Scalar::Unsigned(kind)) if kind <= MAX_EVENT_TYPE => kind,
            _ => return Err(("type", "must be an integer from 0 to 6".to_owned())),
        };
        let timestamp = match event.timestamp {
            Some(Scalar::Unsigned(ts)) => Some(ts as f64),
            Some(Scalar::Signed(ts)) if ts >= 0 => Some(ts as f64),
            Some(Scalar::Float(ts)) if ts.is_finite() && ts >= 0.0 => Some(ts),
            _ => None,
        }
        .ok_or(("timestamp", "must be a non-negative number (ms since the epoch)".to_owned()))?;
        self.events = self.events.checked_add(1).ok_or(("event", "too many events".to_owned()))?;
        self.first = self.first.min(timestamp);
        self.last = self.last.max(timestamp);
        if kind == META_EVENT_TYPE {
            self.pages = self.pages.saturating_add(1);
        }
        if kind == CUSTOM_EVENT_TYPE && event.error_tag {
            self.errors = self.errors.saturating_add(1);
        }
        if kind == META_EVENT_TYPE && self.meta_href.is_none() {
            self.meta_href = event.href.map(|mut href| {
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
enum Element {
    Event(EventHead),
    NotObject,
}

/// The fields of an event that are checked.
struct EventHead {
    kind: Option<Scalar>,
    timestamp: Option<Scalar>,
    /// `data.href` when it is a string (kept only for Meta events).
    href: Option<String>,
    /// `data.tag == "error"` (counted only for custom events).
    error_tag: bool,
}

/// A JSON value reduced to what validation needs to know about it.
enum Scalar {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    Other,
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
#[serde(field_identifier, rename_all = "lowercase")]
enum DataField {
    Href,
    Tag,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// `data`, of which only `href` and whether `tag` is `"error"` are kept.
#[derive(Default)]
struct DataHref {
    href: Option<String>,
    error_tag: bool,
}

impl<'de> Deserialize<'de> for DataHref {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

/// Visitor methods that drain containers and map every scalar to `$other`.
macro_rules! anything_else {
    ($value:ty, $other:expr, [$($method:ident($($arg:ty)?)),*]) => {
        $(fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<$value, E> { Ok($other) })*

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an rrweb event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut head = EventHead { kind: None, timestamp: None, href: None, error_tag: false };
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Type => head.kind = Some(map.next_value()?),
                Field::Timestamp => head.timestamp = Some(map.next_value()?),
                Field::Data => {
                    let data = map.next_value::<DataHref>()?;
                    (head.href, head.error_tag) = (data.href, data.error_tag);
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Element::Event(head))
    }

    anything_else!(
        Element,
        Element::NotObject,
        [visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_unit()]
    );
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    anything_else!(Scalar, Scalar::Other, [visit_bool(bool), visit_unit()]);
}

/// Whether a `tag` value is the string `"error"` (nothing is kept).
struct Tag(bool);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TagVisitor)
    }
}

struct TagVisitor;

impl<'de> Visitor<'de> for TagVisitor {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
        Ok(Tag(v == "error"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tag, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Tag(false))
    }

    anything_else!(Tag, Tag(false), [visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_unit()]);
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = DataHref;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataHref, A::Error> {
        let mut data = DataHref::default();
        while let Some(field) = map.next_key::<DataField>()? {
            match field {
                DataField::Href => {
                    data.href = match map.next_value()? {
                        Scalar::Text(text) => Some(text),
                        _ => None,
                    }
                }
                DataField::Tag => data.error_tag = map.next_value::<Tag>()?.0,
                DataField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(data)
    }

    anything_else!(
        DataHref,
        DataHref::default(),
        [visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str), visit_unit()]
    );
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
        assert_eq!((s.pages, s.errors), (1, 0));
    }

    #[test]
    fn counts_meta_events_and_error_custom_events() {
        let json = r#"[{"type":4,"data":{"href":"https://a.example/1"},"timestamp":1},
                      {"type":5,"timestamp":2,"data":{"tag":"error","payload":{"message":"x"}}},
                      {"type":5,"timestamp":3,"data":{"payload":{"tag":"error"},"tag":"identify"}},
                      {"type":3,"timestamp":4,"data":{"tag":"error"}},
                      {"type":5,"timestamp":5,"data":{"tag":["error"]}},
                      {"type":4,"data":{"href":"https://a.example/2"},"timestamp":6},
                      {"data":{"tag":"error"},"type":5,"timestamp":7}]"#;
        let s = validate_chunk(json.as_bytes()).unwrap();
        assert_eq!((s.pages, s.errors), (2, 2));
        let from_reader = validate_chunk_reader(std::io::BufReader::with_capacity(3, json.as_bytes())).unwrap();
        assert_eq!(from_reader, s);
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

    #[test]
    fn reader_and_slice_agree() {
        let bodies = [
            r#"[{"type":4,"data":{"href":"https://a.example/x","width":1},"timestamp":1000},{"type":2,"timestamp":9}]"#,
            r#"[{"data":{"href":7},"type":4,"timestamp":1}]"#,
            r#"[{"type":3,"timestamp":1,"data":[1,{"a":[]}]},{"type":3,"timestamp":2,"data":"s","x":{"y":[null,true]}}]"#,
            r#"[{"type":3,"timestamp":1},{"type":"3","timestamp":1}]"#,
            r#"[{"type":3,"timestamp":-1}]"#,
            r#"[{"type":3,"timestamp":1}] x"#,
            r#"[{"type":3,"timestamp":1},"#,
            "[]",
        ];
        for body in bodies {
            let from_slice = validate_chunk(body.as_bytes());
            let from_reader = validate_chunk_reader(std::io::BufReader::with_capacity(3, body.as_bytes()));
            assert_eq!(format!("{from_slice:?}"), format!("{from_reader:?}"), "{body}");
        }
    }

    #[test]
    fn long_meta_href_is_cut() {
        let href = "h".repeat(5000);
        let json = format!(r#"[{{"type":4,"timestamp":1,"data":{{"href":"{href}"}}}}]"#);
        assert_eq!(validate_chunk(json.as_bytes()).unwrap().meta_href.map(|h| h.len()), Some(MAX_HREF_CHARS));
    }
}
