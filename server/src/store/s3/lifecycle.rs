//! The bucket itself: creating it and reading or replacing its lifecycle
//! configuration (`observer storage …` and the start-up retention check).
//!
//! `PutBucketLifecycleConfiguration` carries a `Content-MD5` header as well as
//! the SDK's CRC32 checksum: AWS documents the header as required, and MinIO
//! releases before checksum headers were accepted refuse the request
//! without it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, LifecycleRule,
    TransitionDefaultMinimumObjectSize,
};
use base64::Engine;
use md5::{Digest, Md5};

use super::{S3Store, s3_error, status};
use crate::store::StoreError;

/// A bucket's lifecycle configuration as read.
#[derive(Debug, Clone, Default)]
pub struct BucketLifecycle {
    pub rules: Vec<LifecycleRule>,
    /// Kept so that putting the rules back does not change it.
    pub transition_default_minimum_object_size: Option<TransitionDefaultMinimumObjectSize>,
}

impl S3Store {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `""` or ending in `/`.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The endpoint or AWS region (no credentials), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether the bucket exists (and we may see it).
    pub async fn bucket_exists(&self) -> Result<bool, StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) || status(&e) == Some(404) => Ok(false),
            Err(e) => Err(s3_error("HeadBucket", &self.bucket, "", &e)),
        }
    }

    /// Creates the bucket; `false` when it already existed and is ours.
    pub async fn create_bucket(&self) -> Result<bool, StoreError> {
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the default location, and AWS refuses it spelled out.
        if self.region != "us-east-1" {
            let location = BucketLocationConstraint::from(self.region.as_str());
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(location).build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()) => Ok(false),
            Err(e) => Err(s3_error("CreateBucket", &self.bucket, "", &e)),
        }
    }

    /// The bucket's lifecycle rules (none when it has no configuration).
    pub async fn lifecycle(&self) -> Result<BucketLifecycle, StoreError> {
        match self.client.get_bucket_lifecycle_configuration().bucket(&self.bucket).send().await {
            Ok(out) => Ok(BucketLifecycle {
                rules: out.rules().to_vec(),
                transition_default_minimum_object_size: out.transition_default_minimum_object_size().cloned(),
            }),
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(BucketLifecycle::default()),
            Err(e) => Err(s3_error("GetBucketLifecycleConfiguration", &self.bucket, "", &e)),
        }
    }

    /// Replaces the bucket's whole lifecycle configuration.
    pub async fn put_lifecycle(&self, lifecycle: BucketLifecycle) -> Result<(), StoreError> {
        let configuration = BucketLifecycleConfiguration::builder()
            .set_rules(Some(lifecycle.rules))
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the lifecycle configuration: {e}")))?;
        let result = self
            .client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(configuration)
            .set_transition_default_minimum_object_size(lifecycle.transition_default_minimum_object_size)
            .customize()
            .mutate_request(|request| {
                if let Some(body) = request.body().bytes() {
                    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
                    // Base64 is always a valid header value.
                    let _ = request.headers_mut().try_insert("content-md5", md5);
                }
            })
            .send()
            .await;
        result.map(|_| ()).map_err(|e| s3_error("PutBucketLifecycleConfiguration", &self.bucket, "", &e))
    }
}
