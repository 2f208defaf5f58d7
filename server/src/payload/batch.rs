//! Parsing of "one object or an array of objects" bodies, validated whole:
//! every bad field of every item is reported, and nothing is accepted unless
//! all items are valid.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

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
pub fn parse_batch<T: BatchItem>(body: &[u8], max_items: usize, received_ms: i64) -> Result<Vec<T>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut errors = Vec::new();
    let items = match first {
        Some(b'{') => match parse_item::<T>(body, None, received_ms, &mut errors) {
            Some(item) => vec![item],
            None => Vec::new(),
        },
        Some(b'[') => {
            // Items stay borrowed slices of the body until each is parsed,
            // so a batch is never copied.
            let raw: Vec<&RawValue> = serde_json::from_slice(body)
                .map_err(|e| ApiError::invalid_body(format!("not a JSON array of objects: {}", strip_position(&e))))?;
            if raw.is_empty() {
                return Err(ApiError::invalid_body("the array is empty"));
            }
            if raw.len() > max_items {
                return Err(ApiError::TooLarge {
                    limit: LimitName::BatchItems,
                    what: "batch item count",
                    max: max_items,
                });
            }
            let mut items = Vec::with_capacity(raw.len());
            for (index, item) in raw.iter().enumerate() {
                if !item.get().starts_with('{') {
                    errors.push(FieldError::new(Some(index), "item", "must be a JSON object"));
                    continue;
                }
                if let Some(item) = parse_item::<T>(item.get().as_bytes(), Some(index), received_ms, &mut errors) {
                    items.push(item);
                }
            }
            items
        }
        _ => return Err(ApiError::invalid_body("must be a JSON object or an array of objects")),
    };
    if errors.is_empty() { Ok(items) } else { Err(ApiError::invalid_fields(errors)) }
}

fn parse_item<T: BatchItem>(
    bytes: &[u8],
    index: Option<usize>,
    received_ms: i64,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let mut item: T = match serde_path_to_error::deserialize(&mut *de) {
        Ok(item) => item,
        Err(e) => {
            report_every_bad_field::<T>(bytes, index, received_ms, serde_field_error(index, &e), errors);
            return None;
        }
    };
    if let Err(e) = de.end() {
        errors.push(FieldError::new(index, "body", strip_position(&e)));
        return None;
    }
    let before = errors.len();
    if let Err(validation) = item.validate() {
        push_validation_errors(index, &validation, errors);
    }
    item.check(index, received_ms, errors);
    (errors.len() == before).then_some(item)
}

/// Error path only: serde stops at the first bad field, but clients deserve
/// every problem of an item at once. Take the item apart as a JSON object,
/// drop each field serde refuses and try again, then run the remaining
/// checks on what is left.
fn report_every_bad_field<T: BatchItem>(
    bytes: &[u8],
    index: Option<usize>,
    received_ms: i64,
    first: FieldError,
    errors: &mut Vec<FieldError>,
) {
    let Ok(mut object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) else {
        errors.push(first);
        return;
    };
    let start = errors.len();
    let mut problem = first;
    // Bounded: every round removes a field or stands one in, at most once each.
    for _ in 0..=2 * object.len() + 2 {
        let already_reported = errors[start..].iter().any(|e| e.field == problem.field);
        if already_reported {
            // A required field that was removed as bad: stand a valid value
            // in for it, or stop if there is none.
            match T::stand_in(&problem.field) {
                Some(value) if !object.contains_key(&problem.field) => {
                    object.insert(problem.field.clone(), value);
                }
                _ => return,
            }
        } else {
            let field = problem.field.clone();
            let removed = object.remove(&field).is_some();
            errors.push(problem);
            if !removed {
                // Missing, not bad: stand a value in to look further, or stop.
                let Some(value) = T::stand_in(&field) else { return };
                object.insert(field, value);
            }
        }
        match serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(object.clone())) {
            Err(e) => problem = serde_field_error(index, &e),
            Ok(mut item) => {
                let mut rest = Vec::new();
                if let Err(validation) = item.validate() {
                    push_validation_errors(index, &validation, &mut rest);
                }
                item.check(index, received_ms, &mut rest);
                let reported: Vec<String> = errors[start..].iter().map(|e| e.field.clone()).collect();
                errors.extend(rest.into_iter().filter(|e| !reported.contains(&e.field)));
                return;
            }
        }
    }
}

/// Removes serde_json's " at line X column Y" suffix: the field name says more.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_owned(),
        None => text,
    }
}

fn serde_field_error(index: Option<usize>, e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let reason = strip_position(e.inner());
    // serde reports unknown and missing fields in its message, not its path.
    for (prefix, what) in [("unknown field `", "unknown field"), ("missing field `", "is required")] {
        if let Some(rest) = reason.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            let reason = if what == "unknown field" {
                format!(
                    "unknown field; allowed: {}",
                    rest[end + 1..].trim_start_matches(", expected ").replace('`', "")
                )
            } else {
                what.to_owned()
            };
            return FieldError::new(index, &rest[..end], reason);
        }
    }
    let path = e.path().to_string();
    let field = if path.is_empty() || path == "." { "body".to_owned() } else { path };
    let field = if field == "r#type" { "type".to_owned() } else { field };
    FieldError::new(index, field, reason)
}

fn push_validation_errors(index: Option<usize>, errors: &ValidationErrors, out: &mut Vec<FieldError>) {
    let mut fields: Vec<_> = errors.errors().iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (field, kind) in fields {
        let name = field.trim_start_matches("r#");
        if let ValidationErrorsKind::Field(list) = kind {
            for error in list {
                let reason = error.message.as_deref().map(str::to_owned).unwrap_or_else(|| error.code.to_string());
                out.push(FieldError::new(index, name, reason));
            }
        }
    }
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
pub fn check_object_size(
    value: Option<&serde_json::Map<String, serde_json::Value>>,
    field: &str,
    max: usize,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(object) = value {
        let size = serde_json::to_vec(object).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > max {
            errors.push(FieldError::new(index, field, format!("must serialise to at most {max} bytes (got {size})")));
        }
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
