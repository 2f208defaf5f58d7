//! Secure by default: when no viewer token or share secret is configured,
//! one is generated at first start into the data directory and reused on
//! every restart (like Jupyter's token).
//!
//! - `{OBSERVER_DATA_DIR}/viewer-token`: 32 random bytes, base64url. Its
//!   ready-to-open URL is printed on stderr when it is created (not through
//!   the log pipeline, so it never reaches Loki); later starts only log
//!   where the file is.
//! - `{OBSERVER_DATA_DIR}/share-secret`: 32 random bytes, base64url; never
//!   printed.
//!
//! Files are created with mode 0600 from the start (no window in which they
//! are readable by others): written to a temp file opened with that mode,
//! synced, then hard-linked to the final name, which fails if another
//! process got there first; the loser reads the winner's file. Replicas that
//! do not share a data directory (S3 setups) must configure both secrets
//! explicitly, or each would generate its own.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::config::{Config, MIN_SHARE_SECRET_BYTES, MIN_VIEWER_TOKEN_CHARS, Secret};

pub const VIEWER_TOKEN_FILE: &str = "viewer-token";
pub const SHARE_SECRET_FILE: &str = "share-secret";

/// Random bytes in a generated secret.
const GENERATED_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SecretFileError {
    pub path: PathBuf,
    pub reason: String,
}

/// What [`resolve_secrets`] had to take from the data directory.
#[derive(Debug, Default)]
pub struct GeneratedSecrets {
    /// The viewer token, when it came from (or was just written to) the
    /// data directory rather than `OBSERVER_VIEWER_TOKENS`.
    pub viewer_token: Option<Secret>,
    pub viewer_token_created: bool,
}

/// Fills in `config.viewer_tokens` and `config.share_secret` from the data
/// directory when they are not configured.
pub fn resolve_secrets(config: &mut Config) -> Result<GeneratedSecrets, SecretFileError> {
    let mut generated = GeneratedSecrets::default();
    if config.viewer_tokens.is_empty() {
        let (token, created) = load_or_create(&config.data_dir.join(VIEWER_TOKEN_FILE), MIN_VIEWER_TOKEN_CHARS)?;
        config.viewer_tokens = vec![token.clone()];
        generated = GeneratedSecrets { viewer_token: Some(token), viewer_token_created: created };
    }
    config.share_secret = Some(share_secret(config)?);
    Ok(generated)
}

/// The configured share secret, or the one in the data directory (created
/// if missing).
pub fn share_secret(config: &Config) -> Result<Secret, SecretFileError> {
    match &config.share_secret {
        Some(secret) => Ok(secret.clone()),
        None => load_or_create(&config.data_dir.join(SHARE_SECRET_FILE), MIN_SHARE_SECRET_BYTES).map(|(s, _)| s),
    }
}

/// The share secret for `observer share`: configured, or read from the data
/// directory — never created, since a new secret would sign links the
/// running server rejects.
pub fn existing_share_secret(config: &Config) -> Result<Secret, SecretFileError> {
    if let Some(secret) = &config.share_secret {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join(SHARE_SECRET_FILE);
    read_secret(&path, MIN_SHARE_SECRET_BYTES).map_err(|e| SecretFileError {
        reason: if e.kind() == io::ErrorKind::NotFound {
            "does not exist: run with the server's OBSERVER_DATA_DIR or set OBSERVER_SHARE_SECRET".to_owned()
        } else {
            e.to_string()
        },
        path,
    })
}

/// Reads the secret at `path`, or generates and stores one; true if created.
pub fn load_or_create(path: &Path, min_len: usize) -> Result<(Secret, bool), SecretFileError> {
    let fail = |reason: String| SecretFileError { path: path.to_owned(), reason };
    match read_secret(path, min_len) {
        Ok(secret) => return Ok((secret, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let dir = path.parent().ok_or_else(|| fail("has no parent directory".to_owned()))?;
    fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    let secret = generate().map_err(|e| fail(format!("no randomness available: {e}")))?;
    match write_new(dir, path, secret.expose()) {
        Ok(()) => Ok((secret, true)),
        // Another process (a second replica, `observer share`) won the race.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_secret(path, min_len).map(|s| (s, false)).map_err(|e| fail(e.to_string()))
        }
        Err(e) => Err(fail(format!("cannot write: {e}"))),
    }
}

fn read_secret(path: &Path, min_len: usize) -> io::Result<Secret> {
    let text = fs::read_to_string(path)?;
    let value = text.trim();
    if value.len() < min_len || !value.is_ascii() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("holds no valid secret (at least {min_len} ASCII characters); delete it to generate a new one"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "secret file is readable by other users; chmod 600 it");
        }
    }
    Ok(Secret::new(value))
}

fn generate() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
}

/// Writes `value` to `path` with mode 0600, failing with `AlreadyExists`
/// if the file exists; never leaves a partial file under `path`.
fn write_new(dir: &Path, path: &Path, value: &str) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secret");
    let temp = dir.join(format!(".{name}.tmp-{:016x}", fastrand::u64(..)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options.open(&temp).and_then(|mut file| {
        file.write_all(value.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::hard_link(&temp, path)
    });
    let _ = fs::remove_file(&temp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_then_reuses() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nested/viewer-token");
        let (first, created) = load_or_create(&path, 16).unwrap();
        assert!(created);
        assert_eq!(first.expose().len(), 43, "32 bytes in unpadded base64url");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, created) = load_or_create(&path, 16).unwrap();
        assert!(!created);
        assert_eq!(again, first);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["viewer-token"], "no temp file left behind");
    }

    #[test]
    fn concurrent_creators_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("share-secret");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || load_or_create(&path, 32).unwrap().0)
            })
            .collect();
        let secrets: Vec<Secret> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(secrets.iter().all(|s| *s == secrets[0]));
    }

    #[test]
    fn refuses_a_short_secret_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("share-secret");
        fs::write(&path, "short\n").unwrap();
        let err = load_or_create(&path, 32).unwrap_err().to_string();
        assert!(err.contains("share-secret") && err.contains("at least 32"), "{err}");
    }
}
