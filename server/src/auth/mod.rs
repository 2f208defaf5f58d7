//! Who may do what.
//!
//! - [`ingest`]: the ingest key and the browser `Origin` allow-list (a
//!   middleware on the ingestion routes).
//! - [`viewer`]: viewer access to the replay fetch API, a viewer token or a
//!   share token, checked by the [`ViewerAccess`] / [`SessionAccess`]
//!   extractors before any store access.
//! - [`share`]: share tokens, `v1.<expiry>.<HMAC-SHA256>` for one session.
//! - [`viewer_session`]: signing in once per browser, the viewer token
//!   exchanged for a signed, expiring cookie.
//! - [`secret_file`]: the viewer token and share secret generated into the
//!   data directory when none is configured.
//!
//! Every credential is compared in constant time and never logged: the
//! request span holds only the method and route template, and
//! `Authorization` is marked sensitive before tracing (see `routes::router`).

pub(crate) mod ingest;
pub mod secret_file;
pub mod share;
pub mod viewer;
pub(crate) mod viewer_session;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(crate) use ingest::{INGEST_KEY_HEADER, IngestAccess, require_ingest_access};
pub use secret_file::{GeneratedSecrets, resolve_secrets};
pub use share::ShareSigner;
pub use viewer::{OptionalViewer, SessionAccess, ViewerAccess, ViewerAuth, ViewerTokens};
pub(crate) use viewer_session::SignInToken;
pub use viewer_session::ViewerSessions;

use crate::config::Secret;

/// A set of secrets kept as SHA-256 digests, so that a comparison takes the
/// same time whatever the length or content of the candidate.
#[derive(Clone, Default)]
pub struct SecretDigests {
    digests: Vec<[u8; 32]>,
}

impl SecretDigests {
    pub fn new(secrets: &[Secret]) -> Self {
        Self { digests: secrets.iter().map(|s| digest(s.expose())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The SHA-256 digest of each secret.
    pub fn iter(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.digests.iter()
    }

    /// Constant-time check against every secret (no early exit on a match).
    pub fn contains(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        self.digests.iter().fold(subtle::Choice::from(0), |found, known| found | known.ct_eq(&candidate)).into()
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The first value of query parameter `name`, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let set = SecretDigests::new(&[Secret::new("first-key-123"), Secret::new("second-key-456")]);
        assert!(set.contains("first-key-123") && set.contains("second-key-456"));
        assert!(!set.contains("first-key-12") && !set.contains(""));
        assert!(SecretDigests::default().is_empty());
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("session_id=x&key=a%20b"), "key").as_deref(), Some("a b"));
        assert_eq!(query_param(Some("token=v1.2.x%2By&token=second"), "token").as_deref(), Some("v1.2.x+y"));
        assert_eq!(query_param(Some("session_id=x"), "key"), None);
        assert_eq!(query_param(None, "key"), None);
    }
}
