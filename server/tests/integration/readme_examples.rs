//! The README's curl examples work as shown: each is run by bash from the
//! repository root against a fresh server.

use std::process::Command;

use crate::common::TestServer;

/// Every `curl …` command in the README, with its continuation lines joined.
fn readme_curls() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut commands = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        if let Some(command) = current.as_mut() {
            command.push('\n');
            command.push_str(line);
        } else if line.starts_with("curl ") {
            current = Some(line.to_owned());
        }
        if current.is_some() && !line.ends_with('\\') {
            commands.extend(current.take());
        }
    }
    commands
}

#[tokio::test]
async fn readme_curl_examples_work() {
    let server = TestServer::start(&[]).await;
    let commands = readme_curls();
    assert_eq!(commands.len(), 4, "errors, events, gzip replay, plain replay: {commands:#?}");
    for command in &commands {
        let command = command.replace("http://localhost:8006", &server.base);
        let out = Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command}\nstdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("\"accepted\"") || stdout.contains("\"events\""), "{command}: {stdout}");
    }
    assert!(server.data_dir.path().join("replays/demo-session-0001/0000000000.json.gz").exists());
    assert!(server.data_dir.path().join("replays/demo-session-0001/0000000001.json.gz").exists());
    let records = server.wait_stdout_records(4, |_| true).await;
    let kinds: Vec<&str> = records.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "error").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "event").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "replay").count(), 1);
}
