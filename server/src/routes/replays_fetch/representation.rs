//! How a stored chunk is represented on the wire: gzip as stored or
//! decompressed (`Accept-Encoding`), its entity tag (`ETag`,
//! `If-None-Match`), and the cache headers of immutable chunks.

use axum::http::{HeaderMap, HeaderValue, header};

pub use crate::routes::negotiate::{accepts_gzip, not_modified};

/// A stored chunk never changes: caches may keep it for a year without
/// asking again, but only the viewer's own cache (it needed a token).
const IMMUTABLE: HeaderValue = HeaderValue::from_static("private, immutable, max-age=31536000");

/// JSON API answers that carry session data are not kept anywhere.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// The tag of the decompressed representation: different bytes need a
/// different strong tag (`"abc"` → `"abc-identity"`).
pub fn identity_etag(gzip_etag: &str) -> String {
    let inner = gzip_etag.trim_matches('"');
    format!("\"{inner}-identity\"")
}

/// Whether the request revalidates a cached copy.
pub fn has_if_none_match(headers: &HeaderMap) -> bool {
    headers.contains_key(header::IF_NONE_MATCH)
}

/// The headers every chunk answer carries, 304 included.
pub fn chunk_headers(headers: &mut HeaderMap, etag: &str) {
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_tag() {
        assert_eq!(identity_etag("\"abc\""), "\"abc-identity\"");
    }
}
