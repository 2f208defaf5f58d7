//! Secure by default: without configured secrets the server generates a
//! viewer token and a share secret into its data directory (mode 0600),
//! reuses them after a restart and prints a ready-to-open URL once, when
//! the token is created (later starts name the file, not the token);
//! `observer share` signs links the running server accepts.

use std::os::unix::fs::PermissionsExt;

use super::record_session;
use crate::common::{TestServer, observer_command, unique_id};

/// The token in the printed `…/replay/?token=` line(s) of the server's stderr.
fn printed_tokens(server: &TestServer) -> Vec<String> {
    server
        .stderr_text()
        .lines()
        .filter_map(|line| line.split("http://viewer.example/replay/?token=").nth(1))
        .map(|token| token.trim().to_owned())
        .collect()
}

fn read_secret(server: &TestServer, name: &str) -> String {
    let path = server.data_dir.path().join(name);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{name} must be readable by its owner only");
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[tokio::test]
async fn generated_viewer_token_is_kept_printed_once_and_works() {
    let env = [("OBSERVER_PUBLIC_URL", "http://viewer.example/")];
    let mut server = TestServer::start(&env).await;
    let token = read_secret(&server, "viewer-token");
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    assert_eq!(printed_tokens(&server), std::slice::from_ref(&token), "printed once, as a ready-to-open URL");
    let secret = read_secret(&server, "share-secret");
    assert!(!server.stderr_text().contains(&secret), "the share secret is never printed");

    let session = unique_id("generated");
    record_session(&server, &session).await;
    let url = server.url(&format!("/api/observer/replays/{session}"));
    assert_eq!(server.http.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(server.http.get(&url).send().await.unwrap().status(), 401);
    // A share link minted by this server.
    let r = server.http.post(format!("{url}/share")).bearer_auth(&token).send().await.unwrap();
    let link: serde_json::Value = r.json().await.unwrap();
    let share_path = link["url"].as_str().unwrap().to_owned();

    // Restart on the same directory: same token, not printed again, but the
    // file is named; the share secret is the same, so old links still work.
    assert!(server.terminate().await.success());
    let data_dir = server.take_data_dir();
    let server = TestServer::start_in(data_dir, &env).await;
    assert_eq!(read_secret(&server, "viewer-token"), token);
    assert_eq!(read_secret(&server, "share-secret"), secret);
    assert!(printed_tokens(&server).is_empty());
    assert!(!server.stderr_text().contains(&token), "the token is printed only when created");
    let file = server.data_dir.path().join("viewer-token");
    assert!(server.stderr_text().contains(&file.display().to_string()), "where to find it");
    let url = server.url(&format!("/api/observer/replays/{session}"));
    assert_eq!(server.http.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    let shared = share_path.replacen(&format!("/replay/{session}"), &format!("/api/observer/replays/{session}"), 1);
    assert_eq!(server.http.get(server.url(&shared)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn configured_viewer_token_is_neither_generated_nor_printed() {
    let server = TestServer::start(&[
        ("OBSERVER_VIEWER_TOKENS", "configured-viewer-token-123"),
        ("OBSERVER_PUBLIC_URL", "http://viewer.example"),
    ])
    .await;
    assert!(!server.data_dir.path().join("viewer-token").exists());
    assert!(printed_tokens(&server).is_empty());
    assert!(!server.stderr_text().contains("configured-viewer-token-123"));
}

/// `observer share` with the server's environment.
fn cli_share(server: &TestServer, args: &[&str]) -> std::process::Output {
    observer_command()
        .env("OBSERVER_DATA_DIR", server.data_dir.path())
        .env("OBSERVER_PUBLIC_URL", &server.base)
        .arg("share")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_share_link_opens_the_session_on_the_running_server() {
    // No secrets configured: the CLI reads the share secret the server generated.
    let server = TestServer::start(&[]).await;
    let session = unique_id("cli");
    record_session(&server, &session).await;

    let out = cli_share(&server, &[&session, "--ttl", "2h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let link = stdout.trim();
    let prefix = format!("{}/replay/{session}?token=", server.base);
    let token = link.strip_prefix(&prefix).unwrap_or_else(|| panic!("{link:?} should start with {prefix:?}"));
    let expiry: u64 = token.split('.').nth(1).unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((now + 7190..=now + 7200).contains(&expiry), "--ttl 2h");

    for path in ["", "/chunks/0", "/events"] {
        let url = server.url(&format!("/api/observer/replays/{session}{path}?token={token}"));
        assert_eq!(server.http.get(url).send().await.unwrap().status(), 200, "{path}");
    }
    let other = server.url(&format!("/api/observer/replays/{}?token={token}", unique_id("cli-other")));
    assert_eq!(server.http.get(other).send().await.unwrap().status(), 401);

    // Elsewhere (no secret in that data dir, none configured) the CLI
    // refuses instead of signing with a new secret the server would reject.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = observer_command().env("OBSERVER_DATA_DIR", elsewhere.path()).args(["share", &session]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OBSERVER_SHARE_SECRET"));
    assert!(!elsewhere.path().join("share-secret").exists());

    // Bad arguments exit 2 and say why.
    for args in [&["short"][..], &[&session, "--ttl", "30s"], &[&session, "--ttl", "31d"], &[&session, "--ttl", "soon"]]
    {
        let out = cli_share(&server, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}
