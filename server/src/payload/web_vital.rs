//! The rules of a `web_vital` analytics event: one Core Web Vitals
//! measurement (npm `web-vitals`) of one page view. The fields live on
//! `AnalyticsEvent` (one wire type per route); the checks that need the event
//! type live here.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// The metrics the SDK reports, and the largest value each may take. Time
/// metrics are in milliseconds: no real page waits ten minutes for its first
/// byte or paint (a larger value is a broken clock or a forged event). CLS is
/// a unitless score, usually below 1.
const METRICS: [(&str, f64); 5] =
    [("LCP", 600_000.0), ("INP", 600_000.0), ("FCP", 600_000.0), ("TTFB", 600_000.0), ("CLS", 100.0)];

/// Longest `navigation_type` (web-vitals sends e.g. `navigate`, `reload`,
/// `back-forward-cache`, `prerender`).
pub const MAX_NAVIGATION_TYPE_CHARS: u64 = 32;

/// web-vitals' rating of a value against the metric's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebVitalRating {
    Good,
    NeedsImprovement,
    Poor,
}

/// The web-vital fields of an event, borrowed for checking.
pub struct WebVitalFields<'a> {
    pub name: Option<&'a str>,
    pub value: Option<f64>,
    pub rating: Option<WebVitalRating>,
    pub navigation_type: Option<&'a str>,
}

/// Checks the fields of a `web_vital` event: `name` one of the five metrics,
/// `value` a finite number from 0 to the metric's bound (not `-0`, which
/// no measurement gives and JSON consumers tell apart from 0), `rating`
/// present, `navigation_type` (its length is checked by `validator`)
/// without control characters, which would reach the log line as they are.
pub fn check_web_vital(fields: &WebVitalFields, index: Option<usize>, errors: &mut Vec<FieldError>) {
    let bound = match fields.name {
        None => {
            errors.push(FieldError::new(index, "name", "is required for web_vital events"));
            None
        }
        Some(name) => match METRICS.iter().find(|(metric, _)| *metric == name) {
            Some((_, bound)) => Some(*bound),
            None => {
                errors.push(FieldError::new(index, "name", "must be LCP, INP, CLS, FCP or TTFB for web_vital events"));
                None
            }
        },
    };
    match fields.value {
        None => errors.push(FieldError::new(index, "value", "is required for web_vital events")),
        Some(value) if !value.is_finite() || value.is_sign_negative() => {
            errors.push(FieldError::new(index, "value", "must be a finite number ≥ 0 (not -0)"));
        }
        Some(value) => {
            if let Some(bound) = bound.filter(|bound| value > *bound) {
                errors.push(FieldError::new(index, "value", format!("must be at most {bound} for this metric")));
            }
        }
    }
    if fields.rating.is_none() {
        errors.push(FieldError::new(index, "rating", "is required for web_vital events"));
    }
    if fields.navigation_type.is_some_and(|t| t.chars().any(char::is_control)) {
        errors.push(FieldError::new(index, "navigation_type", "must not contain control characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(name: Option<&str>, value: Option<f64>, rating: Option<WebVitalRating>) -> Vec<(String, String)> {
        with_navigation(name, value, rating, Some("navigate"))
    }

    fn with_navigation(
        name: Option<&str>,
        value: Option<f64>,
        rating: Option<WebVitalRating>,
        navigation_type: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        check_web_vital(&WebVitalFields { name, value, rating, navigation_type }, Some(3), &mut errors);
        assert!(errors.iter().all(|e| e.index == Some(3)));
        errors.into_iter().map(|e| (e.field, e.reason)).collect()
    }

    #[test]
    fn each_metric_within_its_bound_passes() {
        for (name, value) in [("LCP", 2500.0), ("INP", 0.0), ("FCP", 600_000.0), ("TTFB", 12.5), ("CLS", 0.1)] {
            assert!(problems(Some(name), Some(value), Some(WebVitalRating::Good)).is_empty(), "{name}");
        }
    }

    #[test]
    fn unknown_metric_and_missing_fields_are_named() {
        let found = problems(Some("FID"), None, None);
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["name", "value", "rating"]);
        assert!(found[0].1.contains("LCP, INP, CLS, FCP or TTFB"));
        assert_eq!(problems(None, Some(1.0), Some(WebVitalRating::Poor))[0].0, "name");
        // Metric names are case-sensitive, as web-vitals sends them.
        assert_eq!(problems(Some("lcp"), Some(1.0), Some(WebVitalRating::Poor)).len(), 1);
    }

    #[test]
    fn values_out_of_range_are_refused() {
        for value in [-1.0, -0.0, f64::NAN, f64::INFINITY, 600_000.5] {
            let found = problems(Some("LCP"), Some(value), Some(WebVitalRating::NeedsImprovement));
            assert_eq!(found.len(), 1, "{value}");
            assert_eq!(found[0].0, "value");
        }
        assert_eq!(
            problems(Some("CLS"), Some(101.0), Some(WebVitalRating::Poor))[0].1,
            "must be at most 100 for this metric"
        );
    }

    #[test]
    fn navigation_types_without_control_characters() {
        for ok in [None, Some("back-forward-cache"), Some("prérender")] {
            assert!(with_navigation(Some("LCP"), Some(1.0), Some(WebVitalRating::Good), ok).is_empty(), "{ok:?}");
        }
        for bad in ["navigate\n", "\u{0}", "re\tload", "\u{7f}", "\u{85}"] {
            let found = with_navigation(Some("LCP"), Some(1.0), Some(WebVitalRating::Good), Some(bad));
            assert_eq!(found, [("navigation_type".to_owned(), "must not contain control characters".to_owned())]);
        }
    }

    #[test]
    fn ratings_use_web_vitals_spelling() {
        let parsed: Vec<WebVitalRating> = serde_json::from_str(r#"["good","needs-improvement","poor"]"#).unwrap();
        assert_eq!(parsed, [WebVitalRating::Good, WebVitalRating::NeedsImprovement, WebVitalRating::Poor]);
        assert!(serde_json::from_str::<WebVitalRating>(r#""ok""#).is_err());
    }
}
