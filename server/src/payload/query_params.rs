//! The query string of a route that takes parameters: each parameter one the
//! route knows, given at most once. A refusal names the parameter (an
//! unknown name quoted up to `MAX_ECHO_CHARS`), lists at most `MAX_DETAILS`
//! problems, and so stays small whatever the query holds.
//!
//! Hand-written over `form_urlencoded` rather than `serde_urlencoded` into a
//! `deny_unknown_fields` struct: serde stops at the first problem and words
//! it as one message naming the whole query ("unknown field `…`", the name
//! uncut; "duplicate field `…`").

use super::problems::{Problems, echo};
use crate::error::{ApiError, FieldError};

/// The parameters given, by the route's list of known names.
#[derive(Debug)]
pub struct QueryParams {
    known: &'static [&'static str],
    given: Vec<Option<String>>,
}

impl QueryParams {
    /// Parses `query` (percent-decoded, `+` as space) against `known`.
    pub fn parse(query: Option<&str>, known: &'static [&'static str]) -> Result<QueryParams, ApiError> {
        let mut given: Vec<Option<String>> = vec![None; known.len()];
        let mut repeated = vec![false; known.len()];
        let mut problems = Problems::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match known.iter().position(|k| *k == name) {
                Some(i) if given[i].is_some() => {
                    // Once per parameter, however often it is repeated.
                    if !std::mem::replace(&mut repeated[i], true) {
                        problems.push(FieldError::new(None, known[i], "appears more than once"));
                    }
                }
                Some(i) => given[i] = Some(value.into_owned()),
                None => problems.push_with(|| {
                    FieldError::new(None, echo(&name), format!("unknown parameter; allowed: {}", known.join(", ")))
                }),
            }
        }
        problems.into_result(QueryParams { known, given })
    }

    /// The value of `name` (one of the known names), if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.known.iter().position(|k| *k == name)?;
        self.given[i].as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["limit", "token"];

    fn refused(query: &str) -> (Vec<(String, String)>, String) {
        match QueryParams::parse(Some(query), KNOWN) {
            Err(ApiError::Invalid { details, message, .. }) => {
                (details.into_iter().map(|d| (d.field, d.reason)).collect(), message)
            }
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn known_parameters_once_each() {
        let params = QueryParams::parse(Some("limit=5&token=a+b%21"), KNOWN).unwrap();
        assert_eq!((params.get("limit"), params.get("token")), (Some("5"), Some("a b!")));
        let none = QueryParams::parse(None, KNOWN).unwrap();
        assert_eq!(none.get("limit"), None);
        assert_eq!(QueryParams::parse(Some("limit="), KNOWN).unwrap().get("limit"), Some(""));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let (details, _) = refused("sort=start&limit=1&limit=2&limit=3");
        assert_eq!(
            details,
            [
                ("sort".to_owned(), "unknown parameter; allowed: limit, token".to_owned()),
                ("limit".to_owned(), "appears more than once".to_owned()),
            ]
        );
    }

    #[test]
    fn a_huge_unknown_name_is_quoted_cut() {
        let (details, message) = refused(&format!("{}=1", "n".repeat(60_000)));
        assert_eq!(details[0].0, format!("{}…", "n".repeat(64)));
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn many_unknown_names_are_counted_not_listed() {
        let query: Vec<String> = (0..10_000).map(|i| format!("p{i}=1")).collect();
        match QueryParams::parse(Some(&query.join("&")), KNOWN) {
            Err(ApiError::Invalid { details, details_truncated, .. }) => {
                assert_eq!((details.len(), details_truncated), (crate::payload::MAX_DETAILS, 10_000 - 20));
            }
            other => panic!("{other:?}"),
        }
    }
}
