use super::*;

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    f(&mut s);
    s
}

#[test]
fn defaults_are_the_embedded_mode() {
    let c = Config::from_settings(&Settings::default()).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8006");
    assert!(matches!(c.store, StoreConfig::Local { .. }));
    assert!(c.loki.is_none());
    assert_eq!(c.limits.max_replay_body, 5 * MIB);
    assert_eq!(c.limits.max_replay_decompressed, 50 * MIB);
    assert!(matches!(c.allowed_origins, AllowedOrigins::Any));
    assert_eq!(c.limits.viewer_session_ttl, Duration::from_secs(12 * 3600));
}

#[test]
fn errors_name_the_setting() {
    let cases: Vec<(Settings, &str)> = vec![
        (settings(|s| s.listen = Some("nope".into())), "OBSERVER_LISTEN"),
        (settings(|s| s.max_replay_body = Some("lots".into())), "OBSERVER_MAX_REPLAY_BODY"),
        (settings(|s| s.loki_url = Some("ftp://x".into())), "OBSERVER_LOKI_URL"),
        (settings(|s| s.s3_endpoint = Some("http://minio:9000".into())), "OBSERVER_S3_BUCKET"),
        (settings(|s| s.allowed_origins = Some("https://a.example/path".into())), "OBSERVER_ALLOWED_ORIGINS"),
        (settings(|s| s.ingest_keys = Some(" , ".into())), "OBSERVER_INGEST_KEYS"),
        (settings(|s| s.service_name = Some("bad label".into())), "OBSERVER_SERVICE_NAME"),
        (settings(|s| s.request_timeout = Some("0s".into())), "OBSERVER_REQUEST_TIMEOUT"),
        (settings(|s| s.viewer_tokens = Some("short".into())), "OBSERVER_VIEWER_TOKENS"),
        (settings(|s| s.viewer_tokens = Some("sixteen-chars-ok, has space inside!".into())), "OBSERVER_VIEWER_TOKENS"),
        (settings(|s| s.share_secret = Some("too short for hmac".into())), "OBSERVER_SHARE_SECRET"),
        (settings(|s| s.public_url = Some("localhost:8006".into())), "OBSERVER_PUBLIC_URL"),
        (settings(|s| s.public_url = Some("http://h.example/?x=1".into())), "OBSERVER_PUBLIC_URL"),
        (settings(|s| s.max_stream_chunks = Some("0".into())), "OBSERVER_MAX_STREAM_CHUNKS"),
        (settings(|s| s.fetch_concurrency = Some("0".into())), "OBSERVER_FETCH_CONCURRENCY"),
        (settings(|s| s.auth_failures_per_minute = Some("-1".into())), "OBSERVER_AUTH_FAILURES_PER_MINUTE"),
        (settings(|s| s.viewer_session_ttl = Some("59s".into())), "OBSERVER_VIEWER_SESSION_TTL"),
        (settings(|s| s.spool_sync = Some("fast".into())), "OBSERVER_SPOOL_SYNC"),
        (settings(|s| s.viewer_session_ttl = Some("31d".into())), "OBSERVER_VIEWER_SESSION_TTL"),
        (settings(|s| s.viewer_session_ttl = Some("soon".into())), "OBSERVER_VIEWER_SESSION_TTL"),
        (settings(|s| s.auth_failures_per_minute = Some("99999999999".into())), "OBSERVER_AUTH_FAILURES_PER_MINUTE"),
    ];
    for (s, setting) in cases {
        let err = Config::from_settings(&s).unwrap_err().to_string();
        assert!(err.contains(setting), "{err} should name {setting}");
    }
}

#[test]
fn env_wins_over_file() {
    let file: Settings =
        toml::from_str("listen = \"127.0.0.1:1\"\nmax_batch_items = 5\nspool_max_age = \"1h\"").unwrap();
    let cli = settings(|s| s.listen = Some("127.0.0.1:2".into()));
    let c = Config::from_settings(&cli.over(file)).unwrap();
    assert_eq!(c.listen.port(), 2);
    assert_eq!(c.limits.max_batch_items, 5);
    assert_eq!(c.spool.max_age, std::time::Duration::from_secs(3600));
}

#[test]
fn unknown_file_keys_are_rejected() {
    assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
}

#[test]
fn secrets_do_not_print() {
    let c = Config::from_settings(&settings(|s| {
        s.ingest_keys = Some("supersecretkey".into());
        s.viewer_tokens = Some("superviewertoken-1,superviewertoken-2".into());
        s.share_secret = Some("supershare-0123456789abcdef0123456789".into());
    }))
    .unwrap();
    assert_eq!(c.viewer_tokens.len(), 2);
    assert!(!format!("{c:?}").contains("super"), "{c:?}");
}

#[test]
fn viewer_defaults() {
    let c = Config::from_settings(&Settings::default()).unwrap();
    assert!(c.viewer_tokens.is_empty() && c.share_secret.is_none());
    assert_eq!(c.public_url, "http://localhost:8006");
    assert_eq!(c.limits.max_stream_chunks, 2000);
    assert_eq!(c.limits.fetch_concurrency, 32);
    assert_eq!(c.limits.auth_failures_per_minute, 10);
    let c = Config::from_settings(&settings(|s| s.auth_failures_per_minute = Some("0".into()))).unwrap();
    assert_eq!(c.limits.auth_failures_per_minute, 0, "0 turns the brake off");
    let c = Config::from_settings(&settings(|s| s.public_url = Some("https://obs.example/base/".into()))).unwrap();
    assert_eq!(c.public_url, "https://obs.example/base");
}

#[test]
fn loki_credentials_leave_the_url() {
    let config = Config::from_settings(&settings(|s| {
        s.loki_url = Some("https://user%40x:p%3Ass@loki.example:3100/".into());
    }))
    .unwrap();
    let loki = config.loki.unwrap();
    assert_eq!(loki.url.as_str(), "https://loki.example:3100/");
    assert_eq!(loki.auth, LokiAuth::Basic { username: "user@x".into(), password: Secret::new("p:ss") });

    let config = Config::from_settings(&settings(|s| {
        s.loki_url = Some("http://loki:3100".into());
        s.loki_bearer_token = Some("tok".into());
        s.loki_tenant_id = Some("team-a".into());
    }))
    .unwrap();
    let loki = config.loki.unwrap();
    assert_eq!(loki.auth, LokiAuth::Bearer(Secret::new("tok")));
    assert_eq!(loki.tenant_id.as_deref(), Some("team-a"));

    let both = Config::from_settings(&settings(|s| {
        s.loki_url = Some("http://u:p@loki:3100".into());
        s.loki_password = Some("p".into());
    }));
    assert!(both.unwrap_err().to_string().contains("OBSERVER_LOKI_URL"));
    let without_url = Config::from_settings(&settings(|s| s.loki_tenant_id = Some("t".into())));
    assert!(without_url.unwrap_err().to_string().contains("OBSERVER_LOKI_TENANT_ID"));

    // A refused URL is echoed without its credentials.
    for bad in ["ftp://user:s3cr3t-pw@loki:3100", "http://user:s3cr3t-pw@loki:99999", "user:s3cr3t-pw@loki"] {
        let error = Config::from_settings(&settings(|s| s.loki_url = Some(bad.into()))).unwrap_err().to_string();
        assert!(error.contains("OBSERVER_LOKI_URL") && !error.contains("s3cr3t"), "{error}");
    }
}

#[test]
fn hostile_client_defaults() {
    let config = Config::from_settings(&Settings::default()).unwrap();
    assert_eq!(config.limits.rate_limit_per_ip, 100);
    assert_eq!(config.limits.rate_limit_per_session, 20);
    assert_eq!(config.limits.max_session_chunks, 720);
    assert_eq!(config.limits.max_session_bytes, 200 * 1024 * 1024);
    assert_eq!(config.connections.header_read_timeout, std::time::Duration::from_secs(10));
    assert_eq!(config.connections.send_timeout, std::time::Duration::from_secs(30));
    let tiny = Config::from_settings(&settings(|s| s.max_inflight_bytes = Some("1MiB".into())));
    assert!(tiny.unwrap_err().to_string().contains("OBSERVER_MAX_INFLIGHT_BYTES"));
}

#[test]
fn retention_days() {
    let days = |raw: Option<&str>| {
        Config::from_settings(&settings(|s| s.retention_days = raw.map(Into::into))).map(|c| c.retention.days)
    };
    assert_eq!(days(None).unwrap(), Some(30));
    assert_eq!(days(Some("7")).unwrap(), Some(7));
    assert_eq!(days(Some("3650")).unwrap(), Some(3650));
    assert_eq!(days(Some("0")).unwrap(), None);
    assert_eq!(days(Some(" OFF ")).unwrap(), None);
    for bad in ["3651", "-1", "30d", "", "1.5"] {
        let e = days(Some(bad)).unwrap_err().to_string();
        assert!(e.contains("OBSERVER_RETENTION_DAYS"), "{bad}: {e}");
    }
    let c = Config::from_settings(&Settings::default()).unwrap();
    assert_eq!(c.retention.sweep_interval, Duration::from_secs(3600));
}
