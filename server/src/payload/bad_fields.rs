//! Error path of item parsing: serde stops at the first bad field, but
//! clients deserve every problem of an item at once.
//!
//! Cost is linear in the item: one streaming pass checks every key against
//! the struct's field list, skips the values of unknown keys without
//! building them, and keeps the known fields (a dozen, fixed at compile
//! time), which are then retried one by one. A body of 50,000 unknown fields
//! costs one parse, 50,000 comparisons against a short list and no memory
//! beyond the known fields' values.

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor, value::Error as IntrospectError},
};
use serde_json::{Map, Value};

use super::{
    batch::BatchItem,
    problems::{Problems, push_validation_errors, serde_field_error},
};
use crate::error::FieldError;

/// Reports every bad field of an item serde refused with `first`.
pub fn report_every_bad_field<T: BatchItem>(
    bytes: &[u8],
    index: Option<usize>,
    received_ms: i64,
    first: FieldError,
    problems: &mut Problems,
) {
    let before = problems.total();
    let known = struct_fields::<T>();
    let sort_out = SortOutFields { known, index, problems: &mut *problems };
    // Not an object at all (bad syntax, a known field nested too deep):
    // serde's own error says it.
    if let Ok(kept) = sort_out.deserialize(&mut serde_json::Deserializer::from_slice(bytes)) {
        report_known_fields::<T>(kept, index, received_ms, known.len(), problems);
    }
    // E.g. a duplicate field: the object parses, serde's struct refuses it.
    if problems.total() == before {
        problems.push(first);
    }
}

/// Reports each unknown key of an object (in document order) and keeps the
/// known fields' values.
struct SortOutFields<'a> {
    known: &'static [&'static str],
    index: Option<usize>,
    problems: &'a mut Problems,
}

impl<'de> DeserializeSeed<'de> for SortOutFields<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SortOutFields<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.known.contains(&key.as_str()) {
                let value = map.next_value::<Value>()?;
                kept.insert(key, value);
            } else {
                // Skipped without building it (and without depth limit:
                // serde_json skips iteratively).
                map.next_value::<IgnoredAny>()?;
                let known = self.known;
                self.problems.push_with(|| {
                    FieldError::new(self.index, key, format!("unknown field; allowed: {}", known.join(", ")))
                });
            }
        }
        Ok(kept)
    }
}

/// Drops each known field serde refuses (standing a valid value in for a
/// required one) and tries again, then runs the remaining checks on what is
/// left. Each round removes or stands in one of `field_count` fields, at
/// most once each, so the rounds are bounded by the struct, not the input.
fn report_known_fields<T: BatchItem>(
    mut object: Map<String, Value>,
    index: Option<usize>,
    received_ms: i64,
    field_count: usize,
    problems: &mut Problems,
) {
    // Known fields reported so far: later checks must not repeat them.
    let mut reported: Vec<String> = Vec::new();
    for _ in 0..=2 * field_count + 2 {
        let problem = match serde_path_to_error::deserialize::<_, T>(&object) {
            Err(e) => serde_field_error(index, &e),
            Ok(mut item) => {
                let mut rest = Vec::new();
                if let Err(validation) = item.validate() {
                    push_validation_errors(index, &validation, &mut rest);
                }
                item.check(index, received_ms, &mut rest);
                for problem in rest.into_iter().filter(|p| !reported.contains(&p.field)) {
                    problems.push(problem);
                }
                return;
            }
        };
        let field = problem.field.clone();
        if reported.contains(&field) {
            // A required field that was removed as bad: stand a valid value
            // in for it, or stop if there is none.
            match T::stand_in(&field) {
                Some(value) if !object.contains_key(&field) => {
                    object.insert(field, value);
                }
                _ => return,
            }
        } else {
            let removed = object.remove(&field).is_some();
            problems.push(problem);
            reported.push(field.clone());
            if !removed {
                // Missing, not bad: stand a value in to look further, or stop.
                let Some(value) = T::stand_in(&field) else { return };
                object.insert(field, value);
            }
        }
    }
}

/// The field names `T`'s derived `Deserialize` accepts (after renames).
///
/// serde hands them to `Deserializer::deserialize_struct`; this deserializer
/// only records them. Hand-written because it is the whole of what
/// `serde-aux`'s `serde_introspect` does, without that crate's dependencies.
pub fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct RecordFields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for RecordFields<'_> {
        type Error = IntrospectError;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(IntrospectError::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(IntrospectError::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(RecordFields(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{AnalyticsEvent, ErrorReport};

    #[test]
    fn struct_fields_are_the_wire_names() {
        let fields = struct_fields::<ErrorReport>();
        assert!(fields.contains(&"message") && fields.contains(&"type") && fields.contains(&"context"));
        assert!(!fields.contains(&"r#type"));
        assert!(struct_fields::<AnalyticsEvent>().contains(&"properties"));
    }
}
