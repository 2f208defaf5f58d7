//! Share tokens: access to one session until a moment, without a database.
//!
//! `v1.<expiry>.<mac>` where `expiry` is Unix seconds in decimal and `mac` is
//! unpadded base64url of HMAC-SHA256(`OBSERVER_SHARE_SECRET`,
//! `"<session_id>\n<expiry>"`). The session id is not in the token: it is
//! the one in the URL, so a token for one session fails the MAC on any
//! other. Verification checks the MAC first (constant time, via
//! `Mac::verify_slice`) and only then the expiry, so a forged token never
//! learns whether its expiry would have passed.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The only token format so far; a prefix lets a later one coexist.
const VERSION: &str = "v1";

/// Shortest, default and longest lifetime of a share link, in seconds.
pub const MIN_TTL_SECS: u64 = 60;
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// A signed link to one session's player page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// `/replay/{session_id}?token=…`, relative to the public base URL.
    pub path: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a share token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareError {
    /// Well-formed and genuine, but past its expiry.
    Expired,
    /// Malformed, tampered with, signed with another secret or for another session.
    Invalid,
}

/// Signs and checks share tokens with one secret.
#[derive(Clone)]
pub struct ShareSigner {
    key: HmacSha256,
}

impl std::fmt::Debug for ShareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareSigner(***)")
    }
}

/// Whether `token` looks like a share token (as opposed to a viewer token).
pub fn is_share_token(token: &str) -> bool {
    token.starts_with("v1.")
}

impl ShareSigner {
    pub fn new(secret: &Secret) -> ShareSigner {
        // HMAC takes keys of any length, so this cannot fail; the config
        // already insists on at least 32 bytes.
        let key = <HmacSha256 as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        ShareSigner { key }
    }

    fn mac(&self, session_id: &str, expires_at: u64) -> HmacSha256 {
        let mut mac = self.key.clone();
        mac.update(session_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires_at.to_string().as_bytes());
        mac
    }

    /// A token for `session_id` valid until `expires_at` (Unix seconds).
    pub fn sign(&self, session_id: &str, expires_at: u64) -> String {
        let tag = self.mac(session_id, expires_at).finalize().into_bytes();
        format!("{VERSION}.{expires_at}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// A link to `session_id` (already validated) that works for `ttl_secs`
    /// from `now`. The token is URL-safe as it is (digits, '.', base64url).
    pub fn link(&self, session_id: &str, ttl_secs: u64, now: u64) -> ShareLink {
        let expires_at = now.saturating_add(ttl_secs);
        let token = self.sign(session_id, expires_at);
        ShareLink { path: format!("/replay/{session_id}?token={token}"), expires_at }
    }

    /// Checks `token` for `session_id` (as it appears in the URL) at `now`
    /// (Unix seconds).
    pub fn verify(&self, token: &str, session_id: &str, now: u64) -> Result<(), ShareError> {
        let mut parts = token.splitn(3, '.');
        let (Some(VERSION), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ShareError::Invalid);
        };
        // Digits only, so one expiry has exactly one spelling ("+5", "05" fail).
        let expires_at = match expiry.parse::<u64>() {
            Ok(n) if expiry.bytes().all(|b| b.is_ascii_digit()) && !expiry.starts_with('0') => n,
            _ => return Err(ShareError::Invalid),
        };
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| ShareError::Invalid)?;
        self.mac(session_id, expires_at).verify_slice(&tag).map_err(|_| ShareError::Invalid)?;
        if now >= expires_at {
            return Err(ShareError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> ShareSigner {
        ShareSigner::new(&Secret::new(secret))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_expiry() {
        let s = signer(SECRET);
        let token = s.sign("session-aaaa", 2_000);
        assert!(token.starts_with("v1.2000.") && is_share_token(&token), "{token}");
        assert_eq!(s.verify(&token, "session-aaaa", 1_999), Ok(()));
        assert_eq!(s.verify(&token, "session-aaaa", 2_000), Err(ShareError::Expired));
        assert_eq!(s.verify(&token, "session-bbbb", 1_000), Err(ShareError::Invalid));
        assert_eq!(signer(&SECRET.replace('0', "x")).verify(&token, "session-aaaa", 1_000), Err(ShareError::Invalid));
    }

    #[test]
    fn links() {
        let s = signer(SECRET);
        let link = s.link("session-aaaa", 60, 1_000);
        assert_eq!(link.expires_at, 1_060);
        let token = link.path.strip_prefix("/replay/session-aaaa?token=").unwrap();
        assert_eq!(s.verify(token, "session-aaaa", 1_059), Ok(()));
    }

    #[test]
    fn known_answer() {
        // printf 'session-aaaa\n2000' | openssl dgst -sha256 -hmac 0123…cdef -binary | base64url
        assert_eq!(signer(SECRET).sign("session-aaaa", 2_000), "v1.2000.vNh8lQTDzlcvZ36x-aE-BAlqHnZwuVPtvbM-ZrmT0hk");
    }

    #[test]
    fn tampering_is_invalid_not_expired() {
        let s = signer(SECRET);
        let token = s.sign("session-aaaa", 2_000);
        let later = token.replacen("2000", "9000", 1);
        let earlier = token.replacen("2000", "1000", 1);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            later.as_str(),
            earlier.as_str(),
            flipped.as_str(),
            "v1.2000.",
            "v1.2000",
            "v1..AAAA",
            "v1.+2000.AAAA",
            "v1.02000.AAAA",
            "v2.2000.AAAA",
            "v1.2000.not base64!",
            "",
        ] {
            assert_eq!(s.verify(bad, "session-aaaa", 5_000), Err(ShareError::Invalid), "{bad:?}");
        }
    }
}
