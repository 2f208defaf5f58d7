//! Replay chunks in an S3 bucket (AWS or an S3-compatible server).
//!
//! One object per chunk at `{key_prefix}replays/{session_id}/{seq:010}.json.gz`,
//! with `Content-Type: application/json`, `Content-Encoding: gzip` and the user
//! metadata `first-timestamp`, `last-timestamp` and `events` (decimal strings).
//!
//! A put never replaces an object:
//! 1. `HeadObject`: if the key exists the put answers `AlreadyExists` without
//!    uploading (needed for servers that ignore `If-None-Match`);
//! 2. `PutObject` with `If-None-Match: *`: a 412 `PreconditionFailed` means a
//!    concurrent re-send won the race, so it is `AlreadyExists` too. A 409
//!    `ConditionalRequestConflict` counts the same once a `HeadObject` confirms
//!    the object is there.
//!
//! Credentials come from the standard AWS chain (`AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`, profile, web identity, container, IMDS). Checksums
//! are only sent when an operation requires them, so that MinIO, moto and other
//! S3-compatible servers accept plain `PutObject` bodies.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use url::Url;

use super::{ChunkMeta, PutOutcome, ReplayStore, StoreError, chunk_key};
use crate::payload::SessionId;

/// Time allowed to open a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one HTTP attempt, so a hung attempt leaves room for a retry.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole operation, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per operation (the SDK's standard retry mode: throttling, 5xx, I/O errors).
const MAX_ATTEMPTS: u32 = 3;

/// A [`ReplayStore`] writing objects to an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    key_prefix: String,
    /// Where the bucket lives, for `describe()`; holds no credentials.
    location: String,
}

impl S3Store {
    /// Builds a client from the default AWS configuration chain. `endpoint` is
    /// for S3-compatible servers (path-style addressing is always used);
    /// `key_prefix` is normalised to `""` or a string ending in `/`.
    pub async fn new(
        endpoint: Option<Url>,
        bucket: String,
        region: String,
        key_prefix: String,
    ) -> Result<S3Store, StoreError> {
        S3Store::build(endpoint, bucket, region, key_prefix, None).await
    }

    async fn build(
        endpoint: Option<Url>,
        bucket: String,
        region: String,
        key_prefix: String,
        credentials: Option<Credentials>,
    ) -> Result<S3Store, StoreError> {
        if bucket.is_empty() {
            return Err(StoreError::Config("the S3 bucket name is empty".to_owned()));
        }
        if let Some(url) = &endpoint {
            if !url.username().is_empty() || url.password().is_some() {
                return Err(StoreError::Config(
                    "the S3 endpoint must not contain credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .to_owned(),
                ));
            }
            if !matches!(url.scheme(), "http" | "https") {
                return Err(StoreError::Config(format!("the S3 endpoint must be http or https, not {}", url.scheme())));
            }
        }

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(credentials) = credentials {
            loader = loader.credentials_provider(credentials);
        }
        let shared = loader.load().await;

        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &endpoint {
            config = config.endpoint_url(url.as_str().trim_end_matches('/'));
        }

        let location = match &endpoint {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("AWS region {region}"),
        };
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            bucket,
            key_prefix: normalize_prefix(&key_prefix),
            location,
        })
    }

    /// The object key of a chunk, prefix included.
    pub fn key(&self, session_id: &SessionId, seq: u32) -> String {
        chunk_key(&self.key_prefix, session_id, seq)
    }

    async fn head(&self, key: &str) -> Result<Head, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(Head::Exists),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) || status(&e) == Some(404) => {
                Ok(Head::Missing)
            }
            // Without s3:ListBucket, S3 answers 403 for a missing key; the
            // conditional put still keeps an existing object safe.
            Err(e) if status(&e) == Some(403) => Ok(Head::Unknown),
            Err(e) => Err(s3_error("HeadObject", &self.bucket, key, &e)),
        }
    }

    async fn put_new(&self, key: &str, gzip_body: Bytes, meta: ChunkMeta) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/json")
            .content_encoding("gzip")
            .metadata("first-timestamp", meta.first_timestamp.to_string())
            .metadata("last-timestamp", meta.last_timestamp.to_string())
            .metadata("events", meta.events.to_string())
            .body(ByteStream::from(gzip_body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => match conditional_failure(&e) {
                Some(ConditionalFailure::Exists) => Ok(PutOutcome::AlreadyExists),
                Some(ConditionalFailure::Conflict) => match self.head(key).await? {
                    Head::Exists => Ok(PutOutcome::AlreadyExists),
                    Head::Missing | Head::Unknown => Err(s3_error("PutObject", &self.bucket, key, &e)),
                },
                None => Err(s3_error("PutObject", &self.bucket, key, &e)),
            },
        }
    }
}

enum Head {
    Exists,
    Missing,
    Unknown,
}

#[async_trait::async_trait]
impl ReplayStore for S3Store {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        gzip_body: Bytes,
        meta: ChunkMeta,
    ) -> Result<PutOutcome, StoreError> {
        let key = self.key(session_id, seq);
        let outcome = match self.head(&key).await? {
            Head::Exists => PutOutcome::AlreadyExists,
            Head::Missing | Head::Unknown => self.put_new(&key, gzip_body, meta).await?,
        };
        tracing::debug!(session_id = session_id.as_str(), seq, ?outcome, "stored replay chunk in S3");
        Ok(outcome)
    }

    async fn check(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) || status(&e) == Some(404) => {
                Err(StoreError::S3(format!("HeadBucket s3://{}/ (HTTP 404): the bucket does not exist", self.bucket)))
            }
            Err(e) => Err(s3_error("HeadBucket", &self.bucket, "", &e)),
        }
    }

    fn describe(&self) -> String {
        format!("s3 bucket {} at {} (prefix {:?})", self.bucket, self.location, self.key_prefix)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ConditionalFailure {
    /// 412 PreconditionFailed: the object exists.
    Exists,
    /// 409 ConditionalRequestConflict: another write to the key was in flight.
    Conflict,
}

fn conditional_failure(e: &SdkError<PutObjectError, HttpResponse>) -> Option<ConditionalFailure> {
    match (status(e), e.code()) {
        (Some(412), _) | (_, Some("PreconditionFailed")) => Some(ConditionalFailure::Exists),
        (Some(409), _) | (_, Some("ConditionalRequestConflict")) => Some(ConditionalFailure::Conflict),
        _ => None,
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Names the operation, bucket and key, then what went wrong: the service's
/// error code, message and request id, or the chain of transport errors.
///
/// `DisplayErrorContext` alone would append the error's `Debug` form, which
/// holds the raw response (headers and body; for signature errors S3 echoes the
/// access key id and string to sign), so only `Display` forms are used here.
/// Requests, and so credentials, are never part of an SDK error.
fn s3_error<E>(operation: &str, bucket: &str, key: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let http_status = status(e);
    let cause = match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            // HEAD responses have no body, hence no code.
            let mut cause = match (err.code(), http_status) {
                (Some(code), _) => code.to_owned(),
                (None, Some(403)) => "access denied (check the credentials and the bucket policy)".to_owned(),
                (None, Some(404)) => "not found".to_owned(),
                (None, _) => "no error code in the response".to_owned(),
            };
            if let Some(message) = err.message() {
                cause.push_str(": ");
                cause.push_str(message);
            }
            if let Some(id) = e.request_id() {
                cause.push_str(&format!(" [request id {id}]"));
            }
            cause
        }
        _ => error_chain(e),
    };
    let http = http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    StoreError::S3(format!("{operation} s3://{bucket}/{key}{http}: {cause}"))
}

/// `Display` of an error and each of its sources, joined by ": ".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// `""` stays empty; anything else ends in exactly one `/`.
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() { String::new() } else { format!("{trimmed}/") }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn prefixes() {
        for (raw, want) in [("", ""), ("/", ""), ("obs", "obs/"), ("obs/", "obs/"), ("a/b//", "a/b/"), (" x ", "x/")] {
            assert_eq!(normalize_prefix(raw), want, "{raw:?}");
        }
    }

    /// A `moto_server` on a free port, killed on drop. Panics if it cannot start:
    /// the S3 tests never skip.
    struct Moto {
        child: Child,
        endpoint: Url,
    }

    impl Moto {
        fn start() -> Moto {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("the S3 store tests need moto_server on PATH (pip install 'moto[server]'): {e}")
                });
            let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}").parse().unwrap() };
            let deadline = Instant::now() + Duration::from_secs(30);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = moto.child.try_wait().unwrap() {
                    panic!("moto_server exited before listening: {status}");
                }
                assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            moto
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn credentials() -> Credentials {
        Credentials::new("observer-test-key", "observer-test-secret", None, None, "observer-tests")
    }

    async fn store(endpoint: &Url, bucket: &str, prefix: &str) -> S3Store {
        S3Store::build(
            Some(endpoint.clone()),
            bucket.to_owned(),
            "us-east-1".to_owned(),
            prefix.to_owned(),
            Some(credentials()),
        )
        .await
        .unwrap()
    }

    const META: ChunkMeta =
        ChunkMeta { first_timestamp: 1_700_000_000_000, last_timestamp: 1_700_000_004_321, events: 42 };

    /// One moto server for every S3 check, run in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s3_store_against_moto() {
        let moto = Moto::start();
        let s3 = store(&moto.endpoint, "observer-test", "tenant-a").await;
        assert_eq!(
            s3.describe(),
            format!(
                "s3 bucket observer-test at {} (prefix \"tenant-a/\")",
                moto.endpoint.as_str().trim_end_matches('/')
            )
        );

        // check() fails before the bucket exists, and names it.
        let err = s3.check().await.unwrap_err().to_string();
        assert!(err.contains("observer-test") && err.contains("does not exist"), "{err}");
        s3.client.create_bucket().bucket("observer-test").send().await.unwrap();
        s3.check().await.unwrap();

        // Put, then a re-send with other bytes: the first object stays.
        let id = SessionId::parse("session-s3-0001").unwrap();
        let body = Bytes::from_static(b"\x1f\x8b\x08\x00 first body");
        assert_eq!(s3.put_chunk(&id, 5, body.clone(), META).await.unwrap(), PutOutcome::Created);
        let other = ChunkMeta { events: 1, ..META };
        assert_eq!(
            s3.put_chunk(&id, 5, Bytes::from_static(b"second"), other).await.unwrap(),
            PutOutcome::AlreadyExists
        );

        let key = "tenant-a/replays/session-s3-0001/0000000005.json.gz";
        assert_eq!(s3.key(&id, 5), key);
        let got = s3.client.get_object().bucket("observer-test").key(key).send().await.unwrap();
        assert_eq!(got.content_type(), Some("application/json"));
        assert_eq!(got.content_encoding(), Some("gzip"));
        let metadata = got.metadata().cloned().unwrap_or_default();
        assert_eq!(metadata.get("first-timestamp").map(String::as_str), Some("1700000000000"));
        assert_eq!(metadata.get("last-timestamp").map(String::as_str), Some("1700000004321"));
        assert_eq!(metadata.get("events").map(String::as_str), Some("42"));
        assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);
        let listed = s3.client.list_objects_v2().bucket("observer-test").send().await.unwrap();
        assert_eq!(listed.contents().len(), 1, "one object, no duplicate");

        // The server honours If-None-Match: a conditional put on the existing
        // key (skipping the HEAD) is refused and classified as AlreadyExists.
        assert_eq!(s3.put_new(key, Bytes::from_static(b"third"), META).await.unwrap(), PutOutcome::AlreadyExists);
        let raw = s3
            .client
            .put_object()
            .bucket("observer-test")
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from_static(b"raw"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(conditional_failure(&raw), Some(ConditionalFailure::Exists), "{}", error_chain(&raw));

        // Concurrent re-sends of a new chunk.
        let s3 = Arc::new(s3);
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let (s3, id) = (s3.clone(), id.clone());
                tokio::spawn(async move {
                    s3.put_chunk(&id, 6, Bytes::from(format!("body {i}")), ChunkMeta { events: i, ..META })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            if task.await.unwrap() == PutOutcome::Created {
                created += 1;
            }
        }
        assert_eq!(created, 1, "exactly one concurrent put creates the object");

        // Errors are useful and hold no secret.
        let missing = store(&moto.endpoint, "no-such-bucket", "").await;
        let err = missing.put_chunk(&id, 0, Bytes::from_static(b"x"), META).await.unwrap_err().to_string();
        assert!(
            err.contains(
                "PutObject s3://no-such-bucket/replays/session-s3-0001/0000000000.json.gz (HTTP 404): NoSuchBucket"
            ),
            "{err}"
        );
        assert!(!err.contains("observer-test-secret") && !err.contains("<Error>") && !err.contains("headers"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_fast() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint: Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let s3 = store(&endpoint, "observer-test", "").await;
        let started = Instant::now();
        let err = s3.check().await.unwrap_err().to_string();
        assert!(started.elapsed() < OPERATION_TIMEOUT, "took {:?}", started.elapsed());
        assert!(err.contains("HeadBucket s3://observer-test/") && err.contains("Connection refused"), "{err}");
        assert!(!err.contains("observer-test-secret"), "{err}");
    }

    #[tokio::test]
    async fn rejects_endpoint_with_credentials() {
        let endpoint: Url = "http://user:pass@127.0.0.1:9000".parse().unwrap();
        let err =
            S3Store::new(Some(endpoint), "b-1".to_owned(), "us-east-1".to_owned(), String::new()).await.unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err}");
        assert!(!err.to_string().contains("pass"), "{err}");
    }
}
