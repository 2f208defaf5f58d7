//! HTTP content negotiation shared by the routes that serve stored bytes
//! (replay chunks, player assets): may the gzip bytes go out as they are,
//! and does the client already hold this entity?

use axum::http::{HeaderMap, header};

/// Whether `Accept-Encoding` lets stored gzip bytes go out as they are.
/// `gzip`/`x-gzip` or `*` with a non-zero quality; a bare `*;q=0` or
/// `gzip;q=0` forbids it. No header means identity only (RFC 9110 §12.5.3
/// allows any coding then, but curl without `--compressed` expects JSON).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(quality > 0.0),
                "*" => any = Some(quality > 0.0),
                _ => {}
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// §13.1.2 asks for this header) or is `*`.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| value.trim() == "*" || value.split(',').any(|candidate| strip(candidate) == wanted))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(name: header::HeaderName, values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn gzip_negotiation() {
        let accepts = |values: &[&'static str]| accepts_gzip(&with(header::ACCEPT_ENCODING, values));
        assert!(accepts(&["gzip, deflate, br, zstd"]));
        assert!(accepts(&["br", "GZIP;q=0.5"]));
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["*"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, deflate"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["*, gzip;q=0"]));
        assert!(!accepts(&["*;q=0"]));
        assert!(accepts(&["*;q=0, gzip"]));
    }

    #[test]
    fn etag_matching() {
        let matches = |values: &[&'static str]| not_modified(&with(header::IF_NONE_MATCH, values), "\"abc\"");
        assert!(matches(&["\"abc\""]));
        assert!(matches(&["W/\"abc\""]));
        assert!(matches(&["\"x\", \"abc\""]));
        assert!(matches(&["\"x\"", "\"abc\""]));
        assert!(matches(&["*"]));
        assert!(!matches(&[]));
        assert!(!matches(&["\"abc-identity\""]));
        assert!(!matches(&["abc"]));
    }
}
