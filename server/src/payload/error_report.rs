//! `ErrorReport`: one client error, as posted to `/api/observer/errors`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::Validate;

use super::batch::{BatchItem, check_object_size, check_timestamp, validate_id};
use crate::error::FieldError;

/// Largest serialised `context` object.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct ErrorReport {
    #[validate(length(min = 1, max = 8192, message = "must be 1 to 8192 characters"))]
    pub message: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 256, message = "must be at most 256 characters"))]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 65536, message = "must be at most 65536 characters"))]
    pub stack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 2048, message = "must be at most 2048 characters"))]
    pub url: Option<String>,
    /// Milliseconds since the epoch on the client; the receive time when absent.
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "validate_id"))]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(custom(function = "validate_id"))]
    pub visitor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 256, message = "must be 1 to 256 characters"))]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 128, message = "must be at most 128 characters"))]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 64, message = "must be at most 64 characters"))]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

impl BatchItem for ErrorReport {
    fn check(&mut self, index: Option<usize>, received_ms: i64, errors: &mut Vec<FieldError>) {
        self.timestamp = Some(check_timestamp(self.timestamp, index, received_ms, errors));
        check_object_size(self.context.as_ref(), "context", MAX_CONTEXT_BYTES, index, errors);
    }

    fn stand_in(field: &str) -> Option<serde_json::Value> {
        (field == "message").then(|| serde_json::Value::from("stand-in"))
    }
}
