//! Signing in once per browser: the viewer token exchanged for a cookie.
//!
//! `POST /api/observer/viewer/session` with the viewer token as a bearer
//! answers `Set-Cookie: observer_viewer=s1.<expiry>.<mac>; HttpOnly;
//! SameSite=Lax; Path=/; Max-Age=…; Expires=…` (and `Secure` on https),
//! where `expiry` is Unix seconds in decimal and `mac` is unpadded
//! base64url of HMAC-SHA256(K, `"<expiry>\n"` ‖ SHA-256(viewer token)).
//! K = HMAC-SHA256(`OBSERVER_SHARE_SECRET`, `"observer viewer session v1"`):
//! a key of its own, derived from the share secret, so that no share-token
//! MAC can ever pass for a cookie MAC or the other way round.
//!
//! Stateless, so it works on every replica that has the same share secret
//! and viewer tokens. The cookie names no token: it is checked against
//! every configured viewer token (constant time, no early exit), so
//! removing the token it was made from (rotation) or changing the share
//! secret signs its holder out. Then the expiry: in the future, and no
//! further than the current `OBSERVER_VIEWER_SESSION_TTL` (plus clock
//! skew between replicas), so lowering the setting shortens cookies
//! already handed out. Signing out expires the cookie in the browser; a
//! copy taken earlier stays valid until its expiry (rotate the viewer token
//! to end every sign-in at once).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, HeaderValue, header, request::Parts},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use cookie::{Cookie, SameSite, time::OffsetDateTime};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::viewer::{ViewerAuth, ViewerTokens, bearer};
use crate::{
    config::Secret,
    error::{ApiError, Credential},
    rate_limit::auth_failures::braked,
};

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name (no `__Host-` prefix: it needs `Secure`, which a
/// plain-HTTP deployment cannot have; the value is signed either way).
pub const COOKIE_NAME: &str = "observer_viewer";

const VERSION: &str = "s1";
const KEY_LABEL: &[u8] = b"observer viewer session v1";

/// How far apart the clocks of two replicas may be: a cookie made on one
/// must not look longer-lived than the TTL allows on another.
const CLOCK_SKEW_SECS: u64 = 300;

/// Cookies of our name looked at in one request: more than one can reach
/// the server (another path or domain set one); a bound keeps the cost of
/// a crafted `Cookie` header small.
const MAX_COOKIES_CHECKED: usize = 4;

/// Issues and checks sign-in cookies.
#[derive(Clone)]
pub struct ViewerSessions {
    key: HmacSha256,
    ttl: Duration,
}

impl std::fmt::Debug for ViewerSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewerSessions(***)")
    }
}

impl ViewerSessions {
    /// `secret` is the share secret; `ttl` how long a sign-in lasts.
    pub fn new(secret: &Secret, ttl: Duration) -> ViewerSessions {
        // HMAC takes keys of any length, so neither call can fail.
        let mut derive = <HmacSha256 as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        derive.update(KEY_LABEL);
        let key = <HmacSha256 as KeyInit>::new_from_slice(&derive.finalize().into_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        ViewerSessions { key, ttl }
    }

    fn mac(&self, token_digest: &[u8; 32], expires_at: u64) -> [u8; 32] {
        let mut mac = self.key.clone();
        mac.update(expires_at.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(token_digest);
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for a sign-in with `token` that ends at `expires_at`.
    pub fn sign(&self, token: &str, expires_at: u64) -> String {
        let tag = self.mac(&Sha256::digest(token.as_bytes()).into(), expires_at);
        format!("{VERSION}.{expires_at}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// When a sign-in made at `now` (Unix seconds) ends.
    pub fn expiry(&self, now: u64) -> u64 {
        now.saturating_add(self.ttl.as_secs())
    }

    /// Whether `value` is a cookie this server made, for one of `tokens`,
    /// and still valid at `now`.
    pub fn verify(&self, value: &str, tokens: &ViewerTokens, now: u64) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some(VERSION), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        // Digits only, so one expiry has exactly one spelling.
        let expires_at = match expiry.parse::<u64>() {
            Ok(n) if expiry.bytes().all(|b| b.is_ascii_digit()) && !expiry.starts_with('0') => n,
            _ => return false,
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        let genuine = tokens
            .digests()
            .fold(Choice::from(0), |found, digest| found | self.mac(digest, expires_at).as_slice().ct_eq(&tag));
        bool::from(genuine) && now < expires_at && expires_at <= self.expiry(now).saturating_add(CLOCK_SKEW_SECS)
    }

    /// Whether the request carries a valid sign-in cookie.
    pub fn signed_in(&self, headers: &HeaderMap, tokens: &ViewerTokens, now: u64) -> bool {
        cookie_values(headers).take(MAX_COOKIES_CHECKED).any(|value| self.verify(&value, tokens, now))
    }

    /// `Set-Cookie` for a new sign-in, ending at `expires_at`.
    pub fn set_cookie(&self, value: String, expires_at: u64, secure: bool) -> HeaderValue {
        let expires = i64::try_from(expires_at).ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        let mut cookie = attributes(Cookie::build((COOKIE_NAME, value)), secure)
            .max_age(cookie::time::Duration::seconds(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)));
        if let Some(expires) = expires {
            cookie = cookie.expires(expires);
        }
        header_value(cookie.build())
    }
}

/// `Set-Cookie` that removes the sign-in cookie (empty, `Max-Age=0`, an
/// `Expires` in the past), with the attributes it was set with.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let mut cookie = attributes(Cookie::build((COOKIE_NAME, "")), secure).build();
    cookie.make_removal();
    header_value(cookie)
}

fn attributes(cookie: cookie::CookieBuilder<'static>, secure: bool) -> cookie::CookieBuilder<'static> {
    cookie.path("/").http_only(true).same_site(SameSite::Lax).secure(secure)
}

fn header_value(cookie: Cookie<'_>) -> HeaderValue {
    // Name, base64url/decimal value and fixed attributes: always valid.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The values of every cookie named [`COOKIE_NAME`] in the request.
fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_owned())
}

/// Whether the browser reached Observer over https: the public URL is
/// https, or, with `OBSERVER_TRUST_FORWARDED_FOR`, the proxy says so in the
/// last `X-Forwarded-Proto` (the same trust as for `X-Forwarded-For`).
pub fn is_https(headers: &HeaderMap, public_url: &str, trust_forwarded: bool) -> bool {
    if public_url.starts_with("https://") {
        return true;
    }
    trust_forwarded
        && headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The viewer token of a sign-in request: in `Authorization: Bearer`
/// only, checked under the brute-force brake like every fetch credential.
pub struct SignInToken(pub Secret);

impl<S> FromRequestParts<S> for SignInToken
where
    Arc<ViewerAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<ViewerAuth>::from_ref(state);
        braked(auth.brake.as_ref(), parts, || match bearer(&parts.headers) {
            Some(Some(token)) if !token.is_empty() && auth.tokens.accepts(&token) => {
                Ok(SignInToken(Secret::new(token)))
            }
            _ => Err(ApiError::Unauthorized(Credential::ViewerTokenHeader)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "a-viewer-token-of-16";
    const HOUR: Duration = Duration::from_secs(3600);

    fn sessions() -> ViewerSessions {
        ViewerSessions::new(&Secret::new(SECRET), HOUR)
    }

    fn tokens(list: &[&str]) -> ViewerTokens {
        ViewerTokens::new(&list.iter().map(|t| Secret::new(*t)).collect::<Vec<_>>())
    }

    #[test]
    fn round_trip_expiry_and_rotation() {
        let s = sessions();
        let value = s.sign(TOKEN, 10_000);
        assert!(value.starts_with("s1.10000."), "{value}");
        let both = tokens(&["another-token-0123", TOKEN]);
        assert!(s.verify(&value, &both, 9_999));
        assert!(!s.verify(&value, &both, 10_000), "expired");
        assert!(!s.verify(&value, &tokens(&["another-token-0123"]), 9_999), "its token was rotated out");
        assert!(!s.verify(&value, &tokens(&[]), 9_999));
        let other_secret = ViewerSessions::new(&Secret::new(SECRET.replace('0', "x")), HOUR);
        assert!(!other_secret.verify(&value, &both, 9_999));
    }

    #[test]
    fn never_longer_than_the_current_ttl() {
        let s = sessions();
        let t = tokens(&[TOKEN]);
        let now = 1_000_000;
        assert!(s.verify(&s.sign(TOKEN, s.expiry(now)), &t, now));
        assert!(s.verify(&s.sign(TOKEN, s.expiry(now) + CLOCK_SKEW_SECS), &t, now), "another replica's clock");
        assert!(!s.verify(&s.sign(TOKEN, s.expiry(now) + CLOCK_SKEW_SECS + 1), &t, now));
        // Made while the TTL was a day; the TTL is an hour now.
        let day = ViewerSessions::new(&Secret::new(SECRET), 24 * HOUR);
        assert!(!s.verify(&day.sign(TOKEN, day.expiry(now)), &t, now));
    }

    #[test]
    fn tampering_fails() {
        let s = sessions();
        let t = tokens(&[TOKEN]);
        let value = s.sign(TOKEN, 10_000);
        let later = value.replacen("10000", "10001", 1);
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let share_shaped = value.replacen("s1.", "v1.", 1);
        for bad in
            [later.as_str(), flipped.as_str(), share_shaped.as_str(), "s1.10000.", "s1..AAAA", "s1.010000.AAAA", ""]
        {
            assert!(!s.verify(bad, &t, 5_000), "{bad:?}");
        }
    }

    #[test]
    fn a_share_token_mac_is_not_a_cookie_mac() {
        // Same secret, a session id spelled like a cookie message: the
        // derived key keeps the two apart.
        let share = crate::auth::ShareSigner::new(&Secret::new(SECRET)).sign("s1", 10_000);
        let tag = share.rsplit('.').next().unwrap();
        assert!(!sessions().verify(&format!("s1.10000.{tag}"), &tokens(&[TOKEN]), 5_000));
    }

    #[test]
    fn cookie_headers() {
        let s = sessions();
        let set = s.set_cookie("s1.3600.abc".into(), 3600, false);
        let set = set.to_str().unwrap();
        for part in ["observer_viewer=s1.3600.abc", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600", "Expires="] {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!set.contains("Secure"), "{set}");
        assert!(s.set_cookie("x".into(), 3600, true).to_str().unwrap().contains("; Secure"));
        let clear = clear_cookie(true);
        let clear = clear.to_str().unwrap();
        assert!(
            clear.starts_with("observer_viewer=;") && clear.contains("Max-Age=0") && clear.contains("Secure"),
            "{clear}"
        );

        let t = tokens(&[TOKEN]);
        let value = s.sign(TOKEN, s.expiry(1_000));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("other=1; observer_viewer=junk"));
        headers.append(header::COOKIE, HeaderValue::from_str(&format!("observer_viewer={value}")).unwrap());
        assert!(s.signed_in(&headers, &t, 1_000));
        headers.remove(header::COOKIE);
        headers.insert(header::COOKIE, HeaderValue::from_static("observer_viewer=junk"));
        assert!(!s.signed_in(&headers, &t, 1_000));
    }

    #[test]
    fn https_detection() {
        let mut headers = HeaderMap::new();
        assert!(is_https(&headers, "https://observer.example", false));
        assert!(!is_https(&headers, "http://localhost:8006", true));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!is_https(&headers, "http://localhost:8006", false), "not trusted");
        assert!(is_https(&headers, "http://localhost:8006", true));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(!is_https(&headers, "http://localhost:8006", true), "the last hop decides");
    }
}
