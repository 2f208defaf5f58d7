//! Test harness: the real `observer` binary on a free port, a Loki push
//! receiver that decodes the real protocol, and a real S3-compatible server
//! process (moto). A missing dependency fails the test; nothing is skipped.

#![allow(dead_code)]

pub mod loki;
pub mod s3;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

pub use loki::LokiReceiver;
pub use s3::{S3Outage, S3Server};

/// Where the checked-in rrweb recordings live.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rrweb").join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("cannot read fixture {name}: {e}"))
}

/// A local port nothing listens on now (for an output that is down until a
/// test starts it there).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A fresh id in the server's id format, unique per call.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), now_ms())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// A setting's value in [`TestServer::start`] that leaves it unset, so the
/// binary's built-in default applies (for settings the harness otherwise
/// sets for every test, such as the rate limits).
pub const BUILT_IN: &str = "<built-in default>";

/// The `observer` binary, running with its own data directory.
pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts the server with the embedded defaults plus `env`.
    pub async fn start(env: &[(&str, &str)]) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), env).await
    }

    /// Starts the server on an existing data directory (e.g. one taken from
    /// a stopped server with [`TestServer::take_data_dir`], to test restarts).
    pub async fn start_in(data_dir: tempfile::TempDir, env: &[(&str, &str)]) -> TestServer {
        let server = TestServer::spawn_in(data_dir, env).await;
        server.wait_ready().await;
        server
    }

    /// Like [`TestServer::start_in`], but waits only until the server is
    /// alive (`/healthz`): for runs where an output is down on purpose and
    /// `/readyz` says so.
    pub async fn start_alive_in(data_dir: tempfile::TempDir, env: &[(&str, &str)]) -> TestServer {
        let server = TestServer::spawn_in(data_dir, env).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(server.http.get(server.url("/healthz")).send().await, Ok(r) if r.status() == 200) {
            assert!(Instant::now() < deadline, "observer never came alive; stderr:\n{}", server.stderr_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    async fn spawn_in(data_dir: tempfile::TempDir, env: &[(&str, &str)]) -> TestServer {
        let mut command = observer_command();
        command
            .env("OBSERVER_LISTEN", "127.0.0.1:0")
            .env("OBSERVER_DATA_DIR", data_dir.path())
            .env("OBSERVER_LOG", "info")
            .env("OBSERVER_SHUTDOWN_TIMEOUT", "5s")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Tests post many requests of one session from one address; a
            // test's env wins, and `BUILT_IN` gives back the real default.
            .env("OBSERVER_RATE_LIMIT_PER_IP", "0")
            .env("OBSERVER_RATE_LIMIT_PER_SESSION", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            if *value == BUILT_IN {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let mut child = command.spawn().expect("cannot start the observer binary");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        {
            let lines = stdout.clone();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
            let lines = stderr.clone();
            let err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("listen=") {
                        let addr: String = line[at + 7..].chars().take_while(|c| !c.is_whitespace()).collect();
                        let _ = addr_tx.send(addr);
                    }
                    eprintln!("[observer] {line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("observer did not start; stderr:\n{}", stderr.lock().unwrap().join("\n"));
            }
        };
        TestServer {
            child,
            base: format!("http://{addr}"),
            data_dir,
            stdout,
            stderr,
            http: // No connection reuse: a server that answers 413 before reading a body closes
            // the connection, and a pooled client would race that close.
            reqwest::Client::builder().no_gzip().pool_max_idle_per_host(0).build().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "observer never became ready; stderr:\n{}", self.stderr_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POST helper: JSON text with the given content type.
    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http.post(self.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post(path, "application/json", body.to_string()).await
    }

    /// Data records written to stdout (embedded mode), parsed.
    pub fn stdout_records(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
            .collect()
    }

    /// Waits until `count` stdout records satisfy `filter`.
    pub async fn wait_stdout_records(&self, count: usize, filter: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Value> = self.stdout_records().into_iter().filter(|r| filter(r)).collect();
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "expected {count} records, have {}: {found:?}", found.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub async fn metrics_text(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    /// The value of one sample line (`name{labels} value`) in /metrics.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// Sends SIGTERM and waits (without blocking the runtime, which may be
    /// serving the Loki receiver) for the process to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(Instant::now() < deadline, "observer did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process dies at once, with no shutdown of any kind.
    pub async fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Files the replay store wrote under the data directory, relative,
    /// sorted (the generated `viewer-token` and `share-secret` and the
    /// disk spool left out).
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let root = self.data_dir.path().to_owned();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.retain(|f| f != "viewer-token" && f != "share-secret" && !f.starts_with("spool/"));
        out.sort();
        out
    }
}

/// The `observer` binary with no `OBSERVER_*` or `AWS_*` setting inherited
/// from the environment the tests run in.
pub fn observer_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_observer"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OBSERVER_") || key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
}

impl TestServer {
    /// Hands over the data directory, so it outlives this server; the
    /// server keeps an empty directory in its place.
    pub fn take_data_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
