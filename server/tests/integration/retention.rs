//! Retention: `observer storage lifecycle|check` against a real S3 server
//! (moto), the start-up lifecycle check in stderr and `/readyz`, and the
//! local store's sweep deleting whole sessions on the real binary.

use std::{
    process::Output,
    time::{Duration, Instant, SystemTime},
};

use aws_sdk_s3::types::{ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter};
use serde_json::Value;

use crate::common::{S3Server, TestServer, observer_command, unique_id};
use crate::replay_fetch::{VIEWER_TOKEN, get, record_session, viewer_env};

/// Runs `observer storage ARGS` with the S3 server's settings plus `env`.
fn storage(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = observer_command();
    command.env("AWS_EC2_METADATA_DISABLED", "true").arg("storage").args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn rules(s3: &S3Server, bucket: &str) -> Vec<LifecycleRule> {
    match s3.client().get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(out) => out.rules().to_vec(),
        Err(e) => panic!("GetBucketLifecycleConfiguration: {e:?}"),
    }
}

fn rule<'a>(rules: &'a [LifecycleRule], id: &str) -> &'a LifecycleRule {
    rules.iter().find(|r| r.id() == Some(id)).unwrap_or_else(|| panic!("no rule {id} in {rules:?}"))
}

/// Asserts an Observer rule: prefix inside Filter, expiry in days, enabled.
fn assert_observer_rule(rules: &[LifecycleRule], id: &str, prefix: &str, days: i32) {
    let r = rule(rules, id);
    assert_eq!(r.filter().and_then(|f| f.prefix()), Some(prefix), "{id}");
    #[allow(deprecated)]
    let rule_level_prefix = r.prefix();
    assert_eq!(rule_level_prefix, None, "{id}: no rule-level Prefix");
    assert_eq!(r.expiration().and_then(|e| e.days()), Some(days), "{id}");
    assert_eq!(r.status(), &ExpirationStatus::Enabled);
}

fn foreign_rule() -> LifecycleRule {
    LifecycleRule::builder()
        .id("team-tmp-cleanup")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
        .expiration(LifecycleExpiration::builder().days(2).build())
        .build()
        .unwrap()
}

fn s3_env(s3: &S3Server, key_prefix: &str) -> Vec<(&'static str, String)> {
    s3.env(key_prefix)
}

#[tokio::test]
async fn lifecycle_sets_rules_idempotently_and_keeps_other_rules() {
    let s3 = S3Server::start("retention-rules").await;
    let config = aws_sdk_s3::types::BucketLifecycleConfiguration::builder().rules(foreign_rule()).build().unwrap();
    s3.client()
        .put_bucket_lifecycle_configuration()
        .bucket(&s3.bucket)
        .lifecycle_configuration(config)
        .send()
        .await
        .unwrap();
    let env = s3_env(&s3, "tenant-a/");

    let out = storage(&env, &["lifecycle", "--days", "7"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("rule observer-expire-tenant-a/replays: objects under \"tenant-a/replays/\" expire 7 days")
    );
    assert!(stdout.contains("(added)") && stdout.contains("kept 1 other rule: team-tmp-cleanup"), "{stdout}");
    let after = rules(&s3, &s3.bucket).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert_observer_rule(&after, "observer-expire-tenant-a/replays", "tenant-a/replays/", 7);
    assert_observer_rule(&after, "observer-expire-tenant-a/sessions", "tenant-a/sessions/", 7);
    assert_eq!(rule(&after, "team-tmp-cleanup").expiration().and_then(|e| e.days()), Some(2));

    // Again, with another number of days: Observer's rules are replaced, not added.
    let out = storage(&env, &["lifecycle", "--days", "9"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(replaced)") && !stdout.contains("(added)"), "{stdout}");
    let again = rules(&s3, &s3.bucket).await;
    assert_eq!(again.len(), 3, "{again:?}");
    assert_observer_rule(&again, "observer-expire-tenant-a/replays", "tenant-a/replays/", 9);
    assert_observer_rule(&again, "observer-expire-tenant-a/sessions", "tenant-a/sessions/", 9);
    assert!(rule(&again, "team-tmp-cleanup").filter().and_then(|f| f.prefix()) == Some("tmp/"));

    // Another Observer with another key prefix in the same bucket adds its own.
    let out = storage(&s3_env(&s3, ""), &["lifecycle", "--days", "30"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let shared = rules(&s3, &s3.bucket).await;
    assert_eq!(shared.len(), 5, "{shared:?}");
    assert_observer_rule(&shared, "observer-expire-replays", "replays/", 30);
    assert_observer_rule(&shared, "observer-expire-tenant-a/replays", "tenant-a/replays/", 9);
}

#[tokio::test]
async fn create_bucket_creates_it_once() {
    let s3 = S3Server::start("retention-existing").await;
    let mut env = s3_env(&s3, "");
    let bucket = format!("observer-new-{}", std::process::id());
    env.push(("OBSERVER_S3_BUCKET", bucket.clone()));

    let out = storage(&env, &["lifecycle", "--days", "30"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist") && stderr.contains("--create-bucket"), "{stderr}");

    let out = storage(&env, &["lifecycle", "--days", "30", "--create-bucket"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("bucket s3://{bucket} at {}: created", s3.endpoint)), "{stdout}");
    s3.client().head_bucket().bucket(&bucket).send().await.unwrap();
    assert_observer_rule(&rules(&s3, &bucket).await, "observer-expire-sessions", "sessions/", 30);

    let out = storage(&env, &["lifecycle", "--days", "30", "--create-bucket"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(": exists"), "{stdout}");
}

#[tokio::test]
async fn check_prints_the_rules_and_the_coverage() {
    let s3 = S3Server::start("retention-check").await;
    let env = s3_env(&s3, "");

    let out = storage(&env, &["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "not covered: {stdout}\n{stderr}");
    assert!(stdout.contains("0 lifecycle rules"), "{stdout}");
    assert!(stdout.contains("replays/: NOT covered") && stdout.contains("sessions/: NOT covered"), "{stdout}");

    assert_eq!(storage(&env, &["lifecycle", "--days", "30"]).status.code(), Some(0));
    let out = storage(&env, &["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 lifecycle rules"), "{stdout}");
    assert!(
        stdout.contains("  observer-expire-replays: Enabled, prefix \"replays/\", expires after 30 days"),
        "{stdout}"
    );
    assert!(stdout.contains("replays/: covered by observer-expire-replays (expires after 30 days)"), "{stdout}");
    assert!(stdout.contains("sessions/: covered by observer-expire-sessions"), "{stdout}");
}

#[test]
fn lifecycle_needs_s3_and_sane_days() {
    let local = [("OBSERVER_DATA_DIR", "/tmp/observer-retention-cli".to_owned())];
    let out = storage(&local, &["lifecycle", "--days", "30"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("OBSERVER_S3_BUCKET") && stderr.contains("OBSERVER_RETENTION_DAYS"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for days in ["0", "3651", "-1", "ten"] {
        let out = storage(&local, &["lifecycle", "--days", days]);
        assert_eq!(out.status.code(), Some(2), "--days {days}: {:?}", text(&out));
    }
    let out = storage(&local, &["check"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("OBSERVER_RETENTION_DAYS (30 days)"), "{stdout}");
    let off: Vec<_> = local.iter().cloned().chain([("OBSERVER_RETENTION_DAYS", "off".to_owned())]).collect();
    assert_eq!(storage(&off, &["check"]).status.code(), Some(3));
}

/// Polls anonymous `/readyz` until its retention state is no longer pending.
async fn retention_state(server: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = server.http.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
        if body["retention"]["state"] != "pending" {
            return body;
        }
        assert!(Instant::now() < deadline, "the lifecycle check never finished: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_on_s3(s3: &S3Server) -> TestServer {
    let env: Vec<(&str, String)> = viewer_env().into_iter().chain(s3_env(s3, "")).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start(&env).await
}

#[tokio::test]
async fn start_up_warns_when_no_expiry_covers_the_bucket() {
    let s3 = S3Server::start("retention-missing").await;
    let server = start_on_s3(&s3).await;

    let body = retention_state(&server).await;
    assert_eq!(body["status"], "ready", "a retention warning is not unreadiness: {body}");
    assert_eq!(body["retention"], serde_json::json!({"state": "not_covered"}), "anonymous: no bucket name");
    let warning = server.stderr_text();
    let line =
        warning.lines().find(|l| l.contains("no lifecycle expiry covers")).unwrap_or_else(|| panic!("{warning}"));
    assert!(line.contains("retention-missing") && line.contains("replays/, sessions/"), "{line}");
    assert!(line.contains("WARN"), "{line}");

    let detailed: Value =
        server.http.get(server.url("/readyz")).bearer_auth(VIEWER_TOKEN).send().await.unwrap().json().await.unwrap();
    let detail = detailed["retention"]["detail"].as_str().unwrap();
    assert!(detail.contains("retention-missing") && detail.contains("replays/, sessions/"), "{detail}");
    assert_eq!(server.metric("observer_storage_retention_configured").await, 0.0);
}

#[tokio::test]
async fn start_up_is_quiet_when_an_expiry_covers_the_bucket() {
    let s3 = S3Server::start("retention-present").await;
    assert_eq!(storage(&s3_env(&s3, ""), &["lifecycle", "--days", "30"]).status.code(), Some(0));
    let server = start_on_s3(&s3).await;

    let body = retention_state(&server).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["retention"]["state"], "covered", "{body}");
    assert!(!server.stderr_text().contains("no lifecycle expiry"), "{}", server.stderr_text());
    assert_eq!(server.metric("observer_storage_retention_configured").await, 1.0);
}

/// Dates a stored session's files, then its directory, `days` back.
fn age_session(root: &std::path::Path, session: &str, days: u64) {
    let time = SystemTime::now() - Duration::from_secs(86_400 * days);
    let dir = root.join("replays").join(session);
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::File::open(entry.unwrap().path()).unwrap().set_modified(time).unwrap();
    }
    std::fs::File::open(&dir).unwrap().set_modified(time).unwrap();
}

#[tokio::test]
async fn local_sweep_deletes_old_sessions_whole_and_keeps_recent_ones() {
    let env: Vec<(&str, String)> =
        viewer_env().into_iter().chain([("OBSERVER_RETENTION_DAYS", "off".to_owned())]).collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut first = TestServer::start(&env_refs).await;
    let (old, recent) = (unique_id("old-session"), unique_id("recent-session"));
    record_session(&first, &old).await;
    record_session(&first, &recent).await;
    let body = retention_state(&first).await;
    assert_eq!(body["retention"]["state"], "off");
    first.terminate().await;
    let data_dir = first.take_data_dir();
    age_session(data_dir.path(), &old, 3);

    let env: Vec<(&str, String)> = viewer_env()
        .into_iter()
        .chain([("OBSERVER_RETENTION_DAYS", "2".to_owned()), ("OBSERVER_RETENTION_SWEEP_INTERVAL", "1s".to_owned())])
        .collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start_in(data_dir, &env_refs).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("observer_retention_sessions_deleted_total").await < 1.0 {
        assert!(Instant::now() < deadline, "no sweep deleted the old session: {}", server.stderr_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_eq!(get(&server, &format!("/api/observer/replays/{old}"), &[]).await.status(), 404);
    let listing: Value = get(&server, "/api/observer/replays", &[]).await.json().await.unwrap();
    let listed: Vec<&str> =
        listing["sessions"].as_array().unwrap().iter().filter_map(|s| s["session_id"].as_str()).collect();
    assert_eq!(listed, [recent.as_str()], "{listing}");
    let manifest: Value = get(&server, &format!("/api/observer/replays/{recent}"), &[]).await.json().await.unwrap();
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 6, "{manifest}");
    let files = server.stored_files();
    assert!(!files.iter().any(|f| f.contains(&old)), "nothing of the old session is left: {files:?}");
    let log = server.stderr_text();
    assert!(log.contains("retention: swept the data directory") && log.contains("sessions_deleted=1"), "{log}");
    let body = retention_state(&server).await;
    assert_eq!(body["retention"]["state"], "local_sweep");
    assert_eq!(server.metric("observer_storage_retention_configured").await, 1.0);
}
