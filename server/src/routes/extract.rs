//! Small helpers the ingestion handlers share: media type and encoding
//! checks, and the request context (receive time, user agent).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};

use crate::{error::ApiError, ingest::records::RequestContext, state::Ingest};

/// The limits of the JSON batch routes (errors, events), set in the route
/// table.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// `OBSERVER_MAX_JSON_BODY`, as received and inflated.
    pub max_body: usize,
    /// `OBSERVER_MAX_BATCH_ITEMS`.
    pub max_items: usize,
}

/// How a body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
}

/// Media types a route accepts besides JSON.
#[derive(Debug, Clone, Copy)]
pub enum Accept {
    /// `application/json` or `text/plain` (what `sendBeacon` sends).
    Json,
    /// Also `application/octet-stream`, for gzip blobs.
    JsonOrBinary,
}

/// Checks `Content-Type` and `Content-Encoding`; returns the encoding.
pub fn check_body_headers(headers: &HeaderMap, accept: Accept) -> Result<BodyEncoding, ApiError> {
    let expected = match accept {
        Accept::Json => "application/json or text/plain",
        Accept::JsonOrBinary => "application/json, text/plain or application/octet-stream",
    };
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let media_ok = match essence.as_str() {
        "application/json" | "text/plain" => true,
        // `sendBeacon(url, blob)` with an untyped Blob sends no Content-Type.
        "application/octet-stream" | "" => matches!(accept, Accept::JsonOrBinary),
        _ => false,
    };
    if !media_ok {
        return Err(ApiError::UnsupportedMediaType { got: content_type.unwrap_or_default(), expected });
    }
    match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes().trim_ascii()) {
        None | Some(b"") | Some(b"identity") => Ok(BodyEncoding::Identity),
        Some(value) if value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip") => {
            Ok(BodyEncoding::Gzip)
        }
        Some(other) => {
            Err(ApiError::UnsupportedEncoding { got: String::from_utf8_lossy(other).chars().take(64).collect() })
        }
    }
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Milliseconds since the epoch.
pub fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Builds the context every record of this request shares.
pub(crate) fn request_context(state: &Ingest, headers: &HeaderMap, received_at: SystemTime) -> RequestContext {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let client = state.user_agents.parse(user_agent.unwrap_or(""));
    RequestContext::new(received_at, user_agent, client)
}

/// Reads, bounds (`max` bytes, as received and inflated) and (when gzip)
/// inflates a JSON request body. The bytes returned carry their share of
/// the in-flight budget until dropped.
pub(crate) async fn read_json_body(
    state: &Ingest,
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> Result<bytes::Bytes, ApiError> {
    use crate::{error::LimitName, ingest::decompress};
    let encoding = check_body_headers(headers, Accept::Json)?;
    let declared = content_length(headers);
    let mut reservation = state.inflight.empty()?;
    let received = decompress::read_body(body, declared, max, LimitName::JsonBody, &mut reservation).await?;
    let received = reservation.attach(received);
    if encoding == BodyEncoding::Gzip || decompress::is_gzip(&received) {
        // JSON bodies are small (max_json_body): inflating inline costs less than a thread hop.
        let inflating = state.inflight.reserve(max).await?;
        let inflated = decompress::gunzip_bounded(&received, max, LimitName::JsonBody)?;
        Ok(inflating.attach(inflated.into()))
    } else {
        Ok(received)
    }
}
