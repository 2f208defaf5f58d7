//! Parsing of "one object or an array of objects" bodies, validated whole:
//! every bad field of every item is reported, and nothing is accepted unless
//! all items are valid.

use std::cell::Cell;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde_json::value::RawValue;
use validator::Validate;

use super::{
    bad_fields::report_every_bad_field,
    problems::{Problems, push_validation_errors, serde_field_error, strip_position},
};
use crate::error::{ApiError, FieldError, LimitName};

/// A payload item that can check what serde and `validator` cannot
/// (cross-field rules, timestamps relative to the receive time).
pub trait BatchItem: DeserializeOwned + Validate {
    /// Extra checks; push one `FieldError` per problem.
    fn check(&mut self, index: Option<usize>, received_ms: i64, errors: &mut Vec<FieldError>);

    /// A valid value for a required field, used only to keep looking for
    /// further problems after that field was already reported as bad.
    fn stand_in(_field: &str) -> Option<serde_json::Value> {
        None
    }
}

/// Parses `body` as one object or an array of at most `max_items` objects.
/// Problems beyond `MAX_DETAILS` are counted, not listed.
pub fn parse_batch<T: BatchItem>(body: &[u8], max_items: usize, received_ms: i64) -> Result<Vec<T>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut problems = Problems::default();
    let items = match first {
        Some(b'{') => parse_item::<T>(body, None, received_ms, &mut problems).into_iter().collect(),
        Some(b'[') => {
            let raw = array_items(body, max_items)?;
            let mut items = Vec::with_capacity(raw.len());
            for (index, item) in raw.iter().enumerate() {
                if !item.get().starts_with('{') {
                    problems.push(FieldError::new(Some(index), "item", "must be a JSON object"));
                    continue;
                }
                if let Some(item) = parse_item::<T>(item.get().as_bytes(), Some(index), received_ms, &mut problems) {
                    items.push(item);
                }
            }
            items
        }
        _ => return Err(ApiError::invalid_body("must be a JSON object or an array of objects")),
    };
    problems.into_result(items)
}

/// The items of a JSON array, as borrowed slices of the body so that a batch
/// is never copied. The array is refused as soon as it grows past
/// `max_items`: a body of a million `{}` costs no more than `max_items` do.
fn array_items(body: &[u8], max_items: usize) -> Result<Vec<&RawValue>, ApiError> {
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BoundedItems { max_items, too_many: &too_many }.deserialize(&mut de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    match parsed {
        _ if too_many.get() => {
            Err(ApiError::TooLarge { limit: LimitName::BatchItems, what: "batch item count", max: max_items })
        }
        Err(e) => Err(ApiError::invalid_body(format!("not a JSON array of objects: {}", strip_position(&e)))),
        Ok(items) if items.is_empty() => Err(ApiError::invalid_body("the array is empty")),
        Ok(items) => Ok(items),
    }
}

struct BoundedItems<'a> {
    max_items: usize,
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BoundedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max_items {
                self.too_many.set(true);
                return Err(A::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

fn parse_item<T: BatchItem>(
    bytes: &[u8],
    index: Option<usize>,
    received_ms: i64,
    problems: &mut Problems,
) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let mut item: T = match serde_path_to_error::deserialize(&mut *de) {
        Ok(item) => item,
        Err(e) => {
            report_every_bad_field::<T>(bytes, index, received_ms, serde_field_error(index, &e), problems);
            return None;
        }
    };
    if let Err(e) = de.end() {
        problems.push(FieldError::new(index, "body", strip_position(&e)));
        return None;
    }
    let mut found = Vec::new();
    if let Err(validation) = item.validate() {
        push_validation_errors(index, &validation, &mut found);
    }
    item.check(index, received_ms, &mut found);
    if found.is_empty() {
        return Some(item);
    }
    for problem in found {
        problems.push(problem);
    }
    None
}

/// Checks an optional client timestamp against the receive time and
/// returns the timestamp to record.
pub fn check_timestamp(
    value: Option<i64>,
    index: Option<usize>,
    received_ms: i64,
    errors: &mut Vec<FieldError>,
) -> i64 {
    const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
    const MAX_AHEAD_MS: i64 = 3600 * 1000;
    let Some(ts) = value else { return received_ms };
    if ts < received_ms.saturating_sub(MAX_AGE_MS) {
        errors.push(FieldError::new(index, "timestamp", "is more than 7 days in the past"));
    } else if ts > received_ms.saturating_add(MAX_AHEAD_MS) {
        errors.push(FieldError::new(index, "timestamp", "is more than 1 hour in the future"));
    }
    ts
}

/// Checks that an optional JSON object serialises to at most `max` bytes.
/// The bytes are counted as they are written, never buffered.
pub fn check_object_size(
    value: Option<&serde_json::Map<String, serde_json::Value>>,
    field: &str,
    max: usize,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(object) = value {
        let mut counter = ByteCounter(0);
        let size = serde_json::to_writer(&mut counter, object).map_or(usize::MAX, |()| counter.0);
        if size > max {
            errors.push(FieldError::new(index, field, format!("must serialise to at most {max} bytes (got {size})")));
        }
    }
}

/// A writer that keeps only the number of bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `validator` custom rule for session, visitor and user-session ids.
pub fn validate_id(value: &str) -> Result<(), validator::ValidationError> {
    if super::is_valid_id(value) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("id").with_message(super::ID_RULE.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde::{Deserialize, Deserializer};

    use super::*;
    use crate::payload::{AnalyticsEvent, ErrorReport, problems::MAX_DETAILS};

    const NOW: i64 = 1_800_000_000_000;

    thread_local! {
        static DESERIALIZED: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts how often an item is deserialized: the error path must not
    /// re-parse per field.
    #[derive(Debug)]
    struct Counted;

    impl<'de> Deserialize<'de> for Counted {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            DESERIALIZED.with(|n| n.set(n.get() + 1));
            serde::de::IgnoredAny::deserialize(deserializer).map(|_| Counted)
        }
    }

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        #[allow(dead_code)]
        counted: Counted,
        #[validate(range(max = 10, message = "must be at most 10"))]
        small: Option<u32>,
    }

    impl BatchItem for Probe {
        fn check(&mut self, _: Option<usize>, _: i64, _: &mut Vec<FieldError>) {}
    }

    fn unknown_fields(first: &str, count: usize) -> String {
        let mut body = format!("{{{first}");
        for i in 0..count {
            body.push_str(&format!(",\"k{i:06}\":0"));
        }
        body.push('}');
        body
    }

    fn invalid(result: Result<Vec<impl std::fmt::Debug>, ApiError>) -> (Vec<FieldError>, usize) {
        match result {
            Err(ApiError::Invalid { details, details_truncated, .. }) => (details, details_truncated),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn many_unknown_fields_are_parsed_once_and_capped() {
        let body = unknown_fields(r#""counted":1,"small":11"#, 50_000);
        DESERIALIZED.with(|n| n.set(0));
        let (details, truncated) = invalid(parse_batch::<Probe>(body.as_bytes(), 100, NOW));
        // Once on the fast path, once for the known fields on the error path.
        assert!(DESERIALIZED.with(Cell::get) <= 2, "deserialized {} times", DESERIALIZED.with(Cell::get));
        assert_eq!(details.len(), MAX_DETAILS);
        assert_eq!(details.len() + truncated, 50_001, "every unknown field and `small` are counted");
        assert!(details.iter().all(|d| d.field.starts_with('k') && d.reason.contains("allowed: counted, small")));
    }

    #[test]
    fn every_item_of_a_batch_is_counted_beyond_the_cap() {
        let item = unknown_fields(r#""message":"m""#, 30);
        let body = format!("[{}]", vec![item; 100].join(","));
        let (details, truncated) = invalid(parse_batch::<ErrorReport>(body.as_bytes(), 100, NOW));
        assert_eq!((details.len(), truncated), (MAX_DETAILS, 100 * 30 - MAX_DETAILS));
        assert!(details.iter().all(|d| d.index == Some(0)));
    }

    #[test]
    fn known_field_problems_follow_unknown_ones() {
        let body = r#"{"zz":1,"message":7,"user_id":"","timestamp":"x","aa":2}"#;
        let (details, truncated) = invalid(parse_batch::<ErrorReport>(body.as_bytes(), 100, NOW));
        let fields: Vec<_> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["zz", "aa", "message", "timestamp", "user_id"]);
        assert_eq!(truncated, 0);
        let (details, _) = invalid(parse_batch::<AnalyticsEvent>(br#"{"name":"n","x":1}"#, 100, NOW));
        assert_eq!(details.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(), ["x", "type"]);
    }

    #[test]
    fn a_duplicate_field_is_still_reported() {
        let (details, _) = invalid(parse_batch::<ErrorReport>(br#"{"message":"a","message":"b"}"#, 100, NOW));
        assert_eq!((details[0].field.as_str(), details[0].reason.as_str()), ("message", "appears more than once"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let cases = [
            (format!(r#"{{"type":"page_view","properties":{{"p":{deep}}}}}"#), "properties"),
            (format!(r#"{{"type":"page_view","x":{deep}}}"#), "x"),
            (format!("[{deep}]"), "item"),
        ];
        for (body, field) in cases {
            let (details, _) = invalid(parse_batch::<AnalyticsEvent>(body.as_bytes(), 100, NOW));
            assert!(details[0].field.starts_with(field), "{details:?}");
        }
        // Skipping a deep unknown value does not stop the search for more.
        let body = format!(r#"{{"x":{deep},"type":"click"}}"#);
        let (details, _) = invalid(parse_batch::<AnalyticsEvent>(body.as_bytes(), 100, NOW));
        assert_eq!(details.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(), ["x", "type"]);
        let open = "[".repeat(100_000);
        let (details, _) = invalid(parse_batch::<AnalyticsEvent>(open.as_bytes(), 100, NOW));
        assert_eq!(details[0].field, "body");
    }

    #[test]
    fn an_over_long_array_is_refused_without_collecting_it() {
        let body = format!("[{}]", vec!["{}"; 300_000].join(","));
        let result = parse_batch::<AnalyticsEvent>(body.as_bytes(), 100, NOW);
        assert!(matches!(result, Err(ApiError::TooLarge { limit: LimitName::BatchItems, .. })), "{result:?}");
        let result = parse_batch::<AnalyticsEvent>(b"[{}, {} trailing", 1, NOW);
        assert!(matches!(result, Err(ApiError::TooLarge { .. })), "{result:?}");
        let (details, _) = invalid(parse_batch::<AnalyticsEvent>(b"[] x", 100, NOW));
        assert_eq!(details[0].field, "body");
    }

    #[test]
    fn object_size_is_counted_without_buffering() {
        let mut errors = Vec::new();
        let object: serde_json::Map<_, _> = serde_json::from_str(r#"{"a":"xyz"}"#).unwrap();
        check_object_size(Some(&object), "context", 11, None, &mut errors);
        assert!(errors.is_empty());
        check_object_size(Some(&object), "context", 10, None, &mut errors);
        assert_eq!(errors[0].reason, "must serialise to at most 10 bytes (got 11)");
    }
}
