//! `AnalyticsEvent`: a page view or custom event, as posted to `/api/observer/events`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::Validate;

use super::batch::{BatchItem, check_object_size, check_timestamp, validate_id};
use crate::{error::FieldError, metrics::EventType};

/// Largest serialised `properties` object.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyticsEventType {
    PageView,
    Custom,
}

impl From<AnalyticsEventType> for EventType {
    fn from(value: AnalyticsEventType) -> Self {
        match value {
            AnalyticsEventType::PageView => EventType::PageView,
            AnalyticsEventType::Custom => EventType::Custom,
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
}

impl BatchItem for AnalyticsEvent {
    fn check(&mut self, index: Option<usize>, received_ms: i64, errors: &mut Vec<FieldError>) {
        if self.r#type == AnalyticsEventType::Custom && self.name.is_none() {
            errors.push(FieldError::new(index, "name", "is required for custom events"));
        }
        self.timestamp = Some(check_timestamp(self.timestamp, index, received_ms, errors));
        check_object_size(self.properties.as_ref(), "properties", MAX_PROPERTIES_BYTES, index, errors);
    }

    fn stand_in(field: &str) -> Option<serde_json::Value> {
        // page_view: the type that requires no other field.
        (field == "type").then(|| serde_json::Value::from("page_view"))
    }
}
