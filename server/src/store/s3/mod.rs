//! Replay chunks in an S3 bucket (AWS or an S3-compatible server).
//!
//! One object per chunk at `{key_prefix}replays/{session_id}/{seq:010}.json.gz`,
//! with `Content-Type: application/json`, `Content-Encoding: gzip` and the user
//! metadata `first-timestamp`, `last-timestamp`, `events`, `pages`, `errors`,
//! `received-at` (decimal strings; see `store::ChunkStats`) and `content-hash`
//! (16 hex digits); chunks stored by older versions lack the last four.
//!
//! A put never replaces an object:
//! 1. `HeadObject`: if the key exists the put compares its metadata with the
//!    new chunk and answers `AlreadyExists` or `Conflict` without uploading
//!    (needed for servers that ignore `If-None-Match`);
//! 2. `PutObject` with `If-None-Match: *`: a 412 `PreconditionFailed` means a
//!    concurrent re-send won the race, and a 409 `ConditionalRequestConflict`
//!    that one is in flight; either way a second `HeadObject` finds what is
//!    stored and compares it as in step 1.
//!
//! After a new chunk is stored, two small objects make reads cheap (see
//! `store::index`): the chunk's index entry
//! `replays/{session_id}/index/{seq:010}-{first}-{last}-{events}-{bytes}-{pages}-{errors}-{received}`
//! (empty; one `ListObjectsV2` page then yields a 1000-chunk manifest, or
//! the session's listing totals), and
//! for chunk 0 the session's listing entry `sessions/{inverted}-{id}.json`
//! (`If-None-Match: *`, so the first one stays). Both are written after the
//! chunk, and their failure does not fail the put: the chunk is safe, and
//! answering an error would make the client re-send a chunk whose start
//! record was already logged. A missing chunk index entry costs the
//! manifest one `HeadObject` (which then writes it); a missing session entry
//! is written by the next re-send of chunk 0. Reads are in [`read`].
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
use url::Url;

use super::index::{SessionEntry, chunk_index_name, session_entry_name};
use super::{
    ChunkInfo, ChunkListing, ChunkObject, NewChunk, PutOutcome, ReplayStore, SessionDetails, SessionPage, SessionQuery,
    StoreError, chunk_key, content_hash_text,
};
use crate::payload::SessionId;

mod lifecycle;
mod read;

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
    region: String,
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
            region,
            location,
        })
    }

    /// The object key of a chunk, prefix included.
    pub fn key(&self, session_id: &SessionId, seq: u32) -> String {
        chunk_key(&self.key_prefix, session_id, seq)
    }

    /// `replays/{session_id}/`, prefix included.
    fn session_prefix(&self, session_id: &SessionId) -> String {
        format!("{}replays/{}/", self.key_prefix, session_id.as_str())
    }

    /// `sessions/`, prefix included.
    fn sessions_prefix(&self) -> String {
        format!("{}sessions/", self.key_prefix)
    }

    async fn head(&self, key: &str, seq: u32) -> Result<Head, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Head::Exists {
                info: read::chunk_info_from_head(seq, &out),
                content_hash: read::content_hash_from_head(&out),
            }),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) || status(&e) == Some(404) => {
                Ok(Head::Missing)
            }
            // Without s3:ListBucket, S3 answers 403 for a missing key; the
            // conditional put still keeps an existing object safe.
            Err(e) if status(&e) == Some(403) => Ok(Head::Unknown),
            Err(e) => Err(s3_error("HeadObject", &self.bucket, key, &e)),
        }
    }

    /// Uploads a chunk unless the key exists: `AlreadyExists` then says only
    /// that something is stored there, not what.
    async fn put_new(&self, key: &str, chunk: NewChunk) -> Result<PutOutcome, StoreError> {
        let NewChunk { gzip: gzip_body, meta, stats, content_hash } = chunk;
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
            .metadata("pages", stats.pages.to_string())
            .metadata("errors", stats.errors.to_string())
            // 0: unknown (see `read::chunk_info_from_head`).
            .metadata("received-at", stats.received_at.unwrap_or(0).to_string())
            .metadata("content-hash", content_hash_text(content_hash))
            .body(ByteStream::from(gzip_body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => match conditional_failure(&e) {
                Some(ConditionalFailure::Exists) => Ok(PutOutcome::AlreadyExists),
                Some(ConditionalFailure::Conflict) => match self.head(key, 0).await? {
                    Head::Exists { .. } => Ok(PutOutcome::AlreadyExists),
                    Head::Missing | Head::Unknown => Err(s3_error("PutObject", &self.bucket, key, &e)),
                },
                None => Err(s3_error("PutObject", &self.bucket, key, &e)),
            },
        }
    }

    /// Writes a chunk's index entry (empty, so re-writing it is harmless).
    async fn put_chunk_index(&self, session_id: &SessionId, info: &ChunkInfo) -> Result<(), StoreError> {
        let key = format!("{}index/{}", self.session_prefix(session_id), chunk_index_name(info));
        match self.client.put_object().bucket(&self.bucket).key(&key).body(ByteStream::from_static(b"")).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(s3_error("PutObject", &self.bucket, &key, &e)),
        }
    }

    /// Writes a session's listing entry unless one exists.
    async fn put_session_entry(
        &self,
        session_id: &SessionId,
        start: i64,
        details: &SessionDetails,
    ) -> Result<(), StoreError> {
        let key = format!("{}{}", self.sessions_prefix(), session_entry_name(session_id, start));
        let body = SessionEntry::new(session_id, start, details).to_json();
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failure(&e).is_some() => Ok(()),
            Err(e) => Err(s3_error("PutObject", &self.bucket, &key, &e)),
        }
    }

    /// The index entries after a put (see the module docs); never fails.
    async fn write_index_entries(
        &self,
        session_id: &SessionId,
        outcome: PutOutcome,
        stored: Option<ChunkInfo>,
        details: &SessionDetails,
    ) {
        let Some(info) = stored else { return };
        if outcome == PutOutcome::Created
            && let Err(e) = self.put_chunk_index(session_id, &info).await
        {
            tracing::warn!(session_id = session_id.as_str(), seq = info.seq, error = %e, "cannot write the chunk index entry");
        }
        if info.seq == 0
            && let Err(e) = self.put_session_entry(session_id, info.meta.first_timestamp, details).await
        {
            tracing::warn!(session_id = session_id.as_str(), error = %e, "cannot write the session listing entry");
        }
    }
}

enum Head {
    /// With the stored chunk's manifest line, when its metadata is readable,
    /// and its content hash, when it has one.
    Exists {
        info: Option<ChunkInfo>,
        content_hash: Option<u64>,
    },
    Missing,
    Unknown,
}

#[async_trait::async_trait]
impl ReplayStore for S3Store {
    async fn put_chunk(
        &self,
        session_id: &SessionId,
        seq: u32,
        chunk: NewChunk,
        details: &SessionDetails,
    ) -> Result<PutOutcome, StoreError> {
        let key = self.key(session_id, seq);
        let (outcome, stored) = match self.head(&key, seq).await? {
            // Chunk 0's listing entry is repaired from what is stored.
            Head::Exists { info, content_hash } => {
                (existing_outcome(info, content_hash, &chunk), info.filter(|_| seq == 0))
            }
            Head::Missing | Head::Unknown => {
                let info = ChunkInfo { seq, meta: chunk.meta, bytes: chunk.gzip.len() as u64, stats: chunk.stats };
                match self.put_new(&key, chunk.clone()).await? {
                    PutOutcome::Created => (PutOutcome::Created, Some(info)),
                    // A concurrent put won the race (and writes the entries).
                    _ => match self.head(&key, seq).await? {
                        Head::Exists { info, content_hash } => (existing_outcome(info, content_hash, &chunk), None),
                        Head::Missing | Head::Unknown => (PutOutcome::AlreadyExists, None),
                    },
                }
            }
        };
        self.write_index_entries(session_id, outcome, stored, details).await;
        tracing::debug!(session_id = session_id.as_str(), seq, ?outcome, "stored replay chunk in S3");
        Ok(outcome)
    }

    async fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        super::listing::list_sessions(self, query).await
    }

    async fn list_chunks(&self, session_id: &SessionId, max_chunks: usize) -> Result<ChunkListing, StoreError> {
        self.read_manifest(session_id, max_chunks).await
    }

    /// One listing of the chunk objects (delimiter `/`), not the manifest's
    /// two: the byte budget needs only sizes, and it is seeded for every
    /// new session.
    async fn stored_chunk_sizes(
        &self,
        session_id: &SessionId,
        max_chunks: usize,
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        self.chunk_sizes(session_id, max_chunks).await
    }

    async fn get_session_details(
        &self,
        session_id: &SessionId,
        start: i64,
    ) -> Result<Option<SessionDetails>, StoreError> {
        self.read_session_details(session_id, start).await
    }

    async fn get_chunk(&self, session_id: &SessionId, seq: u32) -> Result<Option<ChunkObject>, StoreError> {
        self.read_chunk(session_id, seq).await
    }

    async fn chunk_etag(&self, session_id: &SessionId, seq: u32) -> Result<Option<String>, StoreError> {
        self.read_chunk_etag(session_id, seq).await
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

/// [`PutOutcome::of_existing`] from a `HeadObject`'s metadata.
fn existing_outcome(info: Option<ChunkInfo>, content_hash: Option<u64>, new: &NewChunk) -> PutOutcome {
    PutOutcome::of_existing(info.map(|info| (info.meta, content_hash)), new)
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
mod tests;
