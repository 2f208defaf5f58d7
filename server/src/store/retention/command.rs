//! `observer storage lifecycle` and `observer storage check`: what they do
//! and print (stdout); `main` maps the outcome to an exit code.

use std::io::Write;

use super::rules;
use crate::config::{Config, StoreConfig};
use crate::store::S3Store;

/// Why a storage command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command does not apply to this configuration (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The store refused or could not be reached (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl From<crate::store::StoreError> for CommandError {
    fn from(e: crate::store::StoreError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::Failed(format!("cannot write the output: {e}"))
    }
}

/// The configured S3 store, or why there is none.
async fn s3_store(config: &Config) -> Result<S3Store, CommandError> {
    match &config.store {
        StoreConfig::S3 { endpoint, bucket, region, key_prefix } => {
            Ok(S3Store::new(endpoint.clone(), bucket.clone(), region.clone(), key_prefix.clone()).await?)
        }
        StoreConfig::Local { data_dir } => Err(CommandError::Usage(format!(
            "no S3 bucket is configured (OBSERVER_S3_BUCKET), so replays are stored in the local directory {} \
             and S3 lifecycle rules do not apply: the local store deletes sessions older than \
             OBSERVER_RETENTION_DAYS (now {}) by itself",
            data_dir.display(),
            local_days(config)
        ))),
    }
}

fn local_days(config: &Config) -> String {
    config.retention.days.map_or("off".to_owned(), |d| format!("{d} days"))
}

/// Creates the bucket if asked and missing, then puts Observer's expiry
/// rules in its lifecycle configuration, keeping every other rule, and
/// reads the configuration back to check it.
pub async fn lifecycle(
    config: &Config,
    days: u32,
    create_bucket: bool,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let s3 = s3_store(config).await?;
    let bucket = s3.bucket().to_owned();
    let at = format!("s3://{bucket} at {}", s3.location());
    if s3.bucket_exists().await? {
        writeln!(out, "bucket {at}: exists")?;
    } else if create_bucket {
        let created = s3.create_bucket().await?;
        writeln!(out, "bucket {at}: {}", if created { "created" } else { "already exists" })?;
    } else {
        return Err(CommandError::Failed(format!(
            "bucket {at} does not exist (or these credentials cannot see it); create it, or pass --create-bucket"
        )));
    }

    let mut lifecycle = s3.lifecycle().await?;
    let prefixes = rules::observer_prefixes(s3.key_prefix());
    let merged = rules::merge(std::mem::take(&mut lifecycle.rules), &prefixes, days)?;
    lifecycle.rules = merged.rules;
    s3.put_lifecycle(lifecycle).await?;

    for prefix in &prefixes {
        let id = rules::rule_id(prefix);
        let how = if merged.replaced.contains(&id) { "replaced" } else { "added" };
        writeln!(out, "rule {id}: objects under {prefix:?} expire {days} days after they are written ({how})")?;
    }
    match merged.kept.len() {
        0 => writeln!(out, "no other rule on the bucket")?,
        n => writeln!(out, "kept {n} other rule{}: {}", if n == 1 { "" } else { "s" }, merged.kept.join(", "))?,
    }

    let uncovered = super::check_s3(&s3).await?;
    if !uncovered.is_empty() {
        return Err(CommandError::Failed(format!(
            "the rules were accepted, but reading them back shows no expiry for {} (does this S3 server implement \
             lifecycle expiration?)",
            uncovered.join(", ")
        )));
    }
    writeln!(out, "every prefix Observer writes now expires; the S3 server deletes objects in the background")?;
    Ok(())
}

/// Prints the bucket's lifecycle rules and, per prefix Observer writes,
/// the rule that expires it. True when every prefix is covered. With the
/// local store, prints its retention setting (true when it is on).
pub async fn check(config: &Config, out: &mut impl Write) -> Result<bool, CommandError> {
    if let StoreConfig::Local { data_dir } = &config.store {
        writeln!(
            out,
            "local directory {}: sessions whose last chunk is older than OBSERVER_RETENTION_DAYS ({}) are deleted \
             by the server every {}",
            data_dir.display(),
            local_days(config),
            humantime::format_duration(config.retention.sweep_interval)
        )?;
        return Ok(config.retention.days.is_some());
    }
    let s3 = s3_store(config).await?;
    let lifecycle = s3.lifecycle().await?;
    let n = lifecycle.rules.len();
    writeln!(
        out,
        "bucket s3://{} at {}: {n} lifecycle rule{}",
        s3.bucket(),
        s3.location(),
        if n == 1 { "" } else { "s" }
    )?;
    for rule in &lifecycle.rules {
        writeln!(out, "  {}", rules::describe_rule(rule))?;
    }
    let mut covered = true;
    for prefix in rules::observer_prefixes(s3.key_prefix()) {
        match rules::covering_rule(&lifecycle.rules, &prefix) {
            Some(rule) => writeln!(
                out,
                "{prefix}: covered by {} ({})",
                rule.id().unwrap_or("(no id)"),
                rules::describe_expiry(rule)
            )?,
            None => {
                covered = false;
                writeln!(out, "{prefix}: NOT covered: no enabled rule expires it")?;
            }
        }
    }
    if !covered {
        writeln!(out, "replays there are kept forever; add the rules with `observer storage lifecycle --days N`")?;
    }
    Ok(covered)
}
