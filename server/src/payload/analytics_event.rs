//! `AnalyticsEvent`: a page view, custom event or Web Vitals measurement, as
//! posted to `/api/observer/events`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::Validate;

use super::{
    batch::{BatchItem, check_object_size, check_timestamp, validate_id},
    web_vital::{MAX_NAVIGATION_TYPE_CHARS, WebVitalFields, WebVitalRating, check_web_vital},
};
use crate::{error::FieldError, metrics::EventType};

/// Largest serialised `properties` object.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyticsEventType {
    PageView,
    Custom,
    WebVital,
}

impl From<AnalyticsEventType> for EventType {
    fn from(value: AnalyticsEventType) -> Self {
        match value {
            AnalyticsEventType::PageView => EventType::PageView,
            AnalyticsEventType::Custom => EventType::Custom,
            AnalyticsEventType::WebVital => EventType::WebVital,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsEvent {
    #[serde(rename = "type")]
    pub r#type: AnalyticsEventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 256, message = "must be 1 to 256 characters"))]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 2048, message = "must be at most 2048 characters"))]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 2048, message = "must be at most 2048 characters"))]
    pub referrer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 1024, message = "must be at most 1024 characters"))]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(max = 100000, message = "must be 0 to 100000"))]
    pub screen_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(range(max = 100000, message = "must be 0 to 100000"))]
    pub screen_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 35, message = "must be at most 35 characters"))]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "validate_id"))]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "validate_id"))]
    pub visitor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 256, message = "must be 1 to 256 characters"))]
    pub user_id: Option<String>,
    /// Milliseconds since the epoch on the client; the receive time when absent.
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    /// `web_vital` only: the metric's value (ms, or the CLS score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `web_vital` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<WebVitalRating>,
    /// `web_vital` only: how the page was reached (`navigate`, `reload`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = MAX_NAVIGATION_TYPE_CHARS, message = "must be 1 to 32 characters"))]
    pub navigation_type: Option<String>,
}

impl BatchItem for AnalyticsEvent {
    fn check(&mut self, index: Option<usize>, received_ms: i64, errors: &mut Vec<FieldError>) {
        if self.r#type == AnalyticsEventType::Custom && self.name.is_none() {
            errors.push(FieldError::new(index, "name", "is required for custom events"));
        }
        if self.r#type == AnalyticsEventType::WebVital {
            let fields = WebVitalFields {
                name: self.name.as_deref(),
                value: self.value,
                rating: self.rating,
                navigation_type: self.navigation_type.as_deref(),
            };
            check_web_vital(&fields, index, errors);
        } else {
            let present = [
                ("value", self.value.is_some()),
                ("rating", self.rating.is_some()),
                ("navigation_type", self.navigation_type.is_some()),
            ];
            for (field, _) in present.into_iter().filter(|(_, present)| *present) {
                errors.push(FieldError::new(index, field, "is only allowed on web_vital events"));
            }
        }
        self.timestamp = Some(check_timestamp(self.timestamp, index, received_ms, errors));
        check_object_size(self.properties.as_ref(), "properties", MAX_PROPERTIES_BYTES, index, errors);
    }

    fn stand_in(field: &str) -> Option<serde_json::Value> {
        // page_view: the type that requires no other field.
        (field == "type").then(|| serde_json::Value::from("page_view"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{error::ApiError, payload::parse_batch};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn details(body: serde_json::Value) -> Vec<(Option<usize>, String)> {
        match parse_batch::<AnalyticsEvent>(body.to_string().as_bytes(), 100, NOW) {
            Err(ApiError::Invalid { details, .. }) => details.into_iter().map(|d| (d.index, d.field)).collect(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_web_vital_keeps_its_fields() {
        let body = json!({"type": "web_vital", "name": "LCP", "value": 1234.5, "rating": "good",
            "url": "https://a.example/p", "navigation_type": "navigate", "session_id": "session-0001"});
        let events = parse_batch::<AnalyticsEvent>(body.to_string().as_bytes(), 100, NOW).unwrap();
        let line = serde_json::to_value(&events[0]).unwrap();
        for field in ["type", "name", "value", "rating", "url", "navigation_type"] {
            assert_eq!(line[field], body[field], "{field}");
        }
    }

    #[test]
    fn every_bad_web_vital_field_is_named() {
        let found = details(json!([
            {"type": "page_view"},
            {"type": "web_vital", "name": "FID", "value": -3, "rating": "meh", "navigation_type": ""},
        ]));
        assert_eq!(
            found,
            [
                (Some(1), "rating".into()),
                (Some(1), "navigation_type".into()),
                (Some(1), "name".into()),
                (Some(1), "value".into())
            ],
        );
        let found = details(json!({"type": "web_vital", "name": "CLS", "value": "0.1", "rating": "poor"}));
        assert_eq!(found, [(None, "value".into())]);
        let found = details(json!({"type": "web_vital"}));
        assert_eq!(found, [(None, "name".into()), (None, "value".into()), (None, "rating".into())]);
    }

    #[test]
    fn web_vital_fields_are_refused_on_other_events() {
        let found = details(json!({"type": "page_view", "value": 1, "rating": "good", "navigation_type": "reload"}));
        assert_eq!(found, [(None, "value".into()), (None, "rating".into()), (None, "navigation_type".into())]);
    }
}
