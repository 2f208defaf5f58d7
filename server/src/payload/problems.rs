//! The field problems of one request, listed up to a cap and counted beyond
//! it, and their wording from serde's and `validator`'s errors.

use validator::{ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};

/// Problems listed in an answer's `details`; the rest are only counted
/// (`details_truncated`). A client fixes the first twenty before it needs
/// the next, and a body with 50,000 unknown fields then costs a counter,
/// not 50,000 formatted messages.
pub const MAX_DETAILS: usize = 20;

/// Longest client-sent name or value quoted in a refusal (a query
/// parameter's name, say); `FieldError::new` bounds whole fields and reasons.
pub const MAX_ECHO_CHARS: usize = 64;

/// Client input as a refusal quotes it: at most [`MAX_ECHO_CHARS`], then "…".
pub fn echo(input: &str) -> String {
    crate::error::cap_chars(input.to_owned(), MAX_ECHO_CHARS)
}

#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<FieldError>,
    unlisted: usize,
}

impl Problems {
    pub fn push(&mut self, problem: FieldError) {
        self.push_with(|| problem);
    }

    /// Builds the problem only when it will be listed.
    pub fn push_with(&mut self, problem: impl FnOnce() -> FieldError) {
        if self.listed.len() < MAX_DETAILS {
            // Field names from the client (unknown keys, paths into nested
            // values) are bounded by `FieldError::new`.
            self.listed.push(problem());
        } else {
            self.unlisted += 1;
        }
    }

    /// Every problem pushed, listed or not.
    pub fn total(&self) -> usize {
        self.listed.len() + self.unlisted
    }

    pub fn into_result<T>(self, ok: T) -> Result<T, ApiError> {
        if self.listed.is_empty() {
            Ok(ok)
        } else {
            Err(ApiError::invalid_fields_truncated(self.listed, self.unlisted))
        }
    }
}

/// Removes serde_json's " at line X column Y" suffix: the field name says more.
pub fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_owned(),
        None => text,
    }
}

/// Names the field serde stopped at (unknown and missing fields are in its
/// message, not its path).
pub fn serde_field_error(index: Option<usize>, e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let reason = strip_position(e.inner());
    for (prefix, what) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "is required"),
        ("duplicate field `", "appears more than once"),
    ] {
        if let Some(rest) = reason.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            let reason = if what == "unknown field" {
                format!(
                    "unknown field; allowed: {}",
                    rest[end + 1..].trim_start_matches(", expected ").trim_start_matches("one of ").replace('`', "")
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

/// One `FieldError` per `validator` failure, sorted by field name.
pub fn push_validation_errors(index: Option<usize>, errors: &ValidationErrors, out: &mut Vec<FieldError>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_first_problems_and_counts_the_rest() {
        let mut problems = Problems::default();
        let mut built = 0;
        for i in 0..MAX_DETAILS + 5 {
            problems.push_with(|| {
                built += 1;
                FieldError::new(Some(i), "f", "bad")
            });
        }
        assert_eq!((problems.total(), built), (MAX_DETAILS + 5, MAX_DETAILS));
        match problems.into_result(()) {
            Err(ApiError::Invalid { details, details_truncated, message }) => {
                assert_eq!((details.len(), details_truncated), (MAX_DETAILS, 5));
                assert_eq!(message, "25 problems; the first 20 are listed in details");
            }
            other => panic!("{other:?}"),
        }
        assert!(Problems::default().into_result(()).is_ok());
    }

    #[test]
    fn long_field_names_reasons_and_echoes_are_cut() {
        use crate::error::{MAX_FIELD_CHARS, MAX_REASON_CHARS};
        let mut problems = Problems::default();
        problems.push(FieldError::new(
            None,
            "é".repeat(10_000),
            format!("invalid type: string \"{}\"", "x".repeat(60_000)),
        ));
        let Err(ApiError::Invalid { details, message, .. }) = problems.into_result(()) else { panic!() };
        assert_eq!(details[0].field.chars().count(), MAX_FIELD_CHARS + 1);
        assert_eq!(details[0].reason.chars().count(), MAX_REASON_CHARS + 1);
        assert!(details[0].field.ends_with('…') && details[0].reason.ends_with('…'));
        assert!(message.len() < 2_000, "{}", message.len());
        assert_eq!(echo(&"n".repeat(65)), format!("{}…", "n".repeat(64)));
        assert_eq!(echo("short"), "short");
        let Err(ApiError::Invalid { message, .. }) = Err::<(), _>(ApiError::invalid_body("y".repeat(60_000))) else {
            panic!()
        };
        assert!(message.len() < 2_000, "{}", message.len());
    }
}
